//! `up`'s real-AWS path, end to end on this machine: the moto emulator for AWS, the node twin
//! (`harness::twin`) booting every in-service instance by running its **real user-data**
//! (IMDSv2 stubs, SSM through a SigV4- and IAM-checking front, k3s from the twin's mirror with
//! its checksum file), the k3s **stand-in** binary, the **mock** Kubernetes API server (the
//! only mock: no API server can run here), and a **real** proximity-service on the harness's
//! Postgres primary + replica and Redis behind the ALB's name. `up` reaches the cluster and the
//! service through `--resolve` (`*:6443` → the mock API server, `*:80` → the service), as a
//! user behind a tunnel would.
//!
//! What a real run exercises that this cannot: k3s itself (etcd, the kubelet, pods running),
//! EC2 booting an AMI with cloud-init, real DNS for the load balancer and Route 53 names, the
//! NLB/ALB forwarding packets.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use harness::twin::kube_api::MockKubeApi;
use harness::twin::nodes::{NodeTwin, TwinConfig};
use harness::twin::Pki;

use super::{provisioner_env, template, text, workspace_bin, Service};

/// Everything `up` talks to after AWS converges, started for one test.
struct World {
    emu: harness::EmulatorGuard,
    kube: MockKubeApi,
    twin: NodeTwin,
    service: Service,
    service_addr: SocketAddr,
    _db: harness::TestDb,
    _redis: harness::TestRedis,
    _data: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Result<Self> {
        let emu = harness::emulator().await?;
        let pki = Pki::new()?;
        let kube = MockKubeApi::start(&pki).await?;
        let mut cfg = TwinConfig::new(&emu.endpoint, "dev", workspace_bin("k3s-standin"));
        cfg.kube_api = Some(kube.addr());
        cfg.pki = Some(pki);
        let twin = NodeTwin::start(cfg).await?;
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
        let service_addr: SocketAddr = service
            .base
            .trim_start_matches("http://")
            .parse()
            .context("service address")?;
        Ok(Self {
            emu,
            kube,
            twin,
            service,
            service_addr,
            _db: db,
            _redis: redis,
            _data: data,
            dir: tempfile::tempdir()?,
        })
    }

    fn kubeconfig(&self) -> std::path::PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// `provisioner ARGS` against the emulator, waiting up to 5 minutes for the nodes. (The
    /// tests run on a multi-threaded runtime: the twin keeps polling while this blocks.)
    fn provisioner(&self, args: &[&str]) -> Result<std::process::Output> {
        tokio::task::block_in_place(|| {
            provisioner_env(&self.emu, args, &[("PROVISIONER_BOOT_TIMEOUT", "300")])
        })
    }

    /// `up -f TEMPLATE` the way a user behind a tunnel runs it.
    fn up(&self, template: &str) -> Result<std::process::Output> {
        let kube = format!("*:6443:{}", self.kube.addr());
        let alb = format!("*:80:{}", self.service_addr);
        let kc = self.kubeconfig();
        self.provisioner(&[
            "up",
            "-f",
            template,
            "--yes",
            "--kubeconfig",
            kc.to_str().unwrap(),
            "--resolve",
            &kube,
            "--resolve",
            &alb,
        ])
    }
}

