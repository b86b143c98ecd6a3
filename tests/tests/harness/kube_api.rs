//! The STATEFUL MOCK Kubernetes API server of the node twin (`harness::twin::kube_api`),
//! driven by a real kube-rs client over TLS with the twin CA, and by the provisioner's own
//! `apply_workload`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::twin::{DeletionMode, MockKubeApi, Pki, RolloutBehaviour};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use kube::{Client, Config};
use provisioner::k8s::apply::{
    deployment_state, parse_documents, Applier, ApplyError, ObjectRef, RolloutState, WaitConfig,
};
use provisioner::k8s::deploy::apply_workload;
use provisioner::k8s::render::{render_manifests, SecretValues, Workload, WorkloadOptions};
use serde_json::{json, Value};

const SERVER_TOKEN: &str = "server-token-0123";
const AGENT_TOKEN: &str = "agent-token-4567";

/// A kube-rs client built from a kubeconfig that trusts the twin CA, as the provisioner
/// builds one.
async fn client(api: &MockKubeApi, token: Option<&str>) -> Client {
    let kc = Kubeconfig::from_yaml(&api.kubeconfig(&api.url(), token)).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

async fn post(client: &Client, path: &str, body: Value) -> Result<Value, kube::Error> {
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    client.request::<Value>(req).await
}

async fn get_text(client: &Client, path: &str) -> Result<String, kube::Error> {
    client
        .request_text(http::Request::get(path).body(Vec::new()).unwrap())
        .await
}

/// The HTTP status of an API error.
fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn reason(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.reason.clone(),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A mock API server after a cluster-init (with an agent token), and an admin client.
async fn cluster() -> (MockKubeApi, Client) {
    let pki = Pki::new().unwrap();
    let api = MockKubeApi::start(&pki).await.unwrap();
    let anonymous = client(&api, None).await;
    let init = post(
        &anonymous,
        "/twin/v1/cluster-init",
        json!({"token": SERVER_TOKEN, "agent_token": AGENT_TOKEN, "node": "server-0"}),
    )
    .await
    .unwrap();
    let admin = init["admin_token"].as_str().unwrap().to_owned();
    assert_eq!(api.admin_token().as_deref(), Some(admin.as_str()));
    let admin = client(&api, Some(&admin)).await;
    (api, admin)
}

/// Registers `n` nodes with the agent token, as the stand-in agents do.
async fn register_nodes(api: &MockKubeApi, n: usize) {
    let nodes: Api<Node> = Api::all(client(api, Some(AGENT_TOKEN)).await);
    for i in 0..n {
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": format!("node-{i}")}})).unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
    }
}

fn configmap(name: &str, labels: Value, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "demo", "labels": labels},
        "data": data,
    }))
    .unwrap()
}

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    )
    .unwrap()
}

