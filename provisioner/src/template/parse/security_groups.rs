//! `security_groups`: descriptions, ingress rules (protocol, ports, one source: a CIDR, a
//! group in the same or a peered VPC, or a load balancer of the template).

use super::{at, idx, list_names, Checker, Declared};
use crate::template::model::*;
use crate::template::raw::*;

impl<'s, 'a> Checker<'s, 'a> {
    pub(super) fn security_groups(&mut self, raw: &[RawSecurityGroup]) -> Vec<SecurityGroup> {
        self.unique_names(
            "security_groups",
            raw.iter().map(|g| g.name.as_str()),
            "security group",
        );
        let mut out = Vec::new();
        for (i, g) in raw.iter().enumerate() {
            let base = idx("security_groups", i);
            let name = self.name(&at(&base, "name"), &g.name);
            let vpc = self.vpc_ref(&at(&base, "vpc"), &g.vpc);
            let description = match &g.description {
                Some(d) => {
                    if d.trim().is_empty() || d.len() > 255 {
                        self.err(at(&base, "description"), "must be 1..=255 characters");
                    } else if let Some(c) = d.chars().find(|c| !sg_description_char(*c)) {
                        self.err(
                            at(&base, "description"),
                            format!(
                                "{c:?} is not allowed in a security group description (AWS \
                                 takes letters, digits, spaces and ._-:/()#,@[]+=&;{{}}!$*)"
                            ),
                        );
                    }
                    d.clone()
                }
                None => format!("{} ({})", g.name, self.raw.name),
            };
            let mut ingress: Vec<IngressRule> = Vec::new();
            for (j, r) in g.ingress.iter().enumerate() {
                let rbase = idx(&at(&base, "ingress"), j);
                if let Some(rule) = self.rule(&rbase, r, &g.vpc) {
                    if let Some(k) = ingress
                        .iter()
                        .position(|x| x.protocol == rule.protocol && x.source == rule.source)
                    {
                        self.err(
                            &rbase,
                            format!(
                                "duplicate of {base}.ingress[{k}] (AWS rejects duplicate rules)"
                            ),
                        );
                    }
                    ingress.push(rule);
                }
            }
            if let (Some(name), Some(vpc)) = (name, vpc) {
                out.push(SecurityGroup {
                    name,
                    vpc,
                    description,
                    ingress,
                });
            }
        }
        out
    }

    fn rule(&mut self, base: &str, r: &RawRule, vpc: &str) -> Option<IngressRule> {
        let ports_path = at(base, "ports");
        let protocol = match (r.protocol, &r.ports) {
            (RawProtocol::Tcp | RawProtocol::Udp, None) => {
                self.err(
                    &ports_path,
                    "tcp and udp rules need `ports` (e.g. 443 or \"30000-32767\")",
                );
                None
            }
            (RawProtocol::Icmp | RawProtocol::All, Some(_)) => {
                self.err(&ports_path, "`ports` applies only to tcp and udp");
                None
            }
            (RawProtocol::Icmp, None) => Some(Protocol::Icmp),
            (RawProtocol::All, None) => Some(Protocol::All),
            (p, Some(ports)) => self.ports(&ports_path, ports).map(|range| {
                if p == RawProtocol::Tcp {
                    Protocol::Tcp(range)
                } else {
                    Protocol::Udp(range)
                }
            }),
        };
        let spath = at(base, "source");
        let source = match (&r.source.cidr, &r.source.group, r.source.load_balancer) {
            (Some(c), None, None) => self.any_cidr(&at(&spath, "cidr"), c).map(Source::Cidr),
            (None, Some(g), None) => {
                let gpath = at(&spath, "group");
                match self.decl.groups.get(g.as_str()) {
                    None if self.decl.broken.groups.contains(g.as_str()) => None,
                    None => {
                        let list = list_names(self.decl.groups.keys().copied());
                        self.err(gpath, format!("unknown security group `{g}` ({list})"));
                        None
                    }
                    Some(other) if !self.decl.reachable(&other.vpc, vpc) => {
                        self.err(
                            gpath,
                            format!(
                                "security group `{g}` is in VPC `{}`, which is neither `{vpc}` nor peered with it",
                                other.vpc
                            ),
                        );
                        None
                    }
                    Some(_) => Name::parse(g).ok().map(Source::Group),
                }
            }
            (None, None, Some(kind)) => {
                let lpath = at(&spath, "load_balancer");
                match Declared::lb_vpc(self.raw, kind) {
                    None => {
                        self.err(
                            lpath,
                            format!("no `{kind}` is declared under load_balancers"),
                        );
                        None
                    }
                    Some(lb_vpc) if !self.decl.reachable(lb_vpc, vpc) => {
                        self.err(
                            lpath,
                            format!("the {kind} is in VPC `{lb_vpc}`, which is neither `{vpc}` nor peered with it"),
                        );
                        None
                    }
                    Some(_) => Some(Source::LoadBalancer(kind)),
                }
            }
            _ => {
                self.err(
                    &spath,
                    "give exactly one of `cidr`, `group`, `load_balancer`",
                );
                None
            }
        };
        if let Some(d) = &r.description {
            if d.len() > 255 {
                self.err(at(base, "description"), "must be at most 255 characters");
            } else if let Some(c) = d.chars().find(|c| !sg_description_char(*c)) {
                self.err(
                    at(base, "description"),
                    format!(
                        "{c:?} is not allowed in a rule description (AWS takes letters, \
                         digits, spaces and ._-:/()#,@[]+=&;{{}}!$*)"
                    ),
                );
            }
        }
        Some(IngressRule {
            protocol: protocol?,
            source: source?,
            description: r.description.clone(),
        })
    }

