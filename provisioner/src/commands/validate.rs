//! `provisioner validate -f TEMPLATE`: every check that needs no AWS call.
//! Errors are reported by [`crate::cli`] (text, or JSON with `--output json`);
//! this prints the summary of a valid template and its warnings.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::{Config, OutputFormat};
use crate::template::{Environment, SubnetKind};

pub async fn run(cfg: &Config, env: &Environment) -> Result<ExitCode> {
    let warnings = cfg
        .template
        .as_ref()
        .map(|t| t.warnings.as_slice())
        .unwrap_or_default();
    match cfg.output {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "valid": true,
                "warnings": warnings,
                "environment": env,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => {
            for w in warnings {
                eprintln!("{w}");
            }
            let file = cfg
                .template
                .as_ref()
                .map(|t| t.file.display().to_string())
                .unwrap_or_default();
            println!("{file}: valid");
            println!("{}", summary(env));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A few lines describing what the template declares.
pub fn summary(env: &Environment) -> String {
    let mut out = vec![format!(
        "environment {} in {} ({} tag{})",
        env.name,
        env.region,
        env.tags.len(),
        if env.tags.len() == 1 { "" } else { "s" }
    )];
    for v in &env.vpcs {
        out.push(format!(
            "  vpc {} {} over {} AZ(s): {} public + {} private subnets, {} NAT gateway(s)",
            v.name,
            v.cidr,
            v.az_count,
            v.subnets_of(SubnetKind::Public).count(),
            v.subnets_of(SubnetKind::Private).count(),
            v.nat_subnets().len()
        ));
    }
    for p in &env.peerings {
        out.push(format!(
            "  peering {}: {} <-> {}",
            p.name, p.requester, p.accepter
        ));
    }
    let rules: usize = env.security_groups.iter().map(|g| g.ingress.len()).sum();
    out.push(format!(
        "  {} security group(s), {rules} ingress rule(s)",
        env.security_groups.len()
    ));
    for p in &env.node_pools {
        out.push(format!(
            "  pool {} ({}): {} x {} in {} {} subnets (min {}, max {})",
            p.name, p.role, p.desired, p.instance_type, p.vpc, p.subnets, p.min, p.max
        ));
    }
    if let Some(n) = &env.load_balancers.nlb {
        let ports: Vec<String> = n
            .listeners
            .iter()
            .map(|l| format!("{}->{}", l.port, l.target_pool))
            .collect();
        out.push(format!(
            "  nlb {} ({} subnets): {}",
            n.name,
            n.subnets,
            ports.join(", ")
        ));
    }
    if let Some(a) = &env.load_balancers.alb {
        let rules: usize = a.listeners.iter().map(|l| l.rules.len()).sum();
        out.push(format!(
            "  alb {} ({} subnets): {} listener(s), {rules} rule(s), {} target group(s)",
            a.name,
            a.subnets,
            a.listeners.len(),
            a.target_groups.len()
        ));
    }
    if let Some(d) = &env.dns {
        out.push(format!(
            "  {} zone {}: {} record(s)",
            if d.private { "private" } else { "public" },
            d.zone,
            d.records.len()
        ));
    }
    out.join("\n")
}
