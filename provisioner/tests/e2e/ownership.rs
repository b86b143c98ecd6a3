//! Ownership: `down` never touches what is not tagged for its environment (the default VPC,
//! a VPC created by someone else, another environment's resources), works from `--env NAME`
//! alone, and lists (and fails on) what it could not delete.

use provisioner::aws::api::*;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use clap::Parser;
use provisioner::commands::{down, up};

use crate::{cloud, load, no_progress, parse};

async fn raw_ec2(guard: &harness::EmulatorGuard) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&crate::raw_conf(guard).await)
}

async fn vpc_exists(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    ec2.describe_vpcs()
        .filters(Filter::builder().name("vpc-id").values(id).build())
        .send()
        .await
        .unwrap()
        .vpcs()
        .len()
        == 1
}

const SMALL: &str = r#"
name: owned
region: us-east-1
cluster: {k3s_version: v1.34.1+k3s1, service_image: "example/img:1"}
vpcs:
  - name: main
    cidr: 10.50.0.0/16
    az_count: 2
    nat: single
    subnets:
      - {name: public-a,  kind: public,  az_index: 0, cidr: 10.50.0.0/24}
      - {name: public-b,  kind: public,  az_index: 1, cidr: 10.50.1.0/24}
      - {name: private-a, kind: private, az_index: 0, cidr: 10.50.16.0/20}
security_groups:
  - name: app
    vpc: main
    description: app
    ingress:
      - {protocol: tcp, ports: 8080, source: {group: app}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_spares_everything_not_tagged_for_the_env() {
    let guard = harness::emulator().await.unwrap();
    let ec2 = raw_ec2(&guard).await;
    let default_vpcs: Vec<String> = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap()
        .vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(String::from))
        .collect();
    assert!(!default_vpcs.is_empty(), "moto pre-creates a default VPC");
    // A VPC someone made by hand (untagged), and one of another environment.
    let stranger = crate::untagged_vpc(&ec2, "10.50.0.0/16").await;
    let neighbour = ec2
        .create_vpc()
        .cidr_block("10.60.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(Tag::builder().key("provisioner:env").value("other").build())
                .tags(Tag::builder().key("provisioner:name").value("main").build())
                .build(),
        )
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();

    let env = parse(SMALL);
    let cloud = cloud(&guard, "owned").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // The other env's VPC has the same logical name: it must not be adopted.
    cloud.inventory.clear();
    let vpcs = cloud.vpcs().await.unwrap();
    assert_eq!(vpcs.len(), 1);
    assert_ne!(vpcs[0].id, neighbour);

    let d = down::teardown(&cloud, Duration::from_secs(60), &no_progress())
        .await
        .unwrap();
    assert!(d.left.is_empty(), "{:?}", d.left);
    for id in default_vpcs.iter().chain([&stranger, &neighbour]) {
        assert!(vpc_exists(&ec2, id).await, "{id} must survive down");
    }
    assert!(crate::e2e::counts::tagged(&guard.endpoint, "owned")
        .await
        .is_empty());
    assert!(!crate::e2e::counts::tagged(&guard.endpoint, "other")
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_by_env_name_alone_through_the_cli() {
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(!crate::e2e::counts::tagged(&guard.endpoint, "dev")
        .await
        .is_empty());

    let cli = provisioner::cli::Cli::parse_from([
        "provisioner",
        "down",
        "--env",
        "dev",
        "--region",
        "us-east-1",
        "--endpoint-url",
        &guard.endpoint,
        "--deadline",
        "60",
    ]);
    let cfg = provisioner::cli::Config::resolve(cli).await.unwrap();
    assert!(cfg.yes, "no prompt on an emulator endpoint");
    let code = down::run(&cfg).await.unwrap();
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let left = crate::e2e::counts::tagged(&guard.endpoint, "dev").await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_lists_what_it_could_not_delete() {
    let guard = harness::emulator().await.unwrap();
    let env = parse(SMALL);
    let cloud = cloud(&guard, "owned").await;
    up::converge(&cloud, &env, &no_progress()).await.unwrap();
    // Someone adds an untagged subnet to our VPC: we must not delete it, so the VPC stays.
    cloud.inventory.clear();
    let vpc = cloud.vpcs().await.unwrap()[0].id.clone();
    let ec2 = raw_ec2(&guard).await;
    ec2.create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.50.200.0/24")
        .send()
        .await
        .unwrap();
    let d = down::teardown(&cloud, Duration::from_secs(3), &no_progress())
        .await
        .unwrap();
    assert_eq!(d.left.len(), 1, "{:?}", d.left);
    assert!(d.left[0].starts_with(&format!("vpc/{vpc}")), "{:?}", d.left);
    assert!(!d.errors.is_empty());
}

/// A network interface someone left in one of the environment's subnets is not the
/// environment's: `down` leaves it alone (real AWS then refuses to delete that subnet, and
/// `down` names the interface as what is in the way; moto lets the subnet go regardless).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_leaves_a_foreign_network_interface_in_its_subnet_alone() {
    let guard = harness::emulator().await.unwrap();
    let env = parse(SMALL);
    let cloud = cloud(&guard, "owned").await;
    up::converge(&cloud, &env, &no_progress()).await.unwrap();
    cloud.inventory.clear();
    let subnet = cloud.subnets().await.unwrap()[0].id.clone();
    let ec2 = raw_ec2(&guard).await;
    let eni = ec2
        .create_network_interface()
        .subnet_id(&subnet)
        .description("someone else's")
        .send()
        .await
        .unwrap()
        .network_interface()
        .unwrap()
        .network_interface_id()
        .unwrap()
        .to_string();
    let d = down::teardown(&cloud, Duration::from_secs(3), &no_progress())
        .await
        .unwrap();
    let still = ec2
        .describe_network_interfaces()
        .network_interface_ids(&eni)
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.network_interfaces().len(),
        1,
        "{eni} must survive down"
    );
    // The NAT gateway's own interface (moto leaves it detached) went with the environment:
    // the foreign one is the only detached interface left.
    let detached: Vec<String> = ec2
        .describe_network_interfaces()
        .send()
        .await
        .unwrap()
        .network_interfaces()
        .iter()
        .filter(|n| n.attachment().is_none())
        .filter_map(|n| n.network_interface_id().map(String::from))
        .collect();
    assert_eq!(detached, std::slice::from_ref(&eni));
    if d.left
        .iter()
        .any(|l| l.starts_with(&format!("subnet/{subnet}")))
    {
        assert!(
            d.in_the_way.iter().any(|l| l.contains(&eni)),
            "{:?}",
            d.in_the_way
        );
    }
}

/// Route 53 tags a zone only after creating it. A zone whose tagging never happened (the
/// provisioner was killed in between) is recognised by its caller reference, adopted and
/// tagged by the next `up` — no duplicate — and removed by `down`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untagged_zone_from_an_interrupted_create_is_adopted() {
    let guard = harness::emulator().await.unwrap();
    let r53 = aws_sdk_route53::Client::new(&crate::raw_conf(&guard).await);
    let zone = "adopt.example.com";
    r53.create_hosted_zone()
        .name(zone)
        .caller_reference(provisioner::aws::route53::caller_ref("owned", zone))
        .send()
        .await
        .unwrap();
    let yaml = format!("{SMALL}dns:\n  zone: {zone}\n  private: false\n  records:\n    - {{name: www, type: A, values: [192.0.2.1], ttl: 60}}\n");
    let env = parse(&yaml);
    let cloud = cloud(&guard, "owned").await;
    let p = provisioner::commands::plan::plan(&cloud, &env)
        .await
        .unwrap();
    let z = p
        .changes
        .iter()
        .find(|c| c.key.as_str() == format!("zone/{zone}"))
        .unwrap();
    assert_eq!(
        z.action,
        provisioner::engine::Action::Update,
        "{}",
        z.reason
    );
    assert!(z.reason.contains("tagged"), "{}", z.reason);
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let zones = r53.list_hosted_zones().send().await.unwrap();
    assert_eq!(
        zones
            .hosted_zones()
            .iter()
            .filter(|z| z.name() == format!("{zone}."))
            .count(),
        1,
        "adopted, not duplicated"
    );
    assert_eq!(
        crate::e2e::counts::tagged(&guard.endpoint, "owned")
            .await
            .get("route53:zone"),
        Some(&1)
    );
    let d = down::teardown(&cloud, Duration::from_secs(60), &no_progress())
        .await
        .unwrap();
    assert!(d.left.is_empty(), "{:?}", d.left);
    let zones = r53.list_hosted_zones().send().await.unwrap();
    assert!(zones
        .hosted_zones()
        .iter()
        .all(|z| z.name() != format!("{zone}.")));
}

