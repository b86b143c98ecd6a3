//! The runner: boots every instance the emulator reports in service in the environment's Auto
//! Scaling groups, by running its real user-data on this machine.
//!
//! For each instance, once: the group's launch template version (`$Latest`, `$Default` or a
//! number; the instance's own, when the group reports one) is read through
//! `DescribeLaunchTemplateVersions`; its `UserData` is base64-decoded and gunzipped when it
//! starts with gzip's magic, as EC2 and cloud-init do; only a `#!` script is run (cloud-init's
//! other formats are refused, named in the status). The script is written to
//! `<root>/var/lib/cloud/instance/scripts/part-001` and run by `/bin/sh` in a process group of
//! its own (killed by [`NodeTwin::kill_instance`] and when the twin is dropped), with output in
//! `<root>/var/log/cloud-init-output.log` and this environment only:
//!
//! | variable | value |
//! | --- | --- |
//! | `K3S_BOOTSTRAP_ROOT` | `<root>` = `<twin scratch>/<instance-id>`: every file the scripts write |
//! | `HOME` | `<root>/root`, holding the `.curlrc` that is the node's network (below) |
//! | `TMPDIR` | `<root>/tmp` |
//! | `K3S_STANDIN_API`, `K3S_STANDIN_CA` | the mock API server and the twin CA, for the k3s stand-in |
//! | `PATH` | the usual system directories |
//!
//! The `.curlrc` (curl reads it even when called with `-K -`) has `cacert` = the twin CA and a
//! `connect-to` line per name: `169.254.169.254:80` → the instance's [`Imds`] stub;
//! `ssm.<region>.amazonaws.com:443` → the [`SsmFront`]; `github.com:443`,
//! `raw.githubusercontent.com:443` and [`TwinConfig::mirror_hosts`] → the [`Mirror`]; every load
//! balancer's DNS name the emulator lists, on 6443 → [`TwinConfig::kube_api`]; then
//! [`TwinConfig::resolve`] and [`NodeTwin::add_resolve`]; last, a catch-all to a closed port
//! on 127.0.0.1, so no unmapped name ever leaves this machine. The file is rewritten when a
//! mapping appears (a load balancer created later, an added resolve).
//!
//! An instance the emulator stops reporting in service (terminated, its group deleted by
//! `down`) has its process tree killed, as EC2 would stop it.

use super::aws::{sdk_error, Clients};
use super::imds::{CredentialRegistry, Imds, ImdsConfig, InstanceRole};
use super::mirror::Mirror;
use super::ssm_front::{Decision, SsmFront, SsmFrontConfig};
use super::Pki;
use crate::process::{signal_group, Scratch};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::{JoinHandle, JoinSet};

/// What the twin boots and how its nodes reach the world.
#[derive(Clone, Debug)]
pub struct TwinConfig {
    /// The emulator's endpoint (`EmulatorGuard::endpoint`).
    pub emulator_endpoint: String,
    /// The environment: groups tagged `provisioner:env=<env_name>` are booted.
    pub env_name: String,
    pub region: String,
    /// The executable served as `k3s` (`env!("CARGO_BIN_EXE_k3s-standin")` in the harness's
    /// tests).
    pub k3s_binary: PathBuf,
    /// The mock Kubernetes API server: every load balancer name on 6443 maps to it, and the k3s
    /// stand-in calls it (`K3S_STANDIN_API`).
    pub kube_api: Option<SocketAddr>,
    /// More `(host, port) → address` mappings for the nodes' curl.
    pub resolve: Vec<(String, u16, SocketAddr)>,
    /// Hosts (and ports) that also serve the mirror, e.g. the host of `cluster.k3s_mirror`.
    pub mirror_hosts: Vec<(String, u16)>,
    /// How often the emulator is polled for new instances and load balancers.
    pub poll_interval: Duration,
    /// The twin CA; a new one when `None`. Pass the one the mock API server presents.
    pub pki: Option<Pki>,
}

impl TwinConfig {
    /// Region `us-east-1`, no mock API, no extra mappings, polling every 500 ms.
    pub fn new(
        emulator_endpoint: impl Into<String>,
        env_name: impl Into<String>,
        k3s_binary: impl Into<PathBuf>,
    ) -> Self {
        Self {
            emulator_endpoint: emulator_endpoint.into(),
            env_name: env_name.into(),
            region: "us-east-1".to_owned(),
            k3s_binary: k3s_binary.into(),
            kube_api: None,
            resolve: Vec::new(),
            mirror_hosts: Vec::new(),
            poll_interval: Duration::from_millis(500),
            pki: None,
        }
    }
}

