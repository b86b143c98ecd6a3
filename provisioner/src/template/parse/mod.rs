//! raw → model: every check that needs no AWS call. All problems are
//! collected; the model is built only when there is none.
//!
//! One file per section of the template, each adding its checks to the one `Checker`:
//! `vpcs` (and peerings), `security_groups`, `node_pools`, `load_balancers`, `dns`,
//! `cluster` (and the environment's tags and name); `shape` keeps one shape error from
//! hiding the others. This file holds the top-level `parse`, the checker, references
//! between sections, scalars and the checks across sections.

mod cluster;
mod dns;
mod load_balancers;
mod node_pools;
mod security_groups;
mod shape;
mod vpcs;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

use super::diag::{Diagnostic, Sink};
use super::model::*;
use super::raw::*;

/// Parses and validates; `Err` holds every error (and the warnings).
pub(crate) fn parse(
    source: &str,
    file: &Path,
    region_override: Option<&str>,
) -> Result<(Environment, Vec<Diagnostic>), super::TemplateErrors> {
    let mut sink = Sink::new(file);
    let mut raw: RawEnvironment = match serde_norway::from_str(source) {
        Ok(raw) => raw,
        Err(err) => {
            sink.yaml(&err, "");
            shape::more_shape_errors(&mut sink, source);
            shape::check_the_rest(&mut sink, source, region_override);
            super::locate::fill(source, &mut sink.errors);
            super::locate::fill(source, &mut sink.warnings);
            return Err(sink.finish());
        }
    };
    if let Some(region) = region_override {
        raw.region = region.to_owned();
    }
    let env = Checker::new(&mut sink, &raw).run(&raw);
    super::locate::fill(source, &mut sink.errors);
    super::locate::fill(source, &mut sink.warnings);
    match env {
        Some(env) if sink.errors.is_empty() => Ok((env, sink.warnings)),
        _ => Err(sink.finish()),
    }
}

/// Names of items dropped for shape errors (see `shape::check_the_rest`).
#[derive(Default)]
struct Broken {
    vpcs: HashSet<String>,
    groups: HashSet<String>,
    pools: HashSet<String>,
}

fn at(base: &str, key: &str) -> String {
    format!("{base}.{key}")
}

fn idx(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// Names declared in the raw template, used to resolve references without
/// cascading errors from items that failed for other reasons.
struct Declared<'a> {
    vpcs: HashMap<&'a str, &'a RawVpc>,
    groups: HashMap<&'a str, &'a RawSecurityGroup>,
    pools: HashMap<&'a str, &'a RawNodePool>,
    /// Unordered VPC pairs joined by a peering.
    peered: HashSet<(&'a str, &'a str)>,
    /// Items already reported as malformed: references to them are not
    /// errors of their own.
    broken: Broken,
}

impl<'a> Declared<'a> {
    fn new(raw: &'a RawEnvironment) -> Self {
        let mut peered = HashSet::new();
        for p in &raw.peerings {
            peered.insert((p.requester.as_str(), p.accepter.as_str()));
            peered.insert((p.accepter.as_str(), p.requester.as_str()));
        }
        Self {
            vpcs: raw.vpcs.iter().map(|v| (v.name.as_str(), v)).collect(),
            groups: raw
                .security_groups
                .iter()
                .map(|g| (g.name.as_str(), g))
                .collect(),
            pools: raw
                .node_pools
                .iter()
                .map(|p| (p.name.as_str(), p))
                .collect(),
            peered,
            broken: Broken::default(),
        }
    }

    fn reachable(&self, a: &str, b: &str) -> bool {
        a == b || self.peered.contains(&(a, b))
    }

    fn lb_vpc(raw: &'a RawEnvironment, kind: LbKind) -> Option<&'a str> {
        match kind {
            LbKind::Nlb => raw.load_balancers.nlb.as_ref().map(|n| n.vpc.as_str()),
            LbKind::Alb => raw.load_balancers.alb.as_ref().map(|a| a.vpc.as_str()),
        }
    }
}

struct Checker<'s, 'a> {
    sink: &'s mut Sink,
    decl: Declared<'a>,
    raw: &'a RawEnvironment,
    region: Option<Region>,
    env_name: Option<Name>,
}

fn list_names<'x>(it: impl Iterator<Item = &'x str>) -> String {
    let v: Vec<&str> = it.collect();
    if v.is_empty() {
        "none are declared".to_owned()
    } else {
        let mut v = v;
        v.sort_unstable();
        format!("declared: {}", v.join(", "))
    }
}

