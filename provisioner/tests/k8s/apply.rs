//! Apply, prune and rollout waits against the MOCK Kubernetes API server, scenario by
//! scenario: each lists the exact requests a correct implementation makes, in order.

use std::time::Duration;

use axum::http::StatusCode;
use provisioner::k8s::apply::{parse_documents, Applier, ApplyError, ObjectRef, WaitConfig};
use serde_json::{json, Value};

use crate::mock_api::{Expect, MockApiServer};

const NS: &str = "proximity";

fn resource(name: &str, kind: &str, namespaced: bool) -> Value {
    json!({
        "name": name, "singularName": kind.to_lowercase(), "namespaced": namespaced, "kind": kind,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]
    })
}

fn core_v1() -> Value {
    json!({
        "kind": "APIResourceList", "groupVersion": "v1",
        "resources": [
            resource("namespaces", "Namespace", false),
            resource("configmaps", "ConfigMap", true),
            resource("pods", "Pod", true),
            resource("pods/log", "Pod", true),
            resource("events", "Event", true),
        ]
    })
}

fn apps_v1() -> Value {
    json!({
        "kind": "APIResourceList", "groupVersion": "apps/v1",
        "resources": [
            resource("deployments", "Deployment", true),
            resource("deployments/status", "Deployment", true),
            resource("statefulsets", "StatefulSet", true),
        ]
    })
}

fn fast_wait() -> WaitConfig {
    WaitConfig {
        rollout_timeout: Duration::from_millis(400),
        poll_interval: Duration::from_millis(20),
        log_tail_lines: 20,
    }
}

const NAMESPACE_YAML: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: proximity\n";
const CONFIGMAP_YAML: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: proximity\ndata:\n  a: \"1\"\n";
const DEPLOYMENT_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: proximity
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - {name: web, image: \"img:1\"}
";

fn deployment_body() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "labels": {"provisioner.env": "dev"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "img:1"}]}
            }
        }
    })
}

fn deployment_status(generation: i64, observed: i64, updated: i32, available: i32) -> Value {
    let mut d = deployment_body();
    d["metadata"]["generation"] = json!(generation);
    d["status"] = json!({
        "observedGeneration": observed, "replicas": 2, "updatedReplicas": updated,
        "readyReplicas": available, "availableReplicas": available
    });
    d
}

fn namespace_body(applied_set: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {
            "name": NS,
            "labels": {"provisioner.env": "dev"},
            "annotations": {"provisioner.env/applied-set": applied_set}
        }
    })
}

fn docs(parts: &[&str]) -> Vec<kube::api::DynamicObject> {
    parse_documents(&parts.join("---\n")).expect("test manifests parse")
}

#[tokio::test]
async fn first_apply_creates_everything_records_the_set_and_waits_for_the_rollout() {
    let set = r#"[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"proximity","name":"web"},{"apiVersion":"v1","kind":"ConfigMap","namespace":"proximity","name":"settings"},{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    let mock = MockApiServer::start(vec![
        Expect::get("/api/v1/namespaces/proximity").not_found("namespaces", NS),
        Expect::get("/api/v1").respond(StatusCode::OK, core_v1()),
        Expect::apply("/api/v1/namespaces/proximity", namespace_body(set)),
        Expect::apply(
            "/api/v1/namespaces/proximity/configmaps/settings",
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": NS, "labels": {"provisioner.env": "dev"}},
                "data": {"a": "1"}
            }),
        ),
        Expect::get("/apis/apps/v1").respond(StatusCode::OK, apps_v1()),
        Expect::apply("/apis/apps/v1/namespaces/proximity/deployments/web", deployment_body()),
        // Rollout: first the controller has not caught up, then one replica is missing,
        // then done.
        Expect::get("/apis/apps/v1/namespaces/proximity/deployments/web")
            .respond(StatusCode::OK, deployment_status(2, 1, 2, 2)),
        Expect::get("/apis/apps/v1/namespaces/proximity/deployments/web")
            .respond(StatusCode::OK, deployment_status(2, 2, 2, 1)),
        Expect::get("/apis/apps/v1/namespaces/proximity/deployments/web")
            .respond(StatusCode::OK, deployment_status(2, 2, 2, 2)),
    ])
    .await;
    let mut applier = Applier::new(mock.client(), "dev", NS, fast_wait());
    let report = applier
        .apply(docs(&[NAMESPACE_YAML, CONFIGMAP_YAML, DEPLOYMENT_YAML]))
        .await
        .expect("apply");
    assert_eq!(report.applied.len(), 3);
    assert!(report.pruned.is_empty());
    applier
        .wait_for_rollouts(&report.applied)
        .await
        .expect("rollout");
    mock.verify();
}

