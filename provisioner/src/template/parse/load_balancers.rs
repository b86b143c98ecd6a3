//! `load_balancers`: the NLB (listeners onto node pools) and the ALB (target groups,
//! listeners, path rules, HTTP health checks).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{at, idx, list_names, Checker};
use crate::template::model::*;
use crate::template::raw::*;

impl<'s, 'a> Checker<'s, 'a> {
    /// Load balancer and target group names are at most 32 characters in
    /// AWS; longer `<env>-…` names are shortened with a hash suffix by the
    /// engine. Legal, but worth knowing when reading the console.
    fn aws_name_len(&mut self, path: &str, name: &str) {
        if let Some(env) = &self.env_name {
            let full = format!("{env}-{name}");
            if full.len() > 32 {
                let msg = format!(
                    "`{full}` is {} characters; AWS allows 32 here, so its AWS name gets shortened with a hash suffix",
                    full.len()
                );
                self.warn(path, msg);
            }
        }
    }

    fn lb_common(
        &mut self,
        base: &str,
        name: &str,
        vpc: &str,
        subnets: SubnetKind,
        groups: &[String],
        vpcs: &[Vpc],
    ) -> (Option<Name>, Option<Name>, Vec<Name>, BTreeSet<u8>) {
        let n = self.name(&at(base, "name"), name);
        self.aws_name_len(&at(base, "name"), name);
        let v = self.vpc_ref(&at(base, "vpc"), vpc);
        let mut azs = BTreeSet::new();
        if let Some(model) = vpcs.iter().find(|x| x.name.as_str() == vpc) {
            azs = model.subnets_of(subnets).map(|s| s.az_index).collect();
            if azs.is_empty() {
                self.err(
                    at(base, "subnets"),
                    format!("VPC `{vpc}` has no {subnets} subnet"),
                );
            }
        }
        let mut gs = Vec::new();
        for (j, g) in groups.iter().enumerate() {
            if let Some(g) = self.group_ref(&idx(&at(base, "security_groups"), j), g, vpc) {
                gs.push(g);
            }
        }
        (n, v, gs, azs)
    }

    pub(super) fn load_balancers(
        &mut self,
        raw: &'a RawLoadBalancers,
        vpcs: &[Vpc],
        pools: &[NodePool],
    ) -> LoadBalancers {
        let nlb = raw.nlb.as_ref().and_then(|n| self.nlb(n, vpcs, pools));
        let alb = raw.alb.as_ref().and_then(|a| self.alb(a, vpcs, pools));
        if let (Some(n), Some(a)) = (&raw.nlb, &raw.alb) {
            if n.name == a.name {
                self.err(
                    "load_balancers.alb.name",
                    format!("`{}` is also the NLB's name", a.name),
                );
            }
            // Target groups are named `<lb>-<port>` (NLB) and `<lb>-<name>` (ALB).
            for (j, t) in a.target_groups.iter().enumerate() {
                let id = format!("{}-{}", a.name, t.name);
                if let Some(l) = n
                    .listeners
                    .iter()
                    .find(|l| format!("{}-{}", n.name, l.port) == id)
                {
                    self.err(
                        at(&idx("load_balancers.alb.target_groups", j), "name"),
                        format!(
                            "makes the target group `{id}`, the name of the NLB's for port {}",
                            l.port
                        ),
                    );
                }
            }
        }
        LoadBalancers { nlb, alb }
    }