/// Where an instance's boot is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Seen in service; its launch template and metadata are being read.
    Starting,
    /// Its user-data is running.
    Running,
    /// The user-data exited with this code (`None`: ended by a signal).
    Exited(Option<i32>),
    /// Killed by [`NodeTwin::kill_instance`].
    Killed,
    /// It could not be booted (the reason; also in its log).
    NotStarted(String),
}

impl InstanceStatus {
    /// Anything but starting or running.
    pub fn finished(&self) -> bool {
        !matches!(self, InstanceStatus::Starting | InstanceStatus::Running)
    }

    /// The user-data exited 0.
    pub fn succeeded(&self) -> bool {
        *self == InstanceStatus::Exited(Some(0))
    }
}

/// One booted (or booting) instance.
#[derive(Clone, Debug)]
pub struct InstanceInfo {
    pub id: String,
    /// The Auto Scaling group it belongs to.
    pub group: String,
    pub private_ip: String,
    /// `K3S_BOOTSTRAP_ROOT` of the instance.
    pub root: PathBuf,
    /// The user-data's output (`<root>/var/log/cloud-init-output.log`).
    pub log: PathBuf,
    /// The k3s stand-in's output (`<root>/var/log/k3s.log`), once started.
    pub k3s_log: PathBuf,
    /// The instance's metadata service.
    pub imds: Option<SocketAddr>,
    pub status: InstanceStatus,
    /// The emulator no longer reports it in service (terminated, detached, its group deleted):
    /// its processes were killed, as EC2 would stop them.
    pub terminated: bool,
}

impl InstanceInfo {
    /// The user-data's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Instance {
    info: InstanceInfo,
    pgid: Option<u32>,
    _imds: Option<Imds>,
}

type Instances = Arc<Mutex<BTreeMap<String, Instance>>>;

struct Shared {
    config: TwinConfig,
    clients: Clients,
    pki: Pki,
    registry: CredentialRegistry,
    mirror: Mirror,
    ssm: SsmFront,
    scratch: Scratch,
    ca_path: PathBuf,
    instances: Instances,
    /// Mappings found or added after start (load balancers, `add_resolve`).
    mappings: Mutex<Vec<(String, u16, SocketAddr)>>,
}

/// The node twin. Dropping it kills every instance's processes.
pub struct NodeTwin {
    shared: Arc<Shared>,
    poller: JoinHandle<()>,
}

impl std::fmt::Debug for NodeTwin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeTwin")
            .field("env", &self.shared.config.env_name)
            .field("root", &self.shared.scratch.path())
            .finish_non_exhaustive()
    }
}

impl NodeTwin {
    /// Starts the twin's servers (CA, SSM front, mirror) and the poller.
    pub async fn start(config: TwinConfig) -> Result<NodeTwin> {
        let clients = Clients::new(&config.emulator_endpoint, &config.region).await;
        let account_id = clients
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(sdk_error)
            .context("sts:GetCallerIdentity on the emulator")?
            .account()
            .unwrap_or("123456789012")
            .to_owned();
        let scratch = Scratch::new("node-twin-")?;
        let pki = match &config.pki {
            Some(pki) => pki.clone(),
            None => Pki::new()?,
        };
        let ca_path = scratch.path().join("twin-ca.pem");
        pki.write_ca_pem(&ca_path)?;
        let registry = CredentialRegistry::default();
        let mirror = Mirror::start(&pki, &config.k3s_binary).await?;
        let ssm = SsmFront::start(
            SsmFrontConfig {
                emulator_endpoint: config.emulator_endpoint.clone(),
                region: config.region.clone(),
                account_id,
                log_path: scratch.path().join("ssm-front.log"),
            },
            &pki,
            clients.iam.clone(),
            registry.clone(),
        )
        .await?;
        let shared = Arc::new(Shared {
            config,
            clients,
            pki,
            registry,
            mirror,
            ssm,
            scratch,
            ca_path,
            instances: Arc::default(),
            mappings: Mutex::default(),
        });
        let poller = tokio::spawn(poll(shared.clone()));
        Ok(NodeTwin { shared, poller })
    }

    pub fn pki(&self) -> &Pki {
        &self.shared.pki
    }

    /// The twin CA's PEM file (what the nodes trust).
    pub fn ca_path(&self) -> &Path {
        &self.shared.ca_path
    }