    fn ports(&mut self, path: &str, ports: &RawPorts) -> Option<PortRange> {
        match ports {
            RawPorts::Single(p) => self.port(path, *p).map(PortRange::single),
            RawPorts::Text(t) => {
                let parsed = match t.split_once('-') {
                    Some((a, b)) => a
                        .trim()
                        .parse::<i64>()
                        .ok()
                        .zip(b.trim().parse::<i64>().ok()),
                    None => t.trim().parse::<i64>().ok().map(|p| (p, p)),
                };
                let Some((a, b)) = parsed else {
                    self.err(
                        path,
                        format!("`{t}` is not a port or a range like \"30000-32767\""),
                    );
                    return None;
                };
                let (a, b) = (self.port(path, a)?, self.port(path, b)?);
                PortRange::new(a.get(), b.get())
                    .map_err(|e| self.err(path, e))
                    .ok()
            }
        }
    }
}

/// The characters AWS accepts in a VPC security group's description.
fn sg_description_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;
    use crate::template::*;

    #[test]
    fn security_rule_ports() {
        for (ports, needle) in [
            ("0", "outside 1..=65535"),
            ("70000", "outside 1..=65535"),
            ("\"200-100\"", "reversed"),
            ("\"80-x\"", "not a port"),
        ] {
            let e = errs(&edit("ports: 80,", &format!("ports: {ports},")));
            assert_err(&e, "security_groups[0].ingress[0].ports", needle);
        }
        let e = errs(&edit(
            "{protocol: tcp, ports: 80,",
            "{protocol: icmp, ports: 80,",
        ));
        assert_err(
            &e,
            "security_groups[0].ingress[0].ports",
            "only to tcp and udp",
        );
        let e = errs(&edit("{protocol: tcp, ports: 80,", "{protocol: udp,"));
        assert_err(&e, "security_groups[0].ingress[0].ports", "need `ports`");
        let t = ok(&edit("{protocol: tcp, ports: 80,", "{protocol: icmp,"));
        assert_eq!(
            t.env.security_groups[0].ingress[0].protocol.ip_protocol(),
            "icmp"
        );
    }

    #[test]
    fn security_rule_sources() {
        let e = errs(&edit(
            "source: {cidr: 0.0.0.0/0}",
            "source: {cidr: 0.0.0.0/0, group: alb}",
        ));
        assert_err(&e, "security_groups[0].ingress[0].source", "exactly one");
        let e = errs(&edit(
            "source: {cidr: 0.0.0.0/0}",
            "source: {cidr: 1.2.3.4/8}",
        ));
        assert_err(&e, "security_groups[0].ingress[0].source.cidr", "host bits");
        let t = ok(&edit(
            "source: {cidr: 0.0.0.0/0}",
            "source: {cidr: \"2001:db8::/32\"}",
        ));
        assert!(matches!(
            t.env.security_groups[0].ingress[0].source,
            Source::Cidr(ipnet::IpNet::V6(_))
        ));
        let e = errs(&edit("{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}", "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}\n      - {protocol: tcp, ports: \"80\", source: {cidr: 0.0.0.0/0}}"));
        assert_err(&e, "security_groups[0].ingress[1]", "duplicate of");
        // A load balancer that is not declared.
        let src = BASE.replace("  nlb:\n    name: api\n    vpc: main\n    subnets: private\n    listeners: [{port: 6443, target_pool: servers}]\n", "");
        let e = errs(&src);
        assert_err(
            &e,
            "security_groups[1].ingress[0].source.load_balancer",
            "no `nlb`",
        );
    }

    #[test]
    fn security_group_in_another_unpeered_vpc() {
        let src = with_second_vpc("10.1.0.0/16", false).replace(
        "node_pools:",
        "  - name: db\n    vpc: data\n    ingress: [{protocol: tcp, ports: 5432, source: {group: agent}}]\nnode_pools:",
    );
        let e = errs(&src);
        assert_err(
            &e,
            "security_groups[3].ingress[0].source.group",
            "neither `data` nor peered",
        );
        let peered = with_second_vpc("10.1.0.0/16", true).replace(
        "node_pools:",
        "  - name: db\n    vpc: data\n    ingress: [{protocol: tcp, ports: 5432, source: {group: agent}}]\nnode_pools:",
    );
        ok(&peered);
    }

    #[test]
    fn descriptions_take_only_what_aws_takes() {
        let e = errs(&edit(
            "  - name: alb\n    vpc: main\n",
            "  - name: alb\n    vpc: main\n    description: the ALB's group\n",
        ));
        assert_err(&e, "security_groups[0].description", "'\\'' is not allowed");
        let e = errs(&edit(
            "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}",
            "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}, description: 100% of the web}",
        ));
        assert_err(
            &e,
            "security_groups[0].ingress[0].description",
            "'%' is not allowed",
        );
        ok(&edit(
        "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}",
        "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}, description: \"HTTP (all): web/api #1\"}",
    ));
    }
}
