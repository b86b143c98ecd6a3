//! `dns`: the zone, its VPCs, records (alias or values), routing policies, Route 53 health
//! checks, and the rules between records of one name.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{at, idx, Checker};
use crate::template::model::*;
use crate::template::raw::*;

impl<'s, 'a> Checker<'s, 'a> {
    pub(super) fn dns(&mut self, d: &RawDns, lbs: &LoadBalancers) -> Option<Dns> {
        let zone = DomainName::parse(&d.zone)
            .map_err(|e| self.err("dns.zone", e))
            .ok();
        if let Some(z) = &zone {
            if !z.as_str().contains('.') {
                self.err(
                    "dns.zone",
                    format!("`{z}` is a top-level domain; use a zone below one"),
                );
            }
        }
        let vpcs = match (&d.vpcs, d.private) {
            (Some(_), false) => {
                self.err("dns.vpcs", "only private zones are associated with VPCs");
                Vec::new()
            }
            (Some(list), true) => {
                let mut out = Vec::new();
                if list.is_empty() {
                    self.err("dns.vpcs", "a private zone needs at least one VPC");
                }
                for (i, v) in list.iter().enumerate() {
                    if let Some(n) = self.vpc_ref(&idx("dns.vpcs", i), v) {
                        out.push(n);
                    }
                }
                out
            }
            (None, true) => {
                if self.raw.vpcs.is_empty() {
                    self.err(
                        "dns.private",
                        "a private zone needs a VPC; none are declared",
                    );
                }
                self.raw
                    .vpcs
                    .iter()
                    .filter_map(|v| Name::parse(&v.name).ok())
                    .collect()
            }
            (None, false) => Vec::new(),
        };
        let zone = zone?;
        let mut records: Vec<(usize, Record)> = Vec::new();
        for (i, r) in d.records.iter().enumerate() {
            let base = idx("dns.records", i);
            if let Some(rec) = self.record(&base, r, &zone, d.private, lbs) {
                records.push((i, rec));
            }
        }
        self.record_sets(&records);
        Some(Dns {
            zone,
            private: d.private,
            vpcs,
            records: records.into_iter().map(|(_, r)| r).collect(),
        })
    }

    fn record(
        &mut self,
        base: &str,
        r: &RawRecord,
        zone: &DomainName,
        private: bool,
        lbs: &LoadBalancers,
    ) -> Option<Record> {
        let npath = at(base, "name");
        let name = if r.name == "@" {
            Some(zone.clone())
        } else if let Some(abs) = r.name.strip_suffix('.') {
            match DomainName::parse(abs) {
                Ok(n) if n.is_within(zone) => Some(n),
                Ok(n) => {
                    self.err(&npath, format!("`{n}` is not inside the zone `{zone}`"));
                    None
                }
                Err(e) => {
                    self.err(&npath, e);
                    None
                }
            }
        } else {
            DomainName::parse(&format!("{}.{zone}", r.name))
                .map_err(|e| self.err(&npath, e))
                .ok()
        };
        if let Some(n) = &name {
            if r.rtype == RecordType::CNAME && n == zone {
                self.err(&npath, "a CNAME cannot be at the zone apex");
            }
        }
        let target = match (&r.alias, &r.values) {
            (Some(kind), None) => {
                let present = match kind {
                    LbKind::Nlb => lbs.nlb.is_some(),
                    LbKind::Alb => lbs.alb.is_some(),
                };
                if r.rtype != RecordType::A {
                    self.err(
                        at(base, "alias"),
                        format!(
                            "alias records here are type A (load balancers are IPv4-only), not {}",
                            r.rtype
                        ),
                    );
                    None
                } else if !present {
                    self.err(
                        at(base, "alias"),
                        format!("no `{kind}` is declared under load_balancers"),
                    );
                    None
                } else {
                    if r.ttl.is_some() {
                        self.err(
                            at(base, "ttl"),
                            "alias records take the target's TTL; remove `ttl`",
                        );
                    }
                    Some(RecordTarget::Alias {
                        lb: *kind,
                        evaluate_target_health: r.evaluate_target_health.unwrap_or(false),
                    })
                }
            }
            (None, Some(values)) => {
                if r.evaluate_target_health.is_some() {
                    self.err(
                        at(base, "evaluate_target_health"),
                        "only alias records evaluate target health",
                    );
                }
                self.values(&at(base, "values"), r.rtype, values)
                    .map(RecordTarget::Values)
            }
            _ => {
                self.err(base, "give exactly one of `alias` and `values`");
                None
            }
        };
        let ttl = match (&target, r.ttl) {
            (Some(RecordTarget::Values(_)), t) => self
                .int_in(&at(base, "ttl"), t.unwrap_or(300), 0, 2_147_483_647)
                .map(|t| Some(t as u32)),
            _ => Some(None),
        };
        let routing = match &r.routing {
            None => Some(Routing::Simple),
            Some(rr) => self.routing(&at(base, "routing"), rr, private, lbs),
        };
        Some(Record {
            name: name?,
            rtype: r.rtype,
            target: target?,
            routing: routing?,
            ttl: ttl?,
        })
    }

