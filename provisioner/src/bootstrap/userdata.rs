//! Rendering of `provisioner/userdata/k3s-{server,agent}.sh`.
//!
//! Only validated values are substituted, each checked against the alphabet of what it is
//! (DNS name, k3s version, SSM path, Kubernetes label) — none of them can contain a quote, a
//! `$`, a backtick, a space or a newline — and each lands inside single quotes in the script.

use super::{BootstrapError, ParameterNames};
use crate::template::model::{Environment, NodePool, NodeRole};

/// The pinned k3s release (Kubernetes v1.34 line). Templates pin `cluster.k3s_version`;
/// this is the value the reference templates use and the one the manifests are validated
/// against.
pub const K3S_VERSION: &str = "v1.34.1+k3s1";

/// The Kubernetes minor every manifest is validated against (`kubernetes-validate -k 1.34.0`).
const KUBERNETES_MINOR: u32 = 34;

const SERVER_TEMPLATE: &str = include_str!("../../userdata/k3s-server.sh");
const AGENT_TEMPLATE: &str = include_str!("../../userdata/k3s-agent.sh");
const COMMON: &str = include_str!("../../userdata/k3s-common.sh");

/// The two names of the cluster's API, both put in the API certificate (`tls-san`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The NLB's DNS name (`xxx.elb.us-east-1.amazonaws.com`); servers and agents join
    /// through it on 6443.
    pub nlb_dns: String,
    /// The Route 53 name of the API (e.g. `api.dev.example.com`); the published kubeconfig
    /// points to it. Use the NLB's DNS name when the environment has no DNS zone.
    pub api_name: String,
}

impl Endpoints {
    /// The endpoints of `env` once its NLB exists: the API name is the template's A record
    /// aliased to the NLB ([`api_record_name`]), else the NLB's own DNS name.
    pub fn for_env(env: &Environment, nlb_dns: &str) -> Self {
        let nlb_dns = nlb_dns.trim_end_matches('.').to_ascii_lowercase();
        Self {
            api_name: api_record_name(env).unwrap_or_else(|| nlb_dns.clone()),
            nlb_dns,
        }
    }
}

/// The node label that dedicates a pool to one workload of the bundle (`postgres`, `redis`).
pub const WORKLOAD_LABEL: &str = "proximity.dev/workload";

/// The workload an agent pool is dedicated to: its [`WORKLOAD_LABEL`]. Such a pool's nodes
/// are tainted `proximity.dev/workload=<w>:NoSchedule`, so only that workload (which tolerates
/// the taint and requires the label) runs there — not the service, not another database.
pub fn dedicated_workload(pool: &NodePool) -> Option<&str> {
    pool.labels.get(WORKLOAD_LABEL).map(String::as_str)
}

/// The EC2 user-data (a `#!/bin/sh` script, not base64) for the instances of `pool`.
///
/// **Engine:** the launch-template resource calls this once per pool (with
/// [`Endpoints::for_env`]`(env, nlb_dns)`) and base64-encodes the
/// result into `LaunchTemplateData.UserData` (16 KiB limit; the scripts are ~9 KiB). The
/// script carries no secret: the join token is read at boot from SSM (the instance profile
/// must carry [`super::instance_role_policy`] for the pool's role). The NLB's DNS name is
/// only known after the NLB exists, so the launch template depends on the NLB.
///
/// Errors name the offending field when a value could inject shell or the k3s version is
/// not on the supported line.
pub fn user_data(
    env: &Environment,
    pool: &NodePool,
    endpoints: &Endpoints,
) -> Result<String, BootstrapError> {
    let version = validate_k3s_version(&env.cluster.k3s_version)?;
    let nlb = dns_name("nlb_dns", &endpoints.nlb_dns)?;
    let api = dns_name("api_name", &endpoints.api_name)?;
    let params = ParameterNames::new(&env.name);
    let mut labels = Vec::with_capacity(pool.labels.len());
    for (k, v) in &pool.labels {
        labels.push(label(&format!("node_pools.{}.labels", pool.name), k, v)?);
    }
    let template = match pool.role {
        NodeRole::K3sServer => SERVER_TEMPLATE,
        NodeRole::K3sAgent => AGENT_TEMPLATE,
    };
    let mirror = match &env.cluster.k3s_mirror {
        Some(m) => mirror_url(m)?.to_owned(),
        None => String::new(),
    };
    let taints = match (pool.role, dedicated_workload(pool)) {
        (NodeRole::K3sAgent, Some(w)) => format!("{WORKLOAD_LABEL}={w}:NoSchedule"),
        _ => String::new(),
    };
    let values: [(&str, String); 14] = [
        ("ENV_NAME", env.name.to_string()),
        ("POOL_NAME", pool.name.to_string()),
        ("K3S_VERSION", version.to_owned()),
        ("NLB_DNS", nlb.to_owned()),
        ("API_NAME", api.to_owned()),
        ("TOKEN_PARAM", params.token()),
        ("AGENT_TOKEN_PARAM", params.agent_token()),
        ("K3S_MIRROR", mirror),
        (
            "K3S_AIRGAP_IMAGES",
            if env.cluster.k3s_airgap_images {
                "1"
            } else {
                "0"
            }
            .to_owned(),
        ),
        ("KUBECONFIG_PARAM", params.kubeconfig()),
        ("INIT_LOCK_PARAM", params.init_lock()),
        (
            "INIT_LEASE_SECONDS",
            env.cluster.init_lease_secs.to_string(),
        ),
        ("NODE_LABELS", labels.join(" ")),
        ("NODE_TAINTS", taints),
    ];
    Ok(render(template, &values))
}

fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len() + COMMON.len());
    let mut lines = template.lines().peekable();
    while let Some(line) = lines.next() {
        // `# shellcheck source=k3s-common.sh` + `. ".../k3s-common.sh" # @@INCLUDE ...@@`
        if line.starts_with("# shellcheck source=")
            && lines
                .peek()
                .is_some_and(|l| l.contains("@@INCLUDE k3s-common.sh@@"))
        {
            lines.next();
            // Its own `# shellcheck shell=sh` header is only for linting the file alone.
            for common in COMMON.lines().filter(|l| {
                let t = l.trim_start();
                !(t.is_empty() || t.starts_with('#') && !t.starts_with("# shellcheck disable"))
            }) {
                out.push_str(common);
                out.push('\n');
            }
            continue;
        }
        if line.starts_with("# shellcheck source-path=")
            || line.starts_with("# The renderer inlines k3s-common.sh")
        {
            continue;
        }
        // Comments stay in the source files; EC2 user-data is limited to 16 KiB, so the
        // rendered script keeps only the shebang and shellcheck's directives.
        let trimmed = line.trim_start();
        if (trimmed.starts_with('#') && !out.is_empty() && !trimmed.starts_with("# shellcheck"))
            || trimmed.is_empty()
        {
            continue;
        }
        let mut line = line.to_owned();
        for (key, value) in values {
            line = line.replace(&format!("@@{key}@@"), value);
        }
        out.push_str(&line);
        out.push('\n');
    }
    debug_assert!(!out.contains("@@"), "unrendered placeholder in user-data");
    out
}

/// Checks `cluster.k3s_version`: `v1.34.<patch>+k3s<n>`.
pub fn validate_k3s_version(v: &str) -> Result<&str, BootstrapError> {
    let bad = || BootstrapError::K3sVersion(v.to_owned());
    let rest = v.strip_prefix('v').ok_or_else(bad)?;
    let (semver, k3s) = rest.split_once("+k3s").ok_or_else(bad)?;
    let nums: Vec<&str> = semver.split('.').collect();
    let numeric = |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
    if nums.len() != 3 || !nums.iter().all(|n| numeric(n)) || !numeric(k3s) {
        return Err(bad());
    }
    if nums[0] != "1" || nums[1].parse::<u32>().ok() != Some(KUBERNETES_MINOR) {
        return Err(bad());
    }
    Ok(v)
}

fn unsafe_value(field: &'static str, value: &str, reason: &str) -> BootstrapError {
    BootstrapError::UnsafeValue {
        field,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `cluster.k3s_mirror`, checked again before it lands in a script.
fn mirror_url(v: &str) -> Result<&str, BootstrapError> {
    crate::template::check_mirror_url(v)
        .map(|()| v)
        .map_err(|why| unsafe_value("cluster.k3s_mirror", v, &why))
}

/// A lowercase DNS name: labels of `[a-z0-9-]`, 1..=63 characters, total <= 253.
fn dns_name<'a>(field: &'static str, v: &'a str) -> Result<&'a str, BootstrapError> {
    let ok = !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        });
    if ok {
        Ok(v)
    } else {
        Err(unsafe_value(
            field,
            v,
            "expected a lowercase DNS name (labels of a-z, 0-9 and -)",
        ))
    }
}

/// A Kubernetes node label `key=value` (key: optional DNS prefix + `/` + name).
fn label(field: &str, key: &str, value: &str) -> Result<String, BootstrapError> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let key_ok = match key.split_once('/') {
        Some((prefix, name)) => dns_name("label prefix", prefix).is_ok() && name_ok(name),
        None => name_ok(key),
    };
    let value_ok = value.is_empty() || name_ok(value);
    if key_ok && value_ok && !kubelet_may_set(key) {
        return Err(BootstrapError::UnsafeValue {
            field: "node_pools[].labels",
            value: format!("{key}={value}"),
            reason: format!(
                "{field}: the kubelet refuses to set labels under kubernetes.io / k8s.io \
                 (except kubelet.kubernetes.io/ and node.kubernetes.io/), so the node would never join"
            ),
        });
    }
    if key_ok && value_ok {
        Ok(format!("{key}={value}"))
    } else {
        Err(BootstrapError::UnsafeValue {
            field: "node_pools[].labels",
            value: format!("{key}={value}"),
            reason: format!("{field}: not a Kubernetes label key=value"),
        })
    }
}