#[tokio::test]
async fn reapply_prunes_only_what_this_environment_applied_before() {
    let previous = r#"[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"proximity","name":"web"},{"apiVersion":"v1","kind":"ConfigMap","namespace":"proximity","name":"foreign"},{"apiVersion":"v1","kind":"ConfigMap","namespace":"proximity","name":"gone"},{"apiVersion":"v1","kind":"ConfigMap","namespace":"proximity","name":"settings"},{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    let now = r#"[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"proximity","name":"web"},{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    // While applying, the record keeps the old set (the union), so a failure before the
    // prune does not lose track of it; it is narrowed at the end.
    let union = previous;
    let configmap = |name: &str, env: &str| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"),
                         "labels": {"provisioner.env": env}},
            "data": {}
        })
    };
    let mock = MockApiServer::start(vec![
        Expect::get("/api/v1/namespaces/proximity")
            .respond(StatusCode::OK, namespace_body(previous)),
        Expect::get("/api/v1").respond(StatusCode::OK, core_v1()),
        Expect::apply("/api/v1/namespaces/proximity", namespace_body(union)),
        Expect::get("/apis/apps/v1").respond(StatusCode::OK, apps_v1()),
        Expect::apply(
            "/apis/apps/v1/namespaces/proximity/deployments/web",
            deployment_body(),
        ),
        // Recorded but now carrying another environment's label: left alone.
        Expect::get("/api/v1/namespaces/proximity/configmaps/foreign")
            .respond(StatusCode::OK, configmap("foreign", "other")),
        // Recorded but already deleted: nothing to do.
        Expect::get("/api/v1/namespaces/proximity/configmaps/gone").not_found("configmaps", "gone"),
        // Ours and no longer wanted: deleted, guarded by its uid.
        Expect::get("/api/v1/namespaces/proximity/configmaps/settings")
            .respond(StatusCode::OK, configmap("settings", "dev")),
        Expect::delete(
            "/api/v1/namespaces/proximity/configmaps/settings",
            json!({"propagationPolicy": "Background", "preconditions": {"uid": "uid-settings"}}),
        ),
        Expect::apply("/api/v1/namespaces/proximity", namespace_body(now)),
    ])
    .await;
    let mut applier = Applier::new(mock.client(), "dev", NS, fast_wait());
    let report = applier
        .apply(docs(&[NAMESPACE_YAML, DEPLOYMENT_YAML]))
        .await
        .expect("apply");
    let cm = |name: &str| ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(NS.into()),
        name: name.into(),
    };
    assert_eq!(report.pruned, vec![cm("settings")]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, cm("foreign"));
    assert!(report.skipped[0].1.contains("provisioner.env=dev"));
    mock.verify();
}

#[tokio::test]
async fn a_set_without_its_namespace_is_refused_before_any_write() {
    let mock = MockApiServer::start(vec![
        Expect::get("/api/v1/namespaces/proximity").not_found("namespaces", NS)
    ])
    .await;
    let mut applier = Applier::new(mock.client(), "dev", NS, fast_wait());
    let err = applier.apply(docs(&[CONFIGMAP_YAML])).await.unwrap_err();
    assert!(
        matches!(err, ApplyError::MissingNamespace(ref n) if n == NS),
        "{err}"
    );
    mock.verify();
}

fn web_ref() -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        namespace: Some(NS.into()),
        name: "web".into(),
    }
}

fn pod(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "img:1"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
        }
    })
}