    fn values(&mut self, path: &str, rtype: RecordType, values: &[String]) -> Option<Vec<String>> {
        if values.is_empty() {
            self.err(path, "at least one value is needed");
            return None;
        }
        let mut ok = true;
        if rtype == RecordType::CNAME && values.len() != 1 {
            self.err(path, "a CNAME has exactly one value");
            ok = false;
        }
        for (i, v) in values.iter().enumerate() {
            let vp = idx(path, i);
            let good = match rtype {
                RecordType::A => v.parse::<Ipv4Addr>().is_ok(),
                RecordType::AAAA => v.parse::<Ipv6Addr>().is_ok(),
                RecordType::CNAME => DomainName::parse(v).is_ok() && v.parse::<IpAddr>().is_err(),
            };
            if !good {
                let want = match rtype {
                    RecordType::A => "an IPv4 address",
                    RecordType::AAAA => "an IPv6 address",
                    RecordType::CNAME => "a domain name",
                };
                self.err(vp, format!("`{v}` is not {want}"));
                ok = false;
            }
        }
        ok.then(|| values.to_vec())
    }

    fn set_id(&mut self, path: &str, s: &str) -> Option<String> {
        if s.is_empty() || s.len() > 128 {
            self.err(path, "set_id must be 1..=128 characters");
            None
        } else {
            Some(s.to_owned())
        }
    }

    fn routing(
        &mut self,
        base: &str,
        r: &RawRouting,
        private: bool,
        lbs: &LoadBalancers,
    ) -> Option<Routing> {
        match (&r.weighted, &r.failover, &r.latency) {
            (Some(w), None, None) => {
                let p = at(base, "weighted");
                let weight = self.int_in(&at(&p, "weight"), w.weight, 0, 255);
                let set_id = self.set_id(&at(&p, "set_id"), &w.set_id);
                Some(Routing::Weighted {
                    weight: weight? as u8,
                    set_id: set_id?,
                })
            }
            (None, Some(f), None) => {
                let p = at(base, "failover");
                let default_id = match f.role {
                    FailoverRole::Primary => "primary",
                    FailoverRole::Secondary => "secondary",
                };
                let set_id =
                    self.set_id(&at(&p, "set_id"), f.set_id.as_deref().unwrap_or(default_id));
                let health_check = match &f.health_check {
                    None => Some(None),
                    Some(h) => self
                        .dns_health_check(&at(&p, "health_check"), h, private, lbs)
                        .map(Some),
                };
                Some(Routing::Failover {
                    role: f.role,
                    set_id: set_id?,
                    health_check: health_check?,
                })
            }
            (None, None, Some(l)) => {
                let p = at(base, "latency");
                let region = Region::parse(&l.region)
                    .map_err(|e| self.err(at(&p, "region"), e))
                    .ok();
                let set_id = self.set_id(&at(&p, "set_id"), &l.set_id);
                Some(Routing::Latency {
                    region: region?,
                    set_id: set_id?,
                })
            }
            (None, None, None) => {
                self.err(
                    base,
                    "give one of `weighted`, `failover`, `latency` (omit `routing` for simple)",
                );
                None
            }
            _ => {
                self.err(base, "give only one of `weighted`, `failover`, `latency`");
                None
            }
        }
    }

