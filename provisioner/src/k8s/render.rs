//! Rendering of the workload manifests (`manifests/*.yaml`).
//!
//! The templates are YAML with `{{ key }}` placeholders, each standing for a whole scalar
//! (or a flow sequence). Every value is substituted **JSON-encoded** — a JSON string is a
//! valid YAML double-quoted scalar — so no value can break out of its field, whatever it
//! contains. An unknown or missing placeholder is an error, never silently left in.
//!
//! Secrets: [`SecretValues::Redacted`] writes `REDACTED` for every generated credential
//! (`provisioner render`); only a deploy renders with [`SecretValues::Actual`], in memory,
//! straight into the server-side apply.

use std::collections::BTreeMap;
use std::fmt;

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};

use crate::template::model::Environment;

/// The templates, in apply order (the Namespace first).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "00-namespace.yaml",
        include_str!("../../../manifests/00-namespace.yaml"),
    ),
    (
        "01-secrets.yaml",
        include_str!("../../../manifests/01-secrets.yaml"),
    ),
    (
        "05-ebs-csi.yaml",
        include_str!("../../../manifests/05-ebs-csi.yaml"),
    ),
    (
        "10-postgres.yaml",
        include_str!("../../../manifests/10-postgres.yaml"),
    ),
    (
        "20-redis.yaml",
        include_str!("../../../manifests/20-redis.yaml"),
    ),
    (
        "30-proximity-service.yaml",
        include_str!("../../../manifests/30-proximity-service.yaml"),
    ),
    (
        "40-network-policies.yaml",
        include_str!("../../../manifests/40-network-policies.yaml"),
    ),
    (
        "50-seed-job.yaml",
        include_str!("../../../manifests/50-seed-job.yaml"),
    ),
];

/// The namespace every workload object lives in.
pub const NAMESPACE: &str = "proximity";
/// Pinned images of the data stores.
/// The ownership tag the EBS CSI driver puts on the volumes it creates: the provisioner's
/// `crate::aws::TAG_ENV` (`k8s` does not import `aws`; a test there checks they agree).
pub const EBS_VOLUME_ENV_TAG: &str = "provisioner:env";

/// The StorageClass of the Postgres volumes: EBS gp3 through the EBS CSI driver
/// (`manifests/05-ebs-csi.yaml`), so a volume outlives its instance.
pub const POSTGRES_STORAGE_CLASS: &str = "ebs-gp3";
pub const POSTGRES_IMAGE: &str = "docker.io/library/postgres:17.6-alpine";
pub const REDIS_IMAGE: &str = "docker.io/library/redis:7.4.5-alpine";
/// NodePort used when the template has no ALB.
pub const DEFAULT_NODE_PORT: u16 = 30080;
/// Where the image keeps the GeoNames extract the seed Job imports (see the Dockerfile).
pub const SEED_DATA_FILE: &str = "/usr/share/proximity/geonames/cities500.json";

/// Why the workload could not be rendered; each names the template key or option at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("manifests/{file}: placeholder `{{{{ {key} }}}}` has no value")]
    UnknownPlaceholder { file: String, key: String },
    #[error("manifests/{file}: unterminated `{{{{` placeholder")]
    Unterminated { file: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> RenderError {
    RenderError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// Deploy-time knobs the template does not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Container image of the service; `None` takes `cluster.service_image`.
    pub image: Option<String>,
    /// Service replicas (the HPA's minimum), at least 2.
    pub service_replicas: u32,
    /// HPA maximum.
    pub service_max_replicas: u32,
    /// Postgres streaming replicas.
    pub postgres_replicas: u32,
    /// Size of each Postgres volume (a Kubernetes quantity such as `10Gi`).
    pub postgres_storage: String,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        Self {
            image: None,
            service_replicas: 2,
            service_max_replicas: 6,
            postgres_replicas: 2,
            postgres_storage: "10Gi".to_owned(),
        }
    }
}

/// The validated inputs of a render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub env: String,
    pub namespace: String,
    pub image: String,
    pub service_replicas: u32,
    pub service_max_replicas: u32,
    pub postgres_replicas: u32,
    pub postgres_storage: String,
    /// The NodePort the ALB's target group(s) reach.
    pub node_port: u16,
    /// Workloads (`postgres`, `redis`) the template dedicates an agent pool to: they run
    /// only there (required node affinity); the others only prefer such a pool.
    pub dedicated: Vec<String>,
    /// `cluster.image_pull_secret`: the SSM parameter holding the registry credentials.
    pub image_pull_secret: Option<String>,
    /// The AWS region (the EBS CSI controller's, which reads no instance metadata for it).
    pub region: String,
}

