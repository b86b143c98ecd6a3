//! The Kubernetes half of `provisioner up`: after the AWS environment has converged, bring
//! the workload up and finish only when it serves. One path wherever the endpoint is:
//!
//! 1. wait for a node to run its user-data: the first k3s server's init lock, then the
//!    kubeconfig it publishes (SSM). An environment where no instance ever boots (a bare
//!    emulator) shows neither: after [`DeployOptions::boot_timeout`] (0 with `--local`: the
//!    moto `up` started itself boots nothing) this ends with [`DeployOutcome::NoNodes`] and the
//!    caller says so and renders the workload instead;
//! 2. the API's `/readyz` through the NLB and the expected number of Ready nodes;
//! 3. write the kubeconfig for the user, apply the workload (server-side apply, prune), wait
//!    for every rollout;
//! 4. a nearby search through the ALB's own name (the public record is reported separately:
//!    a new public zone answers only once it is delegated).
//!
//! Every connection to the cluster and the service goes where the [`Resolver`] says
//! (`--resolve`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams};
use kube::Client;

use super::apply::{parse_documents, Applier, ApplyReport, WaitConfig};
use super::kubeconfig::{self, WriteMode};
use super::render::{
    self, RegistryCredentials, SecretValues, Workload, WorkloadOptions, WorkloadSecrets,
    SECRET_NAMES,
};
use crate::bootstrap::{Endpoints, ParameterNames};
use crate::resolve::Resolver;
use crate::template::model::{ApiAccess, Environment};

/// Reads the parameters the k3s servers publish (the kubeconfig is a SecureString).
/// Implemented over SSM by `crate::aws::ssm_secrets`; tests may use anything.
pub trait PublishedKubeconfig {
    /// The parameter's decrypted value, `None` while it does not exist.
    fn fetch(&self, parameter: &str)
        -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
}

/// How to reach the environment's cluster and service.
pub struct ClusterAccess<'a, S> {
    /// Reads the published kubeconfig.
    pub secrets: &'a S,
    pub endpoints: Endpoints,
    /// Base URL of the service through the ALB's own name (`http://<ALB DNS>`).
    pub service_url: String,
    /// The public record aliased to the ALB, when the template has one: reported after the
    /// smoke search, not waited for.
    pub public_name: Option<String>,
    /// The public zone's Route 53 name servers, which its parent must delegate to.
    pub name_servers: Vec<String>,
    /// Private addresses of the environment's running instances: a Node NotReady for long
    /// whose address is none of them is removed ([`super::nodes`]). Empty: nothing removed.
    pub instance_ips: Vec<String>,
    /// Also write the kubeconfig here (replace, or merge as context `provisioner-<env>`).
    pub kubeconfig_out: Option<(PathBuf, WriteMode)>,
}

/// Deadlines and knobs of a deploy.
#[derive(Clone, Debug)]
pub struct DeployOptions {
    pub workload: WorkloadOptions,
    pub wait: WaitConfig,
    /// How long to wait for the first sign that a node ran its user-data (the init lock or
    /// the kubeconfig in SSM). 0: look once.
    pub boot_timeout: Duration,
    /// Deadline for the cluster to come up (kubeconfig published, `/readyz`, nodes Ready).
    pub cluster_timeout: Duration,
    /// Deadline for the first nearby search through the ALB after the rollout.
    pub serving_timeout: Duration,
    /// How long a TCP connection to the API through the NLB may keep failing once the first
    /// server published its kubeconfig (the NLB registering it) before `up` says this
    /// machine cannot reach the API, instead of waiting out `cluster_timeout`.
    pub api_reach_timeout: Duration,
    /// Pause between two probes while waiting.
    pub poll_interval: Duration,
    /// `--resolve` overrides for the connections to the cluster and the service.
    pub resolver: Resolver,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            workload: WorkloadOptions::default(),
            wait: WaitConfig::default(),
            boot_timeout: Duration::from_secs(15 * 60),
            cluster_timeout: Duration::from_secs(25 * 60),
            serving_timeout: Duration::from_secs(10 * 60),
            api_reach_timeout: Duration::from_secs(5 * 60),
            poll_interval: Duration::from_secs(10),
            resolver: Resolver::default(),
        }
    }
}

/// What a deploy did.
#[derive(Debug)]
pub enum DeployOutcome {
    /// Applied to the cluster, and serving through `serving_at`.
    Applied {
        report: ApplyReport,
        serving_at: String,
    },
    /// No node ran its user-data within the boot timeout: nothing was applied.
    NoNodes { waited: Duration },
}

