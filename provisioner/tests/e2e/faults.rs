//! Through the fault-injecting proxy (throttling, 5xx, NotFound right after a create, NAT
//! gateways and load balancers pending for a while): `up` and `down` still converge, and the
//! summary says what was retried.

use std::time::Duration;

use provisioner::aws::{AwsSettings, Cloud};
use provisioner::commands::{down, plan, up};
use provisioner::faultproxy::{FaultConfig, FaultProxy};

use crate::{load, no_progress, sdk_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_and_down_converge_through_faults() {
    let guard = harness::emulator().await.unwrap();
    sdk_env(&guard);
    let proxy = FaultProxy::start(
        &guard.endpoint,
        "127.0.0.1:0".parse().unwrap(),
        FaultConfig {
            seed: 7,
            throttle: 0.15,
            server_error: 0.05,
            not_found_for: Duration::from_millis(500),
            pending_for: Duration::from_secs(2),
            deleting_for: Duration::from_secs(1),
        },
    )
    .await
    .unwrap();
    let env = load("dev.yaml");
    let mut cloud = Cloud::connect(
        &AwsSettings {
            region: "us-east-1".into(),
            endpoint_url: Some(proxy.endpoint()),
            profile: None,
        },
        "dev",
    )
    .await
    .unwrap();
    cloud.policy.base = Duration::from_millis(50);
    cloud.policy.max_attempts = 30;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{}", up::render_summary(&r));
    assert!(
        r.retries > 0 && !r.retried.is_empty(),
        "{}",
        up::render_summary(&r)
    );
    let summary = up::render_summary(&r);
    assert!(summary.contains("retried: "), "{summary}");

    let p = plan::plan(&cloud, &env).await.unwrap();
    assert!(
        !p.has_changes() && p.errors.is_empty(),
        "{}",
        plan::render_text(&p)
    );

    let d = down::teardown(&cloud, Duration::from_secs(120), &no_progress())
        .await
        .unwrap();
    assert!(d.left.is_empty(), "{:?} {:?}", d.left, d.errors);
    assert!(crate::e2e::counts::tagged(&guard.endpoint, "dev")
        .await
        .is_empty());
    assert!(proxy.stats().injected() > 0);
}
