//! The k3s stand-in's side of the twin protocol (`harness::twin` docs), against a recording
//! double of the mock API server that answers exactly as the protocol says.

use anyhow::Result;
use harness::twin::server::{self, Reply};
use harness::twin::Pki;
use http::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERVER_TOKEN: &str = "K10server-token";
const AGENT_TOKEN: &str = "K10agent-token";

pub type Seen = Arc<Mutex<Vec<(String, Option<String>, Value)>>>;

/// Answers the protocol's three calls and `GET /cacerts` (as k3s serves it, without
/// credentials), and records (path, bearer, body) of each call.
pub async fn protocol_double(pki: &Pki) -> Result<(server::Server, Seen)> {
    protocol_double_with(pki, SERVER_TOKEN, AGENT_TOKEN).await
}

/// The double, with the cluster's server and agent tokens.
pub async fn protocol_double_with(
    pki: &Pki,
    server_token: &str,
    agent_token: &str,
) -> Result<(server::Server, Seen)> {
    let server_token = server_token.to_owned();
    let agent_token = agent_token.to_owned();
    let ca_pem = pki.ca_pem();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let listener = server::bind_loopback().await?;
    let srv = server::serve(listener, Some(pki.server_config()), move |req, _| {
        let record = record.clone();
        let server_token = server_token.clone();
        let agent_token = agent_token.clone();
        let ca_pem = ca_pem.clone();
        async move {
            if req.uri().path() == "/cacerts" {
                return Reply::Answer(server::text(StatusCode::OK, ca_pem));
            }
            let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
            let bearer = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned);
            let path = req.uri().path().to_owned();
            record
                .lock()
                .unwrap()
                .push((path.clone(), bearer.clone(), body.clone()));
            let token = body["token"].as_str().unwrap_or("");
            let j = "application/json";
            let answer = match path.as_str() {
                "/twin/v1/cluster-init" if token == server_token => {
                    server::json(StatusCode::OK, j, &json!({"admin_token": "admin-123"}))
                }
                "/twin/v1/join"
                    if (body["role"] == "server" && token == server_token)
                        || (body["role"] == "agent" && token == agent_token) =>
                {
                    server::json(StatusCode::OK, j, &json!({}))
                }
                "/api/v1/nodes" => server::json(StatusCode::CREATED, j, &body),
                _ => server::json(
                    StatusCode::UNAUTHORIZED,
                    j,
                    &json!({"kind": "Status", "message": "Unauthorized"}),
                ),
            };
            Reply::Answer(answer)
        }
    })?;
    Ok((srv, seen))
}

struct Node {
    root: tempfile::TempDir,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel.trim_start_matches('/'))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("var/log/k3s.log")).unwrap_or_default()
    }
}

