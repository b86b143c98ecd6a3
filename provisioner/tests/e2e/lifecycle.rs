//! `up` on each template in vpc-templates/, then `plan` reports no changes, then `down`
//! leaves nothing tagged for the environment (counted through the emulator's APIs).

use provisioner::commands::{down, plan, up};

use crate::{cloud, load, no_progress};

async fn lifecycle(template: &str) {
    let guard = harness::emulator().await.unwrap();
    let env = load(template);
    let cloud = cloud(&guard, env.name.as_str()).await;
    provisioner::aws::preflight(&cloud, &plan::services(&env))
        .await
        .unwrap();

    let first = plan::plan(&cloud, &env).await.unwrap();
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    assert!(
        first.create > 0 && first.update == 0,
        "{}",
        plan::render_text(&first)
    );

    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{}", up::render_summary(&r));
    assert_eq!(r.created, first.create, "up creates what the plan said");
    eprintln!("{template}: {}", up::render_summary(&r));

    let again = plan::plan(&cloud, &env).await.unwrap();
    assert!(
        !again.has_changes() && again.errors.is_empty(),
        "plan after up must be empty:\n{}",
        plan::render_text(&again)
    );
    let total = again.unchanged;
    assert!(
        (again.api_calls as usize) < total,
        "a no-change plan needs fewer calls ({}) than one per resource ({total})",
        again.api_calls
    );

    let before = crate::e2e::counts::tagged(&guard.endpoint, env.name.as_str()).await;
    assert!(!before.is_empty());

    let d = down::teardown(&cloud, std::time::Duration::from_secs(120), &no_progress())
        .await
        .unwrap();
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert!(d.left.is_empty(), "left: {:?}", d.left);
    let after = crate::e2e::counts::tagged(&guard.endpoint, env.name.as_str()).await;
    assert!(
        after.is_empty(),
        "still tagged after down: {after:?} (before: {before:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_template_up_plan_down() {
    lifecycle("dev.yaml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_vpc_template_up_plan_down() {
    lifecycle("multi-vpc.yaml").await;
}
