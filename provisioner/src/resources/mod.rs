//! One file per AWS resource type, each a [`crate::engine::Resource`] over the narrow traits
//! of [`crate::aws::api`] it uses
//! (find by tag → diff → check immutable fields → create/update), and [`build`], which turns
//! a validated [`Environment`] into the task list the engine runs.
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
//!    and its impl for [`Cloud`], returning our own structs; a batched, cached describe
//!    filtered by `provisioner:env` (re-checked client side); creates tag at creation time
//!    (`TagSpecifications`/`Tags`) so a crash never leaves an untagged object.
//! 2. Here, a file with an `impl<C: ThatTrait> Resource<C>`: `State` holds exactly the managed fields
//!    (the plan shows them by these names), `immutable_fields` what AWS cannot change in
//!    place, `desired` resolves references through the inputs (a not-yet-created one reads
//!    [`crate::engine::UNKNOWN`]: `find` then returns `None` without calling AWS).
//! 3. [`build_for`]: add the task with explicit `deps()`.
//! 4. `crate::commands::down::discover`: list it by tag and say what it uses (delete order),
//!    and how to delete it.
//! 5. Tests: a case in `tests/e2e/idempotency.rs` (create twice → no change) and the counters of
//!    `tests/e2e/counts.rs`.

pub mod autoscaling_group;
pub mod iam;
pub mod internet_gateway;
pub mod launch_template;
pub mod listener;
pub mod load_balancer;
pub mod nat_gateway;
pub mod route53;
pub mod route_table;
pub mod security_group;
pub mod ssm_parameter;
pub mod subnet;
pub mod target_group;
pub mod vpc;
pub mod vpc_peering;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Context;

use crate::aws::api::*;
use crate::aws::route53::RecordSet;
use crate::aws::{Cloud, TAG_NAME};
use crate::engine::{is_known, OutputMap, ResourceTask, Task, TaskError, TaskKey};
use crate::template::{
    Ami, Environment, HealthCheckEndpoint, LbKind, Protocol, RecordTarget, Routing, Source,
    SubnetKind,
};

pub(crate) fn out_id(id: &str) -> OutputMap {
    [("id".to_string(), id.to_string())].into()
}

pub(crate) fn known(v: &str) -> bool {
    is_known(v)
}

/// The one item tagged `provisioner:name = name`. (Several would mean a crashed create was
/// retried by hand; the first is used and the others are reported by `status`.)
pub(crate) fn by_name<T>(
    items: Vec<T>,
    name: &str,
    tags: impl Fn(&T) -> &BTreeMap<String, String>,
) -> Option<T> {
    items
        .into_iter()
        .find(|i| tags(i).get(TAG_NAME).is_some_and(|n| n == name))
}

/// An AWS name of at most `max` characters: `<env>-<name>`, shortened with a hash suffix
/// (the low 32 bits of its FNV-1a 64 hash, in hex).
pub fn aws_name(env: &str, name: &str, max: usize) -> String {
    let full = format!("{env}-{name}");
    if full.len() <= max {
        return full;
    }
    // A fixed hash: a name that changed with the toolchain would replace load balancers and
    // target groups (std's DefaultHasher makes no such promise).
    let suffix = format!("{:08x}", crate::naming::fnv1a(full.as_bytes()) as u32);
    let keep = max - suffix.len() - 1;
    let head = full[..keep].trim_end_matches('-');
    format!("{head}-{suffix}")
}