/// What `up` says when no node ran its user-data and it was not to wait for one.
pub const NO_NODES_NOTICE: &str =
    "no instance of this environment has run its user-data (an emulator such as moto or \
     LocalStack's free edition never boots EC2 instances), so k3s never came up: no cluster \
     was bootstrapped";

/// Brings the workload of `env` up through `access`. See the module docs.
pub async fn deploy<S: PublishedKubeconfig + Sync>(
    env: &Environment,
    access: ClusterAccess<'_, S>,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<DeployOutcome> {
    let workload = Workload::from_env(env, &opts.workload)?;
    let started = Instant::now();
    if env.cluster.api_access == ApiAccess::Internal {
        progress(&format!(
            "the k3s API is internal (cluster.api_access: internal): this machine must be in \
             the VPC, a peered VPC or on a VPN to reach {}:{API_PORT}",
            access.endpoints.nlb_dns
        ));
    }
    let Some(published) = wait_for_kubeconfig(env, access.secrets, opts, progress).await? else {
        return Ok(DeployOutcome::NoNodes {
            waited: started.elapsed(),
        });
    };
    check_api_reachable(env, &access.endpoints.nlb_dns, opts, progress).await?;
    let remaining = opts.cluster_timeout.saturating_sub(started.elapsed());
    let client = connect_cluster(env, &published, &access, opts, progress).await?;
    let expected: u32 = env.node_pools.iter().map(|p| p.desired).sum();
    wait_until_ready(&client, expected, remaining, opts.poll_interval, progress).await?;
    super::nodes::remove_departed_nodes(
        &client,
        &access.instance_ips,
        super::nodes::DEPARTED_AFTER,
        progress,
    )
    .await?;
    let registry =
        registry_credentials(access.secrets, workload.image_pull_secret.as_deref()).await?;
    let report = apply_workload(client, &workload, registry, &opts.wait, progress).await?;
    wait_for_serving(&access.service_url, opts, progress).await?;
    if let Some(name) = &access.public_name {
        progress(&public_name_status(name, &access.name_servers, &opts.resolver).await);
    }
    Ok(DeployOutcome::Applied {
        report,
        serving_at: access.service_url,
    })
}

/// Whether the public record resolves yet (a new public zone answers only once its parent
/// delegates to it).
pub async fn public_name_status(
    name: &str,
    name_servers: &[String],
    resolver: &Resolver,
) -> String {
    if resolver.lookup(name, 80).is_some() {
        return format!("public name: {name} (mapped by --resolve)");
    }
    let resolves = tokio::net::lookup_host((name, 80))
        .await
        .is_ok_and(|mut addrs| addrs.next().is_some());
    match resolves {
        true => format!("public name: {name} resolves"),
        false => {
            let zone = name.split_once('.').map_or(name, |(_, z)| z);
            let ns = if name_servers.is_empty() {
                "its Route 53 name servers".to_string()
            } else {
                format!(
                    "its Route 53 name servers (NS records in the parent zone: {zone}. NS {})",
                    name_servers.join(" ")
                )
            };
            format!(
                "public name: {name} does not resolve yet: delegate the zone {zone} to {ns}; \
                 the service answers at the ALB's name meanwhile"
            )
        }
    }
}

/// Renders the workload with real secrets (kept from the cluster when they exist), applies
/// it (prune included) and waits for every rollout.
pub async fn apply_workload(
    client: Client,
    workload: &Workload,
    registry: Option<RegistryCredentials>,
    wait: &WaitConfig,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<ApplyReport> {
    let secrets = existing_secrets(&client, &workload.namespace).await?;
    let mut secrets = WorkloadSecrets::reuse_or_generate(&secrets);
    secrets.registry = registry;
    let mut objects = Vec::new();
    for m in render::render_manifests(workload, SecretValues::Actual(&secrets))? {
        objects.extend(
            parse_documents(&m.yaml).with_context(|| format!("manifests/{}", m.file_name))?,
        );
    }
    let mut applier = Applier::new(client, &workload.env, &workload.namespace, wait.clone());
    progress(&format!(
        "applying {} objects (server-side apply, field manager provisioner)",
        objects.len()
    ));
    let report = applier.apply(objects).await?;
    for p in &report.pruned {
        progress(&format!("pruned {p}"));
    }
    for (s, why) in &report.skipped {
        progress(&format!("not pruned: {s}: {why}"));
    }
    progress("waiting for the rollouts");
    applier.wait_for_rollouts(&report.applied).await?;
    progress("every rollout finished");
    Ok(report)
}

/// The registry credentials `cluster.image_pull_secret` names, read (decrypted) from SSM with
/// the caller's credentials; an error names the parameter, never its value.
pub async fn registry_credentials<S: PublishedKubeconfig + Sync>(
    secrets: &S,
    parameter: Option<&str>,
) -> anyhow::Result<Option<RegistryCredentials>> {
    let Some(name) = parameter else {
        return Ok(None);
    };
    let value = secrets
        .fetch(name)
        .await
        .with_context(|| format!("cluster.image_pull_secret: reading SSM parameter {name}"))?
        .with_context(|| {
            format!(
                "cluster.image_pull_secret: SSM parameter {name} does not exist (put the \
                 registry's .dockerconfigjson there as a SecureString)"
            )
        })?;
    RegistryCredentials::parse(&value)
        .map(Some)
        .map_err(|why| anyhow::anyhow!("cluster.image_pull_secret: SSM parameter {name}: {why}"))
}

async fn existing_secrets(
    client: &Client,
    namespace: &str,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut out = BTreeMap::new();
    for name in SECRET_NAMES {
        let Some(secret) = api
            .get_opt(name)
            .await
            .with_context(|| format!("reading Secret {namespace}/{name}"))?
        else {
            continue;
        };
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v)))
            .collect();
        out.insert((*name).to_owned(), data);
    }
    Ok(out)
}

