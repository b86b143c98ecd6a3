//! Model builders: the validated [`Environment`] becomes the task list the engine runs, one
//! builder per concern, as kops' `pkg/model/awsmodel/` does — [`network`] (VPCs, subnets,
//! gateways, route tables, peerings), [`security`] (security groups and their rules, the node
//! roles and instance profiles), [`load_balancing`] (NLB/ALB, target groups, listeners),
//! [`compute`] (the join token, launch templates with the k3s user-data, Auto Scaling groups)
//! and [`dns`] (the Route 53 zone, records, health checks). Each is a short function from the
//! template to its tasks; [`build_for`] runs them all.
//!
//! Task keys (`kind/logical-name`) are the `provisioner:name` tag values and match
//! `provisioner graph`: `vpc/main` + `vpc-dns/main`, `subnet/main-public-a` +
//! `subnet-public-ip/main-public-a`, `igw/main` + `igw-attachment/main`,
//! `route-table/main-private-a` + `routes/…` + `rt-assoc/…`, `sg/alb` + `sg-rules/alb`,
//! `alb/web` + `alb-active/web`, `target-group/web-service`, `listener/web-80`,
//! `record/api.dev.example.com-A` … A `+` task is a part of the resource that needs a call of
//! its own after the resource exists; as its own task it waits only for what it names, and
//! nothing waits for it that does not need it.
//!
//! ## Adding a resource type
//! 1. `crate::aws::<service>`: a narrow trait for its family (listed in [`crate::aws::api`])
//!    and its impl for [`Cloud`], returning our own structs.
//! 2. `crate::resources::<type>.rs`: its `impl<C: ThatTrait> Resource<C>` (find → diff →
//!    check_changes → render).
//! 3. The builder of its concern here: push the task with its explicit `deps()`.
//! 4. `crate::discover`: list it by tag and say what it uses (the delete order);
//!    `commands/down.rs` `delete_one`: how to delete it.
//! 5. Tests: `tests/e2e/idempotency.rs` (create twice → no change) and `tests/e2e/counts.rs`.

pub mod amis;
pub mod compute;
pub mod dns;
pub mod load_balancing;
pub mod network;
pub mod security;

use std::collections::HashMap;
use std::sync::Arc;

use crate::aws::Cloud;
use crate::engine::{ResourceTask, Task, TaskKey};
use crate::template::Environment;

pub use amis::resolve_amis;

/// Build-time facts about the target.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Pool name → AMI id (see [`resolve_amis`]).
    pub amis: HashMap<String, String>,
    /// The endpoint boots no instances (an emulator): a template the bootstrap rejects still
    /// converges there, with a stub user-data and a warning.
    pub emulator: bool,
    /// The AWS account (for ARNs in node policies); `*` when unknown.
    pub account_id: String,
    /// The zones the account can use, by name (`az_index` picks one); empty: the region
    /// table's names.
    pub zones: Vec<String>,
}

impl Target {
    /// The zone `az_index` stands for: the account's `az_index`-th, by name.
    pub fn zone(&self, env: &Environment, az_index: u8) -> String {
        self.zones
            .get(usize::from(az_index))
            .cloned()
            .or_else(|| env.region.az_name(az_index))
            .unwrap_or_default()
    }
}

/// Every VPC's `az_count` fits the zones the account really has (the template check knows
/// only a typical account's count).
pub fn check_zones(env: &Environment, zones: &[String]) -> Result<(), String> {
    for (i, v) in env.vpcs.iter().enumerate() {
        if usize::from(v.az_count) > zones.len() {
            return Err(format!(
                "vpcs[{i}].az_count: VPC `{}` spans {} availability zones, but {} offers this \
                 account {} ({})",
                v.name,
                v.az_count,
                env.region,
                zones.len(),
                zones.join(", ")
            ));
        }
    }
    Ok(())
}

/// The tasks that converge `env` on real AWS. `amis`: pool name → AMI id.
pub fn build(env: &Environment, amis: &HashMap<String, String>) -> Vec<Arc<dyn Task<Cloud>>> {
    build_for(
        env,
        &Target {
            amis: amis.clone(),
            emulator: false,
            account_id: "*".into(),
            zones: Vec::new(),
        },
    )
}

/// The tasks that converge `env` on `target`: every builder in turn.
pub fn build_for(env: &Environment, target: &Target) -> Vec<Arc<dyn Task<Cloud>>> {
    let mut tasks = Vec::new();
    tasks.extend(network::build(env, target));
    tasks.extend(security::security_groups(env));
    tasks.extend(load_balancing::build(env));
    tasks.extend(compute::build(env, target));
    tasks.extend(dns::build(env));
    // Last: the template's extra tags on everything that exists by then.
    let after = tasks.iter().map(|t| t.key()).collect();
    tasks.push(task(crate::resources::extra_tags::ExtraTags {
        env: env.name.to_string(),
        tags: env.tags.clone(),
        after,
    }));
    tasks
}

/// A task key.
pub(crate) fn k(kind: &str, name: &str) -> TaskKey {
    TaskKey::new(kind, name)
}

/// A resource as a task.
pub(crate) fn task<R: crate::engine::Resource<Cloud>>(r: R) -> Arc<dyn Task<Cloud>> {
    Arc::new(ResourceTask(r))
}

/// The key of subnet `s` of VPC `vpc`.
pub(crate) fn subnet_key(vpc: &str, s: &str) -> TaskKey {
    k("subnet", &format!("{vpc}-{s}"))
}

#[cfg(test)]
mod tests;
