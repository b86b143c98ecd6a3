//! STAND-IN for the k3s binary (the one part of a node that cannot run on this machine), served
//! by the node twin's mirror as `k3s` and started by the stand-in `install.sh`.
//!
//! `k3s server` / `k3s agent` read `$K3S_BOOTSTRAP_ROOT/etc/rancher/k3s/config.yaml` as k3s
//! does, then speak the twin protocol (documented in `harness::twin`) to the mock Kubernetes
//! API server at `$K3S_STANDIN_API`, trusting the CA in `$K3S_STANDIN_CA`: initialise or join
//! the cluster with the token, write k3s's admin kubeconfig (servers), register a Ready Node,
//! report ready, and stay up until killed. Logs go to stderr in k3s's logrus format.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const VERSION: &str = "v1.34.1+k3s1 (stand-in)";
/// How long transport errors and 5xx answers are retried.
const RETRY_FOR: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Server,
    Agent,
}

/// The keys of k3s's `config.yaml` the stand-in uses (others are accepted and ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
struct Config {
    token: Option<String>,
    token_file: Option<String>,
    agent_token: Option<String>,
    agent_token_file: Option<String>,
    cluster_init: bool,
    server: Option<String>,
    node_ip: Option<String>,
    tls_san: Vec<String>,
    node_label: Vec<String>,
    node_taint: Vec<String>,
    write_kubeconfig_mode: Option<String>,
}