    /// The twin's scratch directory (instance roots, `ssm-front.log`).
    pub fn scratch_dir(&self) -> &Path {
        self.shared.scratch.path()
    }

    pub fn ssm_front_addr(&self) -> SocketAddr {
        self.shared.ssm.addr()
    }

    pub fn mirror_addr(&self) -> SocketAddr {
        self.shared.mirror.addr()
    }

    /// The sha256 of the `k3s` the mirror serves.
    pub fn k3s_sha256(&self) -> &str {
        self.shared.mirror.k3s_sha256()
    }

    /// The SSM front's decisions so far.
    pub fn ssm_decisions(&self) -> Vec<Decision> {
        self.shared.ssm.decisions()
    }

    /// Credentials the metadata services issued, by access key id.
    pub fn credentials(&self) -> &CredentialRegistry {
        &self.shared.registry
    }

    /// Maps `host:port` to `addr` for every node, running ones included.
    pub fn add_resolve(&self, host: &str, port: u16, addr: SocketAddr) -> Result<()> {
        {
            let mut m = self.shared.mappings.lock().expect("mappings");
            m.retain(|(h, p, _)| !(h == host && *p == port));
            m.push((host.to_ascii_lowercase(), port, addr));
        }
        self.shared.rewrite_curlrcs()
    }

    /// Every instance seen so far, by id.
    pub fn instances(&self) -> Vec<InstanceInfo> {
        let map = self.shared.instances.lock().expect("instances");
        map.values().map(|i| i.info.clone()).collect()
    }

    pub fn instance(&self, id: &str) -> Option<InstanceInfo> {
        let map = self.shared.instances.lock().expect("instances");
        map.get(id).map(|i| i.info.clone())
    }

    /// Kills the instance's whole process tree (user-data, k3s); the twin never boots it again.
    pub fn kill_instance(&self, id: &str) -> Result<()> {
        let mut map = self.shared.instances.lock().expect("instances");
        let inst = map
            .get_mut(id)
            .with_context(|| format!("the twin has no instance {id}"))?;
        if let Some(pgid) = inst.pgid.take() {
            signal_group(pgid, "KILL");
        }
        inst._imds = None;
        inst.info.status = InstanceStatus::Killed;
        Ok(())
    }