#[tokio::test]
async fn a_rollout_past_its_deadline_reports_the_failing_pods_events_and_logs() {
    let mock = MockApiServer::start(vec![
        // Never becomes available; polled until the deadline, then read once more for
        // its selector.
        Expect::get("/apis/apps/v1/namespaces/proximity/deployments/web")
            .respond(StatusCode::OK, deployment_status(1, 1, 2, 1))
            .repeated(),
        Expect::get("/api/v1/namespaces/proximity/pods")
            .query(&[("labelSelector", "app=web")])
            .respond(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                       "items": [pod("web-ok", true), pod("web-bad", false)]}),
            ),
        Expect::get("/api/v1/namespaces/proximity/events")
            .query(&[("fieldSelector", "involvedObject.name=web-bad")])
            .respond(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "EventList", "metadata": {}, "items": [{
                    "metadata": {"name": "web-bad.1", "namespace": NS},
                    "involvedObject": {"kind": "Pod", "name": "web-bad"},
                    "type": "Warning", "reason": "Unhealthy",
                    "message": "Readiness probe failed: HTTP probe failed with statuscode: 503"
                }]}),
            ),
        Expect::get("/api/v1/namespaces/proximity/pods/web-bad/log")
            .query(&[("container", "web"), ("tailLines", "20")])
            .respond_text("starting\nerror: cannot reach postgres-primary:5432\n"),
    ])
    .await;
    let applier = Applier::new(mock.client(), "dev", NS, fast_wait());
    let err = applier.wait_for_rollouts(&[web_ref()]).await.unwrap_err();
    let ApplyError::Rollout {
        object,
        reason,
        diagnostics,
    } = &err
    else {
        panic!("expected a rollout error, got {err}");
    };
    assert_eq!(object, &web_ref());
    assert!(reason.contains("not ready within"), "{reason}");
    assert!(
        diagnostics.contains("pod web-bad (Running)"),
        "{diagnostics}"
    );
    assert!(!diagnostics.contains("web-ok"), "{diagnostics}");
    assert!(
        diagnostics.contains("event Warning Unhealthy: Readiness probe failed"),
        "{diagnostics}"
    );
    assert!(
        diagnostics.contains("error: cannot reach postgres-primary:5432"),
        "{diagnostics}"
    );
    mock.verify();
}

#[tokio::test]
async fn a_stuck_deployment_fails_fast_on_progress_deadline_exceeded() {
    let mut stuck = deployment_status(1, 1, 1, 0);
    stuck["status"]["conditions"] = json!([{
        "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"web-5d\" has timed out progressing."
    }]);
    let mock = MockApiServer::start(vec![
        Expect::get("/apis/apps/v1/namespaces/proximity/deployments/web")
            .respond(StatusCode::OK, stuck),
        Expect::get("/api/v1/namespaces/proximity/pods")
            .query(&[("labelSelector", "app=web")])
            .respond(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            ),
    ])
    .await;
    let wait = WaitConfig {
        rollout_timeout: Duration::from_secs(30),
        ..fast_wait()
    };
    let started = std::time::Instant::now();
    let err = Applier::new(mock.client(), "dev", NS, wait)
        .wait_for_rollouts(&[web_ref()])
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not fail fast"
    );
    let msg = err.to_string();
    assert!(msg.contains("progress deadline exceeded"), "{msg}");
    assert!(msg.contains("no failing pod matches app=web"), "{msg}");
    mock.verify();
}

#[tokio::test]
async fn jobs_wait_for_complete_and_statefulsets_for_ready_replicas() {
    let sts = |ready: i32| {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": NS, "generation": 1},
            "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": {"metadata": {"labels": {"app": "db"}},
                                  "spec": {"containers": [{"name": "db", "image": "pg"}]}}},
            "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": ready,
                       "updatedReplicas": 2, "currentRevision": "db-1", "updateRevision": "db-1"}
        })
    };
    let job = |conditions: Value| {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "seed", "namespace": NS},
            "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                     "containers": [{"name": "import", "image": "img:1"}]}}},
            "status": {"active": 1, "conditions": conditions}
        })
    };
    let mock = MockApiServer::start(vec![
        Expect::get("/apis/apps/v1/namespaces/proximity/statefulsets/db")
            .respond(StatusCode::OK, sts(1)),
        Expect::get("/apis/apps/v1/namespaces/proximity/statefulsets/db")
            .respond(StatusCode::OK, sts(2)),
        Expect::get("/apis/batch/v1/namespaces/proximity/jobs/seed")
            .respond(StatusCode::OK, job(json!([]))),
        Expect::get("/apis/batch/v1/namespaces/proximity/jobs/seed").respond(
            StatusCode::OK,
            job(json!([{"type": "Complete", "status": "True"}])),
        ),
    ])
    .await;
    let r = |api_version: &str, kind: &str, name: &str| ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: Some(NS.into()),
        name: name.into(),
    };
    Applier::new(mock.client(), "dev", NS, fast_wait())
        .wait_for_rollouts(&[
            r("v1", "ConfigMap", "ignored"),
            r("apps/v1", "StatefulSet", "db"),
            r("batch/v1", "Job", "seed"),
        ])
        .await
        .expect("rollouts");
    mock.verify();
}

