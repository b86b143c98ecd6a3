//! What `plan`, `up`, `down` and `status` share, below the commands: connecting to AWS (or an
//! emulator) as the configuration says, the services a template needs, building the tasks
//! (AMIs and zones resolved first), the options of a converge run, and the plan report.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::aws::api::*;
use crate::aws::{AwsSettings, Cloud, Service};
use crate::config::Config;
use crate::engine::executor::{execute, Event, ExecOptions, Report};
use crate::engine::{Action, Change, Mode, Task};
use crate::template::Environment;

/// Connect to AWS (or the emulator) as the CLI says.
pub async fn connect(cfg: &Config) -> Result<Cloud> {
    let settings = AwsSettings {
        region: cfg
            .region
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        endpoint_url: cfg.endpoint_url().map(String::from),
        profile: cfg.profile.clone(),
    };
    let mut cloud = Cloud::connect(&settings, cfg.env_name.as_str()).await?;
    cloud.parallelism = cfg.parallelism;
    cloud.refresh_ami = cfg.refresh_ami;
    Ok(cloud)
}

/// Services a template needs.
pub fn services(env: &Environment) -> Vec<Service> {
    let mut s = vec![Service::Ec2];
    if !env.node_pools.is_empty() {
        s.extend([Service::AutoScaling, Service::Iam, Service::Ssm]);
    }
    if env.load_balancers.nlb.is_some() || env.load_balancers.alb.is_some() {
        s.push(Service::ElasticLoadBalancingV2);
    }
    if env.dns.is_some() {
        s.push(Service::Route53);
    }
    s
}

/// The tasks for `env` (AMIs resolved through SSM).
pub async fn tasks(cloud: &Cloud, env: &Environment) -> Result<Vec<Arc<dyn Task<Cloud>>>> {
    cloud.set_extra_tags(&env.tags);
    let needed = services(env);
    let (amis, zones, ()) = futures::join!(
        crate::model::resolve_amis(cloud, env),
        cloud.availability_zones(),
        cloud.prefetch(&needed)
    );
    let zones = zones?;
    crate::model::check_zones(env, &zones).map_err(anyhow::Error::msg)?;
    let account_id = if env.node_pools.is_empty() {
        "*".to_string()
    } else {
        cloud.account_id().await?
    };
    let target = crate::model::Target {
        amis: amis?,
        emulator: cloud.is_emulator(),
        account_id,
        zones,
    };
    Ok(crate::model::build_for(env, &target))
}

/// Options of a converge run.
pub fn exec_options(cloud: &Cloud, mode: Mode) -> ExecOptions {
    ExecOptions {
        mode,
        concurrency: cloud.parallelism.max(1),
        task_deadline: Duration::from_secs(1200),
        not_ready_pause: Duration::from_secs(2),
    }
}

/// The plan, as data.
#[derive(Debug, Serialize)]
pub struct PlanReport {
    pub env: String,
    pub changes: Vec<Change>,
    pub create: usize,
    pub update: usize,
    pub unchanged: usize,
    pub errors: Vec<String>,
    pub api_calls: u64,
    pub retries: u64,
}

impl PlanReport {
    pub fn has_changes(&self) -> bool {
        self.create + self.update > 0
    }
}

/// Run the plan against `cloud` (does not print).
pub async fn plan(cloud: &Cloud, env: &Environment) -> Result<PlanReport> {
    cloud.inventory.clear();
    let calls_before = cloud.stats.calls();
    let retries_before = cloud.stats.retries();
    let tasks = tasks(cloud, env).await?;
    let report = execute(
        cloud,
        &tasks,
        &exec_options(cloud, Mode::DryRun),
        &|_: Event<'_>| {},
    )
    .await
    .context("building the dependency graph")?;
    Ok(summarise(cloud, env, &report, calls_before, retries_before))
}

pub fn summarise(
    cloud: &Cloud,
    env: &Environment,
    report: &Report,
    calls_before: u64,
    retries_before: u64,
) -> PlanReport {
    let mut changes: Vec<Change> = report.changes().cloned().collect();
    changes.sort_by(|a, b| a.key.cmp(&b.key));
    PlanReport {
        env: env.name.to_string(),
        create: report.count(Action::Create),
        update: report.count(Action::Update),
        unchanged: report.count(Action::Unchanged),
        changes,
        errors: report
            .failures()
            .into_iter()
            .map(|(k, e)| format!("{k}: {e}"))
            .collect(),
        api_calls: cloud.stats.calls() - calls_before,
        retries: cloud.stats.retries() - retries_before,
    }
}

/// Human-readable plan.
pub fn render_text(p: &PlanReport) -> String {
    let mut out = format!("Plan for environment {}:\n", p.env);
    for c in &p.changes {
        let sym = match c.action {
            Action::Create => "+",
            Action::Update => "~",
            Action::Unchanged => continue,
        };
        out.push_str(&format!("  {sym} {:<40} {}\n", c.key.as_str(), c.reason));
        for f in &c.fields {
            if c.action == Action::Create {
                out.push_str(&format!("      {}: {}\n", f.field, f.desired));
            } else {
                out.push_str(&format!(
                    "      {}: {} -> {}\n",
                    f.field, f.actual, f.desired
                ));
            }
        }
    }
    for e in &p.errors {
        out.push_str(&format!("  ! {e}\n"));
    }
    out.push_str(&format!(
        "Plan: {} to create, {} to update, {} unchanged ({} API calls, {} retried).\n",
        p.create, p.update, p.unchanged, p.api_calls, p.retries
    ));
    if !p.has_changes() && p.errors.is_empty() {
        out.push_str("No changes: the environment matches the template.\n");
    }
    out
}