/// The NodeRestriction rule for `--node-labels`: keys in the `kubernetes.io` / `k8s.io`
/// namespaces only under `kubelet.kubernetes.io/`, `node.kubernetes.io/` or the well-known
/// topology/OS labels.
fn kubelet_may_set(key: &str) -> bool {
    let Some((prefix, _)) = key.split_once('/') else {
        return true;
    };
    let restricted = ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|ns| prefix == *ns || prefix.ends_with(&format!(".{ns}")));
    if !restricted {
        return true;
    }
    const ALLOWED_KEYS: &[&str] = &[
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
    ];
    ALLOWED_KEYS.contains(&key)
        || prefix == "kubelet.kubernetes.io"
        || prefix.ends_with(".kubelet.kubernetes.io")
        || prefix == "node.kubernetes.io"
        || prefix.ends_with(".node.kubernetes.io")
}

/// The Route 53 name of the k3s API: the first A record of the template aliased to the NLB.
/// `None` when the template has no such record (use the NLB's DNS name then).
pub fn api_record_name(env: &Environment) -> Option<String> {
    record_aliased_to(env, crate::template::model::LbKind::Nlb)
}

/// The public name of the service: the first A record aliased to the ALB, when the zone is
/// public (a private zone's names do not resolve from where `up` runs).
pub fn public_record_name(env: &Environment) -> Option<String> {
    if env.dns.as_ref().is_some_and(|d| d.private) {
        return None;
    }
    record_aliased_to(env, crate::template::model::LbKind::Alb)
}

fn record_aliased_to(env: &Environment, kind: crate::template::model::LbKind) -> Option<String> {
    use crate::template::model::{RecordTarget, RecordType};
    env.dns
        .as_ref()?
        .records
        .iter()
        .find_map(|r| match &r.target {
            RecordTarget::Alias { lb, .. } if *lb == kind && r.rtype == RecordType::A => {
                Some(r.name.to_string())
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_the_kubelet_would_refuse_are_rejected() {
        assert!(label("f", "proximity.dev/pool", "servers").is_ok());
        assert!(label("f", "node.kubernetes.io/pool", "a").is_ok());
        assert!(label("f", "topology.kubernetes.io/zone", "a").is_ok());
        let err = label("f", "node-role.kubernetes.io/master", "true").unwrap_err();
        assert!(err.to_string().contains("never join"), "{err}");
        assert!(label("f", "k8s.io/x", "y").is_err());
        assert!(label("f", "kubernetes.io/role", "x").is_err());
    }

    #[test]
    fn k3s_versions_on_the_pinned_line_only() {
        assert!(validate_k3s_version(K3S_VERSION).is_ok());
        assert!(validate_k3s_version("v1.34.12+k3s2").is_ok());
        for bad in [
            "v1.31.4+k3s1",
            "1.34.1+k3s1",
            "v1.34.1",
            "v1.34.1+k3s1; curl evil",
            "v1.34.1+k3s1'",
            "v1.34+k3s1",
            "",
        ] {
            assert_eq!(
                validate_k3s_version(bad),
                Err(BootstrapError::K3sVersion(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn dns_names_reject_shell() {
        assert!(dns_name("nlb_dns", "k8s-dev-1234.elb.us-east-1.amazonaws.com").is_ok());
        for bad in [
            "a b", "a'b", "$(id)", "a;b", "a`b`", "A.com", "", "a..b", "a\nb", "-a.com",
        ] {
            assert!(dns_name("nlb_dns", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_reject_shell() {
        assert_eq!(label("f", "tier", "app").unwrap(), "tier=app");
        assert_eq!(
            label("f", "example.com/tier", "a.b-c_d").unwrap(),
            "example.com/tier=a.b-c_d"
        );
        for (k, v) in [
            ("a b", "c"),
            ("a", "$(x)"),
            ("a", "b c"),
            ("x'", "y"),
            ("a", "b\""),
        ] {
            assert!(label("f", k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn render_inlines_the_common_part_and_fills_every_placeholder() {
        let out = render(
            "#!/bin/sh\n# shellcheck source-path=SCRIPTDIR\nA='@@X@@'\n# shellcheck source=k3s-common.sh\n. \"x\" # @@INCLUDE k3s-common.sh@@\nmain\n",
            &[("X", "value".into())],
        );
        // Comments are dropped (EC2's 16 KiB limit), shellcheck's directives kept.
        assert!(
            out.starts_with("#!/bin/sh\nA='value'\numask 077\n"),
            "{out}"
        );
        assert!(!out.contains("# --- k3s-common.sh"), "{out}");
        assert!(out.contains("# shellcheck disable=SC2086\n"), "{out}");
        assert!(out.contains("install_k3s()"));
        assert!(out.ends_with("main\n"));
        assert!(!out.contains("@@"));
    }
}
