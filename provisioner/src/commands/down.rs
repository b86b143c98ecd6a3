//! `provisioner down -f TEMPLATE` or `--env NAME`: discover everything tagged
//! `provisioner:env=NAME` across services (plus known untagged children: routes and
//! associations go with their tables, records with their zones, listeners with their load
//! balancers, a NAT gateway's network interfaces with it), delete it in dependency rounds
//! ([`crate::engine::teardown`]), retrying DependencyViolation until the deadline; then
//! discover again and LIST what is left — exit 1 if anything is.
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
use crate::engine::teardown::{delete_in_rounds, Deleted, Doomed, TeardownOptions};
use crate::engine::{CloudError, TaskKey};
use crate::session::connect;

/// What was found for this environment, keyed `kind/cloud-id`, with a label for humans.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Inventory {
    pub items: Vec<Item>,
    /// What is in the way but not this environment's (a network interface someone left in
    /// one of its subnets): never deleted, named so the user knows what blocks `down`.
    pub in_the_way: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub key: TaskKey,
    /// The logical name (`provisioner:name`), when tagged.
    pub name: String,
    #[serde(skip)]
    pub uses: Vec<TaskKey>,
}

fn key(kind: &str, id: &str) -> TaskKey {
    TaskKey::new(kind, id)
}

/// The listing of a service the endpoint does not offer (an emulator without ELBv2 …) is
/// empty: nothing of it can exist there. Any other failure fails the discovery, so `down`
/// never deletes from, or reports "nothing left" after, a listing it could not read.
fn unless_unsupported<T: Default>(listed: Result<T, CloudError>) -> Result<T, CloudError> {
    match listed {
        Err(e) if e.kind == crate::engine::ErrorKind::Unsupported => Ok(T::default()),
        listed => listed,
    }
}