#[tokio::test]
async fn a_failed_job_is_reported_with_its_pods() {
    let mock = MockApiServer::start(vec![
        Expect::get("/apis/batch/v1/namespaces/proximity/jobs/seed").respond(
            StatusCode::OK,
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "seed", "namespace": NS},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                         "containers": [{"name": "import", "image": "img:1"}]}}},
                "status": {"failed": 7, "conditions": [{"type": "Failed", "status": "True",
                    "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}
            }),
        ),
        Expect::get("/api/v1/namespaces/proximity/pods")
            .query(&[("labelSelector", "job-name=seed")])
            .respond(
                StatusCode::OK,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            ),
    ])
    .await;
    let err = Applier::new(mock.client(), "dev", NS, fast_wait())
        .wait_for_rollouts(&[ObjectRef {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            namespace: Some(NS.into()),
            name: "seed".into(),
        }])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BackoffLimitExceeded"), "{err}");
    mock.verify();
}

#[tokio::test]
async fn an_apply_failing_half_way_prunes_nothing_and_keeps_the_old_set_recorded() {
    let previous = r#"[{"apiVersion":"v1","kind":"ConfigMap","namespace":"proximity","name":"settings"},{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    let union = r#"[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"proximity","name":"web"},{"apiVersion":"v1","kind":"ConfigMap","namespace":"proximity","name":"settings"},{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    let mock = MockApiServer::start(vec![
        Expect::get("/api/v1/namespaces/proximity").respond(StatusCode::OK, namespace_body(previous)),
        Expect::get("/api/v1").respond(StatusCode::OK, core_v1()),
        Expect::apply("/api/v1/namespaces/proximity", namespace_body(union)),
        Expect::get("/apis/apps/v1").respond(StatusCode::OK, apps_v1()),
        Expect::apply("/apis/apps/v1/namespaces/proximity/deployments/web", deployment_body()).respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid",
                   "message": "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value",
                   "code": 422}),
        ),
    ])
    .await;
    let err = Applier::new(mock.client(), "dev", NS, fast_wait())
        .apply(docs(&[NAMESPACE_YAML, DEPLOYMENT_YAML]))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("server-side apply of Deployment proximity/web"),
        "{msg}"
    );
    assert!(matches!(err, ApplyError::Apply { .. }));
    mock.verify();
}

#[tokio::test]
async fn a_recorded_kind_whose_api_is_gone_is_skipped_not_fatal() {
    let previous = r#"[{"apiVersion":"example.com/v1","kind":"Widget","namespace":"proximity","name":"w"},{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    let now = r#"[{"apiVersion":"v1","kind":"Namespace","name":"proximity"}]"#;
    let mock = MockApiServer::start(vec![
        Expect::get("/api/v1/namespaces/proximity")
            .respond(StatusCode::OK, namespace_body(previous)),
        Expect::get("/api/v1").respond(StatusCode::OK, core_v1()),
        Expect::apply("/api/v1/namespaces/proximity", namespace_body(previous)),
        Expect::get("/apis/example.com/v1").not_found("", "example.com/v1"),
        Expect::apply("/api/v1/namespaces/proximity", namespace_body(now)),
    ])
    .await;
    let report = Applier::new(mock.client(), "dev", NS, fast_wait())
        .apply(docs(&[NAMESPACE_YAML]))
        .await
        .expect("apply");
    assert!(report.pruned.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0]
            .1
            .contains("example.com/v1 is no longer served"),
        "{:?}",
        report.skipped
    );
    mock.verify();
}
