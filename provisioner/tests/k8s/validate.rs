//! Every rendered manifest validates offline against the upstream Kubernetes JSON schemas
//! of the pinned version, in strict mode (unknown fields are errors), with PyPI
//! `kubernetes-validate`.

use std::path::{Path, PathBuf};
use std::process::Command;

use provisioner::commands::render::render_all;
use provisioner::k8s::apply::parse_documents;
use provisioner::k8s::render::{
    render_manifests, SecretValues, Workload, WorkloadOptions, WorkloadSecrets,
};

use crate::common::{require_tool, template_env};

/// The Kubernetes version of the pinned k3s release (`bootstrap::K3S_VERSION`).
const KUBERNETES_VERSION: &str = "1.34.0";
const INSTALL: &str =
    "scripts/setup (pip install kubernetes-validate==1.37.0 into ~/.cache/proximity-suite/venv)";

/// Runs the validator on `files`; returns (success, combined output).
fn kubernetes_validate(tool: &Path, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(tool)
        .args(["--strict", "-k", KUBERNETES_VERSION])
        .args(files)
        .output()
        .expect("run kubernetes-validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn count_documents(files: &[PathBuf]) -> usize {
    files
        .iter()
        .map(|f| {
            parse_documents(&std::fs::read_to_string(f).unwrap())
                .unwrap()
                .len()
        })
        .sum()
}

fn assert_valid(tool: &Path, files: &[PathBuf]) {
    let (ok, out) = kubernetes_validate(tool, files);
    assert!(
        ok,
        "kubernetes-validate --strict -k {KUBERNETES_VERSION} failed:\n{out}"
    );
    let passed = out.matches("passed for resource").count();
    let docs = count_documents(files);
    assert_eq!(
        passed, docs,
        "every document must be checked against a schema ({docs} documents):\n{out}"
    );
}

#[test]
fn rendered_manifests_validate_strictly_against_the_pinned_kubernetes_schemas() {
    let Some(tool) = require_tool("kubernetes-validate", INSTALL) else {
        return;
    };
    for template in ["dev.yaml", "multi-vpc.yaml"] {
        let env = template_env(template);
        let dir = tempfile::tempdir().unwrap();
        // What `provisioner render` writes (secrets redacted) ...
        let rendered = render_all(&env, &WorkloadOptions::default(), dir.path()).unwrap();
        assert!(rendered.problems.is_empty(), "{:?}", rendered.problems);
        let files = rendered.files;
        let manifests: Vec<PathBuf> = files
            .into_iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
            .collect();
        assert_eq!(manifests.len(), 8, "{template}: {manifests:?}");
        assert_valid(&tool, &manifests);

        // ... and what a deploy applies (real generated secrets, other replica counts).
        let opts = WorkloadOptions {
            image: Some("registry.example.com/proximity-service:e2e".into()),
            service_replicas: 3,
            service_max_replicas: 10,
            postgres_replicas: 3,
            postgres_storage: "20Gi".into(),
        };
        let workload = Workload::from_env(&env, &opts).unwrap();
        let secrets = WorkloadSecrets::generate();
        let actual = dir.path().join("actual");
        std::fs::create_dir_all(&actual).unwrap();
        let mut files = Vec::new();
        for m in render_manifests(&workload, SecretValues::Actual(&secrets)).unwrap() {
            let p = actual.join(m.file_name);
            std::fs::write(&p, m.yaml).unwrap();
            files.push(p);
        }
        assert_valid(&tool, &files);
    }
}

#[test]
fn the_validator_really_is_strict() {
    let Some(tool) = require_tool("kubernetes-validate", INSTALL) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    // `replica` (not `replicas`): only strict mode rejects an unknown field.
    std::fs::write(
        &bad,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: c, image: i}]}\n",
    )
    .unwrap();
    let (ok, out) = kubernetes_validate(&tool, &[bad]);
    assert!(!ok, "a manifest with an unknown field passed:\n{out}");
    assert!(out.contains("replica"), "{out}");
}