    fn nlb(&mut self, n: &RawNlb, vpcs: &[Vpc], pools: &[NodePool]) -> Option<Nlb> {
        let base = "load_balancers.nlb";
        let (name, vpc, groups, _azs) =
            self.lb_common(base, &n.name, &n.vpc, n.subnets, &n.security_groups, vpcs);
        let mut listeners = Vec::new();
        let mut ports = HashMap::new();
        if n.listeners.is_empty() {
            self.err(at(base, "listeners"), "an NLB needs at least one listener");
        }
        for (i, l) in n.listeners.iter().enumerate() {
            let lb = idx(&at(base, "listeners"), i);
            let port = self.port(&at(&lb, "port"), l.port);
            if let Some(p) = port {
                if let Some(first) = ports.insert(p, i) {
                    self.err(
                        at(&lb, "port"),
                        format!("port {p} already used by listeners[{first}]"),
                    );
                }
            }
            let target_port = match l.target_port {
                Some(tp) => self.port(&at(&lb, "target_port"), tp),
                None => port,
            };
            let pool = self.pool_ref(&at(&lb, "target_pool"), &l.target_pool, &n.vpc);
            if let (Some(tp), Some(pool_name)) = (target_port, &pool) {
                self.allowed_warning(&at(&lb, "target_port"), pools, pool_name, tp, "NLB");
            }
            if let (Some(port), Some(target_pool), Some(target_port)) = (port, pool, target_port) {
                listeners.push(NlbListener {
                    port,
                    target_pool,
                    target_port,
                });
            }
        }
        Some(Nlb {
            name: name?,
            vpc: vpc?,
            subnets: n.subnets,
            security_groups: groups,
            listeners,
        })
    }