/// Writes config.yaml and the token files the user-data would, and starts `k3s <role>`.
fn start(role: &str, config: &str, tokens: &[(&str, &str)], api: &str, ca: &Path) -> Node {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("etc/rancher/k3s");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(root.path().join("var/log")).unwrap();
    std::fs::write(dir.join("config.yaml"), config).unwrap();
    for (file, value) in tokens {
        std::fs::write(dir.join(file), format!("{value}\n")).unwrap();
    }
    let log = std::fs::File::create(root.path().join("var/log/k3s.log")).unwrap();
    let child = Command::new(super::standin())
        .arg(role)
        .env("K3S_BOOTSTRAP_ROOT", root.path())
        .env("K3S_STANDIN_API", api)
        .env("K3S_STANDIN_CA", ca)
        .env("K3S_STANDIN_READY_FILE", root.path().join("ready"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Node { root, child }
}

async fn wait_ready(node: &mut Node) {
    let start = Instant::now();
    while !node.path("ready").exists() {
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!("the stand-in exited {status}:\n{}", node.log());
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", node.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Ready, and still running like a daemon.
    assert!(node.child.try_wait().unwrap().is_none(), "{}", node.log());
}

#[tokio::test]
async fn twin_standin_server_initialises_writes_the_kubeconfig_and_registers() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new()?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    pki.write_ca_pem(&ca)?;
    let (srv, seen) = protocol_double(&pki).await?;
    let api = format!("https://{}", srv.addr());
    let config = r#"# as the user-data writes it
token-file: "/etc/rancher/k3s/token"
agent-token-file: "/etc/rancher/k3s/agent-token"
cluster-init: true
node-ip: "10.0.1.23"
tls-san:
  - "dev-nlb.elb.us-east-1.amazonaws.com"
node-label:
  - "provisioner.pool=servers"
  - "topology.kubernetes.io/zone=us-east-1a"
node-taint:
  - "CriticalAddonsOnly=true:NoExecute"
disable:
  - traefik
write-kubeconfig-mode: "0600"
"#;
    let mut node = start(
        "server",
        config,
        &[("token", SERVER_TOKEN), ("agent-token", AGENT_TOKEN)],
        &api,
        &ca,
    );
    wait_ready(&mut node).await;

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "/twin/v1/cluster-init");
    assert_eq!(
        seen[0].2,
        json!({"token": SERVER_TOKEN, "agent_token": AGENT_TOKEN, "node": "ip-10-0-1-23"})
    );
    let (path, bearer, obj) = &seen[1];
    assert_eq!(path, "/api/v1/nodes");
    assert_eq!(bearer.as_deref(), Some(SERVER_TOKEN));
    assert_eq!(obj["metadata"]["name"], "ip-10-0-1-23");
    let labels = &obj["metadata"]["labels"];
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    assert_eq!(labels["provisioner.pool"], "servers");
    assert_eq!(labels["topology.kubernetes.io/zone"], "us-east-1a");
    assert_eq!(
        obj["spec"]["taints"],
        json!([{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoExecute"}])
    );
    assert_eq!(
        obj["status"]["conditions"][0],
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
               "message": "kubelet is posting ready status (k3s stand-in)"})
    );
    assert_eq!(
        obj["status"]["addresses"][0],
        json!({"type": "InternalIP", "address": "10.0.1.23"})
    );

    let kubeconfig = node.path("etc/rancher/k3s/k3s.yaml");
    let mode = std::fs::metadata(&kubeconfig)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let kc: serde_norway::Value = serde_norway::from_str(&std::fs::read_to_string(&kubeconfig)?)?;
    use base64::Engine;
    let ca_data = base64::engine::general_purpose::STANDARD.encode(pki.ca_pem());
    assert_eq!(kc["clusters"][0]["name"].as_str(), Some("default"));
    assert_eq!(
        kc["clusters"][0]["cluster"]["server"].as_str(),
        Some("https://127.0.0.1:6443")
    );
    assert_eq!(
        kc["clusters"][0]["cluster"]["certificate-authority-data"].as_str(),
        Some(ca_data.as_str())
    );
    assert_eq!(kc["users"][0]["user"]["token"].as_str(), Some("admin-123"));
    assert_eq!(kc["current-context"].as_str(), Some("default"));
    Ok(())
}

#[tokio::test]
async fn twin_standin_agent_joins_with_its_token_and_fails_clearly_with_a_wrong_one() -> Result<()>
{
    let pki = Pki::new()?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    pki.write_ca_pem(&ca)?;
    let (srv, seen) = protocol_double(&pki).await?;
    let api = format!("https://{}", srv.addr());
    let config = "server: \"https://dev-nlb.elb.us-east-1.amazonaws.com:6443\"\n\
                  token-file: \"/etc/rancher/k3s/token\"\n\
                  node-ip: \"10.0.2.7\"\n\
                  node-label:\n  - \"provisioner.pool=workers\"\n";

    let mut agent = start("agent", config, &[("token", AGENT_TOKEN)], &api, &ca);
    wait_ready(&mut agent).await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].2,
            json!({"token": AGENT_TOKEN, "role": "agent", "node": "ip-10-0-2-7"})
        );
        assert_eq!(seen[1].1.as_deref(), Some(AGENT_TOKEN));
        let labels = &seen[1].2["metadata"]["labels"];
        assert_eq!(labels["provisioner.pool"], "workers");
        assert!(labels
            .get("node-role.kubernetes.io/control-plane")
            .is_none());
    }
    assert!(!agent.path("etc/rancher/k3s/k3s.yaml").exists());

    let mut wrong = start("agent", config, &[("token", "K10not-the-token")], &api, &ca);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = wrong.child.try_wait()? {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{}", wrong.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(1), "{}", wrong.log());
    let log = wrong.log();
    assert!(
        log.contains("level=fatal") && log.contains("token rejected (401)"),
        "{log}"
    );
    assert!(
        !log.contains("K10not-the-token"),
        "the token is never logged:\n{log}"
    );
    assert!(!wrong.path("ready").exists());
    Ok(())
}
