//! `provisioner up -f TEMPLATE`: preflight, plan (shown; confirmation asked on real AWS unless
//! `--yes`), then the same run in apply mode, with a progress line per resource and a summary
//! (created / updated / unchanged, API calls and what was retried).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::aws::api::*;
use crate::aws::Cloud;
use crate::config::Config;
use crate::engine::executor::{execute, Event};
use crate::engine::{Action, Mode};
use crate::k8s::deploy::ClusterAccess;
use crate::k8s::render::WorkloadOptions;
use crate::session::{connect, exec_options, plan, render_text, services, summarise, tasks};
use crate::template::Environment;

#[derive(Debug, Serialize)]
pub struct UpReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: Vec<String>,
    pub api_calls: u64,
    pub retries: u64,
    pub retried: Vec<String>,
    pub wall_secs: f64,
    /// Layers of the dependency graph.
    pub depth: usize,
    /// Median duration of one API call attempt.
    pub median_call_ms: f64,
    /// Wall time / ((1 + depth) × median call latency): how close to the critical path `up`
    /// ran. The 1 is the level of batched describes every `find` waits on.
    pub critical_path_ratio: f64,
    /// The describes, then the longest chain of dependent tasks weighted by how long each
    /// actually took (retries and waits included): a lower bound for any order of the same
    /// tasks taking as long each.
    pub observed_critical_path_secs: f64,
    /// `--parallelism`.
    pub parallelism: usize,
}

/// Converge `env` (no prompt). `progress` gets one line per event.
pub async fn converge(
    cloud: &Cloud,
    env: &Environment,
    progress: &(dyn Fn(String) + Sync),
) -> Result<UpReport> {
    let start = Instant::now();
    cloud.inventory.clear();
    let (calls0, retries0) = (cloud.stats.calls(), cloud.stats.retries());
    let tasks = tasks(cloud, env).await?;
    let describes = start.elapsed();
    let total = tasks.len();
    let done = AtomicUsize::new(0);
    let on_event = |e: Event<'_>| match e {
        Event::Started(_) => {}
        Event::Done(c) => {
            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
            let what = match c.action {
                Action::Create => "created",
                Action::Update => "updated",
                Action::Unchanged => "unchanged",
            };
            progress(format!("[{n:>3}/{total}] {:<40} {what}", c.key.as_str()));
        }
        Event::NotReady(k, why) => progress(format!("        {:<40} waiting: {why}", k.as_str())),
        Event::Failed(k, why) => {
            done.fetch_add(1, Ordering::SeqCst);
            progress(format!("        {:<40} FAILED: {why}", k.as_str()))
        }
    };
    let report = execute(cloud, &tasks, &exec_options(cloud, Mode::Apply), &on_event)
        .await
        .context("building the dependency graph")?;
    let p = summarise(cloud, env, &report, calls0, retries0);
    let wall = start.elapsed().as_secs_f64();
    let median = cloud
        .stats
        .median_latency()
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let critical = (1 + report.depth) as f64 * median;
    Ok(UpReport {
        created: p.create,
        updated: p.update,
        unchanged: p.unchanged,
        errors: p.errors,
        api_calls: p.api_calls,
        retries: p.retries,
        retried: cloud.stats.retried(),
        wall_secs: wall,
        depth: report.depth,
        median_call_ms: median * 1000.0,
        critical_path_ratio: if critical > 0.0 { wall / critical } else { 0.0 },
        observed_critical_path_secs: (describes + report.critical_path).as_secs_f64(),
        parallelism: cloud.parallelism,
    })
}

pub fn render_summary(r: &UpReport) -> String {
    let mut s = format!(
        "up: {} created, {} updated, {} unchanged in {:.2}s ({} API calls, {} retried; parallelism {}, graph depth 1+{}, median call {:.1}ms, wall/critical-path {:.2}; observed critical path {:.2}s)\n",
        r.created,
        r.updated,
        r.unchanged,
        r.wall_secs,
        r.api_calls,
        r.retries,
        r.parallelism,
        r.depth,
        r.median_call_ms,
        r.critical_path_ratio,
        r.observed_critical_path_secs
    );
    for line in &r.retried {
        s.push_str(&format!("  retried: {line}\n"));
    }
    for e in &r.errors {
        s.push_str(&format!("  error: {e}\n"));
    }
    s
}

