//! Cross-crate end-to-end suite: the provisioner and the proximity service as a user runs them
//! (their real binaries), against the real emulator, Postgres primary + replica and Redis that
//! the harness starts.
//!
//! The contract between the two halves is checked here: the workload the provisioner renders
//! must run the service with settings the service understands, on the port the ALB targets,
//! with probes on paths the service answers.

use anyhow::{bail, Context, Result};
use serde_norway::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary of the workspace, built next to this test by `cargo test --workspace`.
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built: run the suite with `cargo test --workspace`",
        bin.display()
    );
    bin
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn template() -> PathBuf {
    repo_root().join("vpc-templates/dev.yaml")
}

fn provisioner(emu: &harness::EmulatorGuard, args: &[&str]) -> Result<Output> {
    provisioner_env(emu, args, &[])
}

/// `provisioner ARGS` against the emulator, with `extra` environment on top of the SDK's.
fn provisioner_env(
    emu: &harness::EmulatorGuard,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Result<Output> {
    let mut cmd = Command::new(workspace_bin("provisioner"));
    cmd.args(args).env_remove("AWS_PROFILE");
    for (k, v) in emu.sdk_env() {
        cmd.env(k, v);
    }
    cmd.envs(extra.iter().copied());
    cmd.output().context("running provisioner")
}

#[path = "e2e/aws_path.rs"]
mod aws_path;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The proximity-service process, killed when dropped.
struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    async fn start(env: &[(&str, String)], data_dir: &Path) -> Result<Self> {
        let port = harness::free_port();
        let mut cmd = Command::new(workspace_bin("proximity-service"));
        cmd.arg("serve")
            .env("PROXIMITY_LISTEN", format!("127.0.0.1:{port}"))
            .env("PROXIMITY_DATA_DIR", data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let service = Self {
            child: cmd.spawn().context("starting proximity-service")?,
            base: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", service.base)).await {
                if r.status().is_success() {
                    return Ok(service);
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("proximity-service did not become ready in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Looks up `path` (keys and list indexes) in a YAML value.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) => v.get(i),
            Err(_) => v.get(*key),
        })
}

fn documents(dir: &Path) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("parsing {}", file.display()))?;
            if !value.is_null() {
                docs.push(value);
            }
        }
    }
    Ok(docs)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| {
            at(d, &["kind"]).and_then(Value::as_str) == Some(kind)
                && at(d, &["metadata", "name"]).and_then(Value::as_str) == Some(name)
        })
        .with_context(|| format!("no {kind} named {name} in the rendered workload"))
}

