use std::time::Duration;

use provisioner::faultproxy::{FaultConfig, FaultProxy};

use crate::support::{assert_nothing_left, provisioner, Dev, LIMIT};

#[tokio::test]
async fn up_and_down_converge_through_injected_faults() -> anyhow::Result<()> {
    let fixture = Dev::start().await?;
    let (emu, aws, dev) = (&fixture.emu, &fixture.aws, fixture.template());
    let proxy = FaultProxy::start(
        &emu.endpoint,
        "127.0.0.1:0".parse()?,
        FaultConfig {
            seed: 20_261_126,
            throttle: 0.2,
            server_error: 0.05,
            not_found_for: Duration::from_millis(500),
            pending_for: Duration::from_secs(5),
            deleting_for: Duration::from_secs(3),
        },
    )
    .await?;
    let through = proxy.endpoint();

    let up = provisioner(&through, &fixture.up_args(), LIMIT).await?;
    up.expect_code(0, "up through the fault proxy");
    let text = up.text();
    assert!(
        text.contains("retried: "),
        "up does not say what it retried:\n{text}"
    );
    assert!(
        text.contains("RequestLimitExceeded") || text.contains("Throttling"),
        "no throttling retry reported:\n{text}"
    );
    assert!(
        text.contains(".NotFound"),
        "no NotFound retry reported:\n{text}"
    );
    let stats = proxy.stats();
    println!("injected during up: {stats:#?}");
    assert!(stats.throttled > 0, "{stats:?}");
    assert!(stats.server_errors > 0, "{stats:?}");
    assert!(stats.not_found > 0, "{stats:?}");
    // The waiters saw NAT gateways and load balancers pending, and waited.
    for call in [
        "pending ec2:DescribeNatGateways",
        "pending elasticloadbalancing:DescribeLoadBalancers",
    ] {
        assert!(stats.by_call.contains_key(call), "{call}: {stats:#?}");
    }

    // Converged exactly once: nothing to do, nothing duplicated.
    provisioner(&emu.endpoint, &["plan", "-f", dev], LIMIT)
        .await?
        .expect_code(0, "plan after up through faults");
    let inv = aws.inventory("dev").await?;
    assert!(
        inv.duplicates().is_empty(),
        "duplicates: {:?}",
        inv.duplicates()
    );
    assert_eq!(inv.count("vpc"), 1, "{}", inv.describe());
    assert_eq!(inv.count("subnet"), 4, "{}", inv.describe());
    assert_eq!(inv.count("nat"), 1, "{}", inv.describe());
    assert_eq!(inv.count("asg"), 3, "{}", inv.describe());
    assert_eq!(inv.count("lb"), 2, "{}", inv.describe());

    let before = proxy.stats().injected();
    let down = provisioner(&through, &["down", "-f", dev, "--yes"], LIMIT).await?;
    down.expect_code(0, "down through the fault proxy");
    assert!(
        down.text().contains("retried: "),
        "down does not say what it retried:\n{}",
        down.text()
    );
    let stats = proxy.stats();
    assert!(stats.injected() > before, "{stats:?}");
    // down waited for the NAT gateway to finish deleting (before releasing
    // its address and detaching the internet gateway).
    assert!(
        stats
            .by_call
            .contains_key("deleting ec2:DescribeNatGateways"),
        "{stats:#?}"
    );
    assert_nothing_left(aws, "dev").await
}

/// A response lost after the call was done (a 5xx for a create that
/// happened) is what turns blind retries into duplicates, and what a crash
/// right after a create leaves behind. `up` through such losses may fail;
/// the next `up` must adopt what exists and converge, without duplicates.
#[tokio::test]
async fn lost_responses_leave_nothing_the_next_up_cannot_adopt() -> anyhow::Result<()> {
    // Creates are never re-sent blindly after a 5xx: `ResourceTask` re-finds by tag and
    // adopts; IAM adopts a role/profile under the environment's path.
    let fixture = Dev::start().await?;
    let (emu, aws) = (&fixture.emu, &fixture.aws);
    let up_args = fixture.up_args();
    let proxy = FaultProxy::start(
        &emu.endpoint,
        "127.0.0.1:0".parse()?,
        FaultConfig {
            seed: 3,
            throttle: 0.0,
            server_error: 0.0,
            not_found_for: Duration::from_millis(300),
            pending_for: Duration::from_millis(500),
            deleting_for: Duration::from_millis(500),
        },
    )
    .await?;
    proxy.set_lost_responses(0.15);
    let lossy = provisioner(&proxy.endpoint(), &up_args, LIMIT).await?;
    assert!(
        proxy.stats().lost_responses > 0,
        "no response was lost: {:?}",
        proxy.stats()
    );
    let inv = aws.inventory("dev").await?;
    assert!(
        inv.duplicates().is_empty(),
        "lost responses made duplicates: {:?}\n{}",
        inv.duplicates(),
        lossy.text()
    );

    let again = provisioner(&emu.endpoint, &up_args, LIMIT).await?;
    again.expect_code(
        0,
        "up after lost responses (must adopt what the lost calls created)",
    );
    fixture.assert_converged_then_down("recovery").await
}