/// Polls `probe` every `interval` until it yields `Some`, printing its progress note, up to
/// `deadline`.
async fn poll<T, F, Fut>(
    what: &str,
    deadline: Duration,
    interval: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    let mut last = String::new();
    loop {
        match probe().await {
            Ok(v) => return Ok(v),
            Err(note) => {
                if note != last {
                    progress(&format!(
                        "waiting for {what}: {note} ({}s)",
                        start.elapsed().as_secs()
                    ));
                    last = note;
                }
            }
        }
        if start.elapsed() >= deadline {
            anyhow::bail!(
                "{what}: not reached within {}s (last: {last})",
                deadline.as_secs()
            );
        }
        tokio::time::sleep(interval).await;
    }
}

/// Waits for the kubeconfig the first server publishes; `None` when no node showed a sign of
/// its user-data (the init lock or the kubeconfig) within the boot timeout.
async fn wait_for_kubeconfig<S: PublishedKubeconfig + Sync>(
    env: &Environment,
    secrets: &S,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Option<String>> {
    let names = ParameterNames::new(&env.name);
    let (kubeconfig, lock) = (names.kubeconfig(), names.init_lock());
    let started = Instant::now();
    let mut booted = false;
    let mut last = String::new();
    loop {
        if let Some(v) = secrets.fetch(&kubeconfig).await? {
            progress(&format!("kubeconfig published to {kubeconfig}"));
            return Ok(Some(v));
        }
        let note = match secrets.fetch(&lock).await? {
            Some(holder) => {
                booted = true;
                format!("server {holder} holds {lock} and is initialising the cluster")
            }
            None => format!("no k3s server has taken {lock} yet"),
        };
        if note != last {
            progress(&format!(
                "waiting for the first k3s server to publish its kubeconfig: {note} ({}s)",
                started.elapsed().as_secs()
            ));
            last = note;
        }
        let elapsed = started.elapsed();
        if !booted && elapsed >= opts.boot_timeout {
            return Ok(None);
        }
        if elapsed >= opts.cluster_timeout {
            anyhow::bail!(
                "the first k3s server did not publish {kubeconfig} within {}s (last: {last})",
                opts.cluster_timeout.as_secs()
            );
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// A client for the published kubeconfig through the NLB (where `--resolve` says); the
/// kubeconfig is written for the user first, if asked.
async fn connect_cluster<S>(
    env: &Environment,
    published: &str,
    access: &ClusterAccess<'_, S>,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Client> {
    let mut kc = kubeconfig::normalise(published, env.name.as_str())?;
    let nlb_url = format!("https://{}:{API_PORT}", access.endpoints.nlb_dns);
    if env.dns.as_ref().is_some_and(|d| d.private) {
        // The API name lives in a private zone: from outside the VPC only the NLB resolves.
        for c in kc.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
            c.server = Some(nlb_url.clone());
        }
    }
    if let Some((path, mode)) = &access.kubeconfig_out {
        kubeconfig::write(&kc, path, *mode)?;
        progress(&format!(
            "kubeconfig written to {} (context {})",
            path.display(),
            kubeconfig::context_name(env.name.as_str())
        ));
    }
    let (server, tls_name) = opts
        .resolver
        .rewrite_url(&nlb_url)
        .map_err(anyhow::Error::msg)?;
    if tls_name.is_some() {
        progress(&format!(
            "the API at {nlb_url} is reached at {server} (--resolve)"
        ));
    }
    Ok(kubeconfig::client_at(&kc, &server, tls_name.as_deref()).await?)
}

/// The k3s API's port on the NLB (the servers' supervisor and API port).
pub const API_PORT: u16 = 6443;

/// Waits until a TCP connection to the API through the NLB (where `--resolve` says) opens,
/// within `opts.api_reach_timeout`; else an error saying why this machine cannot reach it.
pub async fn check_api_reachable(
    env: &Environment,
    nlb_dns: &str,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut reported = false;
    loop {
        let attempt = match opts.resolver.lookup(nlb_dns, API_PORT) {
            Some(addr) => tcp_probe(&addr.to_string()).await,
            None => tcp_probe(&format!("{nlb_dns}:{API_PORT}")).await,
        };
        let why = match attempt {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if started.elapsed() >= opts.api_reach_timeout {
            let advice = match env.cluster.api_access {
                ApiAccess::Internal => {
                    "the k3s API is internal (cluster.api_access: internal): run `up` from \
                     inside the VPC, a peered VPC or over a VPN, or set cluster.api_access: \
                     public with an internet-facing NLB"
                }
                ApiAccess::Public => {
                    "the NLB admits only cluster.operator_cidrs: check that this machine's \
                     public address is in one of them"
                }
            };
            anyhow::bail!(
                "cannot reach the k3s API at {nlb_dns}:{API_PORT} from this machine \
                 (last: {why}; tried for {}s): {advice}",
                started.elapsed().as_secs()
            );
        }
        if !reported {
            progress(&format!(
                "waiting for the k3s API at {nlb_dns}:{API_PORT} to accept connections: {why}"
            ));
            reported = true;
        }
        tokio::time::sleep(opts.poll_interval.min(opts.api_reach_timeout)).await;
    }
}

/// One TCP connection attempt, bounded.
async fn tcp_probe(target: &str) -> Result<(), String> {
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connection timed out after 5s".into()),
    }
}

/// Waits for the API's `/readyz` to say `ok`, then for `expected` Ready nodes, within
/// `deadline` overall.
pub async fn wait_until_ready(
    client: &Client,
    expected: u32,
    deadline: Duration,
    interval: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<()> {
    let started = Instant::now();
    poll(
        "the API /readyz through the NLB",
        deadline,
        interval,
        progress,
        || {
            let client = client.clone();
            async move {
                let req = http::Request::get("/readyz")
                    .body(Vec::new())
                    .map_err(|e| e.to_string())?;
                match client.request_text(req).await {
                    Ok(body) if body.trim() == "ok" => Ok(()),
                    Ok(body) => Err(format!("/readyz says {}", body.trim())),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await?;
    poll(
        "the nodes to be Ready",
        deadline.saturating_sub(started.elapsed()),
        interval,
        progress,
        || {
            let nodes: Api<Node> = Api::all(client.clone());
            async move {
                let list = nodes
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let ready = list.items.iter().filter(|n| node_ready(n)).count() as u32;
                if ready >= expected {
                    Ok(())
                } else {
                    Err(format!("{ready}/{expected} nodes Ready"))
                }
            }
        },
    )
    .await?;
    progress(&format!("k3s is up: {expected} nodes Ready"));
    Ok(())
}

fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A nearby search around Paris (GeoNames has it), the proof that the whole path serves.
pub const SMOKE_QUERY: &str = "/v1/search/nearby?lat=48.8566&lng=2.3522&radius=5000";

/// Whether `body` is a nearby-search answer: a JSON object with a `total` count and a
/// `results` array.
pub fn is_search_answer(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| {
        v.get("results").is_some_and(|r| r.is_array()) && v.get("total").is_some_and(|t| t.is_u64())
    })
}

/// Waits until [`SMOKE_QUERY`] at `public_url` answers 2xx with a nearby-search answer,
/// within `opts.serving_timeout`.
pub async fn wait_for_serving(
    public_url: &str,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<()> {
    let url = format!("{}{SMOKE_QUERY}", public_url.trim_end_matches('/'));
    let http = opts
        .resolver
        .http_client(&url, Duration::from_secs(10))
        .context("building the HTTP client")?;
    poll(
        "a nearby search through the ALB",
        opts.serving_timeout,
        opts.poll_interval,
        progress,
        || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body = resp.text().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    Err(format!("{url} answered {status}"))
                } else if !is_search_answer(&body) {
                    Err(format!("{url} answered {status}, but not a nearby search"))
                } else {
                    Ok(())
                }
            }
        },
    )
    .await?;
    progress(&format!("serving: {url} answers"));
    Ok(())
}
