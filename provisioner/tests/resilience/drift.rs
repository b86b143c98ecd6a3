use aws_sdk_ec2::types::{Filter, IpPermission, UserIdGroupPair};
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};

use crate::support::{provisioner, Aws, Dev, LIMIT, TAG_NAME};

async fn tagged_id(aws: &Aws, kind: &str, name: &str) -> anyhow::Result<String> {
    let f = Filter::builder()
        .name(format!("tag:{TAG_NAME}"))
        .values(name)
        .build();
    let id = match kind {
        "route-table" => aws
            .ec2
            .describe_route_tables()
            .filters(f)
            .send()
            .await?
            .route_tables()
            .first()
            .and_then(|r| r.route_table_id().map(str::to_owned)),
        "sg" => aws
            .ec2
            .describe_security_groups()
            .filters(f)
            .send()
            .await?
            .security_groups()
            .first()
            .and_then(|g| g.group_id().map(str::to_owned)),
        _ => None,
    };
    id.ok_or_else(|| anyhow::anyhow!("no {kind} tagged {name}"))
}

#[tokio::test]
async fn drift_shows_in_plan_and_up_repairs_it() -> anyhow::Result<()> {
    let fixture = Dev::start().await?;
    let (emu, aws, dev) = (&fixture.emu, &fixture.aws, fixture.template());
    let up_args = fixture.up_args();
    provisioner(&emu.endpoint, &up_args, LIMIT)
        .await?
        .expect_code(0, "up");

    // 1. The private subnet's default route (to the NAT gateway).
    let rtb = tagged_id(aws, "route-table", "main-private-a").await?;
    aws.ec2
        .delete_route()
        .route_table_id(&rtb)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await?;
    // 2. Postgres from the app nodes.
    let pg = tagged_id(aws, "sg", "postgres-nodes").await?;
    let agents = tagged_id(aws, "sg", "k3s-agent").await?;
    aws.ec2
        .revoke_security_group_ingress()
        .group_id(&pg)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(&agents)
                        // As the rule was made (moto matches a revoke on it; AWS ignores it).
                        .description("Postgres only from the app nodes")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    // 3. The k8s alias record.
    let zones = aws.r53.list_hosted_zones().send().await?;
    let zone = zones
        .hosted_zones()
        .iter()
        .find(|z| z.name() == "dev.proximity.internal.")
        .expect("the dev zone");
    let sets = aws
        .r53
        .list_resource_record_sets()
        .hosted_zone_id(zone.id())
        .send()
        .await?;
    let record = sets
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == "k8s.dev.proximity.internal." && r.r#type().as_str() == "A")
        .expect("the k8s record")
        .clone();
    aws.r53
        .change_resource_record_sets()
        .hosted_zone_id(zone.id())
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Delete)
                        .resource_record_set(record)
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await?;

    // plan names each change (exit 2), in text and in JSON.
    let plan = provisioner(
        &emu.endpoint,
        &["plan", "-f", dev, "--output", "json"],
        LIMIT,
    )
    .await?;
    plan.expect_code(2, "plan after drift");
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout)?;
    assert_eq!(doc["schema"], "provisioner.plan/v1");
    // A deleted record is created again; the two drifted resources are updated.
    assert_eq!(
        (
            doc["summary"]["create"].as_u64(),
            doc["summary"]["update"].as_u64()
        ),
        (Some(1), Some(2)),
        "{doc}"
    );
    let changed: Vec<String> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["resource"].as_str().unwrap_or("").to_owned())
        .collect();
    for key in [
        "routes/main-private-a",
        "sg-rules/postgres-nodes",
        "record/k8s.dev.proximity.internal-A",
    ] {
        assert!(
            changed.iter().any(|k| k == key),
            "{key} not in plan: {changed:?}"
        );
    }
    assert_eq!(
        changed.len(),
        3,
        "only the drifted resources change: {changed:?}"
    );
    let text = provisioner(&emu.endpoint, &["plan", "-f", dev], LIMIT).await?;
    text.expect_code(2, "text plan after drift");
    for needle in [
        "main-private-a",
        "postgres-nodes",
        "k8s.dev.proximity.internal",
    ] {
        assert!(text.stdout.contains(needle), "{needle}:\n{}", text.stdout);
    }

    // up repairs exactly that; then nothing is left to do.
    provisioner(&emu.endpoint, &up_args, LIMIT)
        .await?
        .expect_code(0, "up repairing drift");
    let routes = aws
        .ec2
        .describe_route_tables()
        .route_table_ids(&rtb)
        .send()
        .await?;
    assert!(
        routes.route_tables()[0]
            .routes()
            .iter()
            .any(
                |r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.nat_gateway_id().is_some()
            ),
        "default route via NAT restored"
    );
    fixture.assert_converged_then_down("repair").await
}
