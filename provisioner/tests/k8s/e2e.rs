//! Real-cluster end-to-end test: runs only when `E2E_KUBECONFIG` names a kubeconfig (for
//! anyone with a k3s cluster; not in CI). Deploys the `dev` workload (image from
//! `E2E_IMAGE`, else the template's), waits for every rollout, then applies again and checks
//! that nothing is pruned and the credentials were kept.

use std::path::PathBuf;
use std::time::Duration;

use provisioner::k8s::apply::WaitConfig;
use provisioner::k8s::deploy::apply_workload;
use provisioner::k8s::kubeconfig::client_from_file;
use provisioner::k8s::render::{Workload, WorkloadOptions};

#[tokio::test]
async fn deploys_the_workload_to_a_real_cluster() {
    let Some(path) = std::env::var_os("E2E_KUBECONFIG") else {
        eprintln!(
            "SKIPPED: E2E_KUBECONFIG is unset (no Kubernetes API server runs on these machines)"
        );
        return;
    };
    let env = crate::common::dev_env();
    let opts = WorkloadOptions {
        image: std::env::var("E2E_IMAGE").ok(),
        ..WorkloadOptions::default()
    };
    let workload = Workload::from_env(&env, &opts).expect("workload");
    let client = client_from_file(&PathBuf::from(path))
        .await
        .expect("kubeconfig");
    let wait = WaitConfig {
        rollout_timeout: Duration::from_secs(900),
        ..WaitConfig::default()
    };
    let mut log = |l: &str| eprintln!("{l}");
    let first = apply_workload(client.clone(), &workload, None, &wait, &mut log)
        .await
        .expect("first deploy");
    assert!(!first.applied.is_empty());
    let second = apply_workload(client, &workload, None, &wait, &mut log)
        .await
        .expect("second deploy");
    assert!(
        second.pruned.is_empty(),
        "a no-change deploy pruned {:?}",
        second.pruned
    );
    assert_eq!(first.applied, second.applied);
}
