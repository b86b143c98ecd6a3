//! raw → model: every check that needs no AWS call. All problems are
//! collected; the model is built only when there is none.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};
use serde::de::DeserializeOwned;

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
            more_shape_errors(&mut sink, source);
            check_the_rest(&mut sink, source, region_override);
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

/// serde stops at the first shape error; look at each list item and section
/// on its own so one typo does not hide the others.
fn more_shape_errors(sink: &mut Sink, source: &str) {
    let Ok(serde_norway::Value::Mapping(top)) = serde_norway::from_str(source) else {
        return;
    };
    let first = sink
        .errors
        .first()
        .map(|d| d.path.clone())
        .unwrap_or_default();
    fn each<T: DeserializeOwned>(sink: &mut Sink, first: &str, key: &str, v: &serde_norway::Value) {
        let one = |sink: &mut Sink, path: String, v: &serde_norway::Value| {
            if first == path
                || first.starts_with(&format!("{path}."))
                || first.starts_with(&format!("{path}["))
            {
                return;
            }
            if let Err(e) = serde_norway::from_value::<T>(v.clone()) {
                sink.yaml(&e, &path);
            }
        };
        match v {
            serde_norway::Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    one(sink, format!("{key}[{i}]"), item);
                }
            }
            other => one(sink, key.to_owned(), other),
        }
    }
    for (k, v) in &top {
        let Some(key) = k.as_str() else { continue };
        match key {
            "vpcs" => each::<RawVpc>(sink, &first, key, v),
            "peerings" => each::<RawPeering>(sink, &first, key, v),
            "security_groups" => each::<RawSecurityGroup>(sink, &first, key, v),
            "node_pools" => each::<RawNodePool>(sink, &first, key, v),
            "load_balancers" => each::<RawLoadBalancers>(sink, &first, key, v),
            "dns" => each::<RawDns>(sink, &first, key, v),
            "cluster" => each::<RawCluster>(sink, &first, key, v),
            _ => {}
        }
    }
}

/// Top-level lists whose items are checked one by one.
const LISTS: [&str; 4] = ["vpcs", "peerings", "security_groups", "node_pools"];

/// After shape errors confined to list items (the usual typo), drop those
/// items and run the semantic checks on the rest, so that one misspelt key
/// does not hide the other problems. References to a dropped item are not
/// reported again; key paths keep the original indexes.
fn check_the_rest(sink: &mut Sink, source: &str, region_override: Option<&str>) {
    use serde_norway::Value;
    let Ok(Value::Mapping(mut top)) = serde_norway::from_str::<Value>(source) else {
        return;
    };
    let mut broken = Broken::default();
    let mut index_maps: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for key in LISTS {
        let Some(Value::Sequence(items)) = top.get_mut(key) else {
            continue;
        };
        let mut kept = Vec::new();
        let mut map = Vec::new();
        for (i, item) in items.drain(..).enumerate() {
            let ok = match key {
                "vpcs" => serde_norway::from_value::<RawVpc>(item.clone()).is_ok(),
                "peerings" => serde_norway::from_value::<RawPeering>(item.clone()).is_ok(),
                "security_groups" => {
                    serde_norway::from_value::<RawSecurityGroup>(item.clone()).is_ok()
                }
                _ => serde_norway::from_value::<RawNodePool>(item.clone()).is_ok(),
            };
            if ok {
                kept.push(item);
                map.push(i);
            } else {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match key {
                    "vpcs" => broken.vpcs.insert(name),
                    "security_groups" => broken.groups.insert(name),
                    "node_pools" => broken.pools.insert(name),
                    _ => false,
                };
            }
        }
        *items = kept;
        index_maps.insert(key, map);
    }
    let Ok(mut raw) = serde_norway::from_value::<RawEnvironment>(Value::Mapping(top)) else {
        // The shape problem is outside the lists: nothing sound to check.
        return;
    };
    if let Some(region) = region_override {
        raw.region = region.to_owned();
    }
    let (e0, w0) = (sink.errors.len(), sink.warnings.len());
    let mut checker = Checker::new(sink, &raw);
    checker.decl.broken = broken;
    let _ = checker.run(&raw);
    let remap = |d: &mut Diagnostic| {
        for (key, map) in &index_maps {
            let prefix = format!("{key}[");
            let Some(rest) = d.path.strip_prefix(&prefix) else {
                continue;
            };
            let Some((num, tail)) = rest.split_once(']') else {
                continue;
            };
            if let Some(orig) = num.parse::<usize>().ok().and_then(|i| map.get(i)) {
                d.path = format!("{key}[{orig}]{tail}");
            }
        }
    };
    sink.errors[e0..].iter_mut().for_each(remap);
    sink.warnings[w0..].iter_mut().for_each(remap);
}