    /// Waits until at least `n` instances were seen.
    pub async fn wait_for_instances(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<InstanceInfo>> {
        self.wait_until(timeout, |all| (all.len() >= n).then(|| all.to_vec()))
            .await
            .with_context(|| format!("fewer than {n} instances booted"))
    }

    /// Waits until the instance's user-data has finished.
    pub async fn wait_finished(&self, id: &str, timeout: Duration) -> Result<InstanceInfo> {
        self.wait_until(timeout, |all| {
            all.iter()
                .find(|i| i.id == id && i.status.finished())
                .cloned()
        })
        .await
        .with_context(|| format!("instance {id} did not finish"))
    }

    /// Waits until at least one instance was seen and every instance seen has finished.
    pub async fn wait_all_finished(&self, timeout: Duration) -> Result<Vec<InstanceInfo>> {
        self.wait_until(timeout, |all| {
            (!all.is_empty() && all.iter().all(|i| i.status.finished())).then(|| all.to_vec())
        })
        .await
        .context("not every instance finished its user-data")
    }

    /// Waits until the instance's user-data log has a line containing `needle`.
    pub async fn wait_for_log(&self, id: &str, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_until(timeout, |all| {
            all.iter()
                .find(|i| i.id == id && i.log_text().contains(needle))
                .map(|_| ())
        })
        .await
        .with_context(|| format!("instance {id} never logged `{needle}`"))
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[InstanceInfo]) -> Option<T>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            let all = self.instances();
            if let Some(found) = done(&all) {
                return Ok(found);
            }
            if start.elapsed() > timeout {
                bail!("after {timeout:?}:\n{}", self.summary());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Each instance's status and the tail of its log, for failure messages.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for i in self.instances() {
            out.push_str(&format!("--- {} ({}) {:?}\n", i.id, i.group, i.status));
            let log = i.log_text();
            let lines: Vec<&str> = log.lines().collect();
            for line in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        if out.is_empty() {
            out.push_str("(no instance seen in service)\n");
        }
        out
    }
}

impl Drop for NodeTwin {
    fn drop(&mut self) {
        self.poller.abort();
        let mut map = self.shared.instances.lock().expect("instances");
        for inst in map.values_mut() {
            if let Some(pgid) = inst.pgid.take() {
                signal_group(pgid, "KILL");
            }
        }
    }
}

async fn poll(shared: Arc<Shared>) {
    let mut launches = JoinSet::new();
    loop {
        if let Err(e) = shared.discover_load_balancers().await {
            eprintln!("node twin: listing load balancers: {e:#}");
        }
        match shared.new_instances().await {
            Ok(found) => {
                for (group, id, spec) in found {
                    let shared = shared.clone();
                    launches.spawn(async move { shared.launch(group, id, spec).await });
                }
            }
            Err(e) => eprintln!("node twin: listing Auto Scaling groups: {e:#}"),
        }
        while launches.try_join_next().is_some() {}
        tokio::time::sleep(shared.config.poll_interval).await;
    }
}

/// Which launch template version an instance boots from.
#[derive(Clone, Debug)]
struct TemplateRef {
    id: Option<String>,
    name: Option<String>,
    version: String,
}

impl TemplateRef {
    fn from_spec(spec: &aws_sdk_autoscaling::types::LaunchTemplateSpecification) -> Self {
        Self {
            id: spec.launch_template_id().map(str::to_owned),
            name: spec.launch_template_name().map(str::to_owned),
            version: spec.version().unwrap_or("$Default").to_owned(),
        }
    }
}

impl Shared {
    /// In-service instances of the environment's groups not seen before (now `Starting`).
    async fn new_instances(&self) -> Result<Vec<(String, String, Option<TemplateRef>)>> {
        let groups: Vec<_> = self
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(sdk_error)?;
        let mut found = Vec::new();
        let mut in_service = std::collections::HashSet::new();
        let mut map = self.instances.lock().expect("instances");
        for group in groups {
            let ours = group.tags().iter().any(|t| {
                t.key() == Some("provisioner:env") && t.value() == Some(&self.config.env_name)
            });
            if !ours {
                continue;
            }
            let group_name = group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_owned();
            let group_spec = group.launch_template().or_else(|| {
                group
                    .mixed_instances_policy()
                    .and_then(|m| m.launch_template())
                    .and_then(|t| t.launch_template_specification())
            });
            for inst in group.instances() {
                let Some(id) = inst.instance_id() else {
                    continue;
                };
                if inst.lifecycle_state()
                    != Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
                {
                    continue;
                }
                in_service.insert(id.to_owned());
                if map.contains_key(id) {
                    continue;
                }
                let spec = inst
                    .launch_template()
                    .or(group_spec)
                    .map(TemplateRef::from_spec);
                let root = self.scratch.path().join(id);
                map.insert(
                    id.to_owned(),
                    Instance {
                        info: InstanceInfo {
                            id: id.to_owned(),
                            group: group_name.clone(),
                            private_ip: String::new(),
                            log: root.join("var/log/cloud-init-output.log"),
                            k3s_log: root.join("var/log/k3s.log"),
                            root,
                            imds: None,
                            status: InstanceStatus::Starting,
                            terminated: false,
                        },
                        pgid: None,
                        _imds: None,
                    },
                );
                found.push((group_name.clone(), id.to_owned(), spec));
            }
        }
        for inst in map.values_mut() {
            if !in_service.contains(inst.info.id.as_str()) && !inst.info.terminated {
                inst.info.terminated = true;
                if let Some(pgid) = inst.pgid.take() {
                    signal_group(pgid, "KILL");
                }
                inst._imds = None;
            }
        }
        Ok(found)
    }

    /// Maps every load balancer's DNS name on 6443 to the mock API server.
    async fn discover_load_balancers(&self) -> Result<()> {
        let Some(api) = self.config.kube_api else {
            return Ok(());
        };
        let lbs = self
            .clients
            .elb
            .describe_load_balancers()
            .send()
            .await
            .map_err(sdk_error)?;
        let mut changed = false;
        {
            let mut m = self.mappings.lock().expect("mappings");
            for lb in lbs.load_balancers() {
                let Some(dns) = lb.dns_name() else { continue };
                let dns = dns.trim_end_matches('.').to_ascii_lowercase();
                if !m.iter().any(|(h, p, _)| *h == dns && *p == 6443) {
                    m.push((dns, 6443, api));
                    changed = true;
                }
            }
        }
        if changed {
            self.rewrite_curlrcs()?;
        }
        Ok(())
    }