impl<'s, 'a> Checker<'s, 'a> {
    fn new(sink: &'s mut Sink, raw: &'a RawEnvironment) -> Self {
        Self {
            sink,
            decl: Declared::new(raw),
            raw,
            region: None,
            env_name: None,
        }
    }

    fn err(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.sink.error(path, msg);
    }

    fn warn(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.sink.warn(path, msg);
    }

    fn run(mut self, raw: &'a RawEnvironment) -> Option<Environment> {
        let name = self.name("name", &raw.name);
        self.env_name = name.clone();
        let region = match Region::parse(&raw.region) {
            Ok(r) => Some(r),
            Err(e) => {
                self.err("region", e);
                None
            }
        };
        self.region = region;
        let tags = self.tags(&raw.tags);
        let cluster = self.cluster(&raw.cluster);
        let vpcs = self.vpcs(&raw.vpcs);
        let peerings = self.peerings(&raw.peerings, &vpcs);
        let security_groups = self.security_groups(&raw.security_groups);
        let node_pools = self.node_pools(&raw.node_pools, &vpcs);
        let load_balancers = self.load_balancers(&raw.load_balancers, &vpcs, &node_pools);
        let dns = raw.dns.as_ref().and_then(|d| self.dns(d, &load_balancers));
        self.reserved_prefixes(
            &raw.name,
            !security_groups.is_empty(),
            load_balancers.nlb.is_some() || load_balancers.alb.is_some(),
        );
        let env = Environment {
            name: name?,
            region: region?,
            vpcs,
            peerings,
            security_groups,
            node_pools,
            load_balancers,
            dns,
            cluster: cluster?,
            tags,
        };
        self.cross_checks(&env);
        Some(env)
    }

    // ---- scalars -------------------------------------------------------

    fn name(&mut self, path: &str, s: &str) -> Option<Name> {
        Name::parse(s).map_err(|e| self.err(path, e)).ok()
    }

