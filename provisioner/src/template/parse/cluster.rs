//! `cluster` (k3s version, operator CIDRs, service image) and the environment's own
//! settings: its `tags` and the names AWS refuses for what it derives from `name`.

use std::collections::BTreeMap;

use super::{idx, Checker};
use crate::template::model::*;
use crate::template::raw::*;

impl<'s, 'a> Checker<'s, 'a> {
    /// AWS names are `<env>-<name>`: AWS refuses load balancer names that begin with
    /// `internal-` and security group names that begin with `sg-`.
    pub(super) fn reserved_prefixes(&mut self, env: &str, groups: bool, load_balancers: bool) {
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

    pub(super) fn tags(&mut self, tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
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

    pub(super) fn cluster(&mut self, c: &RawCluster) -> Option<Cluster> {
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
        if let Err(why) = crate::template::check_image_reference(image) {
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
            if let Err(why) = crate::template::check_mirror_url(m) {
                self.err("cluster.k3s_mirror", format!("`{m}`: {why}"));
                ok = false;
            }
        }
        let init_lease_secs = match c.init_lease_secs {
            None => DEFAULT_INIT_LEASE_SECS,
            Some(v) if (10..=86_400).contains(&v) => v as u32,
            Some(v) => {
                self.err(
                    "cluster.init_lease_secs",
                    format!("{v} is not 10..=86400 seconds"),
                );
                ok = false;
                DEFAULT_INIT_LEASE_SECS
            }
        };
        ok.then(|| Cluster {
            k3s_version: c.k3s_version.clone(),
            operator_cidrs,
            service_image: image.to_owned(),
            k3s_mirror: c.k3s_mirror.clone(),
            k3s_airgap_images: c.k3s_airgap_images,
            init_lease_secs,
        })
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

/// `cluster.init_lease_secs` by default: a first server downloads k3s and initialises etcd
/// well within it; only then may the others decide it died.
pub const DEFAULT_INIT_LEASE_SECS: u32 = 900;

#[cfg(test)]
mod tests {
    use crate::template::fixtures::*;

    #[test]
    fn cluster_settings() {
        let e = errs(&edit("k3s_version: v1.31.4+k3s1", "k3s_version: 1.31"));
        assert_err(&e, "cluster.k3s_version", "not a k3s release");
        let e = errs(&edit(
            "operator_cidrs: [203.0.113.0/24]",
            "operator_cidrs: [203.0.113.0/33]",
        ));
        assert_err(&e, "cluster.operator_cidrs[0]", "not a CIDR");
        let t = ok(&edit(
            "operator_cidrs: [203.0.113.0/24]",
            "operator_cidrs: [0.0.0.0/0]",
        ));
        assert!(has_warning(
            &t.warnings,
            "cluster.operator_cidrs[0]",
            "whole internet"
        ));
        let e = errs(&edit(
            "service_image: ghcr.io/x/proximity-service:1",
            "service_image: \"a b\"",
        ));
        assert_err(&e, "cluster.service_image", "not a container image");
    }

    #[test]
    fn a_k3s_mirror_is_an_https_url_a_shell_cannot_read() {
        let with = |m: &str| {
            edit(
                "service_image: ghcr.io/x/proximity-service:1",
                &format!("service_image: ghcr.io/x/proximity-service:1\n  k3s_mirror: \"{m}\""),
            )
        };
        let t = ok(&with("https://mirror.corp.example:8443/k3s"));
        assert_eq!(
            t.env.cluster.k3s_mirror.as_deref(),
            Some("https://mirror.corp.example:8443/k3s")
        );
        assert!(!t.env.cluster.k3s_airgap_images);
        for (bad, why) in [
            ("http://mirror.example/k3s", "https://"),
            ("https://mirror.example/$(reboot)", "`$` is not allowed"),
            ("https:///k3s", "no host"),
        ] {
            assert_err(&errs(&with(bad)), "cluster.k3s_mirror", why);
        }
    }

    #[test]
    fn reserved_tags() {
        let e = errs(&edit(
            "tags: {team: proximity}",
            "tags: {\"provisioner:env\": x, \"aws:foo\": y}",
        ));
        assert_err(&e, "tags.provisioner:env", "reserved");
        assert_err(&e, "tags.aws:foo", "reserved by AWS");
    }

    #[test]
    fn environment_names_that_make_names_aws_refuses() {
        let e = errs(&BASE.replacen("name: t\n", "name: internal\n", 1));
        assert_err(&e, "name", "begin with `internal-`");
        let e = errs(&BASE.replacen("name: t\n", "name: sg-lab\n", 1));
        assert_err(&e, "name", "begin with `sg-`");
        ok(&BASE.replacen("name: t\n", "name: internals\n", 1));
    }
}