fn log(level: &str, msg: &str) {
    let now = harness::twin::imds::iso8601(std::time::SystemTime::now());
    eprintln!("time=\"{now}\" level={level} msg={msg:?}");
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let role = match args.first().map(String::as_str) {
        Some("--version" | "-v" | "version") => {
            println!("k3s version {VERSION}");
            return ExitCode::SUCCESS;
        }
        Some("server") => Role::Server,
        Some("agent") => Role::Agent,
        _ => {
            eprintln!("k3s stand-in: usage: k3s server|agent (configured by config.yaml)");
            return ExitCode::from(1);
        }
    };
    log(
        "info",
        &format!("Starting k3s {} {VERSION}", args.join(" ")),
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log("fatal", &format!("tokio runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    if let Err(e) = runtime.block_on(run(role)) {
        log("fatal", &format!("{e:#}"));
        return ExitCode::from(1);
    }
    log("info", "k3s stand-in is up; running until killed");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn root() -> PathBuf {
    PathBuf::from(std::env::var("K3S_BOOTSTRAP_ROOT").unwrap_or_default())
}

/// A path from config.yaml, inside the instance root.
fn rooted(path: &str) -> PathBuf {
    let mut p = root().into_os_string();
    p.push(path);
    PathBuf::from(p)
}

fn read_secret(
    inline: &Option<String>,
    file: &Option<String>,
    what: &str,
) -> Result<Option<String>> {
    if let Some(v) = inline {
        return Ok(Some(v.trim().to_owned()));
    }
    let Some(file) = file else { return Ok(None) };
    let path = rooted(file);
    let v = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the {what} file {}", path.display()))?;
    let v = v.trim().to_owned();
    if v.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(Some(v))
}

async fn run(role: Role) -> Result<()> {
    let config_path = rooted("/etc/rancher/k3s/config.yaml");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config: Config = serde_norway::from_str(&text)
        .with_context(|| format!("parsing {}", config_path.display()))?;
    let token = read_secret(&config.token, &config.token_file, "token")?
        .context("no token: config.yaml has neither token nor token-file")?;
    let agent_token = read_secret(&config.agent_token, &config.agent_token_file, "agent token")?;
    let node_ip = config
        .node_ip
        .clone()
        .context("config.yaml has no node-ip (the stand-in names the node after it)")?;
    let node = harness::twin::host_name(&node_ip);
    let api = std::env::var("K3S_STANDIN_API")
        .context("K3S_STANDIN_API is not set (the twin's mock API server URL)")?;
    let api = api.trim_end_matches('/').to_owned();
    let ca_path = std::env::var("K3S_STANDIN_CA").context("K3S_STANDIN_CA is not set")?;
    let ca_pem = std::fs::read(&ca_path).with_context(|| format!("reading {ca_path}"))?;
    let roots = harness::twin::pki::certificates_from_pem(&ca_pem)?;
    let client =
        harness::twin::https::HttpsClient::new(harness::twin::pki::client_config_trusting(&roots));
    let http = Http { client, api };

    let admin_token = match (role, config.cluster_init, &config.server) {
        (Role::Server, true, _) => {
            log(
                "info",
                &format!("Starting a new cluster (cluster-init) as {node}"),
            );
            let answer = http
                .post(
                    "/twin/v1/cluster-init",
                    None,
                    &json!({"token": token, "agent_token": agent_token, "node": node}),
                )
                .await?;
            let admin = answer
                .get("admin_token")
                .and_then(Value::as_str)
                .context("cluster-init answered without an admin_token")?;
            Some(admin.to_owned())
        }
        (_, _, Some(server)) => {
            let kind = if role == Role::Server {
                "server"
            } else {
                "agent"
            };
            log(
                "info",
                &format!("Joining the cluster at {server} as {kind} {node}"),
            );
            let answer = http
                .post(
                    "/twin/v1/join",
                    None,
                    &json!({"token": token, "role": kind, "node": node}),
                )
                .await?;
            answer
                .get("admin_token")
                .and_then(Value::as_str)
                .map(str::to_owned)
        }
        (Role::Server, false, None) => {
            bail!("a server needs cluster-init: true or server: (the twin runs no single-node datastore)")
        }
        (Role::Agent, _, None) => bail!("an agent needs server: in config.yaml"),
    };
    if role == Role::Server {
        if let Some(admin) = &admin_token {
            write_kubeconfig(admin, &ca_pem, config.write_kubeconfig_mode.as_deref())?;
        }
        log("info", &format!("tls-san: {}", config.tls_san.join(", ")));
    }
    http.post(
        "/api/v1/nodes",
        Some(&token),
        &node_object(role, &node, &node_ip, &config)?,
    )
    .await
    .context("registering the node")?;
    log("info", &format!("Node {node} registered and Ready"));
    if let Ok(ready) = std::env::var("K3S_STANDIN_READY_FILE") {
        std::fs::write(&ready, "READY=1\n").with_context(|| format!("writing {ready}"))?;
    }
    Ok(())
}

struct Http {
    client: harness::twin::https::HttpsClient,
    api: String,
}

impl Http {
    /// POSTs `body`; 2xx (and 409 for a node that exists) is success, 401 and other 4xx fail
    /// at once, transport errors and 5xx are retried.
    async fn post(&self, path: &str, bearer: Option<&str>, body: &Value) -> Result<Value> {
        let url = format!("{}{path}", self.api);
        let start = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let problem = match self.client.post_json(&url, bearer, body).await {
                Ok((status, answer)) => {
                    let text = String::from_utf8_lossy(&answer).into_owned();
                    if status.is_success() || (status.as_u16() == 409 && path == "/api/v1/nodes") {
                        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                    }
                    if status.as_u16() == 401 {
                        bail!("POST {path}: token rejected (401): {}", text.trim());
                    }
                    if !status.is_server_error() {
                        bail!("POST {path}: {status}: {}", text.trim());
                    }
                    format!("{status}: {}", text.trim())
                }
                Err(e) => format!("{e:#}"),
            };
            if start.elapsed() > RETRY_FOR {
                bail!("POST {url}: still failing after {RETRY_FOR:?}: {problem}");
            }
            if attempt == 1 || attempt.is_multiple_of(10) {
                log("info", &format!("POST {path} failed ({problem}); retrying"));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// k3s's `/etc/rancher/k3s/k3s.yaml`, with a token user.
fn write_kubeconfig(admin_token: &str, ca_pem: &[u8], mode: Option<&str>) -> Result<()> {
    use base64::Engine;
    use std::os::unix::fs::PermissionsExt;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    certificate-authority-data: {ca}\n    server: https://127.0.0.1:6443\n  name: default\n\
         contexts:\n\
         - context:\n    cluster: default\n    user: default\n  name: default\n\
         current-context: default\n\
         kind: Config\n\
         preferences: {{}}\n\
         users:\n\
         - name: default\n  user:\n    token: {admin_token}\n"
    );
    let mode = match mode {
        Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
            .with_context(|| format!("write-kubeconfig-mode `{m}` is not octal"))?,
        None => 0o600,
    };
    let path = rooted("/etc/rancher/k3s/k3s.yaml");
    let tmp = rooted("/etc/rancher/k3s/.k3s.yaml.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, &path)?;
    log("info", &format!("Wrote kubeconfig {}", path.display()));
    Ok(())
}

fn node_object(role: Role, node: &str, node_ip: &str, config: &Config) -> Result<Value> {
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("kubernetes.io/hostname", node),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
    ] {
        labels.insert(k.to_owned(), json!(v));
    }
    if role == Role::Server {
        labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            json!("true"),
        );
        labels.insert("node-role.kubernetes.io/etcd".into(), json!("true"));
    }
    for label in &config.node_label {
        let (k, v) = label.split_once('=').unwrap_or((label, ""));
        labels.insert(k.to_owned(), json!(v));
    }
    let mut taints = Vec::new();
    for taint in &config.node_taint {
        // key[=value]:Effect
        let (kv, effect) = taint
            .rsplit_once(':')
            .with_context(|| format!("node-taint `{taint}` has no :Effect"))?;
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        let mut t = json!({"key": key, "effect": effect});
        if !value.is_empty() {
            t["value"] = json!(value);
        }
        taints.push(t);
    }
    let mut node_obj = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node, "labels": labels},
        "spec": {},
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status (k3s stand-in)",
            }],
            "addresses": [
                {"type": "InternalIP", "address": node_ip},
                {"type": "Hostname", "address": node},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.34.1+k3s1",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    });
    if !taints.is_empty() {
        node_obj["spec"]["taints"] = json!(taints);
    }
    Ok(node_obj)
}
