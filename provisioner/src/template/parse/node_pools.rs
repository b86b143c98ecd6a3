//! `node_pools`: instance type, AMI, counts, security groups, labels, and the cluster's
//! need for a k3s server.

use super::{at, idx, Checker};
use crate::template::model::*;
use crate::template::raw::*;

impl<'s, 'a> Checker<'s, 'a> {
    pub(super) fn node_pools(&mut self, raw: &[RawNodePool], vpcs: &[Vpc]) -> Vec<NodePool> {
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
        let root_volume_gb = match p.root_volume_gb {
            Some(gb) => self.int_in(
                &at(base, "root_volume_gb"),
                gb,
                ROOT_VOLUME_GB_RANGE.0,
                ROOT_VOLUME_GB_RANGE.1,
            ),
            None => Some(DEFAULT_ROOT_VOLUME_GB as i64),
        };
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
            root_volume_gb: root_volume_gb? as u32,
        })
    }
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

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;
    use crate::template::*;

    #[test]
    fn pool_counts() {
        let e = errs(&edit(
            "min: 1, desired: 2, max: 4",
            "min: 1, desired: 5, max: 4",
        ));
        assert_err(&e, "node_pools[1].desired", "outside min..=max (1..=4)");
        let e = errs(&edit(
            "min: 1, desired: 2, max: 4",
            "min: -1, desired: 2, max: 4",
        ));
        assert_err(&e, "node_pools[1].min", "outside 0..=1000");
        let t = ok(&edit(
            "min: 3, max: 3, role: k3s-server",
            "min: 2, max: 2, role: k3s-server",
        ));
        assert!(
            has_warning(&t.warnings, "node_pools[0].desired", "even"),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn pool_fields() {
        let e = errs(&edit("instance_type: t3.large", "instance_type: large"));
        assert_err(&e, "node_pools[1].instance_type", "not an instance type");
        let e = errs(&edit(
            "role: k3s-agent,",
            "role: k3s-agent, ami: {id: ami-xyz},",
        ));
        assert_err(&e, "node_pools[1].ami.id", "not an AMI id");
        let t = ok(&edit(
            "role: k3s-agent,",
            "role: k3s-agent, ami: {id: ami-0123456789abcdef0},",
        ));
        assert_eq!(
            t.env.node_pools[1].ami,
            Ami::Id("ami-0123456789abcdef0".into())
        );
        let e = errs(&edit(
            "role: k3s-agent,",
            "role: k3s-agent, ami: {ssm: /x, id: ami-01234567},",
        ));
        assert_err(&e, "node_pools[1].ami", "exactly one");
        let e = errs(&edit(
            "role: k3s-agent,",
            "role: k3s-agent, labels: {\"-bad\": x},",
        ));
        assert_err(&e, "node_pools[1].labels.-bad", "label key");
        let e = errs(&edit("role: k3s-server", "role: k3s-agent"));
        assert_err(&e, "node_pools", "no pool has role k3s-server");
        let e = errs(&with_second_vpc("10.1.0.0/16", false).replace(
        "node_pools:\n",
        "node_pools:\n  - {name: x, vpc: data, subnets: public, instance_type: t3.small, min: 0, max: 1, role: k3s-agent}\n",
    ));
        assert_err(
            &e,
            "node_pools[0].subnets",
            "VPC `data` has no public subnet",
        );
    }

    #[test]
    fn root_volume_size() {
        let t = ok(&edit("role: k3s-agent,", "role: k3s-agent,"));
        assert_eq!(t.env.node_pools[1].root_volume_gb, 30, "the default");
        let t = ok(&edit(
            "role: k3s-agent,",
            "role: k3s-agent, root_volume_gb: 100,",
        ));
        assert_eq!(t.env.node_pools[1].root_volume_gb, 100);
        for bad in ["7", "0", "-1", "16385"] {
            let e = errs(&edit(
                "role: k3s-agent,",
                &format!("role: k3s-agent, root_volume_gb: {bad},"),
            ));
            assert_err(&e, "node_pools[1].root_volume_gb", "outside 8..=16384");
        }
        let e = errs(&edit(
            "role: k3s-agent,",
            "role: k3s-agent, root_volume_gb: big,",
        ));
        assert_err(&e, "node_pools[1].root_volume_gb", "");
    }

    #[test]
    fn private_nodes_without_nat_warn() {
        let t = ok(&edit("nat: single", "nat: none"));
        assert!(
            has_warning(&t.warnings, "node_pools[0].subnets", "nat: none"),
            "{:?}",
            t.warnings
        );
    }
}
