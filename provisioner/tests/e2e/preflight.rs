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
