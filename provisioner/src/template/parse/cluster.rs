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
        let joined: usize = tags.keys().map(|k| k.len() + 1).sum();
        if joined > 257 {
            self.err(
                "tags",
                format!(
                    "the keys together take {} characters; at most 256 (comma-separated, they \
                     are recorded in each resource's provisioner:tag-keys tag)",
                    joined - 1
                ),
            );
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
        if let Some(name) = &c.image_pull_secret {
            if let Err(why) = check_parameter_name(name) {
                self.err("cluster.image_pull_secret", format!("`{name}`: {why}"));
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
        // Unset: what the NLB's subnets make it (internet-facing on public subnets).
        let api_access = c.api_access.unwrap_or(match &self.raw.load_balancers.nlb {
            Some(n) if n.subnets == SubnetKind::Public => ApiAccess::Public,
            _ => ApiAccess::Internal,
        });
        ok.then(|| Cluster {
            k3s_version: c.k3s_version.clone(),
            operator_cidrs,
            api_access,
            service_image: image.to_owned(),
            image_pull_secret: c.image_pull_secret.clone(),
            k3s_mirror: c.k3s_mirror.clone(),
            k3s_airgap_images: c.k3s_airgap_images,
            init_lease_secs,
        })
    }
}

impl Checker<'_, '_> {
    /// `cluster.api_access` against the NLB: its scheme follows from its subnets, and an
    /// internet-facing API is filtered by the NLB's own security groups, which admit on the
    /// API's ports only CIDRs within `operator_cidrs` (the nodes' NAT gateways are added by
    /// the model). Where `api_access` is not written, a public NLB without groups is a warning.
    pub(super) fn api_access(&mut self, env: &Environment) {
        let explicit = self.raw.cluster.api_access.is_some();
        let access = env.cluster.api_access;
        let Some(nlb) = &env.load_balancers.nlb else {
            if explicit {
                self.err(
                    "cluster.api_access",
                    "the k3s API is reached through load_balancers.nlb, which the template lacks",
                );
            }
            return;
        };
        match (access, nlb.subnets) {
            (ApiAccess::Public, SubnetKind::Private) => self.err(
                "cluster.api_access",
                "`public` needs an internet-facing NLB: set load_balancers.nlb.subnets to `public`",
            ),
            (ApiAccess::Internal, SubnetKind::Public) => self.err(
                "load_balancers.nlb.subnets",
                "public subnets make the NLB internet-facing, but cluster.api_access is \
                 `internal`: set it to `public` (and give the NLB security groups) or use \
                 private subnets",
            ),
            _ => {}
        }
        if access != ApiAccess::Public || nlb.subnets != SubnetKind::Public {
            return;
        }
        if nlb.security_groups.is_empty() {
            let msg = "an internet-facing k3s API needs security groups on the NLB that admit \
                       only cluster.operator_cidrs: without them the API port is open to \
                       whatever the servers' groups admit, and group references do not match \
                       traffic through an NLB";
            if explicit {
                self.err("load_balancers.nlb.security_groups", msg);
            } else {
                self.warn("load_balancers.nlb.security_groups", msg);
            }
            return;
        }
        let ports: Vec<u16> = nlb.listeners.iter().map(|l| l.port.get()).collect();
        for (gi, g) in env.security_groups.iter().enumerate() {
            if !nlb.security_groups.contains(&g.name) {
                continue;
            }
            for (j, r) in g.ingress.iter().enumerate() {
                let Source::Cidr(c) = &r.source else { continue };
                let covers = match r.protocol {
                    Protocol::Tcp(range) => ports
                        .iter()
                        .filter(|p| (range.from()..=range.to()).contains(p))
                        .min()
                        .copied(),
                    Protocol::All => ports.first().copied(),
                    _ => None,
                };
                let Some(port) = covers else { continue };
                if !env.cluster.operator_cidrs.iter().any(|o| o.contains(c)) {
                    self.err(
                        format!("security_groups[{gi}].ingress[{j}].source"),
                        format!(
                            "admits {c} to the internet-facing k3s API (NLB port {port}), \
                             outside cluster.operator_cidrs"
                        ),
                    );
                }
            }
        }
    }
}

/// An SSM parameter name as AWS accepts it: `/`-rooted, 1..=1011 characters of
/// `a-zA-Z0-9_.-/`, not under the reserved `/aws` or `/ssm` prefixes.
fn check_parameter_name(name: &str) -> Result<(), String> {
    if !name.starts_with('/') || name.len() > 1011 {
        return Err("an SSM parameter path starting with `/` (at most 1011 characters)".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
    {
        return Err(format!("`{c}` is not allowed in an SSM parameter name"));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("/aws/") || lower.starts_with("/ssm/") {
        return Err("`/aws` and `/ssm` are reserved by AWS".into());
    }
    Ok(())
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
    use crate::template::ApiAccess;

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
        let e = errs(&edit(
            "service_image: ghcr.io/x/proximity-service:1",
            "service_image: ghcr.io/x/proximity-service:1\n  image_pull_secret: \"registry creds\"",
        ));
        assert_err(&e, "cluster.image_pull_secret", "starting with `/`");
        let t = ok(&edit(
            "service_image: ghcr.io/x/proximity-service:1",
            "service_image: ghcr.io/x/proximity-service:1\n  image_pull_secret: /team/registry",
        ));
        assert_eq!(
            t.env.cluster.image_pull_secret.as_deref(),
            Some("/team/registry")
        );
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

    /// BASE with a public NLB: `api_access` line (or none), the NLB's groups, a group `api`.
    fn public_api(access: &str, nlb_groups: &str, api_rules: &str) -> String {
        let t = edit(
            "  service_image: ghcr.io/x/proximity-service:1",
            &format!("  service_image: ghcr.io/x/proximity-service:1\n{access}"),
        );
        let t = edit_in(
            &t,
            "    subnets: private\n    listeners: [{port: 6443",
            &format!("    subnets: public\n    security_groups: [{nlb_groups}]\n    listeners: [{{port: 6443"),
        );
        edit_in(
            &t,
            "security_groups:\n",
            &format!(
                "security_groups:\n  - name: api\n    vpc: main\n    ingress: [{api_rules}]\n"
            ),
        )
    }

    #[test]
    fn api_access_follows_the_nlb_and_a_public_api_admits_only_operators() {
        // Unset: what the NLB's subnets make it.
        assert_eq!(ok(BASE).env.cluster.api_access, ApiAccess::Internal);
        let operators = "{protocol: tcp, ports: 6443, source: {cidr: 203.0.113.0/24}}";
        let t = ok(&public_api("", "api", operators));
        assert_eq!(t.env.cluster.api_access, ApiAccess::Public);
        // Written, it must agree with the NLB's scheme.
        let e = errs(&edit(
            "  service_image: ghcr.io/x/proximity-service:1",
            "  service_image: ghcr.io/x/proximity-service:1\n  api_access: public",
        ));
        assert_err(&e, "cluster.api_access", "internet-facing NLB");
        let e = errs(&public_api("  api_access: internal", "api", operators));
        assert_err(&e, "load_balancers.nlb.subnets", "internet-facing");
        // Public without NLB groups: an error when asked for, a warning when implied.
        let no_groups = public_api("  api_access: public", "api", operators)
            .replace("    security_groups: [api]\n", "");
        assert_err(
            &errs(&no_groups),
            "load_balancers.nlb.security_groups",
            "admit only cluster.operator_cidrs",
        );
        let implied =
            ok(&public_api("", "api", operators).replace("    security_groups: [api]\n", ""));
        assert!(has_warning(
            &implied.warnings,
            "load_balancers.nlb.security_groups",
            "operator_cidrs"
        ));
        // A public API port open beyond the operators is refused, naming the rule.
        let wide = "{protocol: tcp, ports: 6443, source: {cidr: 203.0.113.0/24}}, \
                    {protocol: tcp, ports: \"6000-7000\", source: {cidr: 0.0.0.0/0}}";
        let e = errs(&public_api("  api_access: public", "api", wide));
        assert_err(
            &e,
            "security_groups[0].ingress[1].source",
            "outside cluster.operator_cidrs",
        );
        // Other ports of the NLB's group are the user's business.
        ok(&public_api(
            "  api_access: public",
            "api",
            "{protocol: tcp, ports: 6443, source: {cidr: 203.0.113.128/25}}, \
             {protocol: tcp, ports: 22, source: {cidr: 0.0.0.0/0}}",
        ));
    }

    #[test]
    fn reserved_tags() {
        let e = errs(&edit(
            "tags: {team: proximity}",
            "tags: {\"provisioner:env\": x, \"aws:foo\": y}",
        ));
        assert_err(&e, "tags.provisioner:env", "reserved");
        assert_err(&e, "tags.aws:foo", "reserved by AWS");
        let long: Vec<String> = (0..3)
            .map(|i| format!("\"{}{i}\": x", "k".repeat(100)))
            .collect();
        let e = errs(&edit(
            "tags: {team: proximity}",
            &format!("tags: {{{}}}", long.join(", ")),
        ));
        assert_err(&e, "tags", "at most 256");
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