    fn unique_names<'x>(&mut self, base: &str, names: impl Iterator<Item = &'x str>, what: &str) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, n) in names.enumerate() {
            if let Some(first) = seen.insert(n, i) {
                self.err(
                    at(&idx(base, i), "name"),
                    format!("duplicate {what} name `{n}` (also {base}[{first}])"),
                );
            }
        }
    }

    fn port(&mut self, path: &str, p: i64) -> Option<Port> {
        Port::new(p).map_err(|e| self.err(path, e)).ok()
    }

    fn ipv4_cidr(&mut self, path: &str, s: &str) -> Option<Ipv4Net> {
        match Ipv4Net::from_str(s.trim()) {
            Ok(net) if net.trunc() != net => {
                self.err(
                    path,
                    format!("`{s}` has host bits set (did you mean `{}`?)", net.trunc()),
                );
                None
            }
            Ok(net) => Some(net),
            Err(_) => {
                self.err(path, format!("`{s}` is not an IPv4 CIDR like 10.0.0.0/16"));
                None
            }
        }
    }

    fn any_cidr(&mut self, path: &str, s: &str) -> Option<IpNet> {
        match IpNet::from_str(s.trim()) {
            Ok(net) if net.trunc() != net => {
                self.err(
                    path,
                    format!("`{s}` has host bits set (did you mean `{}`?)", net.trunc()),
                );
                None
            }
            Ok(net) => Some(net),
            Err(_) => {
                self.err(
                    path,
                    format!("`{s}` is not a CIDR like 203.0.113.0/24 or 2001:db8::/32"),
                );
                None
            }
        }
    }

    fn int_in(&mut self, path: &str, v: i64, lo: i64, hi: i64) -> Option<i64> {
        if (lo..=hi).contains(&v) {
            Some(v)
        } else {
            self.err(path, format!("{v} is outside {lo}..={hi}"));
            None
        }
    }

    // ---- references between sections -----------------------------------

    fn vpc_ref(&mut self, path: &str, s: &str) -> Option<Name> {
        if self.decl.vpcs.contains_key(s) {
            Name::parse(s).ok()
        } else if self.decl.broken.vpcs.contains(s) {
            None
        } else {
            let list = list_names(self.decl.vpcs.keys().copied());
            self.err(path, format!("unknown VPC `{s}` ({list})"));
            None
        }
    }

    fn group_ref(&mut self, path: &str, s: &str, vpc: &str) -> Option<Name> {
        match self.decl.groups.get(s) {
            None if self.decl.broken.groups.contains(s) => None,
            None => {
                let list = list_names(self.decl.groups.keys().copied());
                self.err(path, format!("unknown security group `{s}` ({list})"));
                None
            }
            Some(g) if g.vpc != vpc => {
                self.err(
                    path,
                    format!(
                        "security group `{s}` belongs to VPC `{}`, not `{vpc}`",
                        g.vpc
                    ),
                );
                None
            }
            Some(_) => Name::parse(s).ok(),
        }
    }

    fn pool_ref(&mut self, path: &str, s: &str, vpc: &str) -> Option<Name> {
        match self.decl.pools.get(s) {
            None if self.decl.broken.pools.contains(s) => None,
            None => {
                let list = list_names(self.decl.pools.keys().copied());
                self.err(path, format!("unknown node pool `{s}` ({list})"));
                None
            }
            Some(p) if p.vpc != vpc => {
                self.err(
                    path,
                    format!("node pool `{s}` runs in VPC `{}`, not `{vpc}`", p.vpc),
                );
                None
            }
            Some(_) => Name::parse(s).ok(),
        }
    }

    // ---- checks across sections ------------------------------------------

    fn cross_checks(&mut self, env: &Environment) {
        self.api_access(env);
        // Operators must be able to reach the k3s API: through the NLB's own groups when it
        // has some (they filter the clients), else on some server.
        let nlb_groups = env
            .load_balancers
            .nlb
            .as_ref()
            .map(|n| n.security_groups.clone())
            .unwrap_or_default();
        let (api_groups, what): (Vec<&SecurityGroup>, &str) = if nlb_groups.is_empty() {
            let g = env
                .security_groups
                .iter()
                .filter(|g| {
                    env.server_pools()
                        .any(|p| p.security_groups.contains(&g.name))
                })
                .collect();
            (g, "any security group of a k3s-server pool")
        } else {
            let g = env
                .security_groups
                .iter()
                .filter(|g| nlb_groups.contains(&g.name))
                .collect();
            (g, "the NLB's security groups")
        };
        if env.server_pools().next().is_some() {
            for (i, cidr) in env.cluster.operator_cidrs.iter().enumerate() {
                let allowed = api_groups.iter().any(|g| {
                    g.ingress.iter().any(|r| {
                        let port_ok = match r.protocol {
                            Protocol::Tcp(range) => (range.from()..=range.to()).contains(&6443),
                            Protocol::All => true,
                            _ => false,
                        };
                        let src_ok = match &r.source {
                            Source::Cidr(c) => c.contains(cidr),
                            _ => false,
                        };
                        port_ok && src_ok
                    })
                });
                if !allowed {
                    self.warn(
                        idx("cluster.operator_cidrs", i),
                        format!("{cidr} is not allowed to reach tcp/6443 by {what}"),
                    );
                }
            }
        }
        for (i, g) in env.security_groups.iter().enumerate() {
            for (j, r) in g.ingress.iter().enumerate() {
                if let (Source::Cidr(IpNet::V4(c)), Protocol::All) = (&r.source, &r.protocol) {
                    if c.prefix_len() == 0 {
                        self.warn(
                            format!("security_groups[{i}].ingress[{j}]"),
                            "all traffic from anywhere: this defeats the security group",
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;

    #[test]
    fn operators_without_a_path_to_the_k3s_api_warn() {
        let t = ok(&edit(
            "      - {protocol: tcp, ports: 6443, source: {cidr: 203.0.113.0/24}}\n",
            "",
        ));
        assert!(
            has_warning(
                &t.warnings,
                "cluster.operator_cidrs[0]",
                "not allowed to reach tcp/6443"
            ),
            "{:?}",
            t.warnings
        );
        // A wider CIDR covers the operators too.
        let t = ok(&edit(
            "source: {cidr: 203.0.113.0/24}",
            "source: {cidr: 203.0.0.0/16}",
        ));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }
}
