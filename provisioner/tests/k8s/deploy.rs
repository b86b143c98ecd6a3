//! `up`'s Kubernetes half, one path wherever the endpoint is: where no instance ever runs its
//! user-data it stops at the boot timeout (and `up` renders the workload instead); a server
//! that took the init lock keeps it waiting; the cluster is up when `/readyz` and the nodes
//! say so; serving means a nearby-search answer through the ALB, where `--resolve` says.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use provisioner::k8s::deploy::{
    deploy, ClusterAccess, DeployOptions, DeployOutcome, PublishedKubeconfig,
};

use crate::common::{dev_env, repo_root};

/// SSM as the deploy sees it: the parameters that exist, and every name asked for.
#[derive(Default)]
struct Parameters {
    values: Vec<(String, String)>,
    asked: Mutex<Vec<String>>,
}

impl PublishedKubeconfig for Parameters {
    async fn fetch(&self, name: &str) -> anyhow::Result<Option<String>> {
        self.asked.lock().unwrap().push(name.to_owned());
        Ok(self
            .values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()))
    }
}

fn access(secrets: &Parameters) -> ClusterAccess<'_, Parameters> {
    let env = dev_env();
    ClusterAccess {
        secrets,
        endpoints: provisioner::bootstrap::Endpoints::for_env(&env, "nlb.example"),
        service_url: "http://alb.example".into(),
        public_name: None,
        name_servers: Vec::new(),
        instance_ips: Vec::new(),
        kubeconfig_out: None,
    }
}

#[tokio::test]
async fn where_no_instance_runs_its_user_data_the_deploy_stops_at_the_boot_timeout() {
    let params = Parameters::default();
    let opts = DeployOptions {
        boot_timeout: Duration::from_millis(150),
        poll_interval: Duration::from_millis(10),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let started = Instant::now();
    let outcome = deploy(&dev_env(), access(&params), &opts, &mut progress)
        .await
        .unwrap();
    let DeployOutcome::NoNodes { waited } = outcome else {
        panic!("expected NoNodes, got {outcome:?}");
    };
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    let asked = params.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&"/provisioner/dev/k3s/kubeconfig".to_string()),
        "{asked:?}"
    );
    assert!(
        asked.contains(&"/provisioner/dev/k3s/init-server".to_string()),
        "{asked:?}"
    );
    assert!(asked.len() > 4, "it polled: {asked:?}");
    assert!(
        lines.iter().any(|l| l.contains("no k3s server has taken")),
        "{lines:?}"
    );

    // Told not to wait (`--local`, PROVISIONER_BOOT_TIMEOUT=0): it looks once.
    let params = Parameters::default();
    let opts = DeployOptions {
        boot_timeout: Duration::ZERO,
        ..DeployOptions::default()
    };
    let outcome = deploy(&dev_env(), access(&params), &opts, &mut |_: &str| {})
        .await
        .unwrap();
    assert!(
        matches!(outcome, DeployOutcome::NoNodes { .. }),
        "{outcome:?}"
    );
    assert_eq!(params.asked.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_server_holding_the_init_lock_keeps_up_waiting_for_its_kubeconfig() {
    let params = Parameters {
        values: vec![("/provisioner/dev/k3s/init-server".into(), "i-0abc".into())],
        ..Parameters::default()
    };
    let opts = DeployOptions {
        boot_timeout: Duration::ZERO,
        cluster_timeout: Duration::from_millis(200),
        poll_interval: Duration::from_millis(10),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let err = deploy(&dev_env(), access(&params), &opts, &mut progress)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("did not publish /provisioner/dev/k3s/kubeconfig"),
        "{msg}"
    );
    assert!(
        lines.iter().any(|l| l.contains("server i-0abc holds")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn the_rendered_bundle_is_what_up_writes_where_no_cluster_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rendered/dev");
    let rendered =
        provisioner::artifacts::render_all(&dev_env(), &Default::default(), &out).unwrap();
    assert!(rendered.problems.is_empty(), "{:?}", rendered.problems);
    for f in [
        "manifests/30-proximity-service.yaml",
        "userdata/servers.sh",
        "iam/k3s-agent-policy.json",
    ] {
        assert!(
            rendered.files.contains(&out.join(f)),
            "{f} missing from {:?}",
            rendered.files
        );
    }
}

#[tokio::test]
async fn a_template_off_the_pinned_k3s_line_still_renders_manifests_and_says_why_not_user_data() {
    // The template as committed, whatever its k3s version.
    let path = repo_root().join("vpc-templates/dev.yaml");
    let mut env = provisioner::template::load(&path).unwrap().env;
    env.cluster.k3s_version = "v1.31.4+k3s1".into();
    let dir = tempfile::tempdir().unwrap();
    let rendered =
        provisioner::artifacts::render_all(&env, &Default::default(), dir.path()).unwrap();
    assert!(
        rendered
            .problems
            .iter()
            .any(|l| l.starts_with("user-data of pool servers: cluster.k3s_version:")),
        "{:?}",
        rendered.problems
    );
    assert!(dir.path().join("manifests/00-namespace.yaml").is_file());
    assert!(!dir.path().join("userdata/servers.sh").exists());
}

fn node(name: &str, ready: bool) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    })
}