    /// Warn when no security group of `pool` opens `port`/tcp at all.
    fn allowed_warning(
        &mut self,
        path: &str,
        pools: &[NodePool],
        pool: &Name,
        port: Port,
        what: &str,
    ) {
        let Some(p) = pools.iter().find(|p| &p.name == pool) else {
            return;
        };
        let open = p.security_groups.iter().any(|g| {
            self.decl.groups.get(g.as_str()).is_some_and(|rg| {
                rg.ingress.iter().any(|r| match (r.protocol, &r.ports) {
                    (RawProtocol::All, _) => true,
                    (RawProtocol::Tcp, Some(RawPorts::Single(x))) => *x == i64::from(port.get()),
                    (RawProtocol::Tcp, Some(RawPorts::Text(t))) => {
                        let (a, b) = t.split_once('-').unwrap_or((t, t));
                        match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                            (Ok(a), Ok(b)) => (a..=b).contains(&port.get()),
                            _ => false,
                        }
                    }
                    _ => false,
                })
            })
        });
        if !open && !p.security_groups.is_empty() {
            self.warn(
                path,
                format!("no security group of pool `{pool}` allows tcp/{port}; the {what} cannot reach its targets"),
            );
        }
    }

    fn alb(&mut self, a: &'a RawAlb, vpcs: &[Vpc], pools: &[NodePool]) -> Option<Alb> {
        let base = "load_balancers.alb";
        let (name, vpc, groups, azs) =
            self.lb_common(base, &a.name, &a.vpc, a.subnets, &a.security_groups, vpcs);
        if azs.len() == 1 {
            self.err(
                at(base, "subnets"),
                format!(
                    "an ALB needs {} subnets in at least two AZs; VPC `{}` has them in one",
                    a.subnets, a.vpc
                ),
            );
        }
        if a.security_groups.is_empty() {
            // AWS would attach the VPC's default group: not ours to manage, open to every
            // member of that group, and an ALB cannot then be set back to none.
            self.err(
                at(base, "security_groups"),
                "an ALB needs at least one security group of this template (without one AWS \
                 attaches the VPC's default group, which the environment does not own)",
            );
        }
        // Target groups first: listeners refer to them.
        let tbase = at(base, "target_groups");
        let tgs = self.alb_target_groups(&tbase, a, pools);
        self.alb_node_port(&tbase, a);
        let (listeners, used) = self.alb_listeners(base, a);
        for (i, t) in a.target_groups.iter().enumerate() {
            if !used.contains(t.name.as_str()) {
                self.warn(
                    at(&idx(&tbase, i), "name"),
                    format!("target group `{}` is not used by any listener", t.name),
                );
            }
        }
        Some(Alb {
            name: name?,
            vpc: vpc?,
            subnets: a.subnets,
            security_groups: groups,
            listeners,
            target_groups: tgs,
        })
    }

    fn alb_target_groups(
        &mut self,
        tbase: &str,
        a: &RawAlb,
        pools: &[NodePool],
    ) -> Vec<TargetGroup> {
        self.unique_names(
            tbase,
            a.target_groups.iter().map(|t| t.name.as_str()),
            "target group",
        );
        let mut tgs = Vec::new();
        for (i, t) in a.target_groups.iter().enumerate() {
            let p = idx(tbase, i);
            let name = self.name(&at(&p, "name"), &t.name);
            self.aws_name_len(&at(&p, "name"), &format!("{}-{}", a.name, t.name));
            let pool = self.pool_ref(&at(&p, "pool"), &t.pool, &a.vpc);
            let port = self.port(&at(&p, "port"), t.port);
            if let (Some(pool), Some(port)) = (&pool, port) {
                self.allowed_warning(&at(&p, "port"), pools, pool, port, "ALB");
            }
            let hc = self.http_health_check(&at(&p, "health_check"), &t.health_check);
            if let (Some(name), Some(pool), Some(port), Some(health_check)) = (name, pool, port, hc)
            {
                tgs.push(TargetGroup {
                    name,
                    pool,
                    port,
                    health_check,
                });
            }
        }
        tgs
    }

    /// Every target group reaches the one proximity-service NodePort.
    fn alb_node_port(&mut self, tbase: &str, a: &RawAlb) {
        let mut first_port: Option<(usize, i64)> = None;
        for (i, t) in a.target_groups.iter().enumerate() {
            let path = at(&idx(tbase, i), "port");
            if !(1..=65535).contains(&t.port) {
                continue; // reported above
            }
            if !(30000..=32767).contains(&t.port) {
                self.err(
                    &path,
                    format!(
                        "{} is outside the Kubernetes NodePort range 30000-32767; the workload is exposed to the ALB through a NodePort Service",
                        t.port
                    ),
                );
            } else if let Some((j, p)) = first_port {
                if p != t.port {
                    self.err(
                        &path,
                        format!(
                            "{} differs from target_groups[{j}] ({p}); every target group reaches the one NodePort of the service",
                            t.port
                        ),
                    );
                }
            } else {
                first_port = Some((i, t.port));
            }
        }
    }

    /// The listeners and the names of the target groups they use.
    fn alb_listeners(&mut self, base: &str, a: &'a RawAlb) -> (Vec<AlbListener>, HashSet<&'a str>) {
        let tg_names: HashSet<&str> = a.target_groups.iter().map(|t| t.name.as_str()).collect();
        let mut used: HashSet<&str> = HashSet::new();
        let mut listeners = Vec::new();
        let mut ports = HashMap::new();
        if a.listeners.is_empty() {
            self.err(at(base, "listeners"), "an ALB needs at least one listener");
        }
        for (i, l) in a.listeners.iter().enumerate() {
            let lb = idx(&at(base, "listeners"), i);
            let port = self.port(&at(&lb, "port"), l.port);
            if let Some(p) = port {
                if let Some(first) = ports.insert(p, i) {
                    self.err(
                        at(&lb, "port"),
                        format!("port {p} already used by listeners[{first}]"),
                    );
                }
            }
            let mut tg = |me: &mut Self, path: String, t: &'a str| -> Option<Name> {
                if tg_names.contains(t) {
                    used.insert(t);
                    Name::parse(t).ok()
                } else {
                    let list = list_names(tg_names.iter().copied());
                    me.err(path, format!("unknown target group `{t}` ({list})"));
                    None
                }
            };
            let default_target = tg(self, at(&lb, "default_target"), &l.default_target);
            let mut rules = Vec::new();
            if l.rules.len() > 100 {
                self.err(at(&lb, "rules"), "at most 100 rules per listener");
            }
            let mut patterns = HashMap::new();
            for (j, r) in l.rules.iter().enumerate() {
                let rp = idx(&at(&lb, "rules"), j);
                let pat = &r.path_pattern;
                if !pat.starts_with('/') || pat.len() > 128 || pat.contains(char::is_whitespace) {
                    self.err(
                        at(&rp, "path_pattern"),
                        format!("`{pat}` must start with `/`, have no spaces and be at most 128 characters"),
                    );
                }
                if let Some(first) = patterns.insert(pat.as_str(), j) {
                    self.err(
                        at(&rp, "path_pattern"),
                        format!("`{pat}` repeats rules[{first}]"),
                    );
                }
                if let Some(target) = tg(self, at(&rp, "target"), &r.target) {
                    rules.push(PathRule {
                        priority: (j + 1) as u16,
                        path_pattern: pat.clone(),
                        target,
                    });
                }
            }
            if let (Some(port), Some(default_target)) = (port, default_target) {
                listeners.push(AlbListener {
                    port,
                    default_target,
                    rules,
                });
            }
        }
        (listeners, used)
    }

    fn http_health_check(&mut self, base: &str, h: &RawHttpHealthCheck) -> Option<HttpHealthCheck> {
        let path = h.path.clone().unwrap_or_else(|| "/".to_owned());
        let mut ok = true;
        if !path.starts_with('/') || path.len() > 1024 || path.contains(char::is_whitespace) {
            self.err(
                at(base, "path"),
                format!("`{path}` must start with `/` and have no spaces"),
            );
            ok = false;
        }
        let interval = self.int_in(&at(base, "interval"), h.interval.unwrap_or(30), 5, 300);
        let timeout = self.int_in(&at(base, "timeout"), h.timeout.unwrap_or(5), 2, 120);
        if let (Some(i), Some(t)) = (interval, timeout) {
            if t >= i {
                self.err(
                    at(base, "timeout"),
                    format!("timeout {t}s must be shorter than the interval {i}s"),
                );
                ok = false;
            }
        }
        let healthy = self.int_in(
            &at(base, "healthy_threshold"),
            h.healthy_threshold.unwrap_or(5),
            2,
            10,
        );
        let unhealthy = self.int_in(
            &at(base, "unhealthy_threshold"),
            h.unhealthy_threshold.unwrap_or(2),
            2,
            10,
        );
        let matcher = h.matcher.clone().unwrap_or_else(|| "200".to_owned());
        if !valid_matcher(&matcher) {
            self.err(
                at(base, "matcher"),
                format!("`{matcher}` is not an HTTP code list like `200`, `200,204` or `200-299`"),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        Some(HttpHealthCheck {
            path,
            interval_secs: interval? as u16,
            timeout_secs: timeout? as u16,
            healthy_threshold: healthy? as u8,
            unhealthy_threshold: unhealthy? as u8,
            matcher,
        })
    }
}

fn valid_matcher(s: &str) -> bool {
    let code = |c: &str| c.len() == 3 && c.parse::<u16>().is_ok_and(|n| (200..=499).contains(&n));
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => code(a) && code(b) && a <= b,
        None => code(part),
    })
}

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;
    use crate::template::*;

    #[test]
    fn load_balancer_rules() {
        let e = errs(
            &edit(
                "subnets: public\n    security_groups: [alb]",
                "subnets: public\n    security_groups: [alb]",
            )
            .replace(
                "{name: pub-b, kind: public, az_index: 1,",
                "{name: pub-b, kind: public, az_index: 0,",
            ),
        );
        assert_err(&e, "load_balancers.alb.subnets", "at least two AZs");
        let e = errs(&edit(
            "subnets: public\n    security_groups: [alb]",
            "subnets: public\n    security_groups: []",
        ));
        assert_err(
            &e,
            "load_balancers.alb.security_groups",
            "at least one security group",
        );
        let e = errs(&edit(
            "listeners: [{port: 6443, target_pool: servers}]",
            "listeners: [{port: 6443, target_pool: servers}, {port: 6443, target_pool: agents}]",
        ));
        assert_err(&e, "load_balancers.nlb.listeners[1].port", "already used");
        let e = errs(&edit(
            "rules: [{path_pattern: /v1/*, target: web}]",
            "rules: [{path_pattern: v1, target: web}]",
        ));
        assert_err(
            &e,
            "load_balancers.alb.listeners[0].rules[0].path_pattern",
            "must start with `/`",
        );
        let e = errs(&edit(
            "health_check: {path: /readyz}",
            "health_check: {path: /readyz, interval: 5, timeout: 5}",
        ));
        assert_err(
            &e,
            "load_balancers.alb.target_groups[0].health_check.timeout",
            "shorter than the interval",
        );
        let e = errs(&edit(
            "health_check: {path: /readyz}",
            "health_check: {healthy_threshold: 11}",
        ));
        assert_err(
            &e,
            "load_balancers.alb.target_groups[0].health_check.healthy_threshold",
            "2..=10",
        );
        let t = ok(&edit("name: t\n", "name: a-very-long-environment-name-x\n"));
        assert!(
            has_warning(
                &t.warnings,
                "load_balancers.alb.name",
                "shortened with a hash suffix"
            ),
            "{:?}",
            t.warnings
        );
        assert!(has_warning(
            &t.warnings,
            "load_balancers.alb.target_groups[0].name",
            "a-very-long-environment-name-x-web-web"
        ));
        // The pool's groups do not open the target port.
        let t = ok(&edit("ports: \"30000-32767\"", "ports: \"30000-30079\""));
        assert!(
            has_warning(
                &t.warnings,
                "load_balancers.alb.target_groups[0].port",
                "allows tcp/30080"
            ),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn alb_target_ports_are_the_services_node_port() {
        let e = errs(&edit("port: 30080", "port: 8080"));
        assert_err(
            &e,
            "load_balancers.alb.target_groups[0].port",
            "NodePort range 30000-32767",
        );
        let e = errs(&edit(
        "      - {name: web, pool: agents, port: 30080, health_check: {path: /readyz}}\n",
        "      - {name: web, pool: agents, port: 30080, health_check: {path: /readyz}}\n      - {name: web2, pool: agents, port: 30081}\n",
    ));
        assert_err(
            &e,
            "load_balancers.alb.target_groups[1].port",
            "30081 differs from target_groups[0] (30080)",
        );
    }

    #[test]
    fn load_balancers_get_one_subnet_per_az() {
        let t = ok(&edit(
        "      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}\n",
        "      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}\n      - {name: pub-a2, kind: public, az_index: 0, cidr: 10.0.2.0/24}\n",
    ));
        let vpc = t.env.vpc(&t.env.vpcs[0].name).unwrap();
        let names: Vec<&str> = vpc
            .load_balancer_subnets(SubnetKind::Public)
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["pub-a", "pub-b"]);
        // The rules admitting the ALB by CIDR follow the same choice.
        assert_eq!(
            t.env.load_balancer_subnet_cidrs(LbKind::Alb).len(),
            2,
            "{:?}",
            t.env.load_balancer_subnet_cidrs(LbKind::Alb)
        );
    }

    #[test]
    fn target_group_names_of_the_two_load_balancers_do_not_clash() {
        // NLB `web-a`, port 6443 → `web-a-6443`; ALB `web`, group `a-6443` → `web-a-6443`.
        let src = BASE
            .replacen("    name: api\n", "    name: web-a\n", 1)
            .replace("default_target: web", "default_target: a-6443")
            .replace("target: web}", "target: a-6443}")
            .replace("{name: web, pool: agents", "{name: a-6443, pool: agents");
        let e = errs(&src);
        assert_err(
            &e,
            "load_balancers.alb.target_groups[0].name",
            "the NLB's for port 6443",
        );
    }
}