    fn dns_health_check(
        &mut self,
        base: &str,
        h: &RawDnsHealthCheck,
        _private_zone: bool,
        lbs: &LoadBalancers,
    ) -> Option<DnsHealthCheck> {
        let endpoint = match (&h.load_balancer, &h.fqdn, &h.ip) {
            (Some(kind), None, None) => {
                let subnets = match kind {
                    LbKind::Nlb => lbs.nlb.as_ref().map(|n| n.subnets),
                    LbKind::Alb => lbs.alb.as_ref().map(|a| a.subnets),
                };
                match subnets {
                    None => {
                        self.err(
                            at(base, "load_balancer"),
                            format!("no `{kind}` is declared under load_balancers"),
                        );
                        None
                    }
                    Some(s) => {
                        if s == SubnetKind::Private {
                            self.warn(
                                at(base, "load_balancer"),
                                format!("the {kind} is internal; Route 53 health checkers run on the internet and will always see it unhealthy"),
                            );
                        }
                        Some(HealthCheckEndpoint::LoadBalancer(*kind))
                    }
                }
            }
            (None, Some(f), None) => DomainName::parse(f)
                .map_err(|e| self.err(at(base, "fqdn"), e))
                .ok()
                .map(HealthCheckEndpoint::Fqdn),
            (None, None, Some(ip)) => match ip.parse::<IpAddr>() {
                Ok(addr) => {
                    if is_private_ip(&addr) {
                        self.warn(
                            at(base, "ip"),
                            format!("{addr} is not a public address; Route 53 health checkers cannot reach it"),
                        );
                    }
                    Some(HealthCheckEndpoint::Ip(addr))
                }
                Err(_) => {
                    self.err(at(base, "ip"), format!("`{ip}` is not an IP address"));
                    None
                }
            },
            _ => {
                self.err(base, "give exactly one of `load_balancer`, `fqdn`, `ip`");
                None
            }
        };
        let default_port = match h.protocol {
            HealthCheckProtocol::Https => 443,
            _ => 80,
        };
        let port = self.port(&at(base, "port"), h.port.unwrap_or(default_port));
        let path = match (h.protocol, &h.path) {
            (HealthCheckProtocol::Tcp, Some(_)) => {
                self.err(at(base, "path"), "TCP health checks have no path");
                None
            }
            (HealthCheckProtocol::Tcp, None) => Some(None),
            (_, p) => {
                let p = p.clone().unwrap_or_else(|| "/".to_owned());
                if p.starts_with('/') && !p.contains(char::is_whitespace) && p.len() <= 255 {
                    Some(Some(p))
                } else {
                    self.err(
                        at(base, "path"),
                        format!("`{p}` must start with `/` and have no spaces"),
                    );
                    None
                }
            }
        };
        let interval = match h.interval.unwrap_or(30) {
            i @ (10 | 30) => Some(i as u8),
            i => {
                self.err(
                    at(base, "interval"),
                    format!("Route 53 checks every 10 or 30 seconds, not {i}"),
                );
                None
            }
        };
        let threshold = self.int_in(
            &at(base, "failure_threshold"),
            h.failure_threshold.unwrap_or(3),
            1,
            10,
        );
        Some(DnsHealthCheck {
            protocol: h.protocol,
            endpoint: endpoint?,
            port: port?,
            path: path?,
            request_interval_secs: interval?,
            failure_threshold: threshold? as u8,
        })
    }

    /// Rules between records: sets sharing a name and type, CNAME conflicts,
    /// failover pairs.
    fn record_sets(&mut self, records: &[(usize, Record)]) {
        let mut by_key: BTreeMap<(&str, RecordType), Vec<(usize, &Record)>> = BTreeMap::new();
        for (i, r) in records {
            by_key
                .entry((r.name.as_str(), r.rtype))
                .or_default()
                .push((*i, r));
        }
        for ((name, rtype), set) in &by_key {
            let (first_i, first) = set[0];
            for &(i, r) in &set[1..] {
                let path = idx("dns.records", i);
                if std::mem::discriminant(&r.routing) != std::mem::discriminant(&first.routing)
                    || matches!(r.routing, Routing::Simple)
                {
                    self.err(
                        at(&path, "routing"),
                        format!(
                            "{name} {rtype} is also defined at dns.records[{first_i}]; records sharing a name and type must all use the same weighted/failover/latency routing"
                        ),
                    );
                } else if let Some((j, _)) =
                    set.iter().find(|(j, o)| *j < i && o.set_id() == r.set_id())
                {
                    self.err(
                        at(&path, "routing"),
                        format!(
                            "set_id `{}` is already used by dns.records[{j}]",
                            r.set_id().unwrap_or("")
                        ),
                    );
                }
            }
            // Failover: one primary, one secondary.
            let mut roles: HashMap<FailoverRole, usize> = HashMap::new();
            for &(i, r) in set {
                if let Routing::Failover {
                    role, health_check, ..
                } = &r.routing
                {
                    if let Some(j) = roles.insert(*role, i) {
                        self.err(
                            at(&idx("dns.records", i), "routing.failover.role"),
                            format!(
                                "{name} {rtype} already has a {} record at dns.records[{j}]",
                                role.as_route53().to_lowercase()
                            ),
                        );
                    }
                    let evaluates = matches!(
                        r.target,
                        RecordTarget::Alias {
                            evaluate_target_health: true,
                            ..
                        }
                    );
                    if *role == FailoverRole::Primary && health_check.is_none() && !evaluates {
                        self.warn(
                            at(&idx("dns.records", i), "routing.failover"),
                            "a primary without a health check (or alias evaluate_target_health) never fails over",
                        );
                    }
                }
            }
            if !roles.is_empty() && roles.len() == 1 {
                let (&role, &i) = roles.iter().next().expect("one role");
                self.warn(
                    at(&idx("dns.records", i), "routing.failover.role"),
                    format!(
                        "{name} {rtype} has a {} record but no partner",
                        role.as_route53().to_lowercase()
                    ),
                );
            }
        }
        // CNAME excludes any other record at the same name.
        let mut names: HashMap<&str, Vec<(usize, RecordType)>> = HashMap::new();
        for (i, r) in records {
            names
                .entry(r.name.as_str())
                .or_default()
                .push((*i, r.rtype));
        }
        for (name, list) in names {
            if list.iter().any(|(_, t)| *t == RecordType::CNAME)
                && list.iter().any(|(_, t)| *t != RecordType::CNAME)
            {
                let (i, _) = list
                    .iter()
                    .find(|(_, t)| *t == RecordType::CNAME)
                    .copied()
                    .expect("a CNAME");
                self.err(
                    at(&idx("dns.records", i), "type"),
                    format!("`{name}` has a CNAME and other records; a CNAME must stand alone"),
                );
            }
        }
    }
}