/// The (kind, namespace, name) of every object of the rendered dev workload.
fn rendered_objects() -> Result<Vec<(String, String, String)>> {
    let env = provisioner::template::load(&template())?.env;
    let workload = provisioner::k8s::render::Workload::from_env(&env, &Default::default())
        .context("workload")?;
    let mut out = Vec::new();
    for m in provisioner::k8s::render::render_manifests(
        &workload,
        provisioner::k8s::render::SecretValues::Redacted,
    )? {
        for doc in serde_norway::Deserializer::from_str(&m.yaml) {
            let v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
            if v.is_null() {
                continue;
            }
            out.push((
                v["kind"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
    }
    Ok(out)
}

fn expected_nodes() -> Result<usize> {
    let env = provisioner::template::load(&template())?.env;
    Ok(env.node_pools.iter().map(|p| p.desired as usize).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_path_end_to_end() -> Result<()> {
    let started = Instant::now();
    let w = World::start().await?;
    let tpl = template();
    let tpl = tpl.to_str().unwrap();

    let up = w.up(tpl)?;
    let out = text(&up);
    assert!(
        up.status.success(),
        "up failed:\n{out}\n--- twin\n{}",
        w.twin.summary()
    );
    // The kubeconfig came from SSM (published by the first server's real user-data).
    assert!(
        out.contains("kubeconfig published to /provisioner/dev/k3s/kubeconfig"),
        "{out}"
    );
    let nodes = expected_nodes()?;
    assert!(
        out.contains(&format!("k3s is up: {nodes} nodes Ready")),
        "{out}"
    );
    assert!(out.contains("serving: http://"), "{out}");
    assert!(!out.contains("never came up"), "{out}");

    // Every instance's script ran to its end; exactly one server initialised the cluster.
    let instances = w.twin.instances();
    assert_eq!(instances.len(), nodes, "{}", w.twin.summary());
    for i in &instances {
        assert!(i.status.succeeded(), "{}", w.twin.summary());
    }
    assert_eq!(w.kube.cluster_inits().len(), 1);
    assert_eq!(w.kube.nodes().len(), nodes);

    // Every manifest object was applied, and the kubeconfig written for the user.
    let applied = w.kube.objects();
    for (kind, ns, name) in rendered_objects()? {
        assert!(
            applied.iter().any(|o| o["kind"] == kind.as_str()
                && o["metadata"]["name"] == name.as_str()
                && (ns.is_empty() || o["metadata"]["namespace"] == ns.as_str())),
            "{kind} {ns}/{name} was not applied"
        );
    }
    let kc = std::fs::read_to_string(w.kubeconfig())?;
    assert!(kc.contains("provisioner-dev"), "{kc}");

    // The service answered through the ALB's name (the real one, on real Postgres and Redis).
    let search: serde_json::Value = reqwest::get(format!(
        "{}{}",
        w.service.base,
        provisioner::k8s::deploy::SMOKE_QUERY
    ))
    .await?
    .json()
    .await?;
    assert!(search["results"].is_array(), "{search}");

    // An agent's role cannot read the server token (it could join as a server, with etcd and
    // the cluster CA); it reads the agent token. A server reads the server token.
    let of_group = |g: &str| {
        instances
            .iter()
            .find(|i| i.group.ends_with(g))
            .unwrap_or_else(|| panic!("no instance of {g}: {}", w.twin.summary()))
            .clone()
    };
    let agent = of_group("-agents");
    let server = of_group("-servers");
    let (code, body) = get_parameter_as(&w, &agent, "/provisioner/dev/k3s/token")?;
    assert_eq!(code, "400", "an agent read the server token: {body}");
    assert!(body.contains("AccessDeniedException"), "{body}");
    let (code, body) = get_parameter_as(&w, &agent, "/provisioner/dev/k3s/agent-token")?;
    assert_eq!(code, "200", "{body}");
    let (code, body) = get_parameter_as(&w, &server, "/provisioner/dev/k3s/token")?;
    assert_eq!(code, "200", "{body}");

    let plan = w.provisioner(&["plan", "-f", tpl])?;
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan after up:\n{}",
        text(&plan)
    );

    let down = w.provisioner(&["down", "-f", tpl, "--yes"])?;
    assert!(down.status.success(), "down failed:\n{}", text(&down));
    let status = w.provisioner(&["status", "--env", "dev"])?;
    assert!(
        !text(&status).contains("vpc/"),
        "left after down:\n{}",
        text(&status)
    );
    eprintln!(
        "aws_path_end_to_end: {:.1}s (up {} nodes through the twin, plan, down)",
        started.elapsed().as_secs_f64(),
        nodes
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_path_up_twice_reapplies_nothing() -> Result<()> {
    let w = World::start().await?;
    let tpl = template();
    let tpl = tpl.to_str().unwrap();
    let first = w.up(tpl)?;
    assert!(first.status.success(), "{}", text(&first));
    let revision = w.kube.revision();
    let changes = w.kube.changes().len();
    let inits = w.kube.cluster_inits().len();

    let second = w.up(tpl)?;
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(out.contains("up: 0 created, 0 updated"), "{out}");
    assert_eq!(
        w.kube.revision(),
        revision,
        "the second up changed the cluster"
    );
    assert_eq!(w.kube.changes().len(), changes);
    assert_eq!(w.kube.cluster_inits().len(), inits);
    let down = w.provisioner(&["down", "-f", tpl, "--yes"])?;
    assert!(down.status.success(), "{}", text(&down));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_path_a_dead_election_winner_is_taken_over() -> Result<()> {
    let w = World::start().await?;
    // dev.yaml with a short lease, so a takeover happens within the test.
    let src = std::fs::read_to_string(template())?;
    let short = src.replacen("  k3s_version:", "  init_lease_secs: 15\n  k3s_version:", 1);
    assert_ne!(short, src, "dev.yaml has no cluster.k3s_version line");
    let tpl = w.dir.path().join("dev.yaml");
    std::fs::write(&tpl, short)?;
    let tpl = tpl.to_str().unwrap().to_owned();

    // Kill the first server to win the election as soon as it holds the lock.
    let up = {
        let w = &w;
        let tpl = tpl.clone();
        let up = tokio::task::spawn_blocking({
            let kube = format!("*:6443:{}", w.kube.addr());
            let alb = format!("*:80:{}", w.service_addr);
            let kc = w.kubeconfig();
            let env = w.emu.sdk_env();
            move || {
                let mut cmd = std::process::Command::new(workspace_bin("provisioner"));
                cmd.args(["up", "-f", &tpl, "--yes", "--kubeconfig"])
                    .arg(kc)
                    .args(["--resolve", &kube, "--resolve", &alb])
                    .env_remove("AWS_PROFILE");
                for (k, v) in env {
                    cmd.env(k, v);
                }
                cmd.env("PROVISIONER_BOOT_TIMEOUT", "300").output()
            }
        });
        let killed_at = kill_the_winner(w).await?;
        let out = up.await??;
        (out, killed_at)
    };
    let (out, killed) = up;
    let text = text(&out);
    assert!(
        out.status.success(),
        "up after the winner died:\n{text}\n--- twin\n{}",
        w.twin.summary()
    );
    let taken_over = w
        .twin
        .instances()
        .iter()
        .any(|i| i.log_text().contains("opening round 2"));
    assert!(taken_over, "{}", w.twin.summary());
    eprintln!(
        "a dead election winner was taken over: the cluster served {:.1}s after it died (lease 15 s)",
        killed.elapsed().as_secs_f64()
    );
    let down = w.provisioner(&["down", "-f", &tpl, "--yes"])?;
    assert!(down.status.success(), "{}", super::text(&down));
    Ok(())
}

/// Waits for a server to win the election, kills it, and has its Auto Scaling group replace
/// it (as the group's health check would on AWS); when it died.
async fn kill_the_winner(w: &World) -> Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        for i in w.twin.instances() {
            if i.log_text().contains("this server initialises the cluster") {
                w.twin.kill_instance(&i.id)?;
                let died = Instant::now();
                harness::twin::aws::Clients::new(&w.emu.endpoint, "us-east-1")
                    .await
                    .autoscaling
                    .terminate_instance_in_auto_scaling_group()
                    .instance_id(&i.id)
                    .should_decrement_desired_capacity(false)
                    .send()
                    .await
                    .context("replacing the dead server")?;
                return Ok(died);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no server won the election: {}",
            w.twin.summary()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `ssm:GetParameter NAME` signed with the role credentials `instance`'s metadata service hands
/// out (IMDSv2, as its user-data does), through the twin's SSM front: (HTTP status, body).
fn get_parameter_as(
    w: &World,
    instance: &harness::twin::InstanceInfo,
    name: &str,
) -> Result<(String, String)> {
    let imds = instance
        .imds
        .context("the instance has no metadata service")?;
    let curl = |args: &[&str], stdin: Option<&str>| -> Result<String> {
        use std::io::Write;
        let mut child = std::process::Command::new("curl")
            .args(["-sS", "--connect-timeout", "5", "--max-time", "20"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(stdin.unwrap_or_default().as_bytes())?;
        let out = child.wait_with_output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let base = format!("http://{imds}/latest");
    let token = curl(
        &[
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            &format!("{base}/api/token"),
        ],
        None,
    )?;
    let header = format!("X-aws-ec2-metadata-token: {token}");
    let role = curl(
        &[
            "-H",
            &header,
            &format!("{base}/meta-data/iam/security-credentials/"),
        ],
        None,
    )?;
    let creds: serde_json::Value = serde_json::from_str(&curl(
        &[
            "-H",
            &header,
            &format!("{base}/meta-data/iam/security-credentials/{}", role.trim()),
        ],
        None,
    )?)
    .context("the metadata's credentials")?;
    let config = format!(
        "user = \"{}:{}\"\nheader = \"X-Amz-Security-Token: {}\"\n",
        creds["AccessKeyId"].as_str().unwrap_or_default(),
        creds["SecretAccessKey"].as_str().unwrap_or_default(),
        creds["Token"].as_str().unwrap_or_default()
    );
    let body = format!(r#"{{"Name":"{name}","WithDecryption":true}}"#);
    let connect = format!(
        "ssm.us-east-1.amazonaws.com:443:{}:{}",
        w.twin.ssm_front_addr().ip(),
        w.twin.ssm_front_addr().port()
    );
    let out = curl(
        &[
            "-K",
            "-",
            "--cacert",
            w.twin.ca_path().to_str().unwrap_or_default(),
            "--connect-to",
            &connect,
            "--aws-sigv4",
            "aws:amz:us-east-1:ssm",
            "-H",
            "X-Amz-Target: AmazonSSM.GetParameter",
            "-H",
            "Content-Type: application/x-amz-json-1.1",
            "--data-binary",
            &body,
            "-w",
            "\n%{http_code}",
            "https://ssm.us-east-1.amazonaws.com/",
        ],
        Some(&config),
    )?;
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    Ok((code.to_owned(), body.to_owned()))
}