#[tokio::test]
async fn the_cluster_is_up_when_readyz_says_ok_and_every_node_is_ready() {
    use crate::mock_api::{Expect, MockApiServer};
    use axum::http::StatusCode;
    let nodes = |items: Vec<serde_json::Value>| serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items});
    let mock = MockApiServer::start(vec![
        Expect::get("/readyz").respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "message": "[-]etcd failed", "code": 500}),
        ),
        Expect::get("/readyz").respond_text("ok"),
        Expect::get("/api/v1/nodes").respond(
            StatusCode::OK,
            nodes(vec![node("a", true), node("b", false)]),
        ),
        Expect::get("/api/v1/nodes").respond(
            StatusCode::OK,
            nodes(vec![node("a", true), node("b", true), node("c", true)]),
        ),
    ])
    .await;
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    provisioner::k8s::deploy::wait_until_ready(
        &mock.client(),
        3,
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        &mut progress,
    )
    .await
    .unwrap();
    mock.verify();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("waiting for the API /readyz")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("1/3 nodes Ready")),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "k3s is up: 3 nodes Ready");
}

#[tokio::test]
async fn waiting_for_the_cluster_gives_up_at_its_deadline() {
    use crate::mock_api::{Expect, MockApiServer};
    let mock = MockApiServer::start(vec![Expect::get("/readyz")
        .respond_text("[-]etcd failed")
        .repeated()])
    .await;
    let mut progress = |_: &str| {};
    let err = provisioner::k8s::deploy::wait_until_ready(
        &mock.client(),
        3,
        std::time::Duration::from_millis(200),
        std::time::Duration::from_millis(20),
        &mut progress,
    )
    .await
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("the API /readyz through the NLB: not reached within"),
        "{msg}"
    );
    assert!(msg.contains("/readyz says [-]etcd failed"), "{msg}");
}

#[tokio::test]
async fn serving_means_a_nearby_search_answers_through_the_public_name() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // A stand-in for the ALB: 503 twice (targets still unhealthy), then the service.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let app = {
        let calls = calls.clone();
        let seen = seen.clone();
        axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let calls = calls.clone();
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(uri.to_string());
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "no healthy targets",
                    ),
                    // A default backend that answers 200 is not the service.
                    2 => (axum::http::StatusCode::OK, "<html>welcome</html>"),
                    _ => (
                        axum::http::StatusCode::OK,
                        "{\"total\":0,\"results\":[],\"next_cursor\":null}",
                    ),
                }
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The ALB's name does not resolve here: `--resolve` maps it to the stand-in.
    let url = "http://web-1234.us-east-1.elb.amazonaws.com".to_string();
    let resolver = provisioner::resolve::Resolver::new(
        &[format!(
            "web-1234.us-east-1.elb.amazonaws.com:80:{}",
            listener.local_addr().unwrap()
        )],
        None,
    )
    .unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let opts = DeployOptions {
        serving_timeout: std::time::Duration::from_secs(10),
        poll_interval: std::time::Duration::from_millis(10),
        resolver,
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    provisioner::k8s::deploy::wait_for_serving(&url, &opts, &mut progress)
        .await
        .unwrap();
    server.abort();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        seen.lock().unwrap()[0],
        provisioner::k8s::deploy::SMOKE_QUERY,
        "the smoke query is a nearby search"
    );
    assert!(
        lines.iter().any(|l| l.contains("answered 503")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("but not a nearby search")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().starts_with("serving: "), "{lines:?}");
}