    async fn launch(&self, group: String, id: String, spec: Option<TemplateRef>) {
        let root = self.scratch.path().join(&id);
        let outcome = self.boot(&id, &root, spec).await;
        let mut map = self.instances.lock().expect("instances");
        let Some(inst) = map.get_mut(&id) else { return };
        match outcome {
            Ok(booted) => {
                inst.info.private_ip = booted.private_ip;
                inst.info.imds = Some(booted.imds.addr());
                if inst.info.status == InstanceStatus::Killed || inst.info.terminated {
                    signal_group(booted.pgid, "KILL");
                    return;
                }
                inst.pgid = Some(booted.pgid);
                inst._imds = Some(booted.imds);
                inst.info.status = InstanceStatus::Running;
                drop(map);
                let instances = self.instances.clone();
                let mut child = booted.child;
                tokio::spawn(async move {
                    let status = child.wait().await.ok().and_then(|s| s.code());
                    let mut map = instances.lock().expect("instances");
                    if let Some(inst) = map.get_mut(&id) {
                        if inst.info.status == InstanceStatus::Running {
                            inst.info.status = InstanceStatus::Exited(status);
                        }
                    }
                });
            }
            Err(e) => {
                let reason = format!("{e:#}");
                let _ = std::fs::create_dir_all(root.join("var/log"));
                let _ = std::fs::write(
                    &inst.info.log,
                    format!("node twin: instance {id} of {group} not booted: {reason}\n"),
                );
                inst.info.status = InstanceStatus::NotStarted(reason);
            }
        }
    }