fn names<T: kube::Resource>(list: &[T]) -> Vec<String> {
    list.iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn kube_rs_discovers_applies_gets_lists_and_deletes_through_the_mock_api() {
    let (api, admin) = cluster().await;

    let discovery = Discovery::new(admin.clone()).run().await.unwrap();
    for (group, version, kind, plural, scope) in [
        ("", "v1", "Namespace", "namespaces", Scope::Cluster),
        ("", "v1", "Secret", "secrets", Scope::Namespaced),
        ("", "v1", "Service", "services", Scope::Namespaced),
        ("", "v1", "Node", "nodes", Scope::Cluster),
        ("apps", "v1", "Deployment", "deployments", Scope::Namespaced),
        (
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            Scope::Namespaced,
        ),
        ("batch", "v1", "Job", "jobs", Scope::Namespaced),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            Scope::Namespaced,
        ),
        (
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            Scope::Namespaced,
        ),
        (
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            Scope::Namespaced,
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            Scope::Cluster,
        ),
    ] {
        let (ar, caps) = discovery
            .resolve_gvk(&GroupVersionKind::gvk(group, version, kind))
            .unwrap_or_else(|| panic!("{kind} is not discovered"));
        assert_eq!(ar.plural, plural);
        assert_eq!(caps.scope, scope, "{kind}");
        assert!(caps.supports_operation("patch"), "{kind}");
    }

    let params = PatchParams::apply("test").force();
    Api::<Namespace>::all(admin.clone())
        .patch("demo", &params, &Patch::Apply(namespace("demo")))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "demo");
    let web = configmap(
        "web",
        json!({"app": "web", "tier": "front"}),
        json!({"a": "1"}),
    );
    let first = cms
        .patch("web", &params, &Patch::Apply(&web))
        .await
        .unwrap();
    cms.patch(
        "db",
        &params,
        &Patch::Apply(configmap("db", json!({"app": "db"}), json!({}))),
    )
    .await
    .unwrap();
    let uid = first.metadata.uid.clone().expect("a uid");
    assert!(first.metadata.creation_timestamp.is_some());
    let managers: Vec<_> = first
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone(), m.operation.clone()))
        .collect();
    assert_eq!(managers, [(Some("test".into()), Some("Apply".into()))]);

    // The same apply changes nothing; a changed one keeps the uid and bumps the version.
    let again = cms
        .patch("web", &params, &Patch::Apply(&web))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        first.metadata.resource_version
    );
    let changed = configmap(
        "web",
        json!({"app": "web", "tier": "front"}),
        json!({"a": "2"}),
    );
    let changed = cms
        .patch("web", &params, &Patch::Apply(&changed))
        .await
        .unwrap();
    assert_eq!(changed.metadata.uid.as_deref(), Some(uid.as_str()));
    let rv = |o: &ConfigMap| -> u64 {
        o.metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rv(&changed) > rv(&first));
    assert_eq!(cms.get("web").await.unwrap().data.unwrap()["a"], "2");

    for (selector, want) in [
        ("app=web", vec!["web"]),
        ("app==web", vec!["web"]),
        ("app!=web", vec!["db"]),
        ("app in (web,db)", vec!["db", "web"]),
        ("app notin (web)", vec!["db"]),
        ("tier", vec!["web"]),
        ("!tier", vec!["db"]),
        ("app=web,tier=back", vec![]),
    ] {
        let got = cms
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        assert_eq!(names(&got.items), want, "labelSelector {selector}");
    }
    let got = cms
        .list(&ListParams::default().fields("metadata.name=db"))
        .await
        .unwrap();
    assert_eq!(names(&got.items), ["db"]);

    // A delete whose uid precondition does not match is a 409 and deletes nothing.
    let wrong = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    let err = cms.delete("web", &wrong).await.unwrap_err();
    assert_eq!((code(&err), reason(&err).as_str()), (409, "Conflict"));
    assert!(cms.get_opt("web").await.unwrap().is_some());
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    cms.delete("web", &right).await.unwrap();
    assert!(cms.get_opt("web").await.unwrap().is_none());
    let kube::Error::Api(status) = cms.get("web").await.unwrap_err() else {
        panic!("expected a Status");
    };
    assert_eq!(status.code, 404);
    assert_eq!(status.reason, "NotFound");
    assert_eq!(status.message, "configmaps \"web\" not found");
    assert_eq!(status.details.unwrap().name, "web");
    assert_eq!(api.objects_of("ConfigMap").len(), 1);
    assert_eq!(api.applied_count("ConfigMap"), 4);
}