impl Workload {
    /// Resolves the workload of `env`: image (option, else `cluster.service_image`), replica
    /// counts, and the NodePort, which must be the port of the ALB's target groups.
    pub fn from_env(env: &Environment, opts: &WorkloadOptions) -> Result<Self, RenderError> {
        let (image, image_key) = match &opts.image {
            Some(i) => (i.clone(), "--image"),
            None => (env.cluster.service_image.clone(), "cluster.service_image"),
        };
        validate_image(image_key, &image)?;
        if opts.service_replicas < 2 {
            return Err(invalid(
                "service replicas",
                "at least 2 (the service is spread over nodes)",
            ));
        }
        if opts.service_max_replicas < opts.service_replicas {
            return Err(invalid(
                "service max replicas",
                format!(
                    "{} is below the minimum {}",
                    opts.service_max_replicas, opts.service_replicas
                ),
            ));
        }
        validate_quantity("postgres storage", &opts.postgres_storage)?;
        Ok(Self {
            env: env.name.to_string(),
            namespace: NAMESPACE.to_owned(),
            image,
            service_replicas: opts.service_replicas,
            service_max_replicas: opts.service_max_replicas,
            postgres_replicas: opts.postgres_replicas,
            postgres_storage: opts.postgres_storage.clone(),
            node_port: node_port(env)?,
            dedicated: dedicated_workloads(env),
            image_pull_secret: env.cluster.image_pull_secret.clone(),
            region: env.region.as_str().to_owned(),
        })
    }

    /// Name of the seed Job: `proximity-seed-` + a hash of what it imports with what.
    pub fn seed_job_name(&self) -> String {
        let inputs = format!("{}\n{}", self.image, seed_args().join(" "));
        format!(
            "proximity-seed-{:08x}",
            crate::naming::fnv1a(inputs.as_bytes()) as u32
        )
    }
}

/// The port of the ALB's target groups (all must agree: they all reach the one NodePort),
/// which must be a valid NodePort.
fn node_port(env: &Environment) -> Result<u16, RenderError> {
    let Some(alb) = &env.load_balancers.alb else {
        return Ok(DEFAULT_NODE_PORT);
    };
    let mut port = None;
    for (i, tg) in alb.target_groups.iter().enumerate() {
        let key = format!("load_balancers.alb.target_groups[{i}].port");
        let p = tg.port.get();
        if !(30000..=32767).contains(&p) {
            return Err(invalid(
                key,
                format!(
                    "{p} is not a NodePort (30000-32767); the service is exposed on a NodePort"
                ),
            ));
        }
        match port {
            None => port = Some(p),
            Some(q) if q != p => {
                return Err(invalid(
                    key,
                    format!(
                        "{p} differs from {q}: every target group reaches the one service NodePort"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(port.unwrap_or(DEFAULT_NODE_PORT))
}

fn validate_image(key: &str, image: &str) -> Result<(), RenderError> {
    crate::template::check_image_reference(image)
        .map_err(|why| invalid(key, format!("`{image}` is not an image reference: {why}")))
}

fn validate_quantity(key: &str, q: &str) -> Result<(), RenderError> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    if !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["", "Ki", "Mi", "Gi", "Ti", "K", "M", "G", "T"].contains(&suffix)
    {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("`{q}` is not a storage quantity such as 10Gi"),
        ))
    }
}

/// The arguments of the seed Job's `proximity-service` command.
pub fn seed_args() -> Vec<String> {
    [
        "import",
        "--format",
        "geonames",
        "--skip-invalid",
        SEED_DATA_FILE,
    ]
    .map(String::from)
    .to_vec()
}

/// A generated credential. `Debug`/`Display` print `REDACTED`.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedSecret(String);

impl GeneratedSecret {
    /// 32 random alphanumerics (URL-safe: they go into connection URLs unescaped).
    pub fn generate() -> Self {
        Self(Alphanumeric.sample_string(&mut rand::rng(), 32))
    }

    /// Keeps a value read back from the cluster if it is one we could have generated
    /// (alphanumeric, >= 16 characters); `None` otherwise, so a fresh one is generated.
    pub fn from_existing(value: &str) -> Option<Self> {
        (value.len() >= 16 && value.chars().all(|c| c.is_ascii_alphanumeric()))
            .then(|| Self(value.to_owned()))
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GeneratedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratedSecret(REDACTED)")
    }
}

impl fmt::Display for GeneratedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

/// A registry credential document (`.dockerconfigjson`: `{"auths": {"<registry>": {"auth":
/// "<base64 user:password>"}}}`). `Debug`/`Display` print `REDACTED`.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryCredentials(String);

impl RegistryCredentials {
    /// `Err` says why `json` is not a `.dockerconfigjson` document (without echoing it).
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json)
            .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))?;
        if !v.get("auths").is_some_and(Value::is_object) {
            return Err("no `auths` object (a .dockerconfigjson document is expected)".into());
        }
        Ok(Self(json.trim().to_owned()))
    }

    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// (user, password) for `registry` (`host[:port]`), from its `auth` or
    /// `username`/`password`.
    pub fn basic_for(&self, registry: &str) -> Option<(String, String)> {
        use base64::Engine;
        let v: Value = serde_json::from_str(&self.0).ok()?;
        let auths = v.get("auths")?.as_object()?;
        let entry = auths.iter().find_map(|(k, e)| {
            let host = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            (host == registry || (host == "docker.io" && registry == "registry-1.docker.io"))
                .then_some(e)
        })?;
        if let Some(auth) = entry.get("auth").and_then(Value::as_str) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()?;
            let (u, p) = String::from_utf8(raw)
                .ok()?
                .split_once(':')
                .map(|(u, p)| (u.to_owned(), p.to_owned()))?;
            return Some((u, p));
        }
        Some((
            entry.get("username")?.as_str()?.to_owned(),
            entry.get("password")?.as_str()?.to_owned(),
        ))
    }
}

