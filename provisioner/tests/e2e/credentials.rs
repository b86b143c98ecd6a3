//! Credentials from `~/.aws` as a user has them: the real binary, a fake `HOME` holding
//! `~/.aws/config` (and the SSO token cache), and no `AWS_*` variable inherited from the test
//! process. A `credential_process` profile runs its process; an SSO profile whose token is
//! missing or expired fails at once with one line saying to run `aws sso login`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

/// A `HOME` of its own, with `~/.aws/config` holding `config`.
struct FakeHome {
    dir: tempfile::TempDir,
}

impl FakeHome {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(aws.join("config"), config).unwrap();
        // An empty credentials file: nothing there to fall back on.
        std::fs::write(aws.join("credentials"), "").unwrap();
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// An executable shell script in the fake home.
    fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// `provisioner plan --profile PROFILE -f dev.yaml --endpoint-url ENDPOINT` with this
    /// `HOME` and no other AWS setting than `env`: the environment is cleared but for `PATH`.
    async fn plan(
        &self,
        profile: &str,
        endpoint: &str,
        env: &[(&str, &str)],
    ) -> (Output, Duration) {
        let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../vpc-templates/dev.yaml");
        let start = Instant::now();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
            .args(["plan", "--profile", profile, "-f", template])
            .args(["--endpoint-url", endpoint])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            // No instance metadata service here (and none should be waited for).
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), child)
            .await
            .expect("provisioner plan finished within 2 minutes")
            .expect("running provisioner");
        (out, start.elapsed())
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The one line the user is told: stderr holds exactly one non-empty line, the error.
fn the_one_line(out: &Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    println!("{}", lines[0]);
    lines[0].to_owned()
}

/// The credential_process JSON format (Version 1); without `Expiration`, never refreshed.
const PROCESS_JSON: &str = r#"{"Version": 1, "AccessKeyId": "testing", "SecretAccessKey": "testing", "SessionToken": "from-the-process"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_process_profile_runs_its_process_once() {
    let guard = harness::emulator().await.unwrap();
    let home = FakeHome::new("");
    // One line per run of the process.
    let marker = home.path().join("process-runs");
    let script = home.script(
        "creds.sh",
        &format!(
            "echo ran >> '{}'\ncat <<'EOF'\n{PROCESS_JSON}\nEOF\n",
            marker.display()
        ),
    );
    std::fs::write(
        home.path().join(".aws/config"),
        format!(
            "[profile proc]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    // Keys in the environment, too: `--profile` wins over them, as with the AWS CLI.
    let keys = [
        ("AWS_ACCESS_KEY_ID", "from-the-environment"),
        ("AWS_SECRET_ACCESS_KEY", "from-the-environment"),
    ];
    let (out, _) = home.plan("proc", &guard.endpoint, &keys).await;
    let err = stderr(&out);
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "plan with a credential_process profile failed:\n{err}"
    );
    assert!(!err.contains("cargo feature"), "{err}");
    let runs = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        runs.lines().count(),
        1,
        "the credential process ran {} times (0: the environment's keys were used instead; \
         more: once per client or call)",
        runs.lines().count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_credential_process_is_one_line_naming_the_profile_and_the_process() {
    let guard = harness::emulator().await.unwrap();
    let home = FakeHome::new("");
    let script = home.script("broken-creds.sh", "echo 'no session' >&2\nexit 3\n");
    std::fs::write(
        home.path().join(".aws/config"),
        format!(
            "[profile proc-broken]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    )
    .unwrap();
    let (out, took) = home.plan("proc-broken", &guard.endpoint, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line = the_one_line(&out);
    assert!(line.contains("proc-broken"), "names the profile: {line}");
    assert!(
        line.contains("broken-creds.sh"),
        "names the process: {line}"
    );
    assert!(!line.contains("cargo feature"), "{line}");
    assert!(
        !line.contains("not available"),
        "not a missing service: {line}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}: retried?");
}

/// An `sso_session` profile, as `aws configure sso` writes it.
const SSO_CONFIG: &str = "\
[profile sso-dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Admin
region = us-east-1

[sso-session corp]
sso_start_url = https://example.awsapps.com/start
sso_region = us-east-1
sso_registration_scopes = sso:account:access
";

/// Where the AWS CLI caches the token of SSO session `corp`: `~/.aws/sso/cache/` and the SHA-1
/// of the session name (`printf corp | sha1sum`).
const CORP_TOKEN_CACHE: &str = ".aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json";

fn assert_says_sso_login(out: &Output, took: Duration) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let line = the_one_line(out);
    assert!(
        line.contains("aws sso login --profile sso-dev"),
        "tells the user what to run: {line}"
    );
    assert!(!line.contains("cargo feature"), "{line}");
    assert!(
        !line.contains("not available"),
        "not a missing service: {line}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}: retried?");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_profile_without_a_token_says_to_log_in() {
    let guard = harness::emulator().await.unwrap();
    let home = FakeHome::new(SSO_CONFIG);
    let (out, took) = home.plan("sso-dev", &guard.endpoint, &[]).await;
    assert_says_sso_login(&out, took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_profile_with_an_expired_token_says_to_log_in() {
    let guard = harness::emulator().await.unwrap();
    let home = FakeHome::new(SSO_CONFIG);
    let cache = home.path().join(CORP_TOKEN_CACHE);
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::write(
        &cache,
        serde_json::json!({
            "startUrl": "https://example.awsapps.com/start",
            "region": "us-east-1",
            "accessToken": "expired-token",
            "expiresAt": "2020-01-01T00:00:00Z",
        })
        .to_string(),
    )
    .unwrap();
    let (out, took) = home.plan("sso-dev", &guard.endpoint, &[]).await;
    assert_says_sso_login(&out, took);
}