/// A crash between `iam:CreateRole` and `iam:CreateInstanceProfile` leaves a role and no
/// profile: the next `up` adopts the role (it is under the environment's path). A role of
/// the same name elsewhere is someone else's: `up` fails naming it and does not touch it.
#[tokio::test]
async fn a_role_left_by_a_crash_is_adopted_and_a_foreign_one_is_not() -> anyhow::Result<()> {
    let fixture = Dev::start().await?;
    let (emu, aws) = (&fixture.emu, &fixture.aws);
    let up_args = fixture.up_args();
    let assume = provisioner::bootstrap::instance_assume_role_policy().to_string();
    // What a crash right after CreateRole leaves: the role, under the env's path, no profile.
    aws.iam
        .create_role()
        .role_name("dev-us-east-1-servers")
        .path("/provisioner/us-east-1/dev/")
        .assume_role_policy_document(&assume)
        .send()
        .await?;
    // Someone else's role with the name the env wants for another pool.
    aws.iam
        .create_role()
        .role_name("dev-us-east-1-agents")
        .path("/")
        .assume_role_policy_document(&assume)
        .send()
        .await?;
    let refused = provisioner(&emu.endpoint, &up_args, LIMIT).await?;
    refused.expect_code(1, "up with a foreign role named like the env's");
    assert!(
        refused.text().contains("not owned by environment dev"),
        "{}",
        refused.text()
    );
    let foreign = aws
        .iam
        .get_role()
        .role_name("dev-us-east-1-agents")
        .send()
        .await?;
    assert_eq!(foreign.role().map(|r| r.path()), Some("/"));
    aws.iam
        .delete_role()
        .role_name("dev-us-east-1-agents")
        .send()
        .await?;

    provisioner(&emu.endpoint, &up_args, LIMIT)
        .await?
        .expect_code(0, "up adopting the role a crash left");
    let inv = aws.inventory("dev").await?;
    assert!(inv.duplicates().is_empty(), "{:?}", inv.duplicates());
    assert_eq!(inv.count("instance-profile"), inv.count("iam-role"));
    fixture.assert_converged_then_down("adopting").await
}

/// `up` creates a pool's role and instance profile at once, so a failure or a crash can
/// leave a profile without its role. `down` finds profiles under the environment's path
/// on their own and deletes them; a role or profile of the same name under another path
/// is someone else's and survives.
#[tokio::test]
async fn down_deletes_a_profile_left_without_its_role_and_spares_foreign_ones() -> anyhow::Result<()>
{
    let fixture = Dev::start().await?;
    let (emu, aws, dev) = (&fixture.emu, &fixture.aws, fixture.template());
    let assume = provisioner::bootstrap::instance_assume_role_policy().to_string();
    let ours = "/provisioner/us-east-1/dev/";
    // Left by a crash: a profile with no role, and a role with no profile.
    aws.iam
        .create_instance_profile()
        .instance_profile_name("dev-us-east-1-agents")
        .path(ours)
        .send()
        .await?;
    aws.iam
        .create_role()
        .role_name("dev-us-east-1-servers")
        .path(ours)
        .assume_role_policy_document(&assume)
        .send()
        .await?;
    // The same environment in another region: its own path and names, never ours.
    aws.iam
        .create_role()
        .role_name("dev-eu-west-1-servers")
        .path("/provisioner/eu-west-1/dev/")
        .assume_role_policy_document(&assume)
        .send()
        .await?;
    // Someone else's, with the same names.
    aws.iam
        .create_role()
        .role_name("dev-us-east-1-agents")
        .path("/")
        .assume_role_policy_document(&assume)
        .send()
        .await?;
    aws.iam
        .create_instance_profile()
        .instance_profile_name("dev-us-east-1-servers")
        .path("/")
        .send()
        .await?;

    let down = provisioner(&emu.endpoint, &["down", "-f", dev, "--yes"], LIMIT).await?;
    down.expect_code(0, "down of what a crash left");
    assert!(
        down.text().contains("profile/dev-us-east-1-agents"),
        "{}",
        down.text()
    );
    assert_nothing_left(aws, "dev").await?;
    let other_region = aws
        .iam
        .get_role()
        .role_name("dev-eu-west-1-servers")
        .send()
        .await?;
    assert_eq!(
        other_region.role().map(|r| r.path()),
        Some("/provisioner/eu-west-1/dev/"),
        "down in us-east-1 must not touch the eu-west-1 environment's role"
    );
    let role = aws
        .iam
        .get_role()
        .role_name("dev-us-east-1-agents")
        .send()
        .await?;
    assert_eq!(role.role().map(|r| r.path()), Some("/"));
    let profile = aws
        .iam
        .get_instance_profile()
        .instance_profile_name("dev-us-east-1-servers")
        .send()
        .await?;
    assert_eq!(profile.instance_profile().map(|p| p.path()), Some("/"));
    Ok(())
}