/// The emulator has no Ubuntu public parameter; this one it has.
const EMULATOR_AMI_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// Resolve every pool's AMI from SSM public parameters, all at once (one `GetParameters` for
/// the plain names, on an emulator with the fallback among them; one `GetParameter` for a name
/// with a `:version` or `:label` selector).
pub async fn resolve_amis(
    cloud: &Cloud,
    env: &Environment,
) -> anyhow::Result<HashMap<String, String>> {
    let mut params: Vec<String> = env
        .node_pools
        .iter()
        .filter_map(|p| match &p.ami {
            Ami::Ssm(param) => Some(param.clone()),
            Ami::Id(_) => None,
        })
        .collect();
    if !params.is_empty() && cloud.is_emulator() {
        params.push(EMULATOR_AMI_PARAMETER.to_string());
    }
    params.sort();
    params.dedup();
    let values = if params.is_empty() {
        Default::default()
    } else {
        cloud
            .ssm_parameter_values(&params)
            .await
            .context("resolving the node pools' AMI parameters")?
    };
    let mut out = HashMap::new();
    let mut warned = std::collections::HashSet::new();
    for p in &env.node_pools {
        let ami = match &p.ami {
            Ami::Id(id) => id.clone(),
            Ami::Ssm(param) => match values.get(param) {
                Some(v) => v.clone(),
                None if cloud.is_emulator() && values.contains_key(EMULATOR_AMI_PARAMETER) => {
                    if warned.insert(param.clone()) {
                        tracing::warn!(
                            "SSM parameter {param} is not on the emulator; using {EMULATOR_AMI_PARAMETER}"
                        );
                    }
                    values[EMULATOR_AMI_PARAMETER].clone()
                }
                None => anyhow::bail!(
                    "node_pools.{}.ami: the SSM public parameter {param} does not exist in {}",
                    p.name,
                    cloud.region
                ),
            },
        };
        out.insert(p.name.to_string(), ami);
    }
    Ok(out)
}

fn k(kind: &str, name: &str) -> TaskKey {
    TaskKey::new(kind, name)
}

fn task<R: crate::engine::Resource<Cloud>>(r: R) -> Arc<dyn Task<Cloud>> {
    Arc::new(ResourceTask(r))
}

/// Placeholder NLB name used to render user-data in a plan before the NLB exists (the
/// user-data then reads as "(known after up)").
const PLAN_DNS_PLACEHOLDER: &str = "nlb.known-after-up.invalid";

/// The node user-data from `crate::bootstrap` (k3s server/agent scripts).
///
/// On an emulator (instances never boot there) a template the bootstrap rejects still
/// converges, with a stub script and a warning; on real AWS the rejection is an error.
fn node_user_data(
    env: &Environment,
    pool: &crate::template::NodePool,
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

/// The task kind of a load balancer: `nlb` or `alb`.
fn lb_task_kind(kind: LbKind) -> &'static str {
    match kind {
        LbKind::Nlb => "nlb",
        LbKind::Alb => "alb",
    }
}

/// The task of the template's `kind` load balancer, if it has one.
fn lb_key(env: &Environment, kind: LbKind) -> Option<TaskKey> {
    env.load_balancer(kind)
        .map(|p| k(lb_task_kind(kind), p.name.as_str()))
}

/// A load balancer (`nlb/…` or `alb/…`) and its wait for `active` (`nlb-active/…` …): one
/// subnet of its kind per AZ; internet-facing on public subnets, where it also waits for the
/// VPC's internet gateway (CreateLoadBalancer: "VPC … has no internet gateway").
fn load_balancer_tasks(env: &Environment, kind: LbKind) -> Vec<Arc<dyn Task<Cloud>>> {
    let Some(p) = env.load_balancer(kind) else {
        return Vec::new();
    };
    let task_kind = lb_task_kind(kind);
    let name = p.name.as_str();
    let aws = aws_name(env.name.as_str(), name, 32);
    let subnets = env
        .vpc(p.vpc)
        .into_iter()
        .flat_map(|v| {
            v.load_balancer_subnets(p.subnets)
                .into_iter()
                .map(|s| k("subnet", &format!("{}-{}", v.name, s.name)))
        })
        .collect();
    let extra_deps = match p.subnets {
        SubnetKind::Public => vec![k("igw-attachment", p.vpc.as_str())],
        SubnetKind::Private => vec![],
    };
    vec![
        task(load_balancer::LoadBalancer {
            kind: task_kind,
            name: name.to_string(),
            aws_name: aws.clone(),
            internal: p.subnets == SubnetKind::Private,
            extra_deps,
            subnets,
            security_groups: p
                .security_groups
                .iter()
                .map(|g| k("sg", g.as_str()))
                .collect(),
        }),
        task(load_balancer::LoadBalancerActive {
            kind: task_kind,
            name: name.to_string(),
            aws_name: aws,
            lb: k(task_kind, name),
        }),
    ]
}

/// Build-time facts about the target.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Pool name → AMI id (see [`resolve_amis`]).
    pub amis: HashMap<String, String>,
    /// An emulator endpoint (instances never boot there).
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

