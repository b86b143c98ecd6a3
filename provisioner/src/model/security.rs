//! Security: the security groups and their ingress rules, and each node pool's IAM role and
//! instance profile (least-privilege policy from `crate::bootstrap`).

use std::sync::Arc;

use super::{k, task, Target};
use crate::aws::Cloud;
use crate::engine::{Task, TaskKey};
use crate::resources::security_group::{RuleSource, RuleSpec, SecurityGroup, SecurityGroupRules};
use crate::resources::{aws_name, iam};
use crate::template::{
    ApiAccess, Environment, IngressRule, Name, Protocol, SecurityGroup as GroupSpec, Source,
};

/// Every security group of `env` and its rules.
pub fn security_groups(env: &Environment) -> Vec<Arc<dyn Task<Cloud>>> {
    let mut tasks = Vec::new();
    for g in &env.security_groups {
        tasks.push(task(SecurityGroup {
            name: g.name.to_string(),
            vpc: k("vpc", g.vpc.as_str()),
            group_name: format!("{}-{}", env.name, g.name),
            description: g.description.clone(),
        }));
        tasks.push(task(rules(env, g)));
    }
    tasks
}

/// The peering a rule of a group in VPC `from` naming `group` must wait for: a rule naming a
/// group of a peered VPC needs the peering active first (AWS: InvalidGroup.NotFound).
fn peering_to(env: &Environment, from: &Name, group: &str) -> Option<TaskKey> {
    let to = env
        .security_groups
        .iter()
        .find(|o| o.name.as_str() == group)
        .map(|o| &o.vpc)?;
    env.peerings
        .iter()
        .find(|p| {
            (&p.requester == from && &p.accepter == to)
                || (&p.accepter == from && &p.requester == to)
        })
        .map(|p| k("peering", p.name.as_str()))
}

/// The sources one ingress rule expands to: a CIDR, a group, or a load balancer (its groups
/// when it has some, else the CIDRs of its subnets).
fn sources(env: &Environment, r: &IngressRule) -> Vec<RuleSource> {
    match &r.source {
        Source::Cidr(c) => vec![RuleSource::Cidr(c.to_string())],
        Source::Group(n) => vec![RuleSource::Group(k("sg", n.as_str()))],
        Source::LoadBalancer(kind) => match env.load_balancer(*kind) {
            Some(lb) if !lb.security_groups.is_empty() => lb
                .security_groups
                .iter()
                .map(|s| RuleSource::Group(k("sg", s.as_str())))
                .collect(),
            _ => env
                .load_balancer_subnet_cidrs(*kind)
                .into_iter()
                .map(|c| RuleSource::Cidr(c.to_string()))
                .collect(),
        },
    }
}

/// The rules of group `g`, waiting for the peerings their group sources need.
fn rules(env: &Environment, g: &GroupSpec) -> SecurityGroupRules {
    let mut rules = Vec::new();
    let mut rule_deps: Vec<TaskKey> = Vec::new();
    for r in &g.ingress {
        let (from, to) = match r.protocol {
            Protocol::All => (-1, -1),
            _ => r.protocol.ec2_ports(),
        };
        for source in sources(env, r) {
            if let RuleSource::Group(other) = &source {
                rule_deps.extend(peering_to(env, &g.vpc, other.name()));
            }
            rules.push(RuleSpec {
                protocol: r.protocol.ip_protocol().to_string(),
                from_port: from,
                to_port: to,
                source,
                description: r.description.clone(),
            });
        }
    }
    rules.extend(nodes_through_nat(env, g));
    rule_deps.sort();
    rule_deps.dedup();
    SecurityGroupRules {
        name: g.name.to_string(),
        group: k("sg", g.name.as_str()),
        rules,
        extra_deps: rule_deps,
    }
}

/// With `cluster.api_access: public`, the NLB's first security group also admits, on every
/// listener port, the Elastic IP of each NAT gateway of the environment: nodes in private
/// subnets reach the internet-facing NLB through their NAT gateway, so that is the source
/// address the NLB sees when they join (client IPs are preserved).
fn nodes_through_nat(env: &Environment, g: &GroupSpec) -> Vec<RuleSpec> {
    let Some(nlb) = env.load_balancers.nlb.as_ref() else {
        return Vec::new();
    };
    if env.cluster.api_access != ApiAccess::Public || nlb.security_groups.first() != Some(&g.name) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for v in &env.vpcs {
        for s in v.nat_subnets() {
            for l in &nlb.listeners {
                out.push(RuleSpec {
                    protocol: "tcp".into(),
                    from_port: i32::from(l.port.get()),
                    to_port: i32::from(l.port.get()),
                    source: RuleSource::PublicIp(k("eip", &format!("{}-{}", v.name, s.name))),
                    description: Some(format!("nodes through NAT gateway {}-{}", v.name, s.name)),
                });
            }
        }
    }
    out
}

/// The IAM name of pool `p`'s role and instance profile: `<env>-<region>-<pool>` (IAM names
/// are global; the same environment in two regions must not share a role).
pub fn role_name(env: &Environment, p: &crate::template::NodePool) -> String {
    aws_name(&format!("{}-{}", env.name, env.region), p.name.as_str(), 64)
}

/// Each node pool's role + instance profile.
pub fn node_roles(env: &Environment, target: &Target) -> Vec<Arc<dyn Task<Cloud>>> {
    let scope = crate::bootstrap::PolicyScope::new(env.region.as_str(), &target.account_id);
    env.node_pools
        .iter()
        .map(|p| {
            task(iam::InstanceProfile {
                name: p.name.to_string(),
                role_name: role_name(env, p),
                assume_policy: crate::bootstrap::instance_assume_role_policy().to_string(),
                policy: crate::bootstrap::instance_role_policy(env, p.role, &scope).to_string(),
            })
        })
        .collect()
}