#[tokio::test]
async fn the_api_needs_the_admin_token_and_is_ready_only_after_a_cluster_init() {
    let pki = Pki::new().unwrap();
    let api = MockKubeApi::start(&pki).await.unwrap();
    let anonymous = client(&api, None).await;
    // No server behind the NLB answers before one initialised the cluster.
    let err = get_text(&anonymous, "/cacerts").await.unwrap_err();
    assert_eq!(code(&err), 503);
    let err = get_text(&anonymous, "/readyz").await.unwrap_err();
    assert_eq!(code(&err), 503);
    let namespaces = |c: Client| async move {
        Api::<Namespace>::all(c)
            .list(&ListParams::default())
            .await
            .map(|l| l.items.len())
    };
    let err = namespaces(anonymous.clone()).await.unwrap_err();
    assert_eq!((code(&err), reason(&err).as_str()), (401, "Unauthorized"));

    let init = post(
        &anonymous,
        "/twin/v1/cluster-init",
        json!({"token": SERVER_TOKEN, "agent_token": null, "node": "server-0"}),
    )
    .await
    .unwrap();
    let admin = init["admin_token"].as_str().unwrap();
    assert_eq!(get_text(&anonymous, "/readyz").await.unwrap(), "ok");
    assert_eq!(
        get_text(&anonymous, "/cacerts").await.unwrap(),
        pki.ca_pem()
    );
    // The system namespaces a real API server starts with.
    assert_eq!(
        namespaces(client(&api, Some(admin)).await).await.unwrap(),
        4
    );
    for token in [None, Some("wrong"), Some(SERVER_TOKEN)] {
        let err = namespaces(client(&api, token).await).await.unwrap_err();
        assert_eq!(code(&err), 401, "token {token:?}");
    }
    let unauthorised = api
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces" && r.status == 401)
        .count();
    assert_eq!(unauthorised, 4);
    assert_eq!(api.request_count("POST"), 1);
}

#[tokio::test]
async fn cluster_init_and_join_follow_the_k3s_token_rules() {
    let pki = Pki::new().unwrap();
    let api = MockKubeApi::start(&pki).await.unwrap();
    let c = client(&api, None).await;
    let join = |token: &str, role: &str, node: &str| {
        let c = c.clone();
        let body = json!({"token": token, "role": role, "node": node});
        async move { post(&c, "/twin/v1/join", body).await }
    };

    let err = join(SERVER_TOKEN, "server", "server-1").await.unwrap_err();
    assert_eq!(code(&err), 503);
    assert!(
        err.to_string().contains("no server initialised yet"),
        "{err}"
    );

    let init = json!({"token": SERVER_TOKEN, "agent_token": AGENT_TOKEN, "node": "server-0"});
    let admin = post(&c, "/twin/v1/cluster-init", init.clone())
        .await
        .unwrap()["admin_token"]
        .clone();
    // The same server again (a restart) gets the same cluster; another token is a second
    // cluster: the election failed.
    assert_eq!(
        post(&c, "/twin/v1/cluster-init", init).await.unwrap()["admin_token"],
        admin
    );
    let err = post(
        &c,
        "/twin/v1/cluster-init",
        json!({"token": "another-token", "agent_token": null, "node": "server-2"}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), 409);
    let accepted: Vec<bool> = api.cluster_inits().iter().map(|i| i.accepted).collect();
    assert_eq!(accepted, [true, true, false]);

    let server = join(SERVER_TOKEN, "server", "server-1").await.unwrap();
    assert_eq!(
        server["admin_token"], admin,
        "a server holds the admin credentials"
    );
    for (token, role) in [
        (AGENT_TOKEN, "server"),
        ("wrong", "server"),
        (SERVER_TOKEN, "agent"),
        ("wrong", "agent"),
    ] {
        let err = join(token, role, "n").await.unwrap_err();
        assert_eq!(code(&err), 401, "{role} with {token}");
    }
    let agent = join(AGENT_TOKEN, "agent", "agent-0").await.unwrap();
    assert!(
        agent.get("admin_token").is_none(),
        "an agent gets no admin credentials"
    );
    let accepted = api.joins().iter().filter(|j| j.accepted).count();
    assert_eq!((api.joins().len(), accepted), (7, 2));

    // Node registration takes a join token (or the admin token), nothing else.
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "agent-0"}})).unwrap();
    let err = Api::<Node>::all(client(&api, Some("wrong")).await)
        .create(&PostParams::default(), &node)
        .await
        .unwrap_err();
    assert_eq!(code(&err), 401);
    register_nodes(&api, 2).await;
    let err = Api::<Node>::all(client(&api, Some(AGENT_TOKEN)).await)
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert_eq!(code(&err), 401, "a join token only registers nodes");
    let admin_client = client(&api, admin.as_str()).await;
    let nodes = Api::<Node>::all(admin_client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(names(&nodes.items), ["node-0", "node-1"]);
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    assert!(nodes.items.iter().all(ready));
    assert_eq!(api.nodes().len(), 2);

    // Without an agent token, agents join with the server token, as on k3s.
    let api = MockKubeApi::start(&pki).await.unwrap();
    let c = client(&api, None).await;
    post(
        &c,
        "/twin/v1/cluster-init",
        json!({"token": SERVER_TOKEN, "agent_token": null, "node": "server-0"}),
    )
    .await
    .unwrap();
    let body = json!({"token": SERVER_TOKEN, "role": "agent", "node": "agent-0"});
    post(&c, "/twin/v1/join", body).await.unwrap();
    let body = json!({"token": AGENT_TOKEN, "role": "agent", "node": "agent-1"});
    assert_eq!(
        code(&post(&c, "/twin/v1/join", body).await.unwrap_err()),
        401
    );
}