/// The tasks that converge `env` on `target`.
pub fn build_for(env: &Environment, target: &Target) -> Vec<Arc<dyn Task<Cloud>>> {
    let amis = &target.amis;
    let emulator = target.emulator;
    let mut tasks: Vec<Arc<dyn Task<Cloud>>> = Vec::new();
    let envname = env.name.as_str();
    let sub_key = |vpc: &str, s: &str| k("subnet", &format!("{vpc}-{s}"));

    for v in &env.vpcs {
        let vpc = k("vpc", v.name.as_str());
        tasks.push(task(vpc::Vpc {
            name: v.name.to_string(),
            cidr: v.cidr.to_string(),
        }));
        tasks.push(task(vpc::VpcDns {
            name: v.name.to_string(),
            vpc: vpc.clone(),
        }));
        // Routes and NAT gateways go through the attached gateway: its `id` is the gateway's.
        let igw = k("igw-attachment", v.name.as_str());
        if v.needs_internet_gateway() {
            tasks.push(task(internet_gateway::InternetGateway {
                name: v.name.to_string(),
            }));
            tasks.push(task(internet_gateway::IgwAttachment {
                name: v.name.to_string(),
                igw: k("igw", v.name.as_str()),
                vpc: vpc.clone(),
            }));
        }
        for s in &v.subnets {
            let name = format!("{}-{}", v.name, s.name);
            tasks.push(task(subnet::Subnet {
                name: name.clone(),
                vpc: vpc.clone(),
                cidr: s.cidr.to_string(),
                az: target.zone(env, s.az_index),
            }));
            tasks.push(task(subnet::SubnetPublicIp {
                name: name.clone(),
                subnet: k("subnet", &name),
                public: s.kind == SubnetKind::Public,
            }));
        }
        for s in v.nat_subnets() {
            let id = format!("{}-{}", v.name, s.name);
            tasks.push(task(nat_gateway::ElasticIp { name: id.clone() }));
            tasks.push(task(nat_gateway::NatGateway {
                name: id.clone(),
                subnet: k("subnet", &id),
                eip: k("eip", &id),
                igw: igw.clone(),
            }));
        }
        // Peering routes, added to every route table of both sides.
        let mut peer_routes: Vec<(String, TaskKey)> = Vec::new();
        for p in &env.peerings {
            let other = if p.requester == v.name {
                &p.accepter
            } else if p.accepter == v.name {
                &p.requester
            } else {
                continue;
            };
            if let Some(o) = env.vpc(other) {
                peer_routes.push((o.cidr.to_string(), k("peering", p.name.as_str())));
            }
        }
        for s in &v.subnets {
            let sid = format!("{}-{}", v.name, s.name);
            let mut routes: Vec<route_table::RouteSpec> = peer_routes
                .iter()
                .map(|(cidr, pcx)| route_table::RouteSpec {
                    destination: cidr.clone(),
                    target: pcx.clone(),
                })
                .collect();
            match s.kind {
                SubnetKind::Public => routes.push(route_table::RouteSpec {
                    destination: "0.0.0.0/0".into(),
                    target: igw.clone(),
                }),
                SubnetKind::Private => {
                    if let Some(n) = v.nat_subnet_for(s.az_index) {
                        routes.push(route_table::RouteSpec {
                            destination: "0.0.0.0/0".into(),
                            target: k("nat", &format!("{}-{}", v.name, n.name)),
                        });
                    }
                }
            }
            let table = k("route-table", &sid);
            tasks.push(task(route_table::RouteTable {
                name: sid.clone(),
                vpc: vpc.clone(),
            }));
            tasks.push(task(route_table::Routes {
                name: sid.clone(),
                table: table.clone(),
                routes,
            }));
            tasks.push(task(route_table::RouteTableAssociations {
                name: sid.clone(),
                table,
                subnets: vec![k("subnet", &sid)],
            }));
        }
    }
    for p in &env.peerings {
        tasks.push(task(vpc_peering::VpcPeering {
            name: p.name.to_string(),
            requester: k("vpc", p.requester.as_str()),
            accepter: k("vpc", p.accepter.as_str()),
        }));
    }

    // Security groups and their rules. A rule naming a group of a peered VPC needs the
    // peering active first (AWS: InvalidGroup.NotFound until then).
    let peering_to = |from: &crate::template::Name, group: &str| {
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
    };
    for g in &env.security_groups {
        let sg = k("sg", g.name.as_str());
        tasks.push(task(security_group::SecurityGroup {
            name: g.name.to_string(),
            vpc: k("vpc", g.vpc.as_str()),
            group_name: format!("{envname}-{}", g.name),
            description: g.description.clone(),
        }));
        let mut rules = Vec::new();
        let mut rule_deps: Vec<TaskKey> = Vec::new();
        for r in &g.ingress {
            let (from, to) = r.protocol.ec2_ports();
            let proto = r.protocol.ip_protocol().to_string();
            let (from, to) = if matches!(r.protocol, Protocol::All) {
                (-1, -1)
            } else {
                (from, to)
            };
            let mut push = |source: security_group::RuleSource| {
                if let security_group::RuleSource::Group(other) = &source {
                    rule_deps.extend(peering_to(&g.vpc, other.name()));
                }
                rules.push(security_group::RuleSpec {
                    protocol: proto.clone(),
                    from_port: from,
                    to_port: to,
                    source,
                    description: r.description.clone(),
                })
            };
            match &r.source {
                Source::Cidr(c) => push(security_group::RuleSource::Cidr(c.to_string())),
                Source::Group(n) => push(security_group::RuleSource::Group(k("sg", n.as_str()))),
                Source::LoadBalancer(kind) => {
                    let lb = env.load_balancer(*kind);
                    match lb {
                        Some(lb) if !lb.security_groups.is_empty() => {
                            for s in lb.security_groups {
                                push(security_group::RuleSource::Group(k("sg", s.as_str())));
                            }
                        }
                        _ => {
                            for c in env.load_balancer_subnet_cidrs(*kind) {
                                push(security_group::RuleSource::Cidr(c.to_string()));
                            }
                        }
                    }
                }
            }
        }
        tasks.push(task(security_group::SecurityGroupRules {
            name: g.name.to_string(),
            group: sg,
            rules,
            extra_deps: {
                rule_deps.sort();
                rule_deps.dedup();
                rule_deps
            },
        }));
    }

    let subnets_of = |vpc: &crate::template::Name, kind: SubnetKind| -> Vec<TaskKey> {
        env.vpc(vpc)
            .into_iter()
            .flat_map(|v| {
                v.subnets_of(kind)
                    .map(|s| sub_key(v.name.as_str(), s.name.as_str()))
            })
            .collect()
    };

    // Load balancers, target groups, listeners.
    let mut pool_tgs: Vec<(String, TaskKey)> = Vec::new();
    if let Some(n) = &env.load_balancers.nlb {
        let lb = k(lb_task_kind(LbKind::Nlb), n.name.as_str());
        tasks.extend(load_balancer_tasks(env, LbKind::Nlb));
        for l in &n.listeners {
            let id = format!("{}-{}", n.name, l.port);
            let tg = k("target-group", &id);
            tasks.push(task(target_group::TargetGroup {
                name: id.clone(),
                aws_name: aws_name(envname, &id, 32),
                vpc: k("vpc", n.vpc.as_str()),
                spec: crate::aws::elb::TgSpec {
                    protocol: "TCP".into(),
                    port: i32::from(l.target_port.get()),
                    vpc_id: String::new(),
                    health_path: None,
                    interval: 30,
                    timeout: 10,
                    healthy: 3,
                    unhealthy: 3,
                    matcher: None,
                },
            }));
            tasks.push(task(listener::Listener {
                name: id.clone(),
                lb: lb.clone(),
                protocol: "TCP".into(),
                port: i32::from(l.port.get()),
                default_target: tg.clone(),
                rules: vec![],
            }));
            pool_tgs.push((l.target_pool.to_string(), tg));
        }
    }
    if let Some(a) = &env.load_balancers.alb {
        let lb = k(lb_task_kind(LbKind::Alb), a.name.as_str());
        tasks.extend(load_balancer_tasks(env, LbKind::Alb));
        let tg_key = |t: &crate::template::Name| k("target-group", &format!("{}-{}", a.name, t));
        for t in &a.target_groups {
            let id = format!("{}-{}", a.name, t.name);
            let hc = &t.health_check;
            tasks.push(task(target_group::TargetGroup {
                name: id.clone(),
                aws_name: aws_name(envname, &id, 32),
                vpc: k("vpc", a.vpc.as_str()),
                spec: crate::aws::elb::TgSpec {
                    protocol: "HTTP".into(),
                    port: i32::from(t.port.get()),
                    vpc_id: String::new(),
                    health_path: Some(hc.path.clone()),
                    interval: i32::from(hc.interval_secs),
                    timeout: i32::from(hc.timeout_secs),
                    healthy: i32::from(hc.healthy_threshold),
                    unhealthy: i32::from(hc.unhealthy_threshold),
                    matcher: Some(hc.matcher.clone()),
                },
            }));
            pool_tgs.push((t.pool.to_string(), tg_key(&t.name)));
        }
        for l in &a.listeners {
            tasks.push(task(listener::Listener {
                name: format!("{}-{}", a.name, l.port),
                lb: lb.clone(),
                protocol: "HTTP".into(),
                port: i32::from(l.port.get()),
                default_target: tg_key(&l.default_target),
                rules: l
                    .rules
                    .iter()
                    .map(|r| listener::PathRuleSpec {
                        priority: i32::from(r.priority),
                        path: r.path_pattern.clone(),
                        target: tg_key(&r.target),
                    })
                    .collect(),
            }));
        }
    }

    // Node pools: the join token, then per pool a role + instance profile, a launch template
    // and an Auto Scaling group.
    let token = k("ssm-parameter", "k3s-token");
    if !env.node_pools.is_empty() {
        tasks.push(task(ssm_parameter::SecureParameter {
            name: "k3s-token".into(),
            path: crate::bootstrap::ParameterNames::new(&env.name).token(),
        }));
    }
    let nlb_key = lb_key(env, LbKind::Nlb);
    for p in &env.node_pools {
        let profile = k("instance-profile", p.name.as_str());
        let role_name = aws_name(envname, p.name.as_str(), 64);
        let role = p.role;
        tasks.push(task(iam::InstanceProfile {
            name: p.name.to_string(),
            role_name: role_name.clone(),
            assume_policy: crate::bootstrap::instance_assume_role_policy().to_string(),
            policy: {
                let scope =
                    crate::bootstrap::PolicyScope::new(env.region.as_str(), &target.account_id);
                crate::bootstrap::instance_role_policy(env, role, &scope).to_string()
            },
        }));
        let lt = k("launch-template", p.name.as_str());
        let (env_u, pool_u, nlb) = (env.clone(), p.clone(), nlb_key.clone());
        let mut instance_tags = vec![
            (crate::aws::TAG_ENV.to_string(), envname.to_string()),
            (TAG_NAME.to_string(), p.name.to_string()),
        ];
        instance_tags.extend(env.tags.iter().map(|(a, b)| (a.clone(), b.clone())));
        tasks.push(task(launch_template::LaunchTemplate {
            name: p.name.to_string(),
            template_name: aws_name(envname, p.name.as_str(), 128),
            image_id: amis.get(p.name.as_str()).cloned().unwrap_or_default(),
            instance_type: p.instance_type.to_string(),
            security_groups: p
                .security_groups
                .iter()
                .map(|g| k("sg", g.as_str()))
                .collect(),
            instance_profile: Some(profile),
            extra_deps: nlb_key.iter().cloned().chain([token.clone()]).collect(),
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
        }));
        let subnets = subnets_of(&p.vpc, p.subnets);
        // Instances boot with their egress routed and (in public subnets) a public address.
        let network: Vec<TaskKey> = env
            .vpc(&p.vpc)
            .into_iter()
            .flat_map(|v| {
                v.subnets_of(p.subnets).flat_map(move |s| {
                    // A private subnet's egress goes through a NAT gateway, which goes out
                    // through its own (public) subnet's route to the internet gateway.
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
            .collect();
        tasks.push(task(autoscaling_group::AutoScalingGroup {
            name: p.name.to_string(),
            aws_name: aws_name(envname, p.name.as_str(), 255),
            launch_template: lt,
            subnets,
            target_groups: pool_tgs
                .iter()
                .filter(|(pool, _)| pool == p.name.as_str())
                .map(|(_, t)| t.clone())
                .collect(),
            extra_deps: network,
            min: p.min as i32,
            max: p.max as i32,
            desired: p.desired as i32,
        }));
    }

    // DNS.
    if let Some(d) = &env.dns {
        let zone = k("zone", d.zone.as_str());
        let private_vpcs: Vec<TaskKey> = if !d.private {
            vec![]
        } else if d.vpcs.is_empty() {
            env.vpcs.iter().map(|v| k("vpc", v.name.as_str())).collect()
        } else {
            d.vpcs.iter().map(|v| k("vpc", v.as_str())).collect()
        };
        // A private zone answers only in VPCs with DNS on (`vpc-dns/…`), but can be made
        // before: the instances that query it wait for `vpc-dns/…`.
        tasks.push(task(route53::HostedZone {
            name: d.zone.to_string(),
            private_vpcs,
            extra_deps: vec![],
        }));
        for r in &d.records {
            let id = match r.set_id() {
                Some(s) => format!("{}-{}-{s}", r.name, r.rtype),
                None => format!("{}-{}", r.name, r.rtype),
            };
            let mut rs = RecordSet {
                name: r.name.to_string(),
                rtype: r.rtype.as_str().to_string(),
                set_id: r.set_id().map(String::from),
                ttl: r.ttl.map(i64::from),
                values: vec![],
                alias: None,
                weight: None,
                failover: None,
                region: None,
                health_check_id: None,
            };
            let mut alias = None;
            match &r.target {
                RecordTarget::Values(v) => rs.values = v.clone(),
                RecordTarget::Alias {
                    lb,
                    evaluate_target_health,
                } => {
                    alias = lb_key(env, *lb).map(|lb| route53::AliasSpec {
                        lb,
                        evaluate_target_health: *evaluate_target_health,
                    });
                }
            }
            let mut health_check = None;
            match &r.routing {
                Routing::Simple => {}
                Routing::Weighted { weight, .. } => rs.weight = Some(i64::from(*weight)),
                Routing::Failover {
                    role,
                    health_check: hc,
                    ..
                } => {
                    rs.failover = Some(role.as_route53().to_string());
                    if let Some(hc) = hc {
                        let (fqdn, ip, lb) = match &hc.endpoint {
                            HealthCheckEndpoint::LoadBalancer(kind) => {
                                (None, None, lb_key(env, *kind))
                            }
                            HealthCheckEndpoint::Fqdn(f) => (Some(f.to_string()), None, None),
                            HealthCheckEndpoint::Ip(ip) => (None, Some(ip.to_string()), None),
                        };
                        let hk = k("health-check", &id);
                        tasks.push(task(route53::HealthCheck {
                            name: id.clone(),
                            spec: crate::aws::route53::HealthCheckSpec {
                                kind: hc.protocol.as_route53().to_string(),
                                fqdn,
                                ip,
                                port: i32::from(hc.port.get()),
                                path: hc.path.clone(),
                                interval: i32::from(hc.request_interval_secs),
                                failure_threshold: i32::from(hc.failure_threshold),
                            },
                            lb,
                        }));
                        health_check = Some(hk);
                    }
                }
                Routing::Latency { region, .. } => rs.region = Some(region.to_string()),
            }
            tasks.push(task(route53::Record {
                name: id,
                zone: zone.clone(),
                record: rs,
                alias,
                health_check,
                extra_deps: vec![],
            }));
        }
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_name_hash_is_pinned() {
        // FNV-1a 64 of "a-very-long-environment-name-another-long-name" is
        // 0x45e8c075eca02c91 (computed independently); a change here renames, and so
        // replaces, every shortened load balancer and target group.
        assert_eq!(
            aws_name("a-very-long-environment-name", "another-long-name", 32),
            "a-very-long-environment-eca02c91"
        );
    }

    #[test]
    fn aws_names_fit() {
        assert_eq!(aws_name("dev", "web", 32), "dev-web");
        let long = aws_name("a-very-long-environment-name", "another-long-name", 32);
        assert!(long.len() <= 32, "{long}");
        assert_ne!(
            long,
            aws_name("a-very-long-environment-name", "another-long-nam2", 32)
        );
    }

    /// The dependencies of the task `key`, as strings.
    fn deps_of(tasks: &[Arc<dyn Task<Cloud>>], key: &str) -> Vec<String> {
        tasks
            .iter()
            .find(|t| t.key().as_str() == key)
            .unwrap_or_else(|| panic!("no task {key}"))
            .deps()
            .iter()
            .map(|d| d.as_str().to_string())
            .collect()
    }

    /// The tasks of a template of `vpc-templates/`.
    fn tasks_of(file: &str) -> (crate::template::Template, Vec<Arc<dyn Task<Cloud>>>) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../vpc-templates")
            .join(file);
        let t = crate::template::load(&path).unwrap();
        let tasks = build(&t.env, &HashMap::new());
        (t, tasks)
    }

    #[test]
    fn dev_template_builds_an_acyclic_plan() {
        let (_, tasks) = tasks_of("dev.yaml");
        let g = crate::engine::executor::graph_of(&tasks).unwrap();
        let order = g.topo_order().unwrap();
        let pos = |s: &str| order.iter().position(|x| x.as_str() == s).unwrap();
        assert!(pos("vpc/main") < pos("subnet/main-public-a"));
        assert!(pos("sg/k3s-nodes") < pos("sg-rules/k3s-nodes"));
        assert!(pos("target-group/web-service") < pos("asg/agents"));
        assert!(pos("nlb/k8s-api") < pos("launch-template/servers"));
        assert!(pos("routes/main-private-a") < pos("asg/servers"));
        assert!(pos("rt-assoc/main-private-a") < pos("asg/servers"));
        assert!(pos("nat/main-public-a") < pos("routes/main-private-b"));
        assert!(pos("igw-attachment/main") < pos("nat/main-public-a"));
        assert!(pos("igw-attachment/main") < pos("routes/main-public-a"));
        // The new split keeps slow steps off each other's path.
        let deps_of = |s: &str| deps_of(&tasks, s);
        assert_eq!(deps_of("route-table/main-private-a"), ["vpc/main"]);
        assert!(deps_of("igw/main").is_empty());
        assert!(!deps_of("nat/main-public-a").contains(&"subnet-public-ip/main-public-a".into()));
        // Private nodes egress through the NAT gateway's own subnet: its routes too.
        let asg = deps_of("asg/servers");
        for d in [
            "routes/main-private-b",
            "routes/main-public-a",
            "rt-assoc/main-public-a",
        ] {
            assert!(
                asg.contains(&d.to_string()),
                "asg/servers lacks {d}: {asg:?}"
            );
        }
        // The internet-facing ALB waits for the internet gateway; the internal NLB need not.
        assert!(deps_of("alb/web").contains(&"igw-attachment/main".into()));
        assert!(!deps_of("nlb/k8s-api").contains(&"igw-attachment/main".into()));
        let rounds = g.teardown_rounds().unwrap();
        let round = |s: &str| {
            rounds
                .iter()
                .position(|r| r.iter().any(|x| x.as_str() == s))
                .unwrap()
        };
        assert!(round("igw-attachment/main") < round("vpc/main"));
        assert!(round("igw-attachment/main") < round("igw/main"));
        assert!(round("rt-assoc/main-private-a") < round("subnet/main-private-a"));
        assert!(round("routes/main-private-a") < round("nat/main-public-a"));
        assert!(round("asg/servers") < round("subnet/main-private-a"));
        assert!(round("sg-rules/k3s-agent") < round("sg/alb"));
    }

    #[test]
    fn subnets_take_the_accounts_zones_and_az_count_must_fit_them() {
        let (t, _) = tasks_of("dev.yaml");
        // An account whose us-east-1 zones are not a, b, … (each account maps its own).
        let zones: Vec<String> = ["us-east-1c", "us-east-1d"].map(String::from).to_vec();
        assert_eq!(check_zones(&t.env, &zones), Ok(()));
        let err = check_zones(&t.env, &zones[..1]).unwrap_err();
        assert!(err.starts_with("vpcs[0].az_count:"), "{err}");
        assert!(err.contains("offers this account 1 (us-east-1c)"), "{err}");
        let target = Target {
            zones,
            ..Target::default()
        };
        assert_eq!(target.zone(&t.env, 1), "us-east-1d");
        // Without the account's list: the region table's names.
        assert_eq!(Target::default().zone(&t.env, 1), "us-east-1b");
    }

    #[test]
    fn rules_naming_a_group_across_a_peering_wait_for_it() {
        let (_, tasks) = tasks_of("multi-vpc.yaml");
        let deps_of = |s: &str| deps_of(&tasks, s);
        // postgres (data) admits k3s-agent (apps): across apps-data.
        assert!(deps_of("sg-rules/postgres").contains(&"peering/apps-data".into()));
        assert!(deps_of("sg-rules/k3s-nodes").contains(&"peering/apps-data".into()));
        // k3s-agent admits only the ALB's group, in its own VPC.
        assert!(!deps_of("sg-rules/k3s-agent")
            .iter()
            .any(|d| d.starts_with("peering/")));
    }
}
