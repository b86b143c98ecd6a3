//! `up` on the emulator: it says plainly that k3s cannot come up, and without
//! `--kubeconfig` writes the rendered bundle instead.

use provisioner::k8s::deploy::{
    deploy, DeployOptions, DeployOutcome, DeployTarget, PublishedKubeconfig, EMULATOR_NOTICE,
};

use crate::common::{dev_env, repo_root};

type Target<'a> = DeployTarget<'a, Unreachable>;

/// Never asked on the emulator path.
struct Unreachable;

impl PublishedKubeconfig for Unreachable {
    async fn fetch(&self, _: &str) -> anyhow::Result<Option<String>> {
        panic!("the emulator path must not look for a published kubeconfig")
    }
}

#[tokio::test]
async fn on_the_emulator_without_a_cluster_the_rendered_bundle_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rendered/dev");
    let opts = DeployOptions {
        manifests_out: Some(out.clone()),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let outcome = deploy(
        &dev_env(),
        Target::Emulator { kubeconfig: None },
        &opts,
        &mut progress,
    )
    .await
    .unwrap();
    assert_eq!(lines[0], EMULATOR_NOTICE);
    assert!(lines.last().unwrap().contains("REDACTED"), "{lines:?}");
    let DeployOutcome::Rendered {
        dir: written,
        files,
    } = outcome
    else {
        panic!("expected the rendered bundle");
    };
    assert_eq!(written, out);
    for f in [
        "manifests/30-proximity-service.yaml",
        "userdata/servers.sh",
        "iam/k3s-agent-policy.json",
    ] {
        assert!(files.contains(&out.join(f)), "{f} missing from {files:?}");
    }
}

#[tokio::test]
async fn a_template_off_the_pinned_k3s_line_still_renders_manifests_and_says_why_not_user_data() {
    // The template as committed, whatever its k3s version.
    let path = repo_root().join("vpc-templates/dev.yaml");
    let mut env = provisioner::template::load(&path).unwrap().env;
    env.cluster.k3s_version = "v1.31.4+k3s1".into();
    let dir = tempfile::tempdir().unwrap();
    let opts = DeployOptions {
        manifests_out: Some(dir.path().to_owned()),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    deploy(
        &env,
        Target::Emulator { kubeconfig: None },
        &opts,
        &mut progress,
    )
    .await
    .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("warning: user-data of pool servers: cluster.k3s_version:")),
        "{lines:?}"
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
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "no healthy targets",
                    )
                } else {
                    (axum::http::StatusCode::OK, "{\"results\":[]}")
                }
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let opts = DeployOptions {
        serving_timeout: std::time::Duration::from_secs(10),
        poll_interval: std::time::Duration::from_millis(10),
        ..DeployOptions::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    provisioner::k8s::deploy::wait_for_serving(&url, &opts, &mut progress)
        .await
        .unwrap();
    server.abort();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        seen.lock().unwrap()[0],
        provisioner::k8s::deploy::SMOKE_QUERY,
        "the smoke query is a nearby search"
    );
    assert!(
        lines.iter().any(|l| l.contains("answered 503")),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().starts_with("serving: "), "{lines:?}");
}