const STATEFULSET: &str = r#"{
  "apiVersion": "apps/v1", "kind": "StatefulSet",
  "metadata": {"name": "db", "namespace": "demo"},
  "spec": {
    "serviceName": "db", "replicas": 1,
    "selector": {"matchLabels": {"app": "db"}},
    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}},
    "volumeClaimTemplates": [{"metadata": {"name": "data"},
      "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
  }
}"#;

const JOB: &str = r#"{
  "apiVersion": "batch/v1", "kind": "Job",
  "metadata": {"name": "seed", "namespace": "demo"},
  "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "seed", "image": "img:1"}]}}}
}"#;

#[tokio::test]
async fn a_change_to_an_immutable_field_is_a_422_until_the_object_is_deleted() {
    let (_api, admin) = cluster().await;
    let params = PatchParams::apply("test").force();
    Api::<Namespace>::all(admin.clone())
        .patch("demo", &params, &Patch::Apply(namespace("demo")))
        .await
        .unwrap();
    let sts: Api<StatefulSet> = Api::namespaced(admin.clone(), "demo");
    let mut body: Value = serde_json::from_str(STATEFULSET).unwrap();
    // A field of the wrong type is refused as the real server refuses it (YAML 1.2 reads
    // `defaultMode: 0555` as a string).
    let mut mistyped = body.clone();
    mistyped["spec"]["replicas"] = json!("1");
    let err = sts
        .patch("db", &params, &Patch::Apply(&mistyped))
        .await
        .unwrap_err();
    assert_eq!(code(&err), 400, "{err}");
    assert!(
        err.to_string()
            .contains("cannot be handled as a StatefulSet"),
        "{err}"
    );
    let created = sts
        .patch("db", &params, &Patch::Apply(&body))
        .await
        .unwrap();

    body["spec"]["replicas"] = json!(3);
    sts.patch("db", &params, &Patch::Apply(&body))
        .await
        .unwrap();
    body["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] =
        json!("2Gi");
    let err = sts
        .patch("db", &params, &Patch::Apply(&body))
        .await
        .unwrap_err();
    assert_eq!((code(&err), reason(&err).as_str()), (422, "Invalid"));
    assert!(
        err.to_string()
            .contains("StatefulSet.apps \"db\" is invalid: spec: Forbidden"),
        "{err}"
    );
    let live = sts.get("db").await.unwrap();
    let storage = &live.spec.unwrap().volume_claim_templates.unwrap()[0];
    let requested = storage
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap()
        .requests
        .as_ref()
        .unwrap();
    assert_eq!(
        requested["storage"].0, "1Gi",
        "a refused apply changes nothing"
    );

    sts.delete("db", &DeleteParams::background()).await.unwrap();
    let recreated = sts
        .patch("db", &params, &Patch::Apply(&body))
        .await
        .unwrap();
    assert_ne!(recreated.metadata.uid, created.metadata.uid);

    let jobs: Api<Job> = Api::namespaced(admin.clone(), "demo");
    let mut job: Value = serde_json::from_str(JOB).unwrap();
    jobs.patch("seed", &params, &Patch::Apply(&job))
        .await
        .unwrap();
    job["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:2");
    let err = jobs
        .patch("seed", &params, &Patch::Apply(&job))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let fields: Vec<_> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["spec.template"]);
    jobs.delete("seed", &DeleteParams::background())
        .await
        .unwrap();
    jobs.patch("seed", &params, &Patch::Apply(&job))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deleted_object_can_linger_with_a_deletion_timestamp() {
    let (api, admin) = cluster().await;
    let params = PatchParams::apply("test").force();
    Api::<Namespace>::all(admin.clone())
        .patch("demo", &params, &Patch::Apply(namespace("demo")))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "demo");
    let cm = configmap("a", json!({}), json!({"k": "v"}));
    cms.patch("a", &params, &Patch::Apply(&cm)).await.unwrap();

    api.set_deletion_mode(DeletionMode::Linger);
    let answer = cms.delete("a", &DeleteParams::background()).await.unwrap();
    assert!(
        answer.is_left(),
        "a lingering object is answered with the object"
    );
    let live = cms.get("a").await.unwrap();
    assert!(live.metadata.deletion_timestamp.is_some());
    // An apply meanwhile does not bring it back: it is still being deleted.
    let applied = cms.patch("a", &params, &Patch::Apply(&cm)).await.unwrap();
    assert!(applied.metadata.deletion_timestamp.is_some());
    api.finish_deletions();
    assert!(cms.get_opt("a").await.unwrap().is_none());

    api.set_deletion_mode(DeletionMode::LingerFor(Duration::from_millis(300)));
    cms.patch("a", &params, &Patch::Apply(&cm)).await.unwrap();
    cms.delete("a", &DeleteParams::background()).await.unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(cms.get_opt("a").await.unwrap().is_none());

    api.set_deletion_mode(DeletionMode::Immediate);
    cms.patch("a", &params, &Patch::Apply(&cm)).await.unwrap();
    assert!(cms
        .delete("a", &DeleteParams::background())
        .await
        .unwrap()
        .is_right());
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

const DEPLOYMENT: &str = r#"{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "demo"},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "img:1"}]}}}
}"#;