/// Names of items dropped for shape errors (see [`check_the_rest`]).
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

    /// AWS names are `<env>-<name>`: AWS refuses load balancer names that begin with
    /// `internal-` and security group names that begin with `sg-`.
    fn reserved_prefixes(&mut self, env: &str, groups: bool, load_balancers: bool) {
        for (prefix, used, what) in [
            ("internal", load_balancers, "load balancer"),
            ("sg", groups, "security group"),
        ] {
            if used && (env == prefix || env.starts_with(&format!("{prefix}-"))) {
                self.err(
                    "name",
                    format!(
                        "`{env}` would make {what} names begin with `{prefix}-`, which AWS refuses"
                    ),
                );
            }
        }
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

    fn tags(&mut self, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        for (k, v) in tags {
            let path = format!("tags.{k}");
            if k.is_empty() || k.len() > 128 {
                self.err(&path, "tag keys must be 1..=128 characters");
            }
            if v.len() > 256 {
                self.err(&path, "tag values must be at most 256 characters");
            }
            let lower = k.to_ascii_lowercase();
            if lower.starts_with("aws:") {
                self.err(&path, "the `aws:` prefix is reserved by AWS");
            }
            if lower.starts_with("provisioner:") {
                self.err(
                    &path,
                    "the `provisioner:` prefix is reserved for ownership tags",
                );
            }
            if k.eq_ignore_ascii_case("name") {
                self.err(&path, "`Name` is set by the provisioner on every resource");
            }
        }
        if tags.len() > 40 {
            self.err(
                "tags",
                format!(
                    "{} tags; at most 40 (AWS allows 50, the provisioner uses the rest)",
                    tags.len()
                ),
            );
        }
        tags.clone()
    }

    fn cluster(&mut self, c: &RawCluster) -> Option<Cluster> {
        let mut ok = true;
        if !valid_k3s_version(&c.k3s_version) {
            self.err(
                "cluster.k3s_version",
                format!(
                    "`{}` is not a k3s release like `v1.31.4+k3s1`",
                    c.k3s_version
                ),
            );
            ok = false;
        }
        let mut operator_cidrs = Vec::new();
        for (i, s) in c.operator_cidrs.iter().enumerate() {
            let path = idx("cluster.operator_cidrs", i);
            match self.any_cidr(&path, s) {
                Some(net) => {
                    if net.prefix_len() == 0 {
                        self.warn(
                            &path,
                            "the k3s API is open to the whole internet; name your operators' CIDRs",
                        );
                    }
                    operator_cidrs.push(net);
                }
                None => ok = false,
            }
        }
        let image = c.service_image.trim();
        if let Err(why) = super::check_image_reference(image) {
            self.err(
                "cluster.service_image",
                format!(
                    "`{}` is not a container image reference: {why}",
                    c.service_image
                ),
            );
            ok = false;
        }
        if let Some(m) = &c.k3s_mirror {
            if let Err(why) = super::check_mirror_url(m) {
                self.err("cluster.k3s_mirror", format!("`{m}`: {why}"));
                ok = false;
            }
        }
        ok.then(|| Cluster {
            k3s_version: c.k3s_version.clone(),
            operator_cidrs,
            service_image: image.to_owned(),
            k3s_mirror: c.k3s_mirror.clone(),
            k3s_airgap_images: c.k3s_airgap_images,
        })
    }

    // ---- VPCs ----------------------------------------------------------

    fn vpcs(&mut self, raw: &[RawVpc]) -> Vec<Vpc> {
        self.unique_names("vpcs", raw.iter().map(|v| v.name.as_str()), "VPC");
        let mut out = Vec::new();
        for (i, v) in raw.iter().enumerate() {
            if let Some(vpc) = self.vpc(&idx("vpcs", i), v) {
                out.push(vpc);
            }
        }
        // Overlaps between VPCs that are not peered are allowed (reported);
        // peered ones are an error on the peering.
        for i in 0..out.len() {
            for j in i + 1..out.len() {
                let (a, b) = (&out[i], &out[j]);
                if overlaps4(a.cidr, b.cidr)
                    && !self.decl.reachable(a.name.as_str(), b.name.as_str())
                {
                    let path = format!(
                        "vpcs[{}].cidr",
                        raw.iter()
                            .position(|r| r.name == b.name.as_str())
                            .unwrap_or(j)
                    );
                    let msg = format!(
                        "VPC `{}` ({}) overlaps VPC `{}` ({}); allowed because they are not peered, but they can never be",
                        b.name, b.cidr, a.name, a.cidr
                    );
                    self.warn(path, msg);
                }
            }
        }
        out
    }

    fn vpc(&mut self, base: &str, v: &RawVpc) -> Option<Vpc> {
        let name = self.name(&at(base, "name"), &v.name);
        let cidr = self.ipv4_cidr(&at(base, "cidr"), &v.cidr);
        if let Some(c) = cidr {
            if !(16..=28).contains(&c.prefix_len()) {
                self.err(
                    at(base, "cidr"),
                    format!("a VPC CIDR must be /16 to /28, not /{}", c.prefix_len()),
                );
            }
        }
        let az_count = match self.int_in(&at(base, "az_count"), v.az_count, 1, 6) {
            Some(n) => {
                let n = n as u8;
                match self.region {
                    Some(r) if n > r.az_count() => {
                        self.err(
                            at(base, "az_count"),
                            format!("{n} AZs requested but region {r} has only {}", r.az_count()),
                        );
                        None
                    }
                    _ => Some(n),
                }
            }
            None => None,
        };
        let subnets = match (&v.subnets, v.subnet_bits) {
            (Some(_), Some(_)) => {
                self.err(
                    at(base, "subnet_bits"),
                    "give either `subnets` or `subnet_bits`, not both",
                );
                None
            }
            (None, None) => {
                self.err(
                    base,
                    "a VPC needs `subnets` (an explicit list) or `subnet_bits` (generated)",
                );
                None
            }
            (Some(list), None) => {
                if v.subnet_kinds.is_some() {
                    self.err(
                        at(base, "subnet_kinds"),
                        "`subnet_kinds` only applies with `subnet_bits`",
                    );
                }
                self.explicit_subnets(base, list, cidr, az_count)
            }
            (None, Some(bits)) => self.generated_subnets(base, bits, v, cidr, az_count),
        };
        let (name, cidr, az_count, subnets) = (name?, cidr?, az_count?, subnets?);
        let vpc = Vpc {
            name,
            cidr,
            az_count,
            subnets,
            nat: v.nat,
        };
        self.nat_checks(base, &vpc);
        Some(vpc)
    }

    fn explicit_subnets(
        &mut self,
        base: &str,
        list: &[RawSubnet],
        vpc_cidr: Option<Ipv4Net>,
        az_count: Option<u8>,
    ) -> Option<Vec<Subnet>> {
        let sbase = at(base, "subnets");
        self.unique_names(&sbase, list.iter().map(|s| s.name.as_str()), "subnet");
        if list.is_empty() {
            self.err(&sbase, "a VPC needs at least one subnet");
        }
        let mut out: Vec<(usize, Subnet)> = Vec::new();
        let mut ok = true;
        for (i, s) in list.iter().enumerate() {
            let p = idx(&sbase, i);
            let name = self.name(&at(&p, "name"), &s.name);
            let cidr = self.ipv4_cidr(&at(&p, "cidr"), &s.cidr);
            let az = self.int_in(&at(&p, "az_index"), s.az_index, 0, 5);
            if let (Some(az), Some(n)) = (az, az_count) {
                if az >= i64::from(n) {
                    self.err(
                        at(&p, "az_index"),
                        format!(
                            "AZ index {az} but the VPC has az_count {n} (indexes 0..={})",
                            n - 1
                        ),
                    );
                    ok = false;
                }
            }
            if let Some(c) = cidr {
                if !(16..=28).contains(&c.prefix_len()) {
                    self.err(
                        at(&p, "cidr"),
                        format!("a subnet CIDR must be /16 to /28, not /{}", c.prefix_len()),
                    );
                    ok = false;
                }
                if let Some(v) = vpc_cidr {
                    if !v.contains(&c) {
                        self.err(
                            at(&p, "cidr"),
                            format!("subnet {c} is outside its VPC's CIDR {v}"),
                        );
                        ok = false;
                    }
                }
                for (j, other) in &out {
                    if overlaps4(c, other.cidr) {
                        self.err(
                            at(&p, "cidr"),
                            format!(
                                "subnet {c} overlaps subnet `{}` ({}) at {sbase}[{j}]",
                                other.name, other.cidr
                            ),
                        );
                        ok = false;
                    }
                }
            }
            match (name, cidr, az) {
                (Some(name), Some(cidr), Some(az)) => out.push((
                    i,
                    Subnet {
                        name,
                        kind: s.kind,
                        az_index: az as u8,
                        cidr,
                    },
                )),
                _ => ok = false,
            }
        }
        ok.then(|| out.into_iter().map(|(_, s)| s).collect())
    }

    fn generated_subnets(
        &mut self,
        base: &str,
        bits: i64,
        v: &RawVpc,
        vpc_cidr: Option<Ipv4Net>,
        az_count: Option<u8>,
    ) -> Option<Vec<Subnet>> {
        let path = at(base, "subnet_bits");
        let bits = self.int_in(&path, bits, 1, 12)? as u8;
        let kinds = v
            .subnet_kinds
            .clone()
            .unwrap_or_else(|| vec![SubnetKind::Public, SubnetKind::Private]);
        if kinds.is_empty() {
            self.err(at(base, "subnet_kinds"), "must name at least one kind");
            return None;
        }
        let mut seen = BTreeSet::new();
        for (i, k) in kinds.iter().enumerate() {
            if !seen.insert(*k) {
                self.err(
                    idx(&at(base, "subnet_kinds"), i),
                    format!("`{k}` listed twice"),
                );
                return None;
            }
        }
        let (vpc_cidr, az_count) = (vpc_cidr?, az_count?);
        let new_len = vpc_cidr.prefix_len() + bits;
        if new_len > 28 {
            self.err(
                &path,
                format!(
                    "{vpc_cidr} + {bits} bits gives /{new_len} subnets; AWS subnets are at most /28"
                ),
            );
            return None;
        }
        let needed = kinds.len() * usize::from(az_count);
        let available = 1usize << bits;
        if needed > available {
            self.err(
                &path,
                format!(
                    "{needed} subnets ({} kinds x {az_count} AZs) do not fit in {available} slots of /{new_len}",
                    kinds.len()
                ),
            );
            return None;
        }
        // Slot k*az_count + az: all public subnets first, then private.
        let slots: Vec<Ipv4Net> = vpc_cidr.subnets(new_len).ok()?.take(needed).collect();
        let mut out = Vec::new();
        for (k, kind) in kinds.iter().enumerate() {
            for az in 0..az_count {
                out.push(Subnet {
                    name: Name::parse(&format!("{kind}-{az}")).ok()?,
                    kind: *kind,
                    az_index: az,
                    cidr: slots[k * usize::from(az_count) + usize::from(az)],
                });
            }
        }
        Some(out)
    }

    fn nat_checks(&mut self, base: &str, vpc: &Vpc) {
        let path = at(base, "nat");
        let public_azs: BTreeSet<u8> = vpc
            .subnets_of(SubnetKind::Public)
            .map(|s| s.az_index)
            .collect();
        match vpc.nat {
            NatStrategy::None => {}
            NatStrategy::Single => {
                if public_azs.is_empty() {
                    self.err(
                        path,
                        "a NAT gateway needs a public subnet; this VPC has none",
                    );
                }
            }
            NatStrategy::PerAz => {
                let private_azs: BTreeSet<u8> = vpc
                    .subnets_of(SubnetKind::Private)
                    .map(|s| s.az_index)
                    .collect();
                let missing: Vec<String> = private_azs
                    .difference(&public_azs)
                    .map(|a| a.to_string())
                    .collect();
                if public_azs.is_empty() {
                    self.err(path, "NAT gateways need public subnets; this VPC has none");
                } else if !missing.is_empty() {
                    self.err(
                        path,
                        format!(
                            "per_az NAT needs a public subnet in every AZ with private subnets; missing in AZ index {}",
                            missing.join(", ")
                        ),
                    );
                }
            }
        }
        if vpc.nat != NatStrategy::None && vpc.subnets_of(SubnetKind::Private).next().is_none() {
            self.warn(
                at(base, "nat"),
                "NAT configured but the VPC has no private subnet to use it",
            );
        }
    }

    // ---- peerings ------------------------------------------------------

    fn peerings(&mut self, raw: &[RawPeering], vpcs: &[Vpc]) -> Vec<Peering> {
        self.unique_names("peerings", raw.iter().map(|p| p.name.as_str()), "peering");
        let mut out = Vec::new();
        let mut pairs: HashMap<(String, String), usize> = HashMap::new();
        for (i, p) in raw.iter().enumerate() {
            let base = idx("peerings", i);
            let name = self.name(&at(&base, "name"), &p.name);
            let req = self.vpc_ref(&at(&base, "requester"), &p.requester);
            let acc = self.vpc_ref(&at(&base, "accepter"), &p.accepter);
            let (Some(name), Some(req), Some(acc)) = (name, req, acc) else {
                continue;
            };
            if req == acc {
                self.err(at(&base, "accepter"), "a VPC cannot be peered with itself");
                continue;
            }
            let key = if req.as_str() < acc.as_str() {
                (req.to_string(), acc.to_string())
            } else {
                (acc.to_string(), req.to_string())
            };
            if let Some(first) = pairs.insert(key, i) {
                self.err(
                    &base,
                    format!("VPCs `{req}` and `{acc}` are already peered by peerings[{first}]"),
                );
                continue;
            }
            let find = |n: &Name| vpcs.iter().find(|v| &v.name == n);
            if let (Some(a), Some(b)) = (find(&req), find(&acc)) {
                if overlaps4(a.cidr, b.cidr) {
                    self.err(
                        &base,
                        format!(
                            "cannot peer overlapping VPCs: `{}` is {} and `{}` is {}",
                            a.name, a.cidr, b.name, b.cidr
                        ),
                    );
                    continue;
                }
            }
            out.push(Peering {
                name,
                requester: req,
                accepter: acc,
            });
        }
        out
    }

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

    // ---- security groups -----------------------------------------------

    fn security_groups(&mut self, raw: &[RawSecurityGroup]) -> Vec<SecurityGroup> {
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

    // ---- node pools ----------------------------------------------------

    fn node_pools(&mut self, raw: &[RawNodePool], vpcs: &[Vpc]) -> Vec<NodePool> {
        self.unique_names(
            "node_pools",
            raw.iter().map(|p| p.name.as_str()),
            "node pool",
        );
        let mut out = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let base = idx("node_pools", i);
            if let Some(pool) = self.node_pool(&base, p, vpcs) {
                out.push(pool);
            }
        }
        if !raw.is_empty()
            && self.decl.broken.pools.is_empty()
            && !raw.iter().any(|p| p.role == NodeRole::K3sServer)
        {
            self.err(
                "node_pools",
                "no pool has role k3s-server; the cluster needs a control plane",
            );
        }
        let servers: u32 = out
            .iter()
            .filter(|p| p.role == NodeRole::K3sServer)
            .map(|p| p.desired)
            .sum();
        if servers > 1 && servers.is_multiple_of(2) {
            let pos = raw
                .iter()
                .position(|p| p.role == NodeRole::K3sServer)
                .unwrap_or(0);
            self.warn(
                at(&idx("node_pools", pos), "desired"),
                format!("{servers} k3s servers in total: an even etcd membership tolerates no more failures than {} servers", servers - 1),
            );
        }
        out
    }

    fn node_pool(&mut self, base: &str, p: &RawNodePool, vpcs: &[Vpc]) -> Option<NodePool> {
        let name = self.name(&at(base, "name"), &p.name);
        let vpc = self.vpc_ref(&at(base, "vpc"), &p.vpc);
        if let Some(v) = vpcs.iter().find(|v| v.name.as_str() == p.vpc) {
            if v.subnets_of(p.subnets).next().is_none() {
                self.err(
                    at(base, "subnets"),
                    format!("VPC `{}` has no {} subnet", p.vpc, p.subnets),
                );
            } else if p.subnets == SubnetKind::Private && v.nat == NatStrategy::None {
                self.warn(
                    at(base, "subnets"),
                    format!(
                        "nodes in private subnets of VPC `{}`, which has `nat: none`: they cannot reach the internet (package mirrors, k3s download, image pulls)",
                        p.vpc
                    ),
                );
            }
        }
        let instance_type = InstanceType::parse(&p.instance_type)
            .map_err(|e| self.err(at(base, "instance_type"), e))
            .ok();
        let ami = match &p.ami {
            None => Some(Ami::default()),
            Some(RawAmi {
                ssm: Some(s),
                id: None,
            }) => {
                if s.starts_with('/') && !s.contains(char::is_whitespace) {
                    Some(Ami::Ssm(s.clone()))
                } else {
                    self.err(
                        at(base, "ami.ssm"),
                        format!("`{s}` is not an SSM parameter path (starts with `/`)"),
                    );
                    None
                }
            }
            Some(RawAmi {
                ssm: None,
                id: Some(id),
            }) => {
                let hex = id.strip_prefix("ami-").unwrap_or("");
                if (hex.len() == 8 || hex.len() == 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
                {
                    Some(Ami::Id(id.clone()))
                } else {
                    self.err(
                        at(base, "ami.id"),
                        format!("`{id}` is not an AMI id (`ami-` + 8 or 17 hex digits)"),
                    );
                    None
                }
            }
            Some(_) => {
                self.err(at(base, "ami"), "give exactly one of `ssm` and `id`");
                None
            }
        };
        let min = self.int_in(&at(base, "min"), p.min, 0, 1000);
        let max = self.int_in(&at(base, "max"), p.max, 0, 1000);
        let desired = match p.desired {
            Some(d) => self.int_in(&at(base, "desired"), d, 0, 1000),
            None => min,
        };
        let mut counts_ok = min.is_some() && max.is_some() && desired.is_some();
        if let (Some(min), Some(desired), Some(max)) = (min, desired, max) {
            if min > max {
                self.err(
                    at(base, "min"),
                    format!("min {min} is greater than max {max}"),
                );
                counts_ok = false;
            } else if desired < min || desired > max {
                self.err(
                    at(base, "desired"),
                    format!("desired {desired} is outside min..=max ({min}..={max})"),
                );
                counts_ok = false;
            }
            if max == 0 {
                self.warn(at(base, "max"), "max 0: this pool never runs a node");
            }
        }
        let mut groups = Vec::new();
        for (j, g) in p.security_groups.iter().enumerate() {
            if let Some(n) = self.group_ref(&idx(&at(base, "security_groups"), j), g, &p.vpc) {
                groups.push(n);
            }
        }
        if p.security_groups.is_empty() {
            self.warn(
                at(base, "security_groups"),
                "no security groups: the instances get the VPC's default group",
            );
        }
        for (k, v) in &p.labels {
            if let Err(e) = check_label(k, v) {
                self.err(format!("{base}.labels.{k}"), e);
            }
        }
        if !counts_ok {
            return None;
        }
        Some(NodePool {
            name: name?,
            vpc: vpc?,
            subnets: p.subnets,
            instance_type: instance_type?,
            ami: ami?,
            min: min? as u32,
            desired: desired? as u32,
            max: max? as u32,
            role: p.role,
            security_groups: groups,
            labels: p.labels.clone(),
        })
    }

    // ---- load balancers ------------------------------------------------

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

    fn load_balancers(
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
        self.unique_names(
            &tbase,
            a.target_groups.iter().map(|t| t.name.as_str()),
            "target group",
        );
        let mut tgs = Vec::new();
        for (i, t) in a.target_groups.iter().enumerate() {
            let p = idx(&tbase, i);
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
        // Every target group reaches the one proximity-service NodePort.
        let mut first_port: Option<(usize, i64)> = None;
        for (i, t) in a.target_groups.iter().enumerate() {
            let path = at(&idx(&tbase, i), "port");
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

    // ---- DNS -----------------------------------------------------------

    fn dns(&mut self, d: &RawDns, lbs: &LoadBalancers) -> Option<Dns> {
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

    // ---- checks across sections ------------------------------------------

    fn cross_checks(&mut self, env: &Environment) {
        // Operators must be able to reach the k3s API on some server.
        let server_groups: Vec<&SecurityGroup> = env
            .security_groups
            .iter()
            .filter(|g| {
                env.server_pools()
                    .any(|p| p.security_groups.contains(&g.name))
            })
            .collect();
        if env.server_pools().next().is_some() {
            for (i, cidr) in env.cluster.operator_cidrs.iter().enumerate() {
                let allowed = server_groups.iter().any(|g| {
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
                        format!(
                            "{cidr} is not allowed to reach tcp/6443 by any security group of a k3s-server pool"
                        ),
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

fn overlaps4(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn is_private_ip(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// `v1.31.4+k3s1`
fn valid_k3s_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let Some((semver, k3s)) = rest.split_once("+k3s") else {
        return false;
    };
    let parts: Vec<&str> = semver.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && !k3s.is_empty()
        && k3s.chars().all(|c| c.is_ascii_digit())
}

fn valid_matcher(s: &str) -> bool {
    let code = |c: &str| c.len() == 3 && c.parse::<u16>().is_ok_and(|n| (200..=499).contains(&n));
    s.split(',').all(|part| match part.split_once('-') {
        Some((a, b)) => code(a) && code(b) && a <= b,
        None => code(part),
    })
}

/// Kubernetes label key (`[prefix/]name`) and value rules.
fn check_label(key: &str, value: &str) -> Result<(), String> {
    fn name_ok(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    }
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if DomainName::parse(p).is_err() || p.contains('*') {
            return Err(format!("label key prefix `{p}` is not a DNS subdomain"));
        }
    }
    if !name_ok(name) {
        return Err(format!(
            "label key `{key}`: name must be 1..=63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric"
        ));
    }
    if !value.is_empty() && !name_ok(value) {
        return Err(format!(
            "label value `{value}` must be empty or 1..=63 alphanumerics, `-`, `_`, `.`, starting and ending alphanumeric"
        ));
    }
    Ok(())
}

/// The characters AWS accepts in a VPC security group's description.
fn sg_description_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c)
}