/// Discover everything the environment owns (one describe per type).
pub async fn discover(cloud: &Cloud) -> Result<Inventory, CloudError> {
    cloud.inventory.clear();
    // Every batched describe at once; the loop below then reads the cache.
    cloud
        .prefetch(&[
            crate::aws::Service::Ec2,
            crate::aws::Service::AutoScaling,
            crate::aws::Service::ElasticLoadBalancingV2,
            crate::aws::Service::Route53,
        ])
        .await;
    let mut items = Vec::new();
    let name = |t: &BTreeMap<String, String>| crate::aws::ec2::name_of(t).to_string();
    let vpcs = cloud.vpcs().await?;
    for v in &vpcs {
        items.push(Item {
            key: key("vpc", &v.id),
            name: name(&v.tags),
            uses: vec![],
        });
    }
    let subnets = cloud.subnets().await?;
    for s in &subnets {
        items.push(Item {
            key: key("subnet", &s.id),
            name: name(&s.tags),
            uses: vec![key("vpc", &s.vpc_id)],
        });
    }
    // A VPC's internet gateway cannot be detached while public addresses are mapped in it
    // (NAT gateways, instances, internet-facing load balancers): those go first.
    let igws = cloud.internet_gateways().await?;
    let igw_of_vpc: BTreeMap<String, String> = igws
        .iter()
        .flat_map(|g| g.attached_vpcs.iter().map(|v| (v.clone(), g.id.clone())))
        .collect();
    let vpc_of_subnet: BTreeMap<String, String> = subnets
        .iter()
        .map(|s| (s.id.clone(), s.vpc_id.clone()))
        .collect();
    let igw_for_subnet = |subnet: &str| -> Option<TaskKey> {
        let vpc = vpc_of_subnet.get(subnet)?;
        igw_of_vpc.get(vpc).map(|g| key("igw", g))
    };
    for g in &igws {
        items.push(Item {
            key: key("igw", &g.id),
            name: name(&g.tags),
            uses: g.attached_vpcs.iter().map(|v| key("vpc", v)).collect(),
        });
    }
    for a in cloud.elastic_ips().await? {
        items.push(Item {
            key: key("eip", &a.allocation_id),
            name: name(&a.tags),
            uses: vec![],
        });
    }
    let nats = cloud.nat_gateways().await?;
    // A NAT gateway's network interfaces are its own (AWS deletes them with it; an emulator
    // may leave them behind, detached): children of an owned resource.
    let nat_enis: std::collections::BTreeSet<&str> = nats
        .iter()
        .flat_map(|n| n.network_interface_ids.iter().map(String::as_str))
        .collect();
    for n in &nats {
        if matches!(n.state.as_str(), "deleted" | "failed") {
            continue;
        }
        let mut uses = vec![key("subnet", &n.subnet_id), key("vpc", &n.vpc_id)];
        // It goes before its interfaces.
        uses.extend(n.network_interface_ids.iter().map(|e| key("eni", e)));
        uses.extend(n.allocation_ids.iter().map(|a| key("eip", a)));
        uses.extend(igw_of_vpc.get(&n.vpc_id).map(|g| key("igw", g)));
        items.push(Item {
            key: key("nat", &n.id),
            name: name(&n.tags),
            uses,
        });
    }
    for t in cloud.route_tables().await? {
        let mut uses = vec![key("vpc", &t.vpc_id)];
        for r in &t.routes {
            let kind = if r.target.starts_with("nat-") {
                "nat"
            } else if r.target.starts_with("pcx-") {
                "pcx"
            } else {
                "igw"
            };
            uses.push(key(kind, &r.target));
        }
        uses.extend(t.associations.iter().map(|(_, s)| key("subnet", s)));
        items.push(Item {
            key: key("rtb", &t.id),
            name: name(&t.tags),
            uses,
        });
    }
    for p in cloud.peerings().await? {
        items.push(Item {
            key: key("pcx", &p.id),
            name: name(&p.tags),
            uses: vec![key("vpc", &p.requester_vpc), key("vpc", &p.accepter_vpc)],
        });
    }
    for g in cloud.security_groups().await? {
        // SG-to-SG references are revoked before the rounds, so they are not edges here.
        items.push(Item {
            key: key("sg", &g.id),
            name: name(&g.tags),
            uses: vec![key("vpc", &g.vpc_id)],
        });
    }
    let lts = cloud.launch_templates().await?;
    for t in &lts {
        items.push(Item {
            key: key("lt", &t.id),
            name: name(&t.tags),
            uses: vec![],
        });
    }
    let tgs = unless_unsupported(cloud.target_groups().await)?;
    for t in &tgs {
        items.push(Item {
            key: key("tg", &t.arn),
            name: name(&t.tags),
            uses: vec![key("vpc", &t.spec.vpc_id)],
        });
    }
    for lb in unless_unsupported(cloud.load_balancers().await)? {
        let mut uses: Vec<TaskKey> = lb.subnets.iter().map(|s| key("subnet", s)).collect();
        uses.extend(lb.subnets.iter().filter_map(|s| igw_for_subnet(s)));
        uses.extend(lb.security_groups.iter().map(|g| key("sg", g)));
        uses.extend(tgs.iter().map(|t| key("tg", &t.arn)));
        items.push(Item {
            key: key("lb", &lb.arn),
            name: name(&lb.tags),
            uses,
        });
    }
    let roles = unless_unsupported(cloud.iam_roles().await)?;
    let profiles = unless_unsupported(cloud.iam_instance_profiles().await)?;
    // What an instance runs as: its profile, which holds the role.
    let identities: Vec<TaskKey> = profiles
        .iter()
        .map(|(p, _)| key("profile", p))
        .chain(roles.iter().map(|r| key("role", &r.name)))
        .collect();
    let groups = unless_unsupported(cloud.auto_scaling_groups().await)?;
    for g in &groups {
        let mut uses: Vec<TaskKey> = g.spec.subnets.iter().map(|s| key("subnet", s)).collect();
        uses.extend(g.spec.target_groups.iter().map(|t| key("tg", t)));
        uses.push(key("lt", &g.spec.launch_template_id));
        // A group replaces terminated instances: it goes first ("uses" its instances), then
        // whatever instance is left.
        uses.extend(g.instances.iter().map(|i| key("instance", &i.id)));
        uses.extend(identities.iter().cloned());
        items.push(Item {
            key: key("asg", &g.name),
            name: name(&g.tags),
            uses,
        });
    }
    for i in cloud.instances().await? {
        if matches!(i.state.as_str(), "terminated" | "shutting-down") {
            continue;
        }
        let mut uses = vec![key("subnet", &i.subnet_id)];
        uses.extend(igw_for_subnet(&i.subnet_id));
        uses.extend(identities.iter().cloned());
        items.push(Item {
            key: key("instance", &i.id),
            name: name(&i.tags),
            uses,
        });
    }
    let subnet_ids: Vec<String> = subnets.iter().map(|s| s.id.clone()).collect();
    let mut in_the_way = Vec::new();
    for e in cloud.enis_in_subnets(&subnet_ids).await? {
        // Attached interfaces belong to their owner (instance, NAT, LB) and go with it.
        if e.attachment_id.is_some() || e.status != "available" {
            continue;
        }
        // A detached one is deleted only if it is this environment's (tagged, or one of its
        // NAT gateways'): any other in our subnet is someone else's, and blocks the subnet.
        let ours = e.tags.get(crate::aws::TAG_ENV).map(String::as_str) == Some(cloud.env_name())
            || nat_enis.contains(e.id.as_str());
        if !ours {
            in_the_way.push(format!(
                "eni/{} in subnet/{} ({:?}): not tagged {}={}",
                e.id,
                e.subnet_id,
                e.description,
                crate::aws::TAG_ENV,
                cloud.env_name()
            ));
            continue;
        }
        let mut uses = vec![key("subnet", &e.subnet_id)];
        uses.extend(e.group_ids.iter().map(|g| key("sg", g)));
        items.push(Item {
            key: key("eni", &e.id),
            name: e.description.clone(),
            uses,
        });
    }
    let checks = unless_unsupported(cloud.health_checks().await)?;
    for h in &checks {
        items.push(Item {
            key: key("hc", &h.id),
            name: name(&h.tags),
            uses: vec![],
        });
    }
    for z in unless_unsupported(cloud.hosted_zones().await)? {
        // Its records may use the health checks: the zone (records first) goes before them.
        let mut uses: Vec<TaskKey> = vpcs.iter().map(|v| key("vpc", &v.id)).collect();
        uses.extend(checks.iter().map(|h| key("hc", &h.id)));
        items.push(Item {
            key: key("zone", &z.id),
            name: z.name.clone(),
            uses,
        });
    }
    // A profile goes before the roles it holds (DeleteRole: DeleteConflict). A profile
    // without its role (a crash between the two creates) is found and deleted too.
    for (p, held) in &profiles {
        items.push(Item {
            key: key("profile", p),
            name: p.clone(),
            uses: held.iter().map(|r| key("role", r)).collect(),
        });
    }
    for r in roles {
        items.push(Item {
            key: key("role", &r.name),
            name: r.name.clone(),
            uses: vec![],
        });
    }
    for p in unless_unsupported(cloud.ssm_env_parameters().await)? {
        items.push(Item {
            key: key("ssm", &p),
            name: p.clone(),
            uses: vec![],
        });
    }
    Ok(Inventory { items, in_the_way })
}

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
    /// Not this environment's, so not deleted, but in a subnet it owned (see [`Inventory`]).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorKind;

    fn failed(kind: ErrorKind) -> Result<Vec<String>, CloudError> {
        Err(CloudError::new(
            kind,
            "elbv2:DescribeLoadBalancers",
            "",
            "x",
        ))
    }

    #[test]
    fn only_a_service_the_endpoint_lacks_lists_as_empty() {
        assert_eq!(
            unless_unsupported(failed(ErrorKind::Unsupported)).unwrap(),
            Vec::<String>::new()
        );
        // Anything else fails the discovery: never "nothing left" from an unread listing.
        for kind in [
            ErrorKind::AccessDenied,
            ErrorKind::Throttling,
            ErrorKind::ServerError,
            ErrorKind::Transport,
        ] {
            assert!(unless_unsupported(failed(kind)).is_err(), "{kind:?}");
        }
        assert_eq!(
            unless_unsupported(Ok(vec!["tg".to_string()])).unwrap(),
            ["tg"]
        );
    }
}