fn is_private_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;
    use crate::template::*;

    const RECORDS: &str = "    - {name: api, type: A, alias: alb}\n";

    fn with_records(records: &str) -> String {
        edit(RECORDS, records)
    }

    #[test]
    fn dns_records() {
        let e = errs(&with_records("    - {name: k8s, type: A, alias: nlb, ttl: 60}\n    - {name: www, type: CNAME, values: [a.example.com, b.example.com]}\n    - {name: x, type: A, values: [\"::1\"]}\n    - {name: y.other.org., type: A, values: [10.0.0.1]}\n    - {name: z, type: AAAA, alias: alb}\n    - {name: \"@\", type: CNAME, values: [a.example.com]}\n"));
        assert_err(&e, "dns.records[0].ttl", "remove `ttl`");
        assert_err(&e, "dns.records[1].values", "exactly one value");
        assert_err(&e, "dns.records[2].values[0]", "not an IPv4 address");
        assert_err(&e, "dns.records[3].name", "not inside the zone");
        assert_err(&e, "dns.records[4].alias", "type A");
        assert_err(&e, "dns.records[5].name", "apex");

        let src = BASE.replace("  nlb:\n    name: api\n    vpc: main\n    subnets: private\n    listeners: [{port: 6443, target_pool: servers}]\n", "")
        .replace("source: {load_balancer: nlb}", "source: {cidr: 10.0.0.0/16}")
        .replace(RECORDS, "    - {name: k8s, type: A, alias: nlb}\n");
        let e = errs(&src);
        assert_err(&e, "dns.records[0].alias", "no `nlb`");

        let t = ok(&with_records("    - {name: a.t.example.internal., type: A, values: [10.0.0.1], ttl: 30}\n    - {name: \"@\", type: A, values: [10.0.0.2]}\n"));
        let recs = &t.env.dns.as_ref().unwrap().records;
        assert_eq!(recs[0].name.as_str(), "a.t.example.internal");
        assert_eq!(recs[0].ttl, Some(30));
        assert_eq!(recs[1].name.as_str(), "t.example.internal");
        assert_eq!(recs[1].ttl, Some(300));
    }

    #[test]
    fn dns_routing_policies() {
        let t = ok(&with_records(concat!(
        "    - {name: w, type: A, values: [10.0.0.1], routing: {weighted: {weight: 80, set_id: blue}}}\n",
        "    - {name: w, type: A, values: [10.0.0.2], routing: {weighted: {weight: 20, set_id: green}}}\n",
        "    - {name: f, type: A, alias: alb, routing: {failover: {role: primary, health_check: {protocol: http, load_balancer: alb, path: /healthz}}}}\n",
        "    - {name: f, type: A, values: [10.0.0.9], routing: {failover: {role: secondary}}}\n",
        "    - {name: l, type: A, values: [10.0.0.3], routing: {latency: {region: us-east-1, set_id: use1}}}\n",
        "    - {name: l, type: A, values: [10.0.0.4], routing: {latency: {region: eu-west-1, set_id: euw1}}}\n",
    )));
        let recs = &t.env.dns.as_ref().unwrap().records;
        assert_eq!(recs[0].set_id(), Some("blue"));
        match &recs[2].routing {
            Routing::Failover {
                role,
                set_id,
                health_check,
            } => {
                assert_eq!(*role, FailoverRole::Primary);
                assert_eq!(set_id, "primary");
                let hc = health_check.as_ref().unwrap();
                assert_eq!(hc.endpoint, HealthCheckEndpoint::LoadBalancer(LbKind::Alb));
                assert_eq!(hc.port.get(), 80);
                assert_eq!(hc.path.as_deref(), Some("/healthz"));
            }
            other => panic!("{other:?}"),
        }
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);

        let e = errs(&with_records(concat!(
        "    - {name: w, type: A, values: [10.0.0.1], routing: {weighted: {weight: 80, set_id: blue}}}\n",
        "    - {name: w, type: A, values: [10.0.0.2], routing: {weighted: {weight: 300, set_id: blue}}}\n",
        "    - {name: w, type: A, values: [10.0.0.3]}\n",
        "    - {name: f, type: A, values: [10.0.0.4], routing: {failover: {role: primary, set_id: a}}}\n",
        "    - {name: f, type: A, values: [10.0.0.5], routing: {failover: {role: primary, set_id: b, health_check: {protocol: tcp, ip: 198.51.100.7, path: /x, interval: 20}}}}\n",
        "    - {name: l, type: A, values: [10.0.0.6], routing: {latency: {region: moon-1, set_id: m}}}\n",
        "    - {name: m, type: A, values: [10.0.0.7], routing: {weighted: {weight: 1, set_id: a}, latency: {region: us-east-1, set_id: b}}}\n",
        "    - {name: c, type: CNAME, values: [x.example.com]}\n",
        "    - {name: c, type: A, values: [10.0.0.8]}\n",
        "    - {name: d, type: A, values: [10.0.0.9], routing: {weighted: {weight: 1, set_id: a}}}\n",
        "    - {name: d, type: A, values: [10.0.0.10], routing: {weighted: {weight: 1, set_id: a}}}\n",
    )));
        assert_err(&e, "dns.records[1].routing.weighted.weight", "0..=255");
        assert_err(
            &e,
            "dns.records[2].routing",
            "same weighted/failover/latency routing",
        );
        assert_err(
            &e,
            "dns.records[4].routing.failover.health_check.path",
            "no path",
        );
        assert_err(
            &e,
            "dns.records[4].routing.failover.health_check.interval",
            "10 or 30",
        );
        assert_err(&e, "dns.records[5].routing.latency.region", "moon-1");
        assert_err(&e, "dns.records[6].routing", "only one of");
        assert_err(&e, "dns.records[7].type", "must stand alone");
        assert_err(
            &e,
            "dns.records[10].routing",
            "set_id `a` is already used by dns.records[9]",
        );
    }

    #[test]
    fn failover_pairs() {
        let e = errs(&with_records(concat!(
        "    - {name: f, type: A, alias: alb, routing: {failover: {role: primary}}}\n",
        "    - {name: f, type: A, values: [10.0.0.1], routing: {failover: {role: primary, set_id: p2}}}\n",
    )));
        assert_err(
            &e,
            "dns.records[1].routing.failover.role",
            "already has a primary",
        );
        let t = ok(&with_records(
            "    - {name: f, type: A, values: [10.0.0.1], routing: {failover: {role: primary}}}\n",
        ));
        assert!(
            has_warning(
                &t.warnings,
                "dns.records[0].routing.failover",
                "never fails over"
            ),
            "{:?}",
            t.warnings
        );
        assert!(
            has_warning(
                &t.warnings,
                "dns.records[0].routing.failover.role",
                "no partner"
            ),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn dns_zone_rules() {
        let e = errs(&edit("zone: t.example.internal", "zone: internal"));
        assert_err(&e, "dns.zone", "top-level");
        let e = errs(&edit("private: true", "private: false\n  vpcs: [main]"));
        assert_err(&e, "dns.vpcs", "only private zones");
        let e = errs(&edit("private: true", "private: true\n  vpcs: [other]"));
        assert_err(&e, "dns.vpcs[0]", "unknown VPC `other`");
    }
}