    async fn boot(&self, id: &str, root: &Path, spec: Option<TemplateRef>) -> Result<Booted> {
        let described = self
            .clients
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .map_err(sdk_error)
            .context("ec2:DescribeInstances")?;
        let instance = described
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .next()
            .context("ec2:DescribeInstances does not know it")?;
        let private_ip = instance
            .private_ip_address()
            .context("it has no private IPv4 address")?
            .to_owned();
        let spec = spec.context(
            "its group has no launch template (launch configurations are not supported)",
        )?;
        let mut req = self
            .clients
            .ec2
            .describe_launch_template_versions()
            .versions(&spec.version);
        req = match (&spec.id, &spec.name) {
            (Some(lt), _) => req.launch_template_id(lt),
            (None, Some(name)) => req.launch_template_name(name),
            (None, None) => bail!("its launch template is named by neither id nor name"),
        };
        let versions = req
            .send()
            .await
            .map_err(sdk_error)
            .context("ec2:DescribeLaunchTemplateVersions")?;
        let data = versions
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .with_context(|| format!("launch template version {} not found", spec.version))?;
        let script = decode_user_data(data.user_data())?;
        let meta = data.metadata_options();
        if meta.and_then(|m| m.http_endpoint()).map(|e| e.as_str()) == Some("disabled") {
            bail!("its launch template disables the metadata endpoint (HttpEndpoint=disabled), which the user-data needs");
        }
        let role = match data.iam_instance_profile() {
            Some(profile) => Some(self.profile_role(profile.name(), profile.arn()).await?),
            None => None,
        };
        let imds = Imds::start(
            ImdsConfig {
                instance_id: id.to_owned(),
                instance_type: instance
                    .instance_type()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                image_id: instance.image_id().unwrap_or_default().to_owned(),
                local_ipv4: private_ip.clone(),
                region: self.config.region.clone(),
                availability_zone: instance
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_owned(),
                domain: if self.config.region.starts_with("cn-") {
                    "amazonaws.com.cn".to_owned()
                } else {
                    "amazonaws.com".to_owned()
                },
                tokens_required: meta.and_then(|m| m.http_tokens()).map(|t| t.as_str())
                    == Some("required"),
                hop_limit: meta
                    .and_then(|m| m.http_put_response_hop_limit())
                    .map(|h| h.clamp(1, 64) as u8)
                    .unwrap_or(1),
                role,
                user_data: Some(script.clone()),
            },
            self.clients.sts.clone(),
            self.registry.clone(),
        )
        .await?;
        for dir in [
            "root",
            "tmp",
            "var/log",
            "var/lib/cloud/instance/scripts",
            "run",
        ] {
            std::fs::create_dir_all(root.join(dir))
                .with_context(|| format!("creating {}", root.join(dir).display()))?;
        }
        let script_path = root.join("var/lib/cloud/instance/scripts/part-001");
        std::fs::write(&script_path, &script)?;
        std::fs::write(root.join("root/.curlrc"), self.curlrc(imds.addr()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("var/log/cloud-init-output.log"))?;
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg(&script_path)
            .current_dir(root)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", root.join("root"))
            .env("TMPDIR", root.join("tmp"))
            .env("LANG", "C.UTF-8")
            .env("K3S_BOOTSTRAP_ROOT", root)
            .env("K3S_STANDIN_CA", &self.ca_path)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        if let Some(api) = self.config.kube_api {
            cmd.env("K3S_STANDIN_API", format!("https://{api}"));
        }
        let child = cmd.spawn().context("starting /bin/sh for the user-data")?;
        let pgid = child.id().context("the user-data exited at once")?;
        self.scratch.record_group(pgid)?;
        Ok(Booted {
            private_ip,
            imds,
            child,
            pgid,
        })
    }

    /// The role of an instance profile (by name, or by the last segment of its ARN).
    async fn profile_role(&self, name: Option<&str>, arn: Option<&str>) -> Result<InstanceRole> {
        let name = name
            .or_else(|| arn.and_then(|a| a.rsplit('/').next()))
            .context("an instance profile named by neither name nor ARN")?;
        let profile = self
            .clients
            .iam
            .get_instance_profile()
            .instance_profile_name(name)
            .send()
            .await
            .map_err(sdk_error)
            .with_context(|| format!("iam:GetInstanceProfile {name}"))?;
        let role = profile
            .instance_profile()
            .and_then(|p| p.roles().first())
            .with_context(|| format!("instance profile {name} has no role"))?;
        Ok(InstanceRole {
            name: role.role_name().to_owned(),
            arn: role.arn().to_owned(),
        })
    }

    fn curlrc(&self, imds: SocketAddr) -> String {
        let mut lines = vec![
            "# The node twin's network: every name this instance's curl reaches, mapped to a"
                .to_owned(),
            "# twin server on this machine; anything else goes to a closed port.".to_owned(),
            format!("cacert = \"{}\"", self.ca_path.display()),
            format!(
                "connect-to = \"169.254.169.254:80:{}:{}\"",
                imds.ip(),
                imds.port()
            ),
        ];
        let ssm = self.ssm.addr();
        let mirror = self.mirror.addr();
        let mut map: Vec<(String, u16, SocketAddr)> = vec![(
            format!("ssm.{}.amazonaws.com", self.config.region),
            443,
            ssm,
        )];
        for host in ["github.com", "raw.githubusercontent.com"] {
            map.push((host.to_owned(), 443, mirror));
        }
        for (host, port) in &self.config.mirror_hosts {
            map.push((host.clone(), *port, mirror));
        }
        map.extend(self.config.resolve.iter().cloned());
        map.extend(self.mappings.lock().expect("mappings").iter().cloned());
        for (host, port, addr) in map {
            lines.push(format!(
                "connect-to = \"{host}:{port}:{}:{}\"",
                addr.ip(),
                addr.port()
            ));
        }
        lines.push(format!("connect-to = \"::127.0.0.1:{CLOSED_PORT}\""));
        lines.join("\n") + "\n"
    }

    fn rewrite_curlrcs(&self) -> Result<()> {
        let map = self.instances.lock().expect("instances");
        for inst in map.values() {
            let Some(imds) = inst.info.imds else { continue };
            let path = inst.info.root.join("root/.curlrc");
            let tmp = inst.info.root.join("root/.curlrc.tmp");
            std::fs::write(&tmp, self.curlrc(imds))?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }
}

/// A port nothing listens on (discard), where unmapped names go.
const CLOSED_PORT: u16 = 9;

struct Booted {
    private_ip: String,
    imds: Imds,
    child: tokio::process::Child,
    pgid: u32,
}

/// `UserData` as EC2 and cloud-init read it: base64, then gzip when it has gzip's magic; only
/// a `#!` script is accepted.
pub fn decode_user_data(user_data: Option<&str>) -> Result<Vec<u8>> {
    use base64::Engine;
    let encoded = user_data.context("its launch template has no UserData")?;
    let mut data = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .context("UserData is not base64")?;
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut out)
            .context("UserData has gzip's magic but does not gunzip")?;
        data = out;
    }
    if !data.starts_with(b"#!") {
        let first = String::from_utf8_lossy(&data[..data.len().min(40)]).into_owned();
        bail!(
            "UserData is not a `#!` script (starts with {first:?}); the twin runs scripts only, \
             not cloud-config or MIME parts"
        );
    }
    Ok(data)
}
