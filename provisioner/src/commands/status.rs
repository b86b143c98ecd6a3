//! `provisioner status`: what exists for the environment (by tag) and its health: NAT gateway
//! states, load balancer states, Auto Scaling instances, target health.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::aws::api::*;
use crate::aws::Cloud;
use crate::config::{Config, OutputFormat};
use crate::discover::discover;
use crate::session::connect;

#[derive(Debug, Serialize)]
pub struct Status {
    pub env: String,
    pub resources: Vec<(String, String)>,
    pub health: Vec<String>,
}

pub async fn collect(cloud: &Cloud) -> Result<Status> {
    let inv = discover(cloud).await?;
    let mut health = Vec::new();
    for n in cloud.nat_gateways().await? {
        health.push(format!(
            "nat {} ({}): {}",
            n.id,
            crate::aws::ec2::name_of(&n.tags),
            n.state
        ));
    }
    for lb in cloud.load_balancers().await.unwrap_or_default() {
        health.push(format!(
            "{} {}: {} {}",
            lb.lb_type, lb.name, lb.state, lb.dns_name
        ));
    }
    for g in cloud.auto_scaling_groups().await.unwrap_or_default() {
        let in_service = g
            .instances
            .iter()
            .filter(|i| i.lifecycle == "InService")
            .count();
        health.push(format!(
            "asg {}: {in_service}/{} instances in service (min {}, max {})",
            g.name, g.spec.desired, g.spec.min, g.spec.max
        ));
    }
    for t in cloud.target_groups().await.unwrap_or_default() {
        let th = cloud.target_health(&t.arn).await.unwrap_or_default();
        let healthy = th.iter().filter(|h| h.state == "healthy").count();
        health.push(format!(
            "target group {}: {healthy}/{} healthy",
            t.name,
            th.len()
        ));
    }
    Ok(Status {
        env: cloud.env.clone(),
        resources: inv
            .items
            .iter()
            .map(|i| (i.key.to_string(), i.name.clone()))
            .collect(),
        health,
    })
}

pub async fn run(cfg: &Config) -> Result<ExitCode> {
    let cloud = connect(cfg).await?;
    let s = collect(&cloud).await?;
    match cfg.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&s)?),
        OutputFormat::Text => {
            println!("environment {}: {} resources", s.env, s.resources.len());
            for (k, n) in &s.resources {
                println!("  {k:<60} {n}");
            }
            println!("health:");
            for h in &s.health {
                println!("  {h}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