#[test]
fn rendered_output_has_every_kind_the_workload_needs_and_no_secret() {
    let env = template_env("dev.yaml");
    let dir = tempfile::tempdir().unwrap();
    let rendered = render_all(&env, &WorkloadOptions::default(), dir.path()).unwrap();
    assert!(rendered.problems.is_empty(), "{:?}", rendered.problems);
    let files = rendered.files;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut all = String::new();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        for obj in parse_documents(&text).unwrap() {
            *kinds.entry(obj.types.unwrap().kind).or_default() += 1;
        }
        all.push_str(&text);
    }
    for (kind, n) in [
        ("Namespace", 1),
        ("Secret", 4),
        ("StatefulSet", 2),
        // The service, the two Redis Deployments and the EBS CSI controller.
        ("Deployment", 4),
        ("DaemonSet", 1),
        ("StorageClass", 1),
        ("CSIDriver", 1),
        ("HorizontalPodAutoscaler", 1),
        ("PodDisruptionBudget", 2),
        ("NetworkPolicy", 5),
        ("Job", 1),
    ] {
        assert_eq!(kinds.get(kind), Some(&n), "{kind}: {kinds:?}");
    }
    // The NodePort is the ALB target group's port (30080 in dev.yaml).
    assert!(all.contains("nodePort: 30080"), "NodePort missing");
    assert!(all.contains("REDACTED"));
    assert!(
        !all.contains("postgres://proximity:"),
        "a connection URL with a password was rendered"
    );
    // User-data and IAM policies are written too.
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    for pool in &env.node_pools {
        assert!(
            names.contains(&format!("userdata/{}.sh", pool.name)),
            "{names:?}"
        );
    }
    assert!(names.contains(&"iam/k3s-server-policy.json".to_owned()));
    assert!(names.contains(&"iam/k3s-agent-policy.json".to_owned()));
}