/// A target group someone else made under the name the environment would use: AWS would answer
/// the create with that group (same name, same settings), so `up` refuses, naming it, and
/// leaves it as it was instead of adopting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_balancer_name_held_by_someone_else_is_refused_not_adopted() {
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&crate::raw_conf(&guard).await);
    let ec2 = raw_ec2(&guard).await;
    let default_vpc = ec2
        .describe_vpcs()
        .filters(Filter::builder().name("is-default").values("true").build())
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .vpc_id()
        .unwrap()
        .to_string();
    let name = provisioner::resources::aws_name("dev", "web-service", 32);
    let theirs = elb
        .create_target_group()
        .name(&name)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&default_vpc)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();

    let cloud = cloud(&guard, "dev").await;
    // The plan says so before anything is created, as `up` does.
    let p = provisioner::commands::plan::plan(&cloud, &env)
        .await
        .unwrap();
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("target-group/web-service") && e.contains("not tagged")),
        "{:?}",
        p.errors
    );
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    let refused = r
        .errors
        .iter()
        .find(|e| e.contains("target-group/web-service"))
        .unwrap_or_else(|| panic!("no error for the target group: {:?}", r.errors));
    assert!(
        refused.contains(&name) && refused.contains("not tagged provisioner:env=dev"),
        "{refused}"
    );
    let tags = elb
        .describe_tags()
        .resource_arns(&theirs)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_descriptions()[0].tags().is_empty(),
        "their target group was not tagged as ours"
    );
    down::teardown(&cloud, Duration::from_secs(60), &no_progress())
        .await
        .unwrap();
    let left = elb
        .describe_target_groups()
        .target_group_arns(&theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(left.target_groups().len(), 1, "down left theirs alone");
}
