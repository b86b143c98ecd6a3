//! Load balancing: the NLB in front of the k3s API and the ALB in front of the service, each
//! with its target groups and listeners; which pool registers with which target group.

use std::sync::Arc;

use super::{k, task};
use crate::aws::elb::TgSpec;
use crate::aws::Cloud;
use crate::engine::{Task, TaskKey};
use crate::resources::{aws_name, listener, load_balancer, target_group};
use crate::template::{Alb, Environment, LbKind, Nlb, SubnetKind};

/// Every load-balancing task of `env`.
pub fn build(env: &Environment) -> Vec<Arc<dyn Task<Cloud>>> {
    let mut tasks = Vec::new();
    if let Some(n) = &env.load_balancers.nlb {
        tasks.extend(load_balancer_tasks(env, LbKind::Nlb));
        tasks.extend(nlb_listeners(env, n));
    }
    if let Some(a) = &env.load_balancers.alb {
        tasks.extend(load_balancer_tasks(env, LbKind::Alb));
        tasks.extend(alb_target_groups(env, a));
        tasks.extend(alb_listeners(a));
    }
    tasks
}

/// The task kind of a load balancer: `nlb` or `alb`.
fn lb_task_kind(kind: LbKind) -> &'static str {
    match kind {
        LbKind::Nlb => "nlb",
        LbKind::Alb => "alb",
    }
}

/// The task of the template's `kind` load balancer, if it has one.
pub(crate) fn lb_key(env: &Environment, kind: LbKind) -> Option<TaskKey> {
    env.load_balancer(kind)
        .map(|p| k(lb_task_kind(kind), p.name.as_str()))
}

/// (pool, target group) for every target group a pool's instances register with.
pub(crate) fn pool_target_groups(env: &Environment) -> Vec<(String, TaskKey)> {
    let mut out = Vec::new();
    if let Some(n) = &env.load_balancers.nlb {
        for l in &n.listeners {
            let tg = k("target-group", &format!("{}-{}", n.name, l.port));
            out.push((l.target_pool.to_string(), tg));
        }
    }
    if let Some(a) = &env.load_balancers.alb {
        for t in &a.target_groups {
            let tg = k("target-group", &format!("{}-{}", a.name, t.name));
            out.push((t.pool.to_string(), tg));
        }
    }
    out
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

/// Per NLB listener a TCP target group and the listener forwarding to it.
fn nlb_listeners(env: &Environment, n: &Nlb) -> Vec<Arc<dyn Task<Cloud>>> {
    let lb = k(lb_task_kind(LbKind::Nlb), n.name.as_str());
    let mut tasks = Vec::new();
    for l in &n.listeners {
        let id = format!("{}-{}", n.name, l.port);
        let tg = k("target-group", &id);
        tasks.push(task(target_group::TargetGroup {
            name: id.clone(),
            aws_name: aws_name(env.name.as_str(), &id, 32),
            vpc: k("vpc", n.vpc.as_str()),
            spec: TgSpec {
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
            default_target: tg,
            rules: vec![],
        }));
    }
    tasks
}

/// The key of the ALB's target group `t`.
fn alb_tg_key(a: &Alb, t: &crate::template::Name) -> TaskKey {
    k("target-group", &format!("{}-{}", a.name, t))
}

/// The ALB's HTTP target groups with their health checks.
fn alb_target_groups(env: &Environment, a: &Alb) -> Vec<Arc<dyn Task<Cloud>>> {
    a.target_groups
        .iter()
        .map(|t| {
            let id = format!("{}-{}", a.name, t.name);
            let hc = &t.health_check;
            task(target_group::TargetGroup {
                name: id.clone(),
                aws_name: aws_name(env.name.as_str(), &id, 32),
                vpc: k("vpc", a.vpc.as_str()),
                spec: TgSpec {
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
            })
        })
        .collect()
}

/// The ALB's HTTP listeners with their path rules.
fn alb_listeners(a: &Alb) -> Vec<Arc<dyn Task<Cloud>>> {
    let lb = k(lb_task_kind(LbKind::Alb), a.name.as_str());
    a.listeners
        .iter()
        .map(|l| {
            task(listener::Listener {
                name: format!("{}-{}", a.name, l.port),
                lb: lb.clone(),
                protocol: "HTTP".into(),
                port: i32::from(l.port.get()),
                default_target: alb_tg_key(a, &l.default_target),
                rules: l
                    .rules
                    .iter()
                    .map(|r| listener::PathRuleSpec {
                        priority: i32::from(r.priority),
                        path: r.path_pattern.clone(),
                        target: alb_tg_key(a, &r.target),
                    })
                    .collect(),
            })
        })
        .collect()
}