#[tokio::test]
async fn the_stand_in_controllers_roll_out_as_the_test_says() {
    let (api, admin) = cluster().await;
    let params = PatchParams::apply("test").force();
    Api::<Namespace>::all(admin.clone())
        .patch("demo", &params, &Patch::Apply(namespace("demo")))
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "demo");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "demo");
    let body: Value = serde_json::from_str(DEPLOYMENT).unwrap();

    // No Ready node: the pods cannot be placed.
    deployments
        .patch("web", &params, &Patch::Apply(&body))
        .await
        .unwrap();
    let state = deployment_state(&deployments.get("web").await.unwrap());
    assert!(matches!(state, RolloutState::Pending(_)), "{state:?}");
    register_nodes(&api, 2).await;

    api.set_rollout_behaviour(
        "Deployment",
        Some("web"),
        RolloutBehaviour::ReadyAfterReads(3),
    );
    let mut states = Vec::new();
    for _ in 0..3 {
        states.push(deployment_state(&deployments.get("web").await.unwrap()));
    }
    assert!(
        matches!(
            states[..],
            [
                RolloutState::Pending(_),
                RolloutState::Pending(_),
                RolloutState::Done
            ]
        ),
        "{states:?}"
    );
    let listed = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    for p in &listed.items {
        let s = p.status.as_ref().unwrap();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert!(p
            .spec
            .as_ref()
            .unwrap()
            .node_name
            .as_deref()
            .is_some_and(|n| n.starts_with("node-")));
    }

    api.set_rollout_behaviour("Deployment", Some("web"), RolloutBehaviour::Fail);
    let state = deployment_state(&deployments.get("web").await.unwrap());
    assert!(
        matches!(&state, RolloutState::Failed(r) if r.contains("progress deadline exceeded")),
        "{state:?}"
    );

    api.set_rollout_behaviour("Deployment", Some("web"), RolloutBehaviour::Forbidden);
    let err = deployments.get("web").await.unwrap_err();
    assert_eq!((code(&err), reason(&err).as_str()), (403, "Forbidden"));
    api.set_rollout_behaviour("Deployment", Some("web"), RolloutBehaviour::NotFound);
    assert_eq!(code(&deployments.get("web").await.unwrap_err()), 404);

    // A named setting wins over the kind-wide one.
    api.set_rollout_behaviour("Deployment", None, RolloutBehaviour::NeverReady);
    api.set_rollout_behaviour("Deployment", Some("web"), RolloutBehaviour::Ready);
    assert_eq!(
        deployment_state(&deployments.get("web").await.unwrap()),
        RolloutState::Done
    );

    // Deleting the Deployment takes its pods with it.
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

