//! `provisioner down -f TEMPLATE` or `--env NAME`: discover everything tagged
//! `provisioner:env=NAME` across services (plus known untagged children: [`crate::discover`]),
//! delete it in dependency rounds ([`crate::engine::teardown`]), retrying DependencyViolation
//! until the deadline; then discover again and LIST what is left — exit 1 if anything is.
//!
//! Nothing untagged for this environment is ever touched: every item comes from an owned
//! describe (tag filter + client-side check) or is a child of an owned item.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use futures::future::BoxFuture;
use serde::Serialize;

use crate::aws::api::*;
use crate::aws::Cloud;
use crate::config::Config;
use crate::discover::discover;
use crate::engine::teardown::{delete_in_rounds, Deleted, Doomed, TeardownOptions};
use crate::engine::{CloudError, TaskKey};
use crate::session::connect;

/// Delete one discovered item (children first where AWS needs it).
fn delete_one(cloud: &Cloud, k: TaskKey) -> BoxFuture<'_, Result<(), CloudError>> {
    Box::pin(async move {
        let id = k.name().to_string();
        match k.kind() {
            "asg" => cloud.delete_auto_scaling_group(&id).await,
            "instance" => cloud.terminate_instances(&[id]).await,
            "lb" => cloud.delete_load_balancer(&id).await,
            "tg" => cloud.delete_target_group(&id).await,
            "lt" => cloud.delete_launch_template(&id).await,
            "nat" => cloud.delete_nat_gateway(&id).await,
            "eip" => cloud.release_eip(&id).await,
            "rtb" => {
                for t in cloud.route_tables().await? {
                    if t.id == id {
                        for (assoc, _) in &t.associations {
                            match cloud.disassociate_route_table(assoc).await {
                                Err(e) if !e.is_not_found() => return Err(e),
                                _ => {}
                            }
                        }
                    }
                }
                cloud.delete_route_table(&id).await
            }
            "igw" => {
                for g in cloud.internet_gateways().await? {
                    if g.id == id {
                        for v in &g.attached_vpcs {
                            match cloud.detach_internet_gateway(&id, v).await {
                                Err(e) if !e.is_not_found() => return Err(e),
                                _ => {}
                            }
                        }
                    }
                }
                cloud.delete_internet_gateway(&id).await
            }
            "pcx" => cloud.delete_peering(&id).await,
            "eni" => cloud.delete_eni(&id).await,
            "sg" => cloud.delete_security_group(&id).await,
            "subnet" => cloud.delete_subnet(&id).await,
            "vpc" => cloud.delete_vpc(&id).await,
            "zone" => {
                let records = cloud.record_sets(&id).await?;
                cloud.change_records(&id, &[], &records).await?;
                cloud.delete_hosted_zone(&id).await
            }
            "hc" => cloud.delete_health_check(&id).await,
            "profile" => cloud.delete_instance_profile(&id).await,
            "role" => cloud.delete_node_role(&id).await,
            "ssm" => cloud.ssm_delete(&id).await,
            other => Err(CloudError::new(
                crate::engine::ErrorKind::Other,
                "down",
                "",
                format!("no delete for kind {other}"),
            )),
        }
    })
}

#[derive(Debug, Serialize)]
pub struct DownReport {
    pub found: usize,
    pub deleted: usize,
    pub errors: Vec<String>,
    /// Still there after the teardown (re-discovered): should be empty.
    pub left: Vec<String>,
    /// Not this environment's, so not deleted, but in a subnet it owned (see [`crate::discover::Inventory`]).
    pub in_the_way: Vec<String>,
    pub api_calls: u64,
    pub retries: u64,
    pub dependency_retries: u32,
}

/// Tear down everything `cloud.env` owns.
pub async fn teardown(
    cloud: &Cloud,
    deadline: Duration,
    progress: &(dyn Fn(String) + Sync),
) -> Result<DownReport> {
    let inv = discover(cloud).await?;
    // Revoke ingress rules first: SGs referencing each other (or themselves) then never
    // block each other's deletion.
    for g in cloud.security_groups().await? {
        if !g.ingress.is_empty() {
            match cloud.revoke_ingress(&g.id, &g.ingress).await {
                Err(e) if !e.is_not_found() => return Err(e.into()),
                _ => {}
            }
        }
    }
    let doomed: Vec<Doomed> = inv
        .items
        .iter()
        .map(|i| Doomed {
            key: i.key.clone(),
            uses: i.uses.clone(),
        })
        .collect();
    let opts = TeardownOptions {
        round_deadline: deadline,
        concurrency: cloud.parallelism.max(1),
        ..Default::default()
    };
    let names: BTreeMap<TaskKey, String> = inv
        .items
        .iter()
        .map(|i| (i.key.clone(), i.name.clone()))
        .collect();
    let on_done = |d: &Deleted| {
        let label = names.get(&d.key).map(String::as_str).unwrap_or("");
        match &d.result {
            Ok(()) => progress(format!("deleted {} ({label})", d.key)),
            Err(e) => progress(format!("FAILED {} ({label}): {e}", d.key)),
        }
    };
    let results = delete_in_rounds(cloud, &doomed, &opts, &delete_one, &on_done).await;
    let left = discover(cloud).await?;
    Ok(DownReport {
        found: inv.items.len(),
        deleted: results.iter().filter(|r| r.result.is_ok()).count(),
        errors: results
            .iter()
            .filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.key)))
            .collect(),
        left: left
            .items
            .iter()
            .map(|i| format!("{} ({})", i.key, i.name))
            .collect(),
        in_the_way: left.in_the_way,
        api_calls: cloud.stats.calls(),
        retries: cloud.stats.retries(),
        dependency_retries: results.iter().map(|r| r.dependency_retries).sum(),
    })
}

pub async fn run(cfg: &Config) -> Result<ExitCode> {
    let cloud = connect(cfg).await?;
    crate::aws::preflight(&cloud, &[crate::aws::Service::Ec2]).await?;
    if !cfg.yes {
        let inv = discover(&cloud).await?;
        if inv.items.is_empty() {
            println!("down: nothing tagged provisioner:env={}", cfg.env_name);
            return Ok(ExitCode::SUCCESS);
        }
        if !cfg.interactive {
            anyhow::bail!(
                "refusing to delete {} resources of {} on real AWS without confirmation: run with --yes",
                inv.items.len(),
                cfg.env_name
            );
        }
        eprint!(
            "Delete {} resources of environment {}? [y/N] ",
            inv.items.len(),
            cfg.env_name
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            anyhow::bail!("aborted");
        }
    }
    let r = teardown(&cloud, cfg.deadline, &|l| println!("{l}")).await?;
    println!(
        "down: {} found, {} deleted ({} API calls, {} retried, {} dependency-violation retries)",
        r.found, r.deleted, r.api_calls, r.retries, r.dependency_retries
    );
    for line in cloud.stats.retried() {
        println!("  retried: {line}");
    }
    if r.left.is_empty() {
        println!("nothing tagged provisioner:env={} is left", cfg.env_name);
        Ok(ExitCode::SUCCESS)
    } else {
        println!("STILL PRESENT ({}):", r.left.len());
        for l in &r.left {
            println!("  {l}");
        }
        if !r.in_the_way.is_empty() {
            println!("in the way, and not this environment's to delete:");
            for l in &r.in_the_way {
                println!("  {l}");
            }
        }
        Ok(ExitCode::from(1))
    }
}