pub async fn run(cfg: &Config, env: &Environment) -> Result<ExitCode> {
    let cloud = connect(cfg).await?;
    crate::aws::preflight(&cloud, &services(env)).await?;
    if will_deploy(cfg) {
        let registry = crate::k8s::deploy::registry_credentials(
            &cloud,
            env.cluster.image_pull_secret.as_deref(),
        )
        .await?;
        check_service_image(cfg, env, registry.as_ref()).await?;
    }
    let p = plan(&cloud, env).await?;
    eprint!("{}", render_text(&p));
    if !p.errors.is_empty() {
        bail!("the plan has errors; nothing was changed");
    }
    if p.has_changes() && !cfg.yes {
        if !cfg.interactive {
            bail!("refusing to change real AWS without confirmation: run with --yes");
        }
        eprint!("Apply these changes to environment {}? [y/N] ", env.name);
        std::io::stderr().flush().ok();
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("aborted");
        }
    }
    let r = if cfg.interactive {
        let display = Progress::default();
        let r = converge(&cloud, env, &|line| display.line(&line)).await?;
        display.finish();
        r
    } else {
        converge(&cloud, env, &|line| println!("{line}")).await?
    };
    print!("{}", render_summary(&r));
    if r.errors.is_empty() {
        deploy_workload(cfg, &cloud, env).await?;
    }
    Ok(if r.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether this `up` may deploy the workload to a cluster (it waits for nodes, or has an
/// existing kubeconfig to deploy to); with `--boot-timeout 0` and no kubeconfig it only
/// renders, and no node pulls the image.
fn will_deploy(cfg: &Config) -> bool {
    !cfg.boot_timeout.is_zero() || cfg.kubeconfig.as_ref().is_some_and(|p| p.is_file())
}

/// Refuses, before anything is changed, an image its registry says does not exist (the nodes
/// would sit in ImagePullBackOff after a 20-minute `up`); the template's image can be replaced
/// with `--image`. A registry that wants credentials or cannot be reached from here is a
/// warning: the nodes may have what this machine lacks.
async fn check_service_image(
    cfg: &Config,
    env: &Environment,
    registry: Option<&crate::k8s::render::RegistryCredentials>,
) -> Result<()> {
    use crate::registry::{check, ImageCheck, ImageRef};
    let (image, key) = match &cfg.image {
        Some(i) => (i.as_str(), "--image"),
        None => (env.cluster.service_image.as_str(), "cluster.service_image"),
    };
    let basic = registry.and_then(|r| r.basic_for(&ImageRef::parse(image).registry));
    let basic = basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    match check(image, basic, std::time::Duration::from_secs(10)).await {
        ImageCheck::Found { digest } => {
            eprintln!(
                "image {image} found in its registry{}",
                digest.map(|d| format!(" ({d})")).unwrap_or_default()
            );
            Ok(())
        }
        ImageCheck::NotFound(why) => bail!(
            "{key}: {image} cannot be pulled: {why}. Build and push it (scripts/build-image \
             {image}) or pass --image with one that exists; nothing was changed"
        ),
        ImageCheck::Denied(why) => {
            eprintln!(
                "warning: {key}: could not check {image}: {why}; the nodes need credentials \
                 for that registry"
            );
            Ok(())
        }
        ImageCheck::Unreachable(why) => {
            eprintln!(
                "warning: {key}: could not reach the registry of {image} from here ({why}); \
                 the nodes will try to pull it"
            );
            Ok(())
        }
    }
}

// ---- Kubernetes: k3s readiness and the workload (see `crate::k8s::deploy`) -------------------

/// After the AWS side converged, the same path wherever the endpoint is: find the load
/// balancers (a fresh listing: the one cached before converge predates them), wait for a node
/// to publish the cluster's kubeconfig, apply the workload, wait until a nearby search answers
/// through the ALB. Where no instance ran its user-data within `--boot-timeout`, say so and
/// deploy to the cluster of an existing `--kubeconfig` file if one is given, else write the
/// rendered workload to `--manifests-out`; that is an error only when `up` was told to wait.
async fn deploy_workload(cfg: &Config, cloud: &Cloud, env: &Environment) -> Result<()> {
    use crate::k8s::deploy::{deploy, DeployOptions, DeployOutcome, NO_NODES_NOTICE};

    let opts = DeployOptions {
        workload: WorkloadOptions {
            image: cfg.image.clone(),
            ..WorkloadOptions::default()
        },
        boot_timeout: cfg.boot_timeout,
        resolver: cfg.resolver.clone(),
        ..DeployOptions::default()
    };
    if env.node_pools.is_empty() {
        eprintln!("the template has no node_pools, so there is no cluster to deploy to");
        return render_instead(cfg, env, &opts.workload);
    }
    let access = cluster_access(cfg, cloud, env).await?;
    let mut progress = |line: &str| eprintln!("{line}");
    match deploy(env, access, &opts, &mut progress).await? {
        DeployOutcome::Applied { report, serving_at } => {
            println!(
                "workload: {} objects applied, {} pruned",
                report.applied.len(),
                report.pruned.len()
            );
            println!("serving: {serving_at}{}", crate::k8s::deploy::SMOKE_QUERY);
            Ok(())
        }
        DeployOutcome::NoNodes { waited } => {
            eprintln!("{NO_NODES_NOTICE}");
            if let Some(path) = cfg.kubeconfig.as_ref().filter(|p| p.is_file()) {
                eprintln!("deploying to the cluster of {} instead", path.display());
                let client = crate::k8s::kubeconfig::client_from_file(path).await?;
                let workload = crate::k8s::render::Workload::from_env(env, &opts.workload)?;
                let registry = crate::k8s::deploy::registry_credentials(
                    cloud,
                    workload.image_pull_secret.as_deref(),
                )
                .await?;
                let report = crate::k8s::deploy::apply_workload(
                    client,
                    &workload,
                    registry,
                    &opts.wait,
                    &mut progress,
                )
                .await?;
                println!(
                    "workload: {} objects applied, {} pruned",
                    report.applied.len(),
                    report.pruned.len()
                );
            } else {
                render_instead(cfg, env, &opts.workload)?;
            }
            if cfg.boot_timeout.is_zero() {
                Ok(())
            } else {
                match scaling_state(cloud).await {
                    Ok(groups) => eprint!("{}", explain_missing_nodes(&groups)),
                    Err(e) => eprintln!("(could not read the Auto Scaling activities: {e:#})"),
                }
                bail!(
                    "no instance of {} ran its user-data within {}s of up (--boot-timeout); \
                     check the Auto Scaling groups' activity and the instances' console output",
                    env.name,
                    waited.as_secs()
                )
            }
        }
    }
}

/// One Auto Scaling group of the environment as `up` left it: what it wants, what runs, and
/// what it last did.
#[derive(Debug, Clone)]
pub struct GroupScaling {
    pub name: String,
    pub desired: i32,
    pub in_service: usize,
    /// Newest first.
    pub activities: Vec<crate::aws::asg::ScalingActivity>,
}

/// How many activities per group are read, and how many not-successful ones are shown.
const ACTIVITIES_READ: i32 = 20;
const ACTIVITIES_SHOWN: usize = 3;

/// The environment's groups (a fresh listing) with their recent scaling activities.
pub async fn scaling_state(cloud: &Cloud) -> Result<Vec<GroupScaling>> {
    cloud.inventory.invalidate("asg:groups");
    let groups = cloud.auto_scaling_groups().await?;
    let acts = futures::future::join_all(
        groups
            .iter()
            .map(|g| cloud.scaling_activities(&g.name, ACTIVITIES_READ)),
    )
    .await;
    let mut out = Vec::new();
    for (g, a) in groups.into_iter().zip(acts) {
        out.push(GroupScaling {
            in_service: g
                .instances
                .iter()
                .filter(|i| i.lifecycle == "InService")
                .count(),
            desired: g.spec.desired,
            name: g.name,
            activities: a?,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What a scaling activity's message most likely means, for the usual causes.
fn likely_cause(message: &str) -> Option<&'static str> {
    let m = message.to_ascii_lowercase();
    if m.contains("vcpu") || m.contains("limit") || m.contains("quota") {
        Some("an EC2 quota: ask for a higher limit (Service Quotas) or use a smaller instance type")
    } else if m.contains("capacity") {
        Some("no capacity for this instance type in the zone: another type or zone")
    } else if m.contains("instance profile") || m.contains("iam") {
        Some("the instance profile: not usable (yet) by EC2 — a new profile takes a few seconds to propagate")
    } else {
        None
    }
}

/// Why instances are missing, per group: in service vs desired, and the latest scaling
/// activities that failed or are still going, with their status messages.
pub fn explain_missing_nodes(groups: &[GroupScaling]) -> String {
    if groups.is_empty() {
        return "no Auto Scaling group of this environment was found\n".to_string();
    }
    let mut s = String::new();
    for g in groups {
        s.push_str(&format!(
            "Auto Scaling group {}: {} of {} desired instances in service\n",
            g.name, g.in_service, g.desired
        ));
        let notable: Vec<_> = g
            .activities
            .iter()
            .filter(|a| a.status != "Successful")
            .take(ACTIVITIES_SHOWN)
            .collect();
        for a in &notable {
            let when = if a.start_time.is_empty() {
                String::new()
            } else {
                format!(" at {}", a.start_time)
            };
            // AWS often repeats the message in the description ("… Status Reason: <message>").
            let what = if a.description.contains(a.status_message.as_str()) {
                a.description.trim().to_string()
            } else {
                [a.description.trim(), a.status_message.trim()]
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
                    .join(": ")
            };
            s.push_str(&format!("  {}{when}: {what}\n", a.status));
            if let Some(c) = likely_cause(&a.status_message) {
                s.push_str(&format!("    likely cause: {c}\n"));
            }
        }
        if notable.is_empty() {
            s.push_str(if g.in_service as i32 >= g.desired {
                "  no failed or ongoing scaling activity: the instances run but none showed a sign of life — see their console output (k3s, user-data)\n"
            } else {
                "  no failed or ongoing scaling activity\n"
            });
        }
    }
    s
}

/// Writes the rendered workload, user-data and policies where `--manifests-out` says.
fn render_instead(cfg: &Config, env: &Environment, workload: &WorkloadOptions) -> Result<()> {
    let dir = cfg
        .manifests_out
        .clone()
        .unwrap_or_else(|| std::path::Path::new("rendered").join(env.name.as_str()));
    let rendered = crate::artifacts::render_all(env, workload, &dir)?;
    for p in &rendered.problems {
        eprintln!("warning: {p}");
    }
    eprintln!(
        "no cluster to deploy to: wrote {} rendered files (manifests/, userdata/, iam/) to {} \
         — Secret values REDACTED (a deploy to a cluster generates them)",
        rendered.files.len(),
        dir.display()
    );
    println!(
        "workload: {} files rendered (manifests, user-data, IAM policies) to {}",
        rendered.files.len(),
        dir.display()
    );
    Ok(())
}

/// The NLB and ALB names from a fresh listing, the public record, where the kubeconfig goes.
async fn cluster_access<'a>(
    cfg: &Config,
    cloud: &'a Cloud,
    env: &Environment,
) -> Result<ClusterAccess<'a, Cloud>> {
    use crate::bootstrap::{public_record_name, Endpoints};
    use crate::k8s::kubeconfig::WriteMode;
    use crate::template::LbKind;

    cloud.inventory.clear();
    let lbs = cloud.load_balancers().await?;
    let dns_of = |kind: LbKind| -> Result<String> {
        let placement = env.load_balancer(kind).with_context(|| {
            format!("k3s and the service need the template's {kind} (load_balancers.{kind})")
        })?;
        lbs.iter()
            .find(|lb| {
                lb.tags.get(crate::aws::TAG_ENV) == Some(&cloud.env)
                    && lb.tags.get(crate::aws::TAG_NAME).map(String::as_str)
                        == Some(placement.name.as_str())
            })
            .map(|lb| lb.dns_name.clone())
            .with_context(|| format!("the {kind} `{}` was not found after up", placement.name))
    };
    Ok(ClusterAccess {
        secrets: cloud,
        endpoints: Endpoints::for_env(env, &dns_of(LbKind::Nlb)?),
        service_url: format!("http://{}", dns_of(LbKind::Alb)?),
        public_name: public_record_name(env),
        name_servers: public_zone_name_servers(cloud, env).await,
        instance_ips: running_instance_ips(cloud).await,
        kubeconfig_out: cfg.kubeconfig.clone().map(|p| {
            let mode = if p.exists() {
                WriteMode::Merge
            } else {
                WriteMode::Replace
            };
            (p, mode)
        }),
    })
}

/// The name servers of the environment's public zone (none for a private zone or none at all;
/// a failed read is reported and leaves the report without them).
async fn public_zone_name_servers(cloud: &Cloud, env: &Environment) -> Vec<String> {
    if crate::bootstrap::public_record_name(env).is_none() {
        return Vec::new();
    }
    let zones = match cloud.hosted_zones().await {
        Ok(z) => z,
        Err(e) => {
            eprintln!("(could not list the hosted zones for their name servers: {e})");
            return Vec::new();
        }
    };
    let Some(zone) = zones.iter().find(|z| !z.private) else {
        return Vec::new();
    };
    cloud.zone_name_servers(&zone.id).await.unwrap_or_else(|e| {
        eprintln!("(could not read the name servers of {}: {e})", zone.name);
        Vec::new()
    })
}

/// The private addresses of the environment's running (or starting) instances; none when
/// the listing fails (then no Node is taken for departed).
async fn running_instance_ips(cloud: &Cloud) -> Vec<String> {
    match cloud.instances().await {
        Ok(list) => list
            .into_iter()
            .filter(|i| matches!(i.state.as_str(), "pending" | "running"))
            .map(|i| i.private_ip)
            .filter(|ip| !ip.is_empty())
            .collect(),
        Err(e) => {
            eprintln!("(could not list the instances; no departed Node is removed: {e})");
            Vec::new()
        }
    }
}

/// Progress on a terminal: finished resources scroll by, one status line at the bottom is
/// redrawn in place (`[done/total] last: …`).
#[derive(Default)]
struct Progress {
    state: std::sync::Mutex<usize>,
}

impl Progress {
    fn line(&self, line: &str) {
        let mut n = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut err = std::io::stderr().lock();
        if line.starts_with('[') {
            *n += 1;
        }
        let _ = write!(err, "\r\x1b[2K{line}\n\x1b[1m{} resources done\x1b[0m", *n);
        let _ = err.flush();
    }
    fn finish(&self) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::asg::ScalingActivity;

    fn act(status: &str, description: &str, message: &str) -> ScalingActivity {
        ScalingActivity {
            status: status.into(),
            status_message: message.into(),
            description: description.into(),
            start_time: "2026-12-03T18:00:00Z".into(),
        }
    }

    #[test]
    fn missing_nodes_are_explained_by_the_failed_and_ongoing_activities() {
        let groups = vec![
            GroupScaling {
                name: "dev-servers".into(),
                desired: 3,
                in_service: 1,
                activities: vec![
                    act(
                        "Failed",
                        "Launching a new EC2 instance.  Status Reason: You have requested more vCPU capacity than your current vCPU limit of 32 allows",
                        "You have requested more vCPU capacity than your current vCPU limit of 32 allows",
                    ),
                    act("InProgress", "Launching a new EC2 instance: i-0abc", ""),
                    act("Successful", "Launching a new EC2 instance: i-0def", ""),
                    act(
                        "Failed",
                        "Launching a new EC2 instance",
                        "Invalid IAM Instance Profile name",
                    ),
                    act("Failed", "Launching a new EC2 instance", "older, not shown"),
                ],
            },
            GroupScaling {
                name: "dev-agents".into(),
                desired: 2,
                in_service: 2,
                activities: vec![act("Successful", "Launching", "")],
            },
        ];
        let text = explain_missing_nodes(&groups);
        assert!(
            text.contains("Auto Scaling group dev-servers: 1 of 3 desired instances in service"),
            "{text}"
        );
        assert!(text.contains("Failed at 2026-12-03T18:00:00Z: Launching a new EC2 instance.  Status Reason: You have requested more vCPU capacity than your current vCPU limit of 32 allows\n"), "{text}");
        assert_eq!(text.matches("You have requested").count(), 1, "{text}");
        assert!(text.contains("Failed at 2026-12-03T18:00:00Z: Launching a new EC2 instance: Invalid IAM Instance Profile name\n"), "{text}");
        assert!(text.contains("likely cause: an EC2 quota"), "{text}");
        assert!(
            text.contains(
                "InProgress at 2026-12-03T18:00:00Z: Launching a new EC2 instance: i-0abc\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("likely cause: the instance profile"),
            "{text}"
        );
        assert!(!text.contains("older, not shown"), "three at most: {text}");
        assert!(
            !text.contains("i-0def"),
            "successful ones are not shown: {text}"
        );
        assert!(
            text.contains("Auto Scaling group dev-agents: 2 of 2 desired instances in service\n  no failed or ongoing scaling activity: the instances run"),
            "{text}"
        );
        assert_eq!(
            likely_cause(
                "We currently do not have sufficient t3.large capacity in the Availability Zone"
            ),
            Some("no capacity for this instance type in the zone: another type or zone")
        );
        assert!(explain_missing_nodes(&[]).contains("no Auto Scaling group"));
    }
}
