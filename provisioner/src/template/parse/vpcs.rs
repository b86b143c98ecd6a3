//! `vpcs` (CIDRs, AZ counts, explicit or generated subnets, NAT) and `peerings`.

use std::collections::{BTreeSet, HashMap};

use ipnet::Ipv4Net;

use super::{at, idx, Checker};
use crate::template::model::*;
use crate::template::raw::*;

impl<'s, 'a> Checker<'s, 'a> {
    pub(super) fn vpcs(&mut self, raw: &[RawVpc]) -> Vec<Vpc> {
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

    pub(super) fn peerings(&mut self, raw: &[RawPeering], vpcs: &[Vpc]) -> Vec<Peering> {
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
}

fn overlaps4(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;
    use crate::template::*;

    #[test]
    fn more_azs_than_the_region_has() {
        let e = errs(
            &edit("region: us-east-1", "region: us-west-1").replace("az_count: 2", "az_count: 3"),
        );
        assert_err(&e, "vpcs[0].az_count", "region us-west-1 has only 2");
        let e = errs(&edit("az_count: 2", "az_count: 7"));
        assert_err(&e, "vpcs[0].az_count", "outside 1..=6");
    }

    #[test]
    fn subnet_outside_its_vpc() {
        let e = errs(&edit("cidr: 10.0.11.0/24", "cidr: 10.1.11.0/24"));
        assert_err(
            &e,
            "vpcs[0].subnets[3].cidr",
            "outside its VPC's CIDR 10.0.0.0/16",
        );
    }

    #[test]
    fn overlapping_subnets() {
        let e = errs(&edit("cidr: 10.0.11.0/24", "cidr: 10.0.8.0/21"));
        assert_err(&e, "vpcs[0].subnets[3].cidr", "overlaps subnet `priv-a`");
    }

    #[test]
    fn subnet_in_an_az_the_vpc_does_not_have() {
        let e = errs(&edit(
            "kind: private, az_index: 1",
            "kind: private, az_index: 2",
        ));
        assert_err(&e, "vpcs[0].subnets[3].az_index", "az_count 2");
    }

    #[test]
    fn cidr_with_host_bits_and_garbage() {
        let e = errs(&edit("cidr: 10.0.0.0/16", "cidr: 10.0.0.1/16"));
        assert_err(&e, "vpcs[0].cidr", "did you mean `10.0.0.0/16`");
        let e = errs(&edit("cidr: 10.0.0.0/16", "cidr: ten"));
        assert_err(&e, "vpcs[0].cidr", "not an IPv4 CIDR");
        let e = errs(&edit("cidr: 10.0.0.0/16", "cidr: 10.0.0.0/8"));
        assert_err(&e, "vpcs[0].cidr", "/16 to /28");
    }

    #[test]
    fn overlapping_unpeered_vpcs_are_a_warning() {
        let t = ok(&with_second_vpc("10.0.0.0/20", false));
        assert!(
            has_warning(&t.warnings, "vpcs[1].cidr", "overlaps VPC `main`"),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn peering_overlapping_vpcs_is_an_error() {
        let e = errs(&with_second_vpc("10.0.0.0/20", true));
        assert_err(&e, "peerings[0]", "cannot peer overlapping VPCs");
        let t = ok(&with_second_vpc("10.1.0.0/16", true));
        assert_eq!(t.env.peerings.len(), 1);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn peering_references_and_duplicates() {
        let src = with_second_vpc("10.1.0.0/16", true).replace(
        "accepter: data}\n",
        "accepter: data}\n  - {name: again, requester: data, accepter: main}\n  - {name: ghost, requester: main, accepter: nowhere}\n  - {name: selfie, requester: main, accepter: main}\n",
    );
        let e = errs(&src);
        assert_err(&e, "peerings[1]", "already peered by peerings[0]");
        assert_err(&e, "peerings[2].accepter", "unknown VPC `nowhere`");
        assert_err(&e, "peerings[3].accepter", "peered with itself");
    }

    #[test]
    fn generated_subnets() {
        let t = ok(&with_second_vpc("10.1.0.0/16", false));
        let data = &t.env.vpcs[1];
        let cidrs: Vec<String> = data.subnets.iter().map(|s| s.cidr.to_string()).collect();
        assert_eq!(cidrs, ["10.1.0.0/20", "10.1.16.0/20"]);
        assert_eq!(data.subnets[1].name.as_str(), "private-1");
        assert_eq!(data.subnets[1].az_index, 1);

        let src = edit("az_count: 2\n    nat: single\n", "az_count: 3\n    nat: per_az\n    subnet_bits: 4\n")
        .replace(
            "    subnets:\n      - {name: pub-a, kind: public, az_index: 0, cidr: 10.0.0.0/24}\n      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}\n      - {name: priv-a, kind: private, az_index: 0, cidr: 10.0.10.0/24}\n      - {name: priv-b, kind: private, az_index: 1, cidr: 10.0.11.0/24}\n",
            "",
        );
        let t = ok(&src);
        let v = &t.env.vpcs[0];
        assert_eq!(v.subnets.len(), 6);
        assert_eq!(v.subnets[3].name.as_str(), "private-0");
        assert_eq!(v.subnets[3].cidr.to_string(), "10.0.48.0/20");
        assert_eq!(v.nat_subnets().len(), 3);
        assert_eq!(v.nat_subnet_for(2).unwrap().name.as_str(), "public-2");

        let e = errs(&with_second_vpc("10.1.0.0/26", false));
        assert_err(&e, "vpcs[1].subnet_bits", "at most /28");
        let e = errs(
            &with_second_vpc("10.1.0.0/16", false)
                .replace(
                    "subnet_bits: 4",
                    "subnet_bits: 1\n    subnet_kinds: [private, public]",
                )
                .replace("    subnet_kinds: [private]\n", ""),
        );
        assert_err(&e, "vpcs[1].subnet_bits", "do not fit");
    }

    #[test]
    fn subnets_or_subnet_bits() {
        let e = errs(&edit("nat: single\n", "nat: single\n    subnet_bits: 4\n"));
        assert_err(&e, "vpcs[0].subnet_bits", "not both");
    }

    #[test]
    fn nat_needs_public_subnets() {
        let src = with_second_vpc("10.1.0.0/16", false).replace(
            "    nat: none\n    subnet_bits",
            "    nat: single\n    subnet_bits",
        );
        let e = errs(&src);
        assert_err(&e, "vpcs[1].nat", "needs a public subnet");
        let e = errs(&edit("nat: single", "nat: per_az").replace(
            "{name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}",
            "{name: pub-b, kind: public, az_index: 0, cidr: 10.0.1.0/24}",
        ));
        assert_err(&e, "vpcs[0].nat", "missing in AZ index 1");
    }

    mod generated_subnets_properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Generated subnets are inside their VPC, disjoint, one per kind and
            /// AZ — or the template is rejected at `subnet_bits` saying why.
            #[test]
            fn inside_disjoint_and_complete(
                prefix in 16u8..=26,
                az_count in 1u8..=6,
                bits in 1i64..=12,
                both in any::<bool>(),
            ) {
                let kinds = if both { "[public, private]" } else { "[private]" };
                let nat = if both { "single" } else { "none" };
                let src = format!(
                    "name: p\nregion: us-east-1\ncluster: {{k3s_version: v1.32.5+k3s1, service_image: x}}\nvpcs:\n  - {{name: v, cidr: 10.0.0.0/{prefix}, az_count: {az_count}, nat: {nat}, subnet_bits: {bits}, subnet_kinds: {kinds}}}\n"
                );
                match parse_str(&src, file()) {
                    Ok(t) => {
                        let v = &t.env.vpcs[0];
                        let n_kinds = if both { 2 } else { 1 };
                        prop_assert_eq!(v.subnets.len(), n_kinds * usize::from(az_count));
                        for (i, a) in v.subnets.iter().enumerate() {
                            prop_assert!(v.cidr.contains(&a.cidr));
                            prop_assert!(a.az_index < az_count);
                            prop_assert_eq!(a.cidr.prefix_len(), prefix + bits as u8);
                            for b in &v.subnets[i + 1..] {
                                prop_assert!(!a.cidr.contains(&b.cidr.network()) && !b.cidr.contains(&a.cidr.network()));
                            }
                        }
                    }
                    Err(e) => {
                        prop_assert!(
                            e.errors.iter().all(|d| d.path == "vpcs[0].subnet_bits"),
                            "{}", e
                        );
                        prop_assert!(
                            i64::from(prefix) + bits > 28
                                || (if both { 2 } else { 1 }) * i64::from(az_count) > (1i64 << bits),
                            "{}", e
                        );
                    }
                }
            }
        }
    }
}
