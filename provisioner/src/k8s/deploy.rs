//! The Kubernetes half of `provisioner up`: after the AWS environment has converged, bring
//! the workload up and finish only when it serves.
//!
//! **For `commands/up.rs`:** call [`deploy`] after the engine's converge, with
//! [`DeployTarget::Aws`] on real AWS and [`DeployTarget::Emulator`] when the endpoint is not
//! AWS (`--local`, `--endpoint-url`, `AWS_ENDPOINT_URL`). Progress lines go to the
//! `progress` callback (print them; they are plain text).
//!
//! On real AWS: wait for the kubeconfig the first server publishes in SSM, for the API's
//! `/readyz` through the NLB, for the expected number of Ready nodes (each with a deadline),
//! write the kubeconfig for the user, apply the workload (server-side apply, prune), wait for
//! every rollout, then wait until a nearby search answers through the public name.
//!
//! On the emulator: instances never boot, so k3s cannot come up; say so, then deploy to the
//! `--kubeconfig` cluster if one is given, else write the rendered manifests to
//! `--manifests-out` (default `./rendered/<env>`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams};
use kube::Client;

use super::apply::{parse_documents, Applier, ApplyReport, WaitConfig};
use super::kubeconfig::{self, WriteMode};
use super::render::{self, SecretValues, Workload, WorkloadOptions, WorkloadSecrets, SECRET_NAMES};
use crate::bootstrap::{Endpoints, ParameterNames};
use crate::template::model::Environment;

/// Reads the kubeconfig the first k3s server published (a SecureString). Implemented over
/// SSM by `crate::aws::ssm_secrets`; tests may use anything.
pub trait PublishedKubeconfig {
    /// The parameter's decrypted value, `None` while it does not exist.
    fn fetch(&self, parameter: &str)
        -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
}

/// Where the workload goes.
pub enum DeployTarget<'a, S> {
    /// Real AWS: the instances boot k3s.
    Aws {
        /// Reads the published kubeconfig.
        secrets: &'a S,
        endpoints: Endpoints,
        /// Base URL of the service through the public name (`http://<record or ALB DNS>`).
        public_url: String,
        /// Also write the kubeconfig here (replace, or merge as context `provisioner-<env>`).
        kubeconfig_out: Option<(PathBuf, WriteMode)>,
    },
    /// The emulator: no instance ever boots.
    Emulator {
        /// `--kubeconfig`: a cluster to deploy to instead.
        kubeconfig: Option<PathBuf>,
    },
}

/// Deadlines and knobs of a deploy.
#[derive(Clone, Debug)]
pub struct DeployOptions {
    pub workload: WorkloadOptions,
    pub wait: WaitConfig,
    /// Deadline for the cluster to come up (kubeconfig published, `/readyz`, nodes Ready).
    pub cluster_timeout: Duration,
    /// Deadline for the first nearby search through the public name after the rollout.
    pub serving_timeout: Duration,
    /// Where the emulator path writes the rendered manifests (`./rendered/<env>` when `None`).
    pub manifests_out: Option<PathBuf>,
    /// Pause between two probes while waiting.
    pub poll_interval: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            workload: WorkloadOptions::default(),
            wait: WaitConfig::default(),
            cluster_timeout: Duration::from_secs(25 * 60),
            serving_timeout: Duration::from_secs(10 * 60),
            manifests_out: None,
            poll_interval: Duration::from_secs(10),
        }
    }
}

/// What a deploy did.
#[derive(Debug)]
pub enum DeployOutcome {
    /// Applied to a cluster (and, on AWS, serving through `public_url`).
    Applied {
        report: ApplyReport,
        serving_at: Option<String>,
    },
    /// Emulator without a cluster: manifests written here (secrets redacted).
    Rendered { dir: PathBuf, files: Vec<PathBuf> },
}

/// The message the emulator path prints first.
pub const EMULATOR_NOTICE: &str =
    "the AWS emulator cannot boot EC2 instances, so k3s never comes up there: \
     no cluster was bootstrapped";