impl fmt::Debug for RegistryCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RegistryCredentials(REDACTED)")
    }
}

/// Every credential of the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadSecrets {
    pub postgres_password: GeneratedSecret,
    pub replication_password: GeneratedSecret,
    pub redis_password: GeneratedSecret,
    pub api_key: GeneratedSecret,
    /// The image's registry credentials (`cluster.image_pull_secret`), when it has some.
    pub registry: Option<RegistryCredentials>,
}

impl WorkloadSecrets {
    pub fn generate() -> Self {
        Self {
            postgres_password: GeneratedSecret::generate(),
            replication_password: GeneratedSecret::generate(),
            redis_password: GeneratedSecret::generate(),
            api_key: GeneratedSecret::generate(),
            registry: None,
        }
    }

    /// Keeps what the cluster already has (Postgres only takes its passwords at initdb, so
    /// they must survive every later deploy) and generates the rest. `existing` maps
    /// `secret name -> key -> value` as read from the namespace.
    pub fn reuse_or_generate(existing: &BTreeMap<String, BTreeMap<String, String>>) -> Self {
        let get = |secret: &str, key: &str| {
            existing
                .get(secret)
                .and_then(|s| s.get(key))
                .and_then(|v| GeneratedSecret::from_existing(v))
                .unwrap_or_else(GeneratedSecret::generate)
        };
        Self {
            postgres_password: get("postgres-credentials", "POSTGRES_PASSWORD"),
            replication_password: get("postgres-credentials", "REPLICATION_PASSWORD"),
            redis_password: get("redis-credentials", "REDIS_PASSWORD"),
            api_key: get("proximity-service-env", "PROXIMITY_API_KEYS"),
            registry: None,
        }
    }
}

/// What the Secret manifests carry.
#[derive(Clone, Copy, Debug)]
pub enum SecretValues<'a> {
    /// `REDACTED` everywhere (`provisioner render`).
    Redacted,
    /// The real values (deploy only; never written to disk).
    Actual(&'a WorkloadSecrets),
}

/// Names of the Secret objects whose values [`SecretValues::Redacted`] hides.
pub const SECRET_NAMES: &[&str] = &[
    "postgres-credentials",
    "redis-credentials",
    "proximity-service-env",
    "registry-credentials",
];

/// One rendered file of the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedManifest {
    pub file_name: &'static str,
    pub yaml: String,
}

/// Renders every template of [`TEMPLATES`] for `workload`.
pub fn render_manifests(
    workload: &Workload,
    secrets: SecretValues<'_>,
) -> Result<Vec<RenderedManifest>, RenderError> {
    let values = values(workload, secrets);
    TEMPLATES
        .iter()
        .map(|(file, template)| {
            Ok(RenderedManifest {
                file_name: file,
                yaml: substitute(file, template, &values)?,
            })
        })
        .collect()
}