// --- the provisioner's own apply_workload against the mock ---

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn dev_workload() -> Workload {
    let env = provisioner::template::load(&repo_root().join("vpc-templates/dev.yaml"))
        .unwrap()
        .env;
    Workload::from_env(&env, &WorkloadOptions::default()).unwrap()
}

/// Every object the workload renders, as the applier names them.
fn manifest_objects(workload: &Workload) -> BTreeSet<ObjectRef> {
    let mut out = BTreeSet::new();
    for m in render_manifests(workload, SecretValues::Redacted).unwrap() {
        for obj in parse_documents(&m.yaml).unwrap() {
            let types = obj.types.clone().unwrap();
            out.insert(ObjectRef {
                api_version: types.api_version,
                kind: types.kind,
                namespace: obj.metadata.namespace.clone(),
                name: obj.metadata.name.clone().unwrap(),
            });
        }
    }
    out
}

fn fast_wait(rollout_timeout: Duration) -> WaitConfig {
    WaitConfig {
        rollout_timeout,
        poll_interval: Duration::from_millis(20),
        log_tail_lines: 5,
    }
}

/// GETs of one object (the rollout polls).
fn reads_of(api: &MockKubeApi, r: &ObjectRef) -> usize {
    let plural = match r.kind.as_str() {
        "Deployment" => "deployments",
        "StatefulSet" => "statefulsets",
        _ => "jobs",
    };
    let suffix = format!(
        "/namespaces/{}/{plural}/{}",
        r.namespace.as_deref().unwrap(),
        r.name
    );
    api.requests()
        .iter()
        .filter(|q| q.method == "GET" && q.path.ends_with(&suffix))
        .count()
}

