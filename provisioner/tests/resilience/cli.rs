//! The command line itself: validation output and exit codes, graph formats,
//! and `--local` (the bundled emulator started, used, and never left behind —
//! not even when the provisioner is SIGKILLed).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{bin, template};

fn cmd(args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(bin());
    c.args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = cmd(args).output().expect("run provisioner");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_reports_every_error_with_file_and_key_path() {
    let dev = template("dev.yaml");
    let (code, out, _) = run(&["validate", "-f", dev.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("dev.yaml: valid"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let src = std::fs::read_to_string(&dev)
        .unwrap()
        .replace("cidr: 10.0.32.0/20", "cidr: 10.1.32.0/20")
        .replace("target_pool: servers", "target_pool: masters");
    std::fs::write(&bad, src).unwrap();
    let bad = bad.to_str().unwrap();
    let (code, _, err) = run(&["validate", "-f", bad]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 errors"), "{err}");
    // file:line:column: key path: reason
    let line = err
        .lines()
        .find(|l| l.contains("vpcs[0].subnets[3].cidr"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("{bad}:33:")), "{line}");
    assert!(
        line.contains(": vpcs[0].subnets[3].cidr: subnet 10.1.32.0/20 is outside"),
        "{line}"
    );
    assert!(
        err.contains("load_balancers.nlb.listeners[0].target_pool: unknown node pool `masters`"),
        "{err}"
    );

    let (code, out, _) = run(&["validate", "-f", bad, "--output", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"].as_array().unwrap().len(), 2);
    assert_eq!(doc["errors"][0]["path"], "vpcs[0].subnets[3].cidr");

    // Every other command validates first, before any AWS call.
    let (code, _, err) = run(&["plan", "-f", bad, "--endpoint-url", "http://127.0.0.1:9"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown node pool `masters`"), "{err}");

    // --region re-checks AZ counts against the region actually used.
    let multi = template("multi-vpc.yaml");
    let (code, _, err) = run(&[
        "validate",
        "-f",
        multi.to_str().unwrap(),
        "--region",
        "us-west-1",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("region us-west-1 has only 2"), "{err}");
}

#[test]
fn graph_in_both_formats() {
    let dev = template("dev.yaml");
    let dev = dev.to_str().unwrap();
    let (code, dot, _) = run(&["graph", "-f", dev]);
    assert_eq!(code, 0);
    assert!(dot.contains("digraph provisioner"), "{dot}");
    assert!(
        dot.contains("\"subnet/main-public-a\" -> \"vpc/main\""),
        "{dot}"
    );
    let (code, mermaid, _) = run(&["graph", "-f", dev, "--format", "mermaid"]);
    assert_eq!(code, 0);
    assert!(mermaid.contains("flowchart LR"), "{mermaid}");
    assert!(
        mermaid.contains("subnet_main_public_a --> vpc_main"),
        "{mermaid}"
    );
}

#[test]
fn a_bad_image_is_refused_before_anything_is_created() {
    let dev = template("dev.yaml");
    let dev = dev.to_str().unwrap();
    // No endpoint is reachable here: the refusal must come first, naming the flag.
    let (code, _, err) = run(&["up", "-f", dev, "--yes", "--image", "Proximity:1"]);
    assert_eq!(code, 2, "clap usage error: {err}");
    assert!(err.contains("--image"), "{err}");
    assert!(err.contains("lowercase"), "{err}");
}

#[test]
fn down_needs_a_template_or_an_environment_name() {
    let (code, _, err) = run(&["down", "--yes"]);
    assert_eq!(code, 2, "clap usage error: {err}");
    let (code, _, err) = run(&["down", "--env", "Not_A_Name", "--yes"]);
    assert_eq!(code, 1);
    assert!(err.contains("--env"), "{err}");
}

fn moto_available() -> bool {
    provisioner::emulator::Emulator::candidates()
        .iter()
        .any(|p| p.exists())
}

/// The endpoint `--local` announced on stderr.
fn announced(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("emulator: moto on "))
        .map(|s| s.trim().to_owned())
}

fn answers(endpoint: &str) -> bool {
    let addr = endpoint.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

fn gone_within(endpoint: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !answers(endpoint) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn local_starts_the_emulator_and_stops_it_on_exit() {
    if !moto_available() {
        assert!(std::env::var_os("CI").is_none(), "moto missing under CI");
        eprintln!("skipped: moto is not installed (scripts/setup)");
        return;
    }
    let dev = template("dev.yaml");
    let (code, out, err) = run(&["--local", "plan", "-f", dev.to_str().unwrap()]);
    assert_eq!(
        code, 2,
        "a fresh emulator has everything to create:\n{out}\n{err}"
    );
    assert!(
        err.contains("instances are records that never boot"),
        "{err}"
    );
    let endpoint = announced(&err).expect("endpoint announced");
    assert!(
        gone_within(&endpoint, Duration::from_secs(5)),
        "moto still answers on {endpoint}"
    );
}

#[test]
fn local_emulator_dies_with_a_killed_provisioner() {
    if !moto_available() {
        assert!(std::env::var_os("CI").is_none(), "moto missing under CI");
        eprintln!("skipped: moto is not installed (scripts/setup)");
        return;
    }
    use std::io::{BufRead, BufReader};
    let dev = template("dev.yaml");
    let out = tempfile::tempdir().unwrap();
    let mut child = cmd(&[
        "--local",
        "up",
        "-f",
        dev.to_str().unwrap(),
        "--manifests-out",
        out.path().to_str().unwrap(),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut endpoint = None;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 {
        if let Some(e) = announced(&line) {
            endpoint = Some(e);
            break;
        }
        line.clear();
    }
    let endpoint = endpoint.expect("endpoint announced");
    assert!(answers(&endpoint));
    child.kill().unwrap(); // SIGKILL: no destructor runs
    child.wait().unwrap();
    assert!(
        gone_within(&endpoint, Duration::from_secs(10)),
        "moto outlived the killed provisioner on {endpoint}"
    );
}

/// `up` asks the image's registry (a real one, Debian's `docker-registry`, on loopback) before
/// it changes anything: an image that does not exist is refused, naming the key, and one that
/// exists is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_an_image_its_registry_does_not_have_before_changing_anything() {
    use provisioner::registry::{check, ImageCheck};
    let registry = harness::Registry::start().await.unwrap();
    let digest = registry.push("proximity/svc", "1.0").await.unwrap();
    let there = format!("{}/proximity/svc:1.0", registry.host());
    let missing = format!("{}/proximity/svc:2.0", registry.host());
    let t = std::time::Duration::from_secs(5);
    assert_eq!(
        check(&there, None, t).await,
        ImageCheck::Found {
            digest: Some(digest)
        },
        "{}",
        registry.log()
    );
    assert!(matches!(
        check(&missing, None, t).await,
        ImageCheck::NotFound(_)
    ));
    // Nothing listens there: a warning, not a refusal.
    let port = harness::free_port();
    assert!(matches!(
        check(&format!("localhost:{port}/x:1"), None, t).await,
        ImageCheck::Unreachable(_)
    ));

    let dev = template("dev.yaml");
    let (code, out, err) = run(&[
        "up",
        "-f",
        dev.to_str().unwrap(),
        "--local",
        "--yes",
        "--boot-timeout",
        "5",
        "--image",
        &missing,
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(&format!("--image: {missing} cannot be pulled")) && err.contains("has no"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!out.contains("created"), "{out}");

    // A private registry's credentials are read from SSM before anything changes: a missing
    // parameter is named.
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.yaml");
    let src = std::fs::read_to_string(&dev).unwrap().replace(
        "  service_image: ghcr.io/proximity/proximity-service:0.1.0",
        "  service_image: ghcr.io/proximity/proximity-service:0.1.0\n  image_pull_secret: /proximity/registry",
    );
    assert!(src.contains("image_pull_secret"));
    std::fs::write(&private, src).unwrap();
    let (code, out, err) = run(&[
        "up",
        "-f",
        private.to_str().unwrap(),
        "--local",
        "--yes",
        "--boot-timeout",
        "5",
        "--image",
        &there,
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("cluster.image_pull_secret: SSM parameter /proximity/registry does not exist"),
        "{err}"
    );
    assert!(!out.contains("created"), "{out}");
}

/// `scripts/build-image` builds for the nodes' architecture, read from the template's
/// instance types. Docker cannot run here: a stand-in `docker` on PATH records the call.
#[test]
fn build_image_targets_the_architecture_of_the_templates_instances() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("docker.log");
    let fake = dir.path().join("docker");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = template("dev.yaml")
        .parent()
        .unwrap()
        .join("../scripts/build-image");
    let run = |args: &[&str], path: &str| {
        std::process::Command::new("/bin/bash")
            .arg(&script)
            .args(args)
            .env("PATH", path)
            .env_remove("PLATFORMS")
            .output()
            .unwrap()
    };
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let dev = template("dev.yaml");
    let out = run(&["ghcr.io/you/svc:1", dev.to_str().unwrap()], &path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("buildx build --platform linux/amd64 --tag ghcr.io/you/svc:1 --push ."),
        "{calls}"
    );
    // Graviton pools: arm64; mixed: both.
    let graviton = dir.path().join("graviton.yaml");
    let src = std::fs::read_to_string(&dev).unwrap();
    std::fs::write(&graviton, src.replace("t3.large", "m7g.large")).unwrap();
    std::fs::remove_file(&log).unwrap();
    let out = run(&["ghcr.io/you/svc:1", graviton.to_str().unwrap()], &path);
    assert!(out.status.success());
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("--platform linux/amd64,linux/arm64"),
        "{calls}"
    );
    // No builder at all: a clear error (PATH holds only the tools the script needs).
    let bare = tempfile::tempdir().unwrap();
    for tool in ["dirname", "sed"] {
        let real = which(tool);
        std::os::unix::fs::symlink(real, bare.path().join(tool)).unwrap();
    }
    let out = run(&["ghcr.io/you/svc:1"], bare.path().to_str().unwrap());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image builder"));
}

fn which(tool: &str) -> std::path::PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(tool))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{tool} not found"))
}
