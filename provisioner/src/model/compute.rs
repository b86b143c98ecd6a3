//! Compute: the k3s join token (a SecureString), the node pools' roles (see [`super::security`]),
//! and per pool a launch template carrying the k3s user-data and an Auto Scaling group in the
//! pool's subnets, registered with its target groups.

use std::sync::Arc;

use super::load_balancing::{lb_key, pool_target_groups};
use super::{k, subnet_key, task, Target};
use crate::aws::{Cloud, TAG_ENV, TAG_NAME};
use crate::engine::{is_known, Task, TaskError, TaskKey};
use crate::resources::{
    autoscaling_group, aws_name, instance_roll, launch_template, ssm_parameter,
};
use crate::template::{Environment, LbKind, NodePool, NodeRole, SubnetKind};

/// Placeholder NLB name used to render user-data in a plan before the NLB exists (the
/// user-data then reads as "(known after up)").
const PLAN_DNS_PLACEHOLDER: &str = "nlb.known-after-up.invalid";

/// The join tokens (servers', agents'), then per pool its role, launch template and Auto
/// Scaling group.
pub fn build(env: &Environment, target: &Target) -> Vec<Arc<dyn Task<Cloud>>> {
    if env.node_pools.is_empty() {
        return Vec::new();
    }
    let names = crate::bootstrap::ParameterNames::new(&env.name);
    let mut tasks = vec![
        task(ssm_parameter::SecureParameter {
            name: "k3s-token".into(),
            path: names.token(),
        }),
        task(ssm_parameter::SecureParameter {
            name: "k3s-agent-token".into(),
            path: names.agent_token(),
        }),
    ];
    tasks.extend(super::security::node_roles(env, target));
    for p in &env.node_pools {
        tasks.push(launch_template(env, target, p));
        tasks.push(auto_scaling_group(env, p));
        tasks.push(instance_roll(env, p));
    }
    tasks
}

/// The pool's launch template; its user-data is rendered once the NLB's name is known.
fn launch_template(env: &Environment, target: &Target, p: &NodePool) -> Arc<dyn Task<Cloud>> {
    let envname = env.name.as_str();
    let nlb_key = lb_key(env, LbKind::Nlb);
    let (env_u, pool_u, nlb, emulator) = (env.clone(), p.clone(), nlb_key.clone(), target.emulator);
    let mut instance_tags = vec![
        (TAG_ENV.to_string(), envname.to_string()),
        (TAG_NAME.to_string(), p.name.to_string()),
    ];
    instance_tags.extend(env.tags.iter().map(|(a, b)| (a.clone(), b.clone())));
    task(launch_template::LaunchTemplate {
        name: p.name.to_string(),
        template_name: aws_name(envname, p.name.as_str(), 128),
        image_id: target
            .amis
            .get(p.name.as_str())
            .cloned()
            .unwrap_or_default(),
        ami_source: crate::model::amis::source_of(&p.ami),
        instance_type: p.instance_type.to_string(),
        security_groups: p
            .security_groups
            .iter()
            .map(|g| k("sg", g.as_str()))
            .collect(),
        instance_profile: Some(k("instance-profile", p.name.as_str())),
        extra_deps: nlb_key
            .iter()
            .cloned()
            .chain([
                k("ssm-parameter", "k3s-token"),
                k("ssm-parameter", "k3s-agent-token"),
            ])
            .collect(),
        user_data: Box::new(move |i| {
            let dns = match &nlb {
                Some(n) => i.get(n, "dns_name")?,
                None => String::new(),
            };
            if !is_known(&dns) {
                // Rendered for real once the NLB exists.
                return Ok(None);
            }
            node_user_data(&env_u, &pool_u, &dns, emulator).map(Some)
        }),
        instance_tags,
        root_volume_gb: p.root_volume_gb as i32,
    })
}

/// How long a new server has to bring k3s up (and so pass its target groups' health checks)
/// before the group may replace it: the k3s download, the init election and etcd's start.
pub const SERVER_HEALTH_CHECK_GRACE_SECS: i32 = 600;
/// The agents' grace period (EC2 status checks only).
pub const AGENT_HEALTH_CHECK_GRACE_SECS: i32 = 300;

/// How the pool's group judges an instance: servers by their target groups' (ELB) health
/// checks, so a server whose k3s never came up is replaced; agents by EC2 status checks.
pub fn health_check(role: NodeRole) -> (&'static str, i32) {
    match role {
        NodeRole::K3sServer => ("ELB", SERVER_HEALTH_CHECK_GRACE_SECS),
        NodeRole::K3sAgent => ("EC2", AGENT_HEALTH_CHECK_GRACE_SECS),
    }
}