#[tokio::test]
async fn apply_workload_of_the_dev_template_applies_every_object_and_waits_for_every_rollout() {
    let (api, admin) = cluster().await;
    register_nodes(&api, 3).await;
    // Each rollout finishes only after two reads: passing means the applier polled.
    for kind in ["Deployment", "StatefulSet", "Job"] {
        api.set_rollout_behaviour(kind, None, RolloutBehaviour::ReadyAfterReads(2));
    }
    let workload = dev_workload();
    let expected = manifest_objects(&workload);
    assert!(expected.len() >= 15, "{expected:?}");

    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let report = apply_workload(
        admin.clone(),
        &workload,
        None,
        &fast_wait(Duration::from_secs(20)),
        &mut progress,
    )
    .await
    .unwrap();
    let applied: BTreeSet<ObjectRef> = report.applied.iter().cloned().collect();
    assert_eq!(applied, expected);
    assert!(
        report.pruned.is_empty() && report.skipped.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("every rollout finished"),
        "{lines:?}"
    );

    for r in &expected {
        let obj = api
            .object(&r.kind, r.namespace.as_deref(), &r.name)
            .unwrap_or_else(|| panic!("{r} is not in the mock"));
        assert_eq!(
            obj["metadata"]["labels"]["provisioner.env"],
            workload.env.as_str(),
            "{r}"
        );
        let managers: Vec<&Value> = obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| &m["manager"])
            .collect();
        assert_eq!(managers, [&json!("provisioner")], "{r}");
        assert_eq!(
            api.applied_count(&r.kind),
            expected.iter().filter(|e| e.kind == r.kind).count(),
            "{r}"
        );
        if matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "Job") {
            assert!(
                reads_of(&api, r) >= 2,
                "{r} was read {} times",
                reads_of(&api, r)
            );
            let owned = api
                .objects_of("Pod")
                .into_iter()
                .filter(|p| p["metadata"]["ownerReferences"][0]["name"] == r.name.as_str())
                .count();
            assert!(owned >= 1, "{r} has no pods");
        }
        if r.kind == "Secret" {
            assert!(
                obj.get("stringData").is_none() && obj["data"].is_object(),
                "{r}"
            );
        }
    }
    let recorded = &api.object("Namespace", None, &workload.namespace).unwrap()["metadata"]
        ["annotations"]["provisioner.env/applied-set"];
    let recorded: Vec<ObjectRef> = serde_json::from_str(recorded.as_str().unwrap()).unwrap();
    assert_eq!(recorded.into_iter().collect::<BTreeSet<_>>(), expected);

    // A second run applies the same objects, changes none (Secrets kept), prunes nothing.
    let secrets_before = api.objects_of("Secret");
    let revision = api.revision();
    let changes = api.changes().len();
    let mut progress = |_: &str| {};
    let again = apply_workload(
        admin,
        &workload,
        None,
        &fast_wait(Duration::from_secs(20)),
        &mut progress,
    )
    .await
    .unwrap();
    assert_eq!(
        again.applied.iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(
        again.pruned.is_empty() && again.skipped.is_empty(),
        "{again:?}"
    );
    assert_eq!(
        api.changes()[changes..],
        [],
        "the second run changed objects"
    );
    assert_eq!(api.revision(), revision);
    assert_eq!(api.objects_of("Secret"), secrets_before);
    assert_eq!(api.applied_count("Namespace"), 2);
}

#[tokio::test]
async fn a_rollout_that_never_gets_ready_fails_with_the_pods_events_and_logs() {
    let (api, admin) = cluster().await;
    register_nodes(&api, 3).await;
    api.set_rollout_behaviour(
        "Deployment",
        Some("proximity-service"),
        RolloutBehaviour::NeverReady,
    );
    let mut progress = |_: &str| {};
    let err = apply_workload(
        admin,
        &dev_workload(),
        None,
        &fast_wait(Duration::from_millis(500)),
        &mut progress,
    )
    .await
    .unwrap_err();
    let Some(ApplyError::Rollout {
        object,
        reason,
        diagnostics,
    }) = err.downcast_ref::<ApplyError>()
    else {
        panic!("expected a rollout failure, got {err:#}");
    };
    assert_eq!(
        (object.kind.as_str(), object.name.as_str()),
        ("Deployment", "proximity-service")
    );
    assert!(reason.starts_with("not ready within"), "{reason}");
    assert!(
        diagnostics.contains("pod proximity-service-"),
        "{diagnostics}"
    );
    assert!(
        diagnostics.contains("event Warning FailedScheduling"),
        "{diagnostics}"
    );
    assert!(
        diagnostics.contains("logs of proximity-service (last 5 lines)"),
        "{diagnostics}"
    );
}

#[tokio::test]
async fn a_failed_job_ends_the_wait_at_once_with_its_reason() {
    let (api, admin) = cluster().await;
    register_nodes(&api, 3).await;
    api.set_rollout_behaviour("Job", None, RolloutBehaviour::Fail);
    let started = Instant::now();
    let mut progress = |_: &str| {};
    let err = apply_workload(
        admin,
        &dev_workload(),
        None,
        &fast_wait(Duration::from_secs(60)),
        &mut progress,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "waited {:?}",
        started.elapsed()
    );
    let Some(ApplyError::Rollout {
        object,
        reason,
        diagnostics,
    }) = err.downcast_ref::<ApplyError>()
    else {
        panic!("expected a rollout failure, got {err:#}");
    };
    assert_eq!(object.kind, "Job");
    assert!(reason.contains("BackoffLimitExceeded"), "{reason}");
    assert!(
        diagnostics.contains("event Warning BackOff"),
        "{diagnostics}"
    );
}

