//! `provisioner graph -f TEMPLATE [--format dot|mermaid]`: the dependency
//! graph of what `up` creates, as Graphviz DOT or a Mermaid flowchart.
//! Edges point from a resource to what it depends on.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Config, GraphFormat};
use crate::engine::{Graph, TaskKey};
use crate::template::{Environment, LbKind, RecordTarget, Routing, Source, SubnetKind};

pub async fn run(cfg: &Config, env: &Environment) -> Result<ExitCode> {
    let graph = template_graph(env)?;
    match cfg.graph_format {
        GraphFormat::Dot => print!("{}", graph.to_dot()),
        GraphFormat::Mermaid => print!("{}", graph.to_mermaid()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The resources a template implies and their dependencies, derived from the
/// template alone.
pub fn template_graph(env: &Environment) -> Result<Graph> {
    let k = TaskKey::new;
    let mut nodes: Vec<(TaskKey, Vec<TaskKey>)> = Vec::new();
    for v in &env.vpcs {
        let vpc = k("vpc", v.name.as_str());
        nodes.push((vpc.clone(), vec![]));
        let igw = k("igw", v.name.as_str());
        if v.needs_internet_gateway() {
            nodes.push((igw.clone(), vec![vpc.clone()]));
        }
        for s in &v.subnets {
            nodes.push((
                k("subnet", &format!("{}-{}", v.name, s.name)),
                vec![vpc.clone()],
            ));
        }
        let peerings: Vec<TaskKey> = env
            .peerings
            .iter()
            .filter(|p| p.requester == v.name || p.accepter == v.name)
            .map(|p| k("peering", p.name.as_str()))
            .collect();
        let nats = v.nat_subnets();
        for s in &nats {
            let id = format!("{}-{}", v.name, s.name);
            nodes.push((k("eip", &id), vec![]));
            nodes.push((
                k("nat", &id),
                vec![k("subnet", &id), k("eip", &id), igw.clone()],
            ));
        }
        for kind in [SubnetKind::Public, SubnetKind::Private] {
            for s in v.subnets_of(kind) {
                let sid = format!("{}-{}", v.name, s.name);
                let mut deps = vec![vpc.clone(), k("subnet", &sid)];
                deps.extend(peerings.iter().cloned());
                match kind {
                    SubnetKind::Public => deps.push(igw.clone()),
                    SubnetKind::Private => {
                        if let Some(n) = v.nat_subnet_for(s.az_index) {
                            deps.push(k("nat", &format!("{}-{}", v.name, n.name)));
                        }
                    }
                }
                nodes.push((k("route-table", &sid), deps));
            }
        }
    }
    for p in &env.peerings {
        nodes.push((
            k("peering", p.name.as_str()),
            vec![
                k("vpc", p.requester.as_str()),
                k("vpc", p.accepter.as_str()),
            ],
        ));
    }
    let lb_key = |kind: LbKind| -> Option<TaskKey> {
        env.load_balancer(kind)
            .map(|lb| k(&kind.to_string(), lb.name.as_str()))
    };
    for g in &env.security_groups {
        let sg = k("sg", g.name.as_str());
        nodes.push((sg.clone(), vec![k("vpc", g.vpc.as_str())]));
        let mut deps = vec![sg];
        for r in &g.ingress {
            match &r.source {
                Source::Group(other) => deps.push(k("sg", other.as_str())),
                Source::LoadBalancer(kind) => {
                    if let Some(lb) = env.load_balancer(*kind) {
                        deps.extend(lb.security_groups.iter().map(|s| k("sg", s.as_str())));
                        let vpc = env.vpc(lb.vpc);
                        deps.extend(vpc.into_iter().flat_map(|v| {
                            v.subnets_of(lb.subnets)
                                .map(|s| k("subnet", &format!("{}-{}", v.name, s.name)))
                        }));
                    }
                }
                Source::Cidr(_) => {}
            }
        }
        nodes.push((k("sg-rules", g.name.as_str()), deps));
    }
    let subnet_keys = |vpc: &crate::template::Name, kind: SubnetKind| -> Vec<TaskKey> {
        env.vpc(vpc)
            .into_iter()
            .flat_map(|v| {
                v.subnets_of(kind)
                    .map(|s| k("subnet", &format!("{}-{}", v.name, s.name)))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut pool_tgs: Vec<(String, TaskKey)> = Vec::new();
    if let Some(n) = &env.load_balancers.nlb {
        let lb = k("nlb", n.name.as_str());
        let mut deps = subnet_keys(&n.vpc, n.subnets);
        deps.extend(n.security_groups.iter().map(|g| k("sg", g.as_str())));
        nodes.push((lb.clone(), deps));
        for l in &n.listeners {
            let tg = k("target-group", &format!("{}-{}", n.name, l.port));
            nodes.push((tg.clone(), vec![k("vpc", n.vpc.as_str())]));
            nodes.push((
                k("listener", &format!("{}-{}", n.name, l.port)),
                vec![lb.clone(), tg.clone()],
            ));
            pool_tgs.push((l.target_pool.to_string(), tg));
        }
    }
    if let Some(a) = &env.load_balancers.alb {
        let lb = k("alb", a.name.as_str());
        let mut deps = subnet_keys(&a.vpc, a.subnets);
        deps.extend(a.security_groups.iter().map(|g| k("sg", g.as_str())));
        nodes.push((lb.clone(), deps));
        for t in &a.target_groups {
            let tg = k("target-group", &format!("{}-{}", a.name, t.name));
            nodes.push((tg.clone(), vec![k("vpc", a.vpc.as_str())]));
            pool_tgs.push((t.pool.to_string(), tg));
        }
        for l in &a.listeners {
            let mut deps = vec![lb.clone()];
            deps.push(k(
                "target-group",
                &format!("{}-{}", a.name, l.default_target),
            ));
            deps.extend(
                l.rules
                    .iter()
                    .map(|r| k("target-group", &format!("{}-{}", a.name, r.target))),
            );
            nodes.push((k("listener", &format!("{}-{}", a.name, l.port)), deps));
        }
    }
    for p in &env.node_pools {
        let lt = k("launch-template", p.name.as_str());
        let mut deps: Vec<TaskKey> = p
            .security_groups
            .iter()
            .map(|g| k("sg", g.as_str()))
            .collect();
        nodes.push((k("instance-profile", p.name.as_str()), vec![]));
        deps.push(k("instance-profile", p.name.as_str()));
        // Servers and agents find the k3s API through the NLB.
        deps.extend(lb_key(LbKind::Nlb));
        nodes.push((lt.clone(), deps));
        let mut deps = vec![lt];
        deps.extend(subnet_keys(&p.vpc, p.subnets));
        deps.extend(
            env.vpc(&p.vpc)
                .into_iter()
                .flat_map(|v| v.subnets_of(p.subnets))
                .map(|s| k("route-table", &format!("{}-{}", p.vpc, s.name))),
        );
        deps.extend(
            pool_tgs
                .iter()
                .filter(|(pool, _)| pool == p.name.as_str())
                .map(|(_, tg)| tg.clone()),
        );
        nodes.push((k("asg", p.name.as_str()), deps));
    }
    if let Some(d) = &env.dns {
        let zone = k("zone", d.zone.as_str());
        nodes.push((
            zone.clone(),
            d.vpcs.iter().map(|v| k("vpc", v.as_str())).collect(),
        ));
        for r in &d.records {
            let id = match r.set_id() {
                Some(s) => format!("{}-{}-{s}", r.name, r.rtype),
                None => format!("{}-{}", r.name, r.rtype),
            };
            let mut deps = vec![zone.clone()];
            if let RecordTarget::Alias { lb, .. } = &r.target {
                deps.extend(lb_key(*lb));
            }
            if let Routing::Failover {
                health_check: Some(hc),
                ..
            } = &r.routing
            {
                let hk = k("health-check", &id);
                let mut hdeps = vec![];
                if let crate::template::HealthCheckEndpoint::LoadBalancer(kind) = hc.endpoint {
                    hdeps.extend(lb_key(kind));
                }
                nodes.push((hk.clone(), hdeps));
                deps.push(hk);
            }
            nodes.push((k("record", &id), deps));
        }
    }
    Ok(Graph::new(nodes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_template_graph_is_acyclic_and_ordered() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates/dev.yaml");
        let t = crate::template::load(&path).unwrap();
        let g = template_graph(&t.env).unwrap();
        let order = g.topo_order().unwrap();
        let pos = |s: &str| {
            order
                .iter()
                .position(|k| k.as_str() == s)
                .unwrap_or_else(|| panic!("{s} missing"))
        };
        assert!(pos("vpc/main") < pos("subnet/main-public-a"));
        assert!(pos("nat/main-public-a") < pos("route-table/main-private-b"));
        assert!(pos("target-group/web-service") < pos("asg/agents"));
        assert!(pos("alb/web") < pos("record/api.dev.proximity.internal-A"));
        assert!(g
            .to_dot()
            .contains("\"asg/servers\" -> \"launch-template/servers\""));
        assert!(g.to_mermaid().starts_with("flowchart LR"));
    }
}