/// Brings the workload of `env` up on `target`. See the module docs.
pub async fn deploy<S: PublishedKubeconfig + Sync>(
    env: &Environment,
    target: DeployTarget<'_, S>,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<DeployOutcome> {
    let workload = Workload::from_env(env, &opts.workload)?;
    match target {
        DeployTarget::Emulator { kubeconfig } => {
            progress(EMULATOR_NOTICE);
            match kubeconfig {
                Some(path) => {
                    progress(&format!("deploying to the cluster of {}", path.display()));
                    let client = kubeconfig::client_from_file(&path).await?;
                    let report = apply_workload(client, &workload, &opts.wait, progress).await?;
                    Ok(DeployOutcome::Applied {
                        report,
                        serving_at: None,
                    })
                }
                None => {
                    let dir = opts
                        .manifests_out
                        .clone()
                        .unwrap_or_else(|| Path::new("rendered").join(env.name.as_str()));
                    let rendered = crate::commands::render::render_all(env, &opts.workload, &dir)?;
                    for p in &rendered.problems {
                        progress(&format!("warning: {p}"));
                    }
                    progress(&format!(
                        "no cluster to deploy to (no --kubeconfig): wrote {} rendered files (manifests/, userdata/, iam/) to {} \
                         — Secret values REDACTED (a deploy to a cluster generates them)",
                        rendered.files.len(),
                        dir.display()
                    ));
                    Ok(DeployOutcome::Rendered {
                        dir,
                        files: rendered.files,
                    })
                }
            }
        }
        DeployTarget::Aws {
            secrets,
            endpoints,
            public_url,
            kubeconfig_out,
        } => {
            let client =
                wait_for_cluster(env, secrets, &endpoints, kubeconfig_out, opts, progress).await?;
            let report = apply_workload(client, &workload, &opts.wait, progress).await?;
            wait_for_serving(&public_url, opts, progress).await?;
            Ok(DeployOutcome::Applied {
                report,
                serving_at: Some(public_url),
            })
        }
    }
}

/// Writes every manifest, secrets REDACTED, into `dir`.
pub fn write_manifests(workload: &Workload, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for m in render::render_manifests(workload, SecretValues::Redacted)? {
        let path = dir.join(m.file_name);
        std::fs::write(&path, &m.yaml).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

/// Renders the workload with real secrets (kept from the cluster when they exist), applies
/// it (prune included) and waits for every rollout.
pub async fn apply_workload(
    client: Client,
    workload: &Workload,
    wait: &WaitConfig,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<ApplyReport> {
    let secrets = existing_secrets(&client, &workload.namespace).await?;
    let secrets = WorkloadSecrets::reuse_or_generate(&secrets);
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

async fn wait_for_cluster<S: PublishedKubeconfig + Sync>(
    env: &Environment,
    secrets: &S,
    endpoints: &Endpoints,
    kubeconfig_out: Option<(PathBuf, WriteMode)>,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Client> {
    let started = Instant::now();
    let remaining = || opts.cluster_timeout.saturating_sub(started.elapsed());
    let parameter = ParameterNames::new(&env.name).kubeconfig();
    let published = poll(
        "the first k3s server to publish its kubeconfig",
        remaining(),
        opts.poll_interval,
        progress,
        || async {
            match secrets.fetch(&parameter).await {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(format!("{parameter} does not exist yet")),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await?;
    let mut kc = kubeconfig::normalise(&published, env.name.as_str())?;
    let nlb_url = format!("https://{}:6443", endpoints.nlb_dns);
    if env.dns.as_ref().is_some_and(|d| d.private) {
        // The API name lives in a private zone: from outside the VPC only the NLB resolves.
        for c in kc.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
            c.server = Some(nlb_url.clone());
        }
    }
    if let Some((path, mode)) = kubeconfig_out {
        kubeconfig::write(&kc, &path, mode)?;
        progress(&format!(
            "kubeconfig written to {} (context {})",
            path.display(),
            kubeconfig::context_name(env.name.as_str())
        ));
    }
    let client = kubeconfig::client(&kc, Some(&nlb_url)).await?;
    let expected: u32 = env.node_pools.iter().map(|p| p.desired).sum();
    wait_until_ready(&client, expected, remaining(), opts.poll_interval, progress).await?;
    Ok(client)
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

/// Waits until [`SMOKE_QUERY`] answers 2xx at `public_url`, within `opts.serving_timeout`.
pub async fn wait_for_serving(
    public_url: &str,
    opts: &DeployOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<()> {
    let url = format!("{}{SMOKE_QUERY}", public_url.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")?;
    poll(
        "a nearby search through the public name",
        opts.serving_timeout,
        opts.poll_interval,
        progress,
        || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("{url} answered {}", resp.status()))
                }
            }
        },
    )
    .await?;
    progress(&format!("serving: {url} answers"));
    Ok(())
}