#[tokio::test]
async fn the_rendered_workload_runs_the_service_as_the_alb_expects() -> Result<()> {
    let out_dir = tempfile::tempdir()?;
    let out = Command::new(workspace_bin("provisioner"))
        .args(["render", "-f"])
        .arg(template())
        .arg("--out")
        .arg(out_dir.path())
        .output()?;
    assert!(out.status.success(), "render failed: {}", text(&out));
    // render writes manifests (and user-data) somewhere under the folder.
    let manifest_dir = [
        out_dir.path().join("manifests"),
        out_dir.path().to_path_buf(),
    ]
    .into_iter()
    .find(|d| d.join("30-proximity-service.yaml").exists())
    .context("render wrote no 30-proximity-service.yaml")?;
    let docs = documents(&manifest_dir)?;

    let deployment = find(&docs, "Deployment", "proximity-service")?;
    let container = at(deployment, &["spec", "template", "spec", "containers", "0"])
        .context("the Deployment has no container")?;
    let container_port = at(container, &["ports", "0", "containerPort"])
        .and_then(Value::as_u64)
        .context("no containerPort")?;
    let env_names: Vec<&str> = at(container, &["env"])
        .and_then(Value::as_sequence)
        .context("no env")?
        .iter()
        .filter_map(|e| at(e, &["name"]).and_then(Value::as_str))
        .collect();
    for wanted in [
        "DATABASE_URL",
        "DATABASE_REPLICA_URLS",
        "REDIS_URL",
        "PROXIMITY_API_KEYS",
        "PROXIMITY_LISTEN",
    ] {
        assert!(
            env_names.contains(&wanted),
            "the Deployment does not set {wanted}"
        );
    }
    let listen = at(container, &["env"])
        .and_then(Value::as_sequence)
        .and_then(|env| {
            env.iter()
                .find(|e| at(e, &["name"]).and_then(Value::as_str) == Some("PROXIMITY_LISTEN"))
        })
        .and_then(|e| at(e, &["value"]))
        .and_then(Value::as_str)
        .context("PROXIMITY_LISTEN has no literal value")?;
    assert!(
        listen.ends_with(&format!(":{container_port}")),
        "the service listens on {listen} but the container port is {container_port}"
    );

    // The ALB's target group (template) must reach the Service's NodePort (manifests).
    let tpl: Value = serde_norway::from_str(&std::fs::read_to_string(template())?)?;
    let tg_port = at(
        &tpl,
        &["load_balancers", "alb", "target_groups", "0", "port"],
    )
    .and_then(Value::as_u64)
    .context("the template's ALB has no target group port")?;
    let health_path = at(
        &tpl,
        &[
            "load_balancers",
            "alb",
            "target_groups",
            "0",
            "health_check",
            "path",
        ],
    )
    .and_then(Value::as_str)
    .context("no ALB health check path")?
    .to_owned();
    let service = find(&docs, "Service", "proximity-service")?;
    let node_port = at(service, &["spec", "ports", "0", "nodePort"]).and_then(Value::as_u64);
    assert_eq!(
        node_port,
        Some(tg_port),
        "ALB target port vs Service nodePort"
    );

    // Run the real service with the settings the Deployment names, pointed at real servers,
    // and check every probe path and the ALB health check answer 200.
    let db = harness::postgres().await?;
    let redis = harness::redis().await?;
    let data = tempfile::tempdir()?;
    let service = Service::start(
        &[
            ("DATABASE_URL", db.primary_url.clone()),
            ("DATABASE_REPLICA_URLS", db.replica_url.clone()),
            ("REDIS_URL", redis.url.clone()),
            ("PROXIMITY_API_KEYS", "e2e-key".into()),
        ],
        data.path(),
    )
    .await?;
    let mut paths: Vec<String> = ["startupProbe", "readinessProbe", "livenessProbe"]
        .iter()
        .filter_map(|p| at(container, &[p, "httpGet", "path"]).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    assert!(!paths.is_empty(), "the Deployment has no HTTP probes");
    paths.push(health_path);
    for path in paths {
        let status = reqwest::get(format!("{}{path}", service.base))
            .await?
            .status();
        assert_eq!(status, 200, "GET {path}");
    }

    // A write through the primary is searchable and readable (replica) right away.
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{}/v1/businesses", service.base))
        .bearer_auth("e2e-key")
        .json(&serde_json::json!({
            "name": "Kiasma", "category": "museum", "lat": 60.1717, "lng": 24.9365
        }))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await?["id"].clone();
    let start = Instant::now();
    loop {
        let found: serde_json::Value = http
            .get(format!(
                "{}/v1/search/nearby?lat=60.1699&lng=24.9384&radius=1000",
                service.base
            ))
            .send()
            .await?
            .json()
            .await?;
        if found["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|b| b["id"] == id))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "not searchable: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read = http
        .get(format!("{}/v1/businesses/{id}", service.base))
        .send()
        .await?;
    assert_eq!(read.status(), 200);
    Ok(())
}

#[tokio::test]
async fn the_reference_environment_goes_up_converges_and_leaves_nothing() -> Result<()> {
    let emu = harness::emulator().await?;
    let tpl = template();
    let tpl = tpl.to_str().unwrap();
    let manifests = tempfile::tempdir()?;
    let up = provisioner(
        &emu,
        &[
            "up",
            "-f",
            tpl,
            "--yes",
            "--manifests-out",
            manifests.path().to_str().unwrap(),
        ],
    )?;
    assert!(up.status.success(), "up failed:\n{}", text(&up));
    assert!(
        text(&up).contains("k3s"),
        "up on the emulator must say that k3s cannot come up there:\n{}",
        text(&up)
    );

    let plan = provisioner(&emu, &["plan", "-f", tpl])?;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan after up:\n{}",
        text(&plan)
    );

    let down = provisioner(&emu, &["down", "-f", tpl, "--yes"])?;
    assert!(down.status.success(), "down failed:\n{}", text(&down));
    let status = provisioner(&emu, &["status", "--env", "dev"])?;
    assert!(
        !text(&status).contains("vpc/"),
        "something is left after down:\n{}",
        text(&status)
    );
    let replan = provisioner(&emu, &["plan", "-f", tpl])?;
    assert_eq!(replan.status.code(), Some(2), "{}", text(&replan));
    Ok(())
}