/// Fails before the fix: `up` went straight to polling `/readyz` through an internal NLB for
/// the whole cluster timeout (25 minutes) from a machine outside the VPC.
#[tokio::test]
async fn an_unreachable_internal_api_is_reported_at_once_with_what_to_do() {
    use provisioner::k8s::deploy::check_api_reachable;
    // A loopback port nothing listens on stands for the NLB's private address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let resolver = provisioner::resolve::Resolver::new(
        &[format!("nlb.example:6443:127.0.0.1:{}", addr.port())],
        None,
    )
    .unwrap();
    let opts = DeployOptions {
        api_reach_timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(50),
        resolver,
        ..DeployOptions::default()
    };
    let env = dev_env();
    assert_eq!(
        env.cluster.api_access,
        provisioner::template::ApiAccess::Internal
    );
    let mut lines = Vec::new();
    let started = Instant::now();
    let err = check_api_reachable(&env, "nlb.example", &opts, &mut |l: &str| {
        lines.push(l.to_owned())
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("cannot reach the k3s API at nlb.example:6443"),
        "{err}"
    );
    assert!(
        err.contains("inside the VPC, a peered VPC or over a VPN"),
        "{err}"
    );
    assert!(err.contains("cluster.api_access: public"), "{err}");
    assert!(
        lines.iter().any(|l| l.contains("waiting for the k3s API")),
        "{lines:?}"
    );

    // Once something answers there, the check passes.
    let open = std::net::TcpListener::bind(addr).unwrap();
    check_api_reachable(&env, "nlb.example", &opts, &mut |_: &str| {})
        .await
        .unwrap();
    drop(open);
}

#[tokio::test]
async fn an_internal_api_is_announced_before_waiting_for_the_cluster() {
    let params = Parameters::default();
    let opts = DeployOptions {
        boot_timeout: Duration::from_millis(10),
        poll_interval: Duration::from_millis(10),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    deploy(&dev_env(), access(&params), &opts, &mut progress)
        .await
        .unwrap();
    assert!(
        lines[0].contains("internal (cluster.api_access: internal)")
            && lines[0].contains("nlb.example:6443"),
        "{lines:?}"
    );
}

/// A new public zone answers only once its parent delegates to it: `up` names the NS records.
#[tokio::test]
async fn an_undelegated_public_name_is_reported_with_the_ns_records_to_add() {
    let ns = vec![
        "ns-1.awsdns-01.org".to_string(),
        "ns-2.awsdns-02.com".to_string(),
    ];
    let line = provisioner::k8s::deploy::public_name_status(
        "api.proximity.invalid",
        &ns,
        &provisioner::resolve::Resolver::default(),
    )
    .await;
    assert!(line.contains("does not resolve yet"), "{line}");
    assert!(
        line.contains("proximity.invalid. NS ns-1.awsdns-01.org ns-2.awsdns-02.com"),
        "{line}"
    );
}

fn node_at(name: &str, ready: bool, since: &str, ip: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name},
        "status": {
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "Unknown" },
                            "lastTransitionTime": since}],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]
        }
    })
}

/// A Node left behind by a replaced instance (NotReady for long, its address no running
/// instance's) is deleted; a recent NotReady one, one whose instance still runs, and a Ready
/// one are kept.
#[tokio::test]
async fn nodes_whose_instance_is_gone_are_removed_and_no_other() {
    use crate::mock_api::{Expect, MockApiServer};
    use axum::http::{Method, StatusCode};
    let long_ago = "2026-01-01T00:00:00Z";
    let just_now = k8s_openapi::jiff::Timestamp::now().to_string();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
        node_at("ip-10-0-16-1", true, long_ago, "10.0.16.1"),
        node_at("ip-10-0-16-9", false, long_ago, "10.0.16.9"),
        node_at("ip-10-0-16-8", false, &just_now, "10.0.16.8"),
        node_at("ip-10-0-16-4", false, long_ago, "10.0.16.4"),
    ]});
    let mock = MockApiServer::start(vec![
        Expect::get("/api/v1/nodes").respond(StatusCode::OK, list),
        Expect::new(Method::DELETE, "/api/v1/nodes/ip-10-0-16-9").respond(
            StatusCode::OK,
            node_at("ip-10-0-16-9", false, long_ago, "10.0.16.9"),
        ),
    ])
    .await;
    let live = ["10.0.16.1", "10.0.16.4", "10.0.16.7"].map(String::from);
    let mut lines = Vec::new();
    let removed = provisioner::k8s::nodes::remove_departed_nodes(
        &mock.client(),
        &live,
        provisioner::k8s::nodes::DEPARTED_AFTER,
        &mut |l: &str| lines.push(l.to_owned()),
    )
    .await
    .unwrap();
    mock.verify();
    assert_eq!(removed, ["ip-10-0-16-9"]);
    assert!(lines[0].contains("no running instance"), "{lines:?}");

    // No instance listing: nothing is touched (not even a list call).
    let mock = MockApiServer::start(vec![]).await;
    let removed = provisioner::k8s::nodes::remove_departed_nodes(
        &mock.client(),
        &[],
        provisioner::k8s::nodes::DEPARTED_AFTER,
        &mut |_: &str| {},
    )
    .await
    .unwrap();
    mock.verify();
    assert!(removed.is_empty());
}