/// The pool's roll onto its launch template (see `resources::instance_roll`).
fn instance_roll(env: &Environment, p: &NodePool) -> Arc<dyn Task<Cloud>> {
    task(instance_roll::InstanceRoll {
        name: p.name.to_string(),
        asg: k("asg", p.name.as_str()),
        launch_template: k("launch-template", p.name.as_str()),
        target_groups: pool_target_groups(env)
            .into_iter()
            .filter(|(pool, _)| pool == p.name.as_str())
            .map(|(_, t)| t)
            .collect(),
        hold: (crate::bootstrap::dedicated_workload(p).is_some()).then(|| {
            "its nodes hold the data of a dedicated workload on node-local volumes; replace \
             them by hand after a backup (terminate one, let the group replace it)"
                .to_string()
        }),
    })
}

/// The pool's Auto Scaling group. Instances boot with their egress routed and (in public
/// subnets) a public address, so the group waits for those.
fn auto_scaling_group(env: &Environment, p: &NodePool) -> Arc<dyn Task<Cloud>> {
    let (health_check_type, health_check_grace_secs) = health_check(p.role);
    let subnets = env
        .vpc(&p.vpc)
        .into_iter()
        .flat_map(|v| {
            v.subnets_of(p.subnets)
                .map(|s| subnet_key(v.name.as_str(), s.name.as_str()))
        })
        .collect();
    task(autoscaling_group::AutoScalingGroup {
        name: p.name.to_string(),
        aws_name: aws_name(env.name.as_str(), p.name.as_str(), 255),
        launch_template: k("launch-template", p.name.as_str()),
        subnets,
        target_groups: pool_target_groups(env)
            .into_iter()
            .filter(|(pool, _)| pool == p.name.as_str())
            .map(|(_, t)| t)
            .collect(),
        extra_deps: network_ready(env, p),
        min: p.min as i32,
        max: p.max as i32,
        desired: p.desired as i32,
        health_check_type: health_check_type.to_string(),
        health_check_grace_secs,
    })
}

/// What an instance of pool `p` needs before it boots: its subnets' routes, associations and
/// public-IP attribute — for a private subnet also those of the NAT gateway's own (public)
/// subnet, through which its egress goes — and the VPC's DNS attributes.
fn network_ready(env: &Environment, p: &NodePool) -> Vec<TaskKey> {
    env.vpc(&p.vpc)
        .into_iter()
        .flat_map(|v| {
            v.subnets_of(p.subnets).flat_map(move |s| {
                let nat = match s.kind {
                    SubnetKind::Private => v.nat_subnet_for(s.az_index),
                    SubnetKind::Public => None,
                };
                [Some(s), nat].into_iter().flatten().flat_map(|s| {
                    let id = format!("{}-{}", v.name, s.name);
                    [
                        k("routes", &id),
                        k("rt-assoc", &id),
                        k("subnet-public-ip", &id),
                    ]
                })
            })
        })
        .chain([k("vpc-dns", p.vpc.as_str())])
        .collect()
}

/// The node user-data from `crate::bootstrap` (k3s server/agent scripts).
///
/// Where instances never boot (an emulator) a template the bootstrap rejects still
/// converges, with a stub script and a warning; elsewhere the rejection is an error.
fn node_user_data(
    env: &Environment,
    pool: &NodePool,
    nlb_dns: &str,
    emulator: bool,
) -> Result<String, TaskError> {
    let dns = if nlb_dns.is_empty() || !is_known(nlb_dns) {
        PLAN_DNS_PLACEHOLDER.to_string()
    } else {
        nlb_dns.to_ascii_lowercase()
    };
    let endpoints = crate::bootstrap::Endpoints {
        api_name: crate::bootstrap::api_record_name(env).unwrap_or_else(|| dns.clone()),
        nlb_dns: dns,
    };
    match crate::bootstrap::user_data(env, pool, &endpoints) {
        Ok(ud) => Ok(ud),
        Err(e) if emulator => {
            tracing::warn!(
                "node_pools.{}: {e}; the emulator never boots instances, using a stub user-data",
                pool.name
            );
            Ok(format!(
                "#!/bin/sh\n# provisioner env={} pool={} (stub: {e})\nexit 1\n",
                env.name, pool.name
            ))
        }
        Err(e) => Err(TaskError::Failed(format!("node_pools.{}: {e}", pool.name))),
    }
}