/// The workloads an agent pool of `env` is dedicated to.
fn dedicated_workloads(env: &Environment) -> Vec<String> {
    let mut v: Vec<String> = env
        .node_pools
        .iter()
        .filter(|p| p.role == crate::template::NodeRole::K3sAgent)
        .filter_map(|p| crate::bootstrap::dedicated_workload(p).map(String::from))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The node affinity of `workload`: required on its dedicated pool when the template has one
/// (its nodes are tainted for it, see `crate::bootstrap::dedicated_workload`), else preferred.
fn node_affinity(w: &Workload, workload: &str) -> Value {
    let term = json!({"matchExpressions": [{
        "key": crate::bootstrap::WORKLOAD_LABEL, "operator": "In", "values": [workload]
    }]});
    if w.dedicated.iter().any(|d| d == workload) {
        json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}})
    } else {
        json!({"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "preference": term}
        ]})
    }
}

fn values(w: &Workload, secrets: SecretValues<'_>) -> BTreeMap<&'static str, Value> {
    let ns = &w.namespace;
    let (pg, repl, redis, api) = match secrets {
        SecretValues::Redacted => {
            let r = "REDACTED".to_owned();
            (r.clone(), r.clone(), r.clone(), r)
        }
        SecretValues::Actual(s) => (
            s.postgres_password.expose_secret().to_owned(),
            s.replication_password.expose_secret().to_owned(),
            s.redis_password.expose_secret().to_owned(),
            s.api_key.expose_secret().to_owned(),
        ),
    };
    let redacted = matches!(secrets, SecretValues::Redacted);
    let registry = match secrets {
        SecretValues::Actual(WorkloadSecrets {
            registry: Some(r), ..
        }) => r.expose_secret().to_owned(),
        SecretValues::Redacted if w.image_pull_secret.is_some() => {
            r#"{"auths":{"REDACTED":{"auth":"REDACTED"}}}"#.to_owned()
        }
        _ => r#"{"auths":{}}"#.to_owned(),
    };
    let url = |s: String| if redacted { "REDACTED".to_owned() } else { s };
    BTreeMap::from([
        ("namespace", json!(ns)),
        ("image", json!(w.image)),
        ("postgres_image", json!(POSTGRES_IMAGE)),
        ("redis_image", json!(REDIS_IMAGE)),
        ("postgres_replicas", json!(w.postgres_replicas)),
        ("postgres_storage", json!(w.postgres_storage)),
        ("postgres_storage_class", json!(POSTGRES_STORAGE_CLASS)),
        ("aws_region", json!(w.region)),
        (
            "ebs_extra_tags",
            json!(format!("{EBS_VOLUME_ENV_TAG}={}", w.env)),
        ),
        ("postgres_node_affinity", node_affinity(w, "postgres")),
        ("redis_node_affinity", node_affinity(w, "redis")),
        ("service_replicas", json!(w.service_replicas)),
        ("service_max_replicas", json!(w.service_max_replicas)),
        ("node_port", json!(w.node_port)),
        ("seed_job_name", json!(w.seed_job_name())),
        ("seed_args", json!(seed_args())),
        ("postgres_password", json!(pg)),
        ("replication_password", json!(repl)),
        ("redis_password", json!(redis)),
        ("api_keys", json!(api)),
        ("registry_credentials", json!(registry)),
        (
            "database_url",
            json!(url(format!(
                "postgres://proximity:{pg}@postgres-primary.{ns}.svc.cluster.local:5432/proximity"
            ))),
        ),
        (
            "database_replica_urls",
            json!(url(format!(
                "postgres://proximity:{pg}@postgres-replicas.{ns}.svc.cluster.local:5432/proximity"
            ))),
        ),
        (
            "redis_url",
            json!(url(format!(
                "redis://:{redis}@redis-primary.{ns}.svc.cluster.local:6379/0"
            ))),
        ),
    ])
}

/// Replaces each `{{ key }}` with the JSON encoding of its value.
fn substitute(
    file: &str,
    template: &str,
    values: &BTreeMap<&'static str, Value>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| RenderError::Unterminated {
            file: file.to_owned(),
        })?;
        let key = after[..end].trim();
        let value = values
            .get(key)
            .ok_or_else(|| RenderError::UnknownPlaceholder {
                file: file.to_owned(),
                key: key.to_owned(),
            })?;
        out.push_str(&value.to_string());
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            env: "dev".into(),
            namespace: NAMESPACE.into(),
            image: "ghcr.io/example/proximity-service:1.0".into(),
            service_replicas: 3,
            service_max_replicas: 9,
            postgres_replicas: 2,
            postgres_storage: "10Gi".into(),
            dedicated: vec![],
            image_pull_secret: None,
            region: "us-east-1".into(),
            node_port: 30080,
        }
    }

    #[test]
    fn values_are_json_encoded_so_nothing_escapes_its_scalar() {
        let values = BTreeMap::from([("x", json!("a\"\n: {b}"))]);
        let out = substitute("f", "k: {{ x }}\n", &values).unwrap();
        assert_eq!(out, "k: \"a\\\"\\n: {b}\"\n");
        let parsed: Value = serde_norway::from_str(&out).unwrap();
        assert_eq!(parsed["k"], "a\"\n: {b}");
    }

    #[test]
    fn unknown_or_unterminated_placeholders_are_errors() {
        let values = BTreeMap::new();
        assert_eq!(
            substitute("f.yaml", "a: {{ nope }}", &values),
            Err(RenderError::UnknownPlaceholder {
                file: "f.yaml".into(),
                key: "nope".into()
            })
        );
        assert!(matches!(
            substitute("f.yaml", "a: {{ nope", &values),
            Err(RenderError::Unterminated { .. })
        ));
    }

    #[test]
    fn redacted_render_carries_no_secret_and_actual_render_carries_them_all() {
        let w = workload();
        let secrets = WorkloadSecrets::generate();
        let redacted = render_manifests(&w, SecretValues::Redacted).unwrap();
        let actual = render_manifests(&w, SecretValues::Actual(&secrets)).unwrap();
        let all = |m: &[RenderedManifest]| m.iter().map(|m| m.yaml.as_str()).collect::<String>();
        for s in [
            &secrets.postgres_password,
            &secrets.replication_password,
            &secrets.redis_password,
            &secrets.api_key,
        ] {
            assert!(!all(&redacted).contains(s.expose_secret()));
            assert!(all(&actual).contains(s.expose_secret()));
        }
        assert!(all(&redacted).contains("REDACTED"));
        assert!(!all(&actual).contains("REDACTED"));
        assert!(!all(&actual).contains("{{"));
    }

    #[test]
    fn existing_cluster_secrets_are_kept() {
        let existing = BTreeMap::from([(
            "postgres-credentials".to_owned(),
            BTreeMap::from([("POSTGRES_PASSWORD".to_owned(), "K".repeat(32))]),
        )]);
        let s = WorkloadSecrets::reuse_or_generate(&existing);
        assert_eq!(s.postgres_password.expose_secret(), "K".repeat(32));
        assert_ne!(s.replication_password.expose_secret(), "K".repeat(32));
        assert_eq!(s.replication_password.expose_secret().len(), 32);
    }

    /// dev.yaml dedicates its `postgres` pool: Postgres must run there (required affinity,
    /// toleration of the pool's taint); Redis, with no pool of its own, only prefers one.
    #[test]
    fn a_dedicated_pool_is_required_for_its_workload_and_tolerated() {
        use serde::Deserialize;
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates/dev.yaml");
        let env = crate::template::load(&path).unwrap().env;
        let w = Workload::from_env(&env, &WorkloadOptions::default()).unwrap();
        assert_eq!(w.dedicated, ["postgres"]);
        let docs = render_manifests(&w, SecretValues::Redacted).unwrap();
        let yaml = |f: &str| docs.iter().find(|d| d.file_name == f).unwrap().yaml.clone();
        let pg: Vec<serde_json::Value> =
            serde_norway::Deserializer::from_str(&yaml("10-postgres.yaml"))
                .map(|d| serde_json::Value::deserialize(d).unwrap())
                .filter(|v| v["kind"] == "StatefulSet")
                .collect();
        assert_eq!(pg.len(), 2);
        for s in &pg {
            let spec = &s["spec"]["template"]["spec"];
            let terms = &spec["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
            assert_eq!(
                terms[0]["matchExpressions"][0]["values"][0], "postgres",
                "{s}"
            );
            assert_eq!(spec["tolerations"][0]["value"], "postgres");
            assert_eq!(spec["tolerations"][0]["effect"], "NoSchedule");
        }
        // The pool's nodes are tainted for it; the other agents are not.
        let ep = crate::bootstrap::Endpoints::for_env(&env, "nlb.example");
        let pool = |n: &str| {
            env.node_pools
                .iter()
                .find(|p| p.name.as_str() == n)
                .unwrap()
        };
        let ud = crate::bootstrap::user_data(&env, pool("postgres"), &ep).unwrap();
        assert!(ud.contains("NODE_TAINTS='proximity.dev/workload=postgres:NoSchedule'"));
        let ud = crate::bootstrap::user_data(&env, pool("agents"), &ep).unwrap();
        assert!(ud.contains("NODE_TAINTS=''"));
        let redis = yaml("20-redis.yaml");
        assert!(
            redis.contains("preferredDuringSchedulingIgnoredDuringExecution\":[{\"preference\""),
            "{redis}"
        );
    }

    #[test]
    fn registry_credentials_are_checked_found_per_registry_and_never_printed() {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode("bot:s3cret-token");
        let json = format!(
            r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"username":"u","password":"p"}},"docker.io":{{"username":"hub","password":"pw"}}}}}}"#
        );
        let r = RegistryCredentials::parse(&json).unwrap();
        assert_eq!(
            r.basic_for("ghcr.io"),
            Some(("bot".to_string(), "s3cret-token".to_string()))
        );
        assert_eq!(
            r.basic_for("registry-1.docker.io"),
            Some(("hub".to_string(), "pw".to_string()))
        );
        assert_eq!(r.basic_for("quay.io"), None);
        assert!(!format!("{r:?}").contains("s3cret"));
        let e = RegistryCredentials::parse("{\"user\": \"s3cret\"}").unwrap_err();
        assert!(e.contains("auths") && !e.contains("s3cret"), "{e}");
        let e = RegistryCredentials::parse("s3cret").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");

        // Rendered: the Secret carries them for a deploy, a placeholder in `render`, and the
        // pods reference it.
        let mut w = workload();
        w.image_pull_secret = Some("/team/registry".into());
        let mut secrets = WorkloadSecrets::generate();
        secrets.registry = Some(r);
        let all = |v: SecretValues<'_>| {
            render_manifests(&w, v)
                .unwrap()
                .into_iter()
                .map(|m| m.yaml)
                .collect::<String>()
        };
        assert!(all(SecretValues::Actual(&secrets)).contains(&auth));
        let redacted = all(SecretValues::Redacted);
        assert!(!redacted.contains(&auth) && redacted.contains("REDACTED"));
        assert_eq!(redacted.matches("- name: registry-credentials").count(), 2);
    }

    #[test]
    fn the_hpa_alone_sets_the_service_replicas() {
        let manifests = render_manifests(&workload(), SecretValues::Redacted).unwrap();
        let service = manifests
            .iter()
            .find(|m| m.file_name == "30-proximity-service.yaml")
            .unwrap();
        let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&service.yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let of_kind = |k: &str| docs.iter().find(|d| d["kind"] == k).unwrap();
        assert!(
            of_kind("Deployment")["spec"].get("replicas").is_none(),
            "a replicas field would be forced back on every up"
        );
        assert_eq!(
            of_kind("HorizontalPodAutoscaler")["spec"]["minReplicas"],
            workload().service_replicas
        );
    }

    #[test]
    fn seed_job_name_follows_its_inputs() {
        let a = workload();
        let mut b = workload();
        b.image = "ghcr.io/example/proximity-service:1.1".into();
        assert_ne!(a.seed_job_name(), b.seed_job_name());
        assert_eq!(a.seed_job_name(), workload().seed_job_name());
        assert!(a.seed_job_name().starts_with("proximity-seed-"));
    }

    #[test]
    fn quantities_and_images_are_checked() {
        assert!(validate_quantity("k", "10Gi").is_ok());
        assert!(validate_quantity("k", "10 Gi").is_err());
        assert!(validate_quantity("k", "Gi").is_err());
        assert!(validate_image(
            "k",
            "registry.example.com:5000/a/b:1.0@sha256:0123456789abcdef0123456789abcdef"
        )
        .is_ok());
        // A digest is `algorithm:hex`, at least 32 hex digits.
        assert!(validate_image("k", "a/b@sha256:abc").is_err());
        assert!(validate_image("k", "a b").is_err());
        assert!(validate_image("k", "").is_err());
    }
}