/// Cross-object consistency the schemas cannot see: order, namespaces, selectors, every
/// `secretKeyRef` resolvable, every NetworkPolicy selecting real pods, probes on a declared
/// port, the NodePort matching the ALB.
#[test]
fn rendered_objects_are_consistent_with_each_other() {
    use provisioner::k8s::render::NAMESPACE;
    use serde_json::Value;

    let env = template_env("dev.yaml");
    let workload = Workload::from_env(&env, &WorkloadOptions::default()).unwrap();
    let secrets = WorkloadSecrets::generate();
    let mut objects: Vec<Value> = Vec::new();
    for m in render_manifests(&workload, SecretValues::Actual(&secrets)).unwrap() {
        for o in parse_documents(&m.yaml).unwrap() {
            objects.push(serde_json::to_value(&o).unwrap());
        }
    }
    assert_eq!(
        objects[0]["kind"], "Namespace",
        "the Namespace is applied first"
    );
    assert_eq!(objects[0]["metadata"]["name"], NAMESPACE);
    // The workload in its namespace; the EBS CSI driver in kube-system or cluster-wide.
    for o in &objects[1..] {
        let ebs = o["metadata"]["labels"]["app.kubernetes.io/name"] == "aws-ebs-csi-driver"
            || o["kind"] == "StorageClass"
            || o["kind"] == "CSIDriver";
        if ebs {
            assert!(
                o["metadata"]["namespace"].is_null() || o["metadata"]["namespace"] == "kube-system",
                "{o}"
            );
            continue;
        }
        assert_eq!(
            o["metadata"]["namespace"], NAMESPACE,
            "{}",
            o["metadata"]["name"]
        );
    }
    // Postgres keeps its data on EBS volumes of the class the driver serves.
    let sc = objects
        .iter()
        .find(|o| o["kind"] == "StorageClass")
        .unwrap();
    assert_eq!(sc["provisioner"], "ebs.csi.aws.com");
    for o in objects.iter().filter(|o| o["kind"] == "StatefulSet") {
        assert_eq!(
            o["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
            sc["metadata"]["name"],
            "{}",
            o["metadata"]["name"]
        );
    }

    // Secret keys that exist.
    let mut secret_keys = std::collections::BTreeSet::new();
    for o in objects.iter().filter(|o| o["kind"] == "Secret") {
        for k in o["stringData"].as_object().unwrap().keys() {
            secret_keys.insert(format!("{}/{k}", o["metadata"]["name"].as_str().unwrap()));
        }
    }
    let mut pod_label_sets: Vec<serde_json::Map<String, Value>> = Vec::new();
    for o in &objects {
        let kind = o["kind"].as_str().unwrap();
        let template = match kind {
            "Deployment" | "StatefulSet" | "Job" => &o["spec"]["template"],
            _ => continue,
        };
        let labels = template["metadata"]["labels"].as_object().unwrap().clone();
        if kind != "Job" {
            for (k, v) in o["spec"]["selector"]["matchLabels"].as_object().unwrap() {
                assert_eq!(
                    labels.get(k),
                    Some(v),
                    "{kind} {}: selector {k}",
                    o["metadata"]["name"]
                );
            }
        }
        pod_label_sets.push(labels);
        let spec = &template["spec"];
        let containers = spec["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(spec["initContainers"].as_array().into_iter().flatten());
        for c in containers {
            for e in c["env"].as_array().into_iter().flatten() {
                let r = &e["valueFrom"]["secretKeyRef"];
                if r.is_object() {
                    let key = format!(
                        "{}/{}",
                        r["name"].as_str().unwrap(),
                        r["key"].as_str().unwrap()
                    );
                    assert!(
                        secret_keys.contains(&key),
                        "{} reads missing {key}",
                        c["name"]
                    );
                }
            }
            let ports: Vec<&str> = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["name"].as_str())
                .collect();
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                if let Some(port) = c[probe]["httpGet"]["port"].as_str() {
                    assert!(
                        ports.contains(&port),
                        "{} {probe} on undeclared port {port}",
                        c["name"]
                    );
                }
            }
        }
    }
    for np in objects.iter().filter(|o| o["kind"] == "NetworkPolicy") {
        let selects = |sel: &Value| -> bool {
            let Some(want) = sel["matchLabels"].as_object() else {
                return true; // {} selects every pod
            };
            pod_label_sets
                .iter()
                .any(|labels| want.iter().all(|(k, v)| labels.get(k) == Some(v)))
        };
        assert!(
            selects(&np["spec"]["podSelector"]),
            "{} selects no pod",
            np["metadata"]["name"]
        );
        for rule in np["spec"]["ingress"].as_array().into_iter().flatten() {
            for from in rule["from"].as_array().into_iter().flatten() {
                assert!(
                    selects(&from["podSelector"]),
                    "{}: a source selects no pod",
                    np["metadata"]["name"]
                );
            }
        }
    }
    let svc = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["spec"]["type"] == "NodePort")
        .expect("a NodePort Service");
    let alb_port = env.load_balancers.alb.as_ref().unwrap().target_groups[0]
        .port
        .get();
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], alb_port);
    // The service gets every variable it reads from Secrets.
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "proximity-service")
        .unwrap();
    let env_names: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for v in [
        "DATABASE_URL",
        "DATABASE_REPLICA_URLS",
        "REDIS_URL",
        "PROXIMITY_API_KEYS",
    ] {
        assert!(env_names.contains(&v), "{v} missing");
    }
    // Its replica count is the HPA's alone (at least 2).
    assert!(deployment["spec"].get("replicas").is_none());
    let hpa = objects
        .iter()
        .find(|o| o["kind"] == "HorizontalPodAutoscaler")
        .unwrap();
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "proximity-service");
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
}