#[tokio::test]
async fn the_applier_prunes_what_it_no_longer_applies() {
    let (api, admin) = cluster().await;
    let yaml = |names: &[&str]| {
        let mut y = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: proximity\n".to_owned();
        for n in names {
            y.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\n  namespace: proximity\ndata:\n  k: v\n"
            ));
        }
        parse_documents(&y).unwrap()
    };
    let wait = fast_wait(Duration::from_secs(5));
    let mut applier = Applier::new(admin.clone(), "dev", "proximity", wait.clone());
    applier.apply(yaml(&["a", "b"])).await.unwrap();
    let b_uid = api.object("ConfigMap", Some("proximity"), "b").unwrap()["metadata"]["uid"].clone();

    let report = Applier::new(admin.clone(), "dev", "proximity", wait.clone())
        .apply(yaml(&["a"]))
        .await
        .unwrap();
    let pruned: Vec<String> = report.pruned.iter().map(|r| r.to_string()).collect();
    assert_eq!(pruned, ["ConfigMap proximity/b"]);
    assert!(api.object("ConfigMap", Some("proximity"), "b").is_none());
    assert!(api.object("ConfigMap", Some("proximity"), "a").is_some());
    let deleted = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| (r.path, r.status))
        .collect::<Vec<_>>();
    assert_eq!(
        deleted,
        [("/api/v1/namespaces/proximity/configmaps/b".to_owned(), 200)]
    );
    assert!(b_uid.is_string());

    // An object that lost our label is left alone.
    applier.apply(yaml(&["a", "c"])).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "proximity");
    let foreign = configmap("c", json!({"owner": "someone-else"}), json!({}));
    let mut foreign = serde_json::to_value(foreign).unwrap();
    foreign["metadata"]["namespace"] = json!("proximity");
    cms.patch(
        "c",
        &PatchParams::apply("provisioner").force(),
        &Patch::Apply(&foreign),
    )
    .await
    .unwrap();
    let report = Applier::new(admin, "dev", "proximity", wait)
        .apply(yaml(&["a"]))
        .await
        .unwrap();
    assert!(report.pruned.is_empty(), "{report:?}");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(api.object("ConfigMap", Some("proximity"), "c").is_some());
}

/// A StatefulSet's volume claims cannot change in place (the real API answers 422): the
/// applier says which field and what to do, instead of a bare API error. Seen failing before
/// the applier's answer: the error was "server-side apply of StatefulSet …: ApiError: …".
#[tokio::test]
async fn a_changed_volume_claim_template_is_refused_with_the_field_and_the_way_out() {
    let (api, admin) = cluster().await;
    register_nodes(&api, 3).await;
    for kind in ["Deployment", "StatefulSet", "Job"] {
        api.set_rollout_behaviour(kind, None, RolloutBehaviour::ReadyAfterReads(1));
    }
    let workload = dev_workload();
    apply_workload(
        admin.clone(),
        &workload,
        None,
        &fast_wait(Duration::from_secs(20)),
        &mut |_: &str| {},
    )
    .await
    .unwrap();
    let mut bigger = workload.clone();
    bigger.postgres_storage = "20Gi".into();
    let err = apply_workload(
        admin,
        &bigger,
        None,
        &fast_wait(Duration::from_secs(20)),
        &mut |_: &str| {},
    )
    .await
    .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("Kubernetes cannot change spec.volumeClaimTemplates"),
        "{text}"
    );
    assert!(
        text.contains("delete statefulset postgres-primary --cascade=orphan"),
        "{text}"
    );
}
