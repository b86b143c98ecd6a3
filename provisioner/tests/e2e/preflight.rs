//! Preflight: an endpoint without a service the template needs (LocalStack's free edition has
//! no ELBv2 and no Auto Scaling) fails before any change, naming the service and the endpoint.

use axum::http::StatusCode;
use axum::routing::any;
use axum::Router;
use provisioner::aws::{preflight, AwsSettings, Cloud, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_service_is_named_with_the_endpoint() {
    // A stand-in endpoint that implements nothing (HTTP 501, like an emulator lacking a service).
    let app = Router::new().fallback(any(|| async {
        (StatusCode::NOT_IMPLEMENTED, "API not implemented")
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let endpoint = format!("http://{addr}");
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let cloud = Cloud::connect(
        &AwsSettings {
            region: "us-east-1".into(),
            endpoint_url: Some(endpoint.clone()),
            profile: None,
        },
        "pf",
    )
    .await
    .unwrap();
    let err = preflight(
        &cloud,
        &[Service::ElasticLoadBalancingV2, Service::AutoScaling],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("Elastic Load Balancing v2"), "{err}");
    assert!(err.contains("Auto Scaling"), "{err}");
    assert!(err.contains(&endpoint), "{err}");
    assert_eq!(
        cloud.stats.retries(),
        0,
        "an unsupported service is not retried"
    );
}

/// No credentials anywhere in the chain: the command fails at once naming them, instead of
/// retrying every service through its whole backoff as if the network were down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_fail_at_once_naming_them() {
    let guard = harness::emulator().await.unwrap();
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../vpc-templates/dev.yaml");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["plan", "-f", template, "--endpoint-url", &guard.endpoint])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_CONFIG_FILE", "/nonexistent/config")
        // No instance metadata service here (and none should be waited for).
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "provisioner=info")
        .output()
        .await
        .expect("running provisioner");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("credentials"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("retrying"),
        "a missing credential is not a transport error to retry:\n{stderr}"
    );
}
