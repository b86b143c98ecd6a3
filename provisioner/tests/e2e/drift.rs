//! Drift: a route, a security-group rule and a DNS record deleted behind the provisioner's
//! back, and a public subnet's public-IP attribute, the internet gateway's attachment and the
//! VPC's DNS hostnames undone, show up in `plan` (each with its reason), `up` repairs them, and `plan` is clean
//! again. An immutable change (a subnet's AZ) is rejected by the plan, naming the field.

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};
use provisioner::commands::{plan, up};
use provisioner::engine::Action;

use crate::{cloud, load, no_progress, raw_conf};

fn by_name(name: &str) -> Filter {
    Filter::builder()
        .name("tag:provisioner:name")
        .values(name)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_planned_and_repaired() {
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    let conf = raw_conf(&guard).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    // 1. the default route of a private subnet
    let rt = ec2
        .describe_route_tables()
        .filters(by_name("main-private-a"))
        .send()
        .await
        .unwrap();
    let rtb = rt.route_tables()[0].route_table_id().unwrap().to_string();
    ec2.delete_route()
        .route_table_id(&rtb)
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    // 2. the ALB's HTTP rule
    let sg = ec2
        .describe_security_groups()
        .filters(by_name("alb"))
        .filters(
            Filter::builder()
                .name("tag:provisioner:env")
                .values("dev")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let sg_id = sg.security_groups()[0].group_id().unwrap().to_string();
    // The template's extra tags are on what was created.
    assert!(sg.security_groups()[0]
        .tags()
        .iter()
        .any(|t| t.key() == Some("project") && t.value() == Some("proximity")));
    ec2.revoke_security_group_ingress()
        .group_id(&sg_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(80)
                .to_port(80)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    // 3. a public subnet no longer maps public addresses, and the internet gateway is detached
    let public = ec2
        .describe_subnets()
        .filters(by_name("main-public-b"))
        .send()
        .await
        .unwrap();
    let subnet_id = public.subnets()[0].subnet_id().unwrap().to_string();
    assert_eq!(public.subnets()[0].map_public_ip_on_launch(), Some(true));
    ec2.modify_subnet_attribute()
        .subnet_id(&subnet_id)
        .map_public_ip_on_launch(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let igw = ec2
        .describe_internet_gateways()
        .filters(by_name("main"))
        .send()
        .await
        .unwrap();
    let igw = &igw.internet_gateways()[0];
    ec2.detach_internet_gateway()
        .internet_gateway_id(igw.internet_gateway_id().unwrap())
        .vpc_id(igw.attachments()[0].vpc_id().unwrap())
        .send()
        .await
        .unwrap();
    // 4. the VPC's DNS hostnames turned off
    let vpc_id = igw.attachments()[0].vpc_id().unwrap().to_string();
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc_id)
        .enable_dns_hostnames(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    // 5. one weighted DNS record
    let r53 = aws_sdk_route53::Client::new(&conf);
    let zone = r53
        .list_hosted_zones_by_name()
        .dns_name("dev.proximity.internal")
        .send()
        .await
        .unwrap()
        .hosted_zones()[0]
        .id()
        .to_string();
    let sets = r53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let blue = sets
        .resource_record_sets()
        .iter()
        .find(|s| s.set_identifier() == Some("blue"))
        .expect("blue record")
        .clone();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            aws_sdk_route53::types::ChangeBatch::builder()
                .changes(
                    aws_sdk_route53::types::Change::builder()
                        .action(aws_sdk_route53::types::ChangeAction::Delete)
                        .resource_record_set(blue)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let p = plan::plan(&cloud, &env).await.unwrap();
    let text = plan::render_text(&p);
    let find = |k: &str| {
        p.changes
            .iter()
            .find(|c| c.key.as_str() == k)
            .unwrap_or_else(|| panic!("{k} missing from plan:\n{text}"))
    };
    let route = find("routes/main-private-a");
    assert_eq!(route.action, Action::Update, "{text}");
    assert!(route.reason.contains("routes"), "{text}");
    let rules = find("sg-rules/alb");
    assert_eq!(rules.action, Action::Update, "{text}");
    assert!(rules.reason.contains("ingress"), "{text}");
    let rec = find("record/search.dev.proximity.internal-A-blue");
    assert_eq!(rec.action, Action::Create, "{text}");
    let public_ip = find("subnet-public-ip/main-public-b");
    assert_eq!(public_ip.action, Action::Update, "{text}");
    assert!(public_ip.reason.contains("map_public_ip"), "{text}");
    let attachment = find("igw-attachment/main");
    assert_eq!(attachment.action, Action::Update, "{text}");
    assert!(attachment.reason.contains("attached_vpc"), "{text}");
    let dns = find("vpc-dns/main");
    assert_eq!(dns.action, Action::Update, "{text}");
    assert!(dns.reason.contains("dns_hostnames"), "{text}");
    assert_eq!(
        p.create + p.update,
        6,
        "only the drifted resources:\n{text}"
    );

    let fix = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(fix.errors.is_empty(), "{:?}", fix.errors);
    assert_eq!((fix.created, fix.updated), (1, 5));
    let repaired = ec2
        .describe_subnets()
        .subnet_ids(&subnet_id)
        .send()
        .await
        .unwrap();
    assert_eq!(repaired.subnets()[0].map_public_ip_on_launch(), Some(true));
    let p = plan::plan(&cloud, &env).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_change_is_rejected_by_the_plan() {
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let cloud = cloud(&guard, "dev").await;
    up::converge(&cloud, &env, &no_progress()).await.unwrap();
    // Move private-a to the other AZ: a subnet's AZ cannot change in place.
    let yaml = crate::load_source("dev.yaml").replace(
        "{name: private-a, kind: private, az_index: 0,",
        "{name: private-a, kind: private, az_index: 1,",
    );
    let moved = crate::parse(&yaml);
    let p = plan::plan(&cloud, &moved).await.unwrap();
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("subnet/main-private-a") && e.contains("immutable field `az`")),
        "{:?}",
        p.errors
    );
    // An NLB made with security groups cannot lose them all (nor one made without be given
    // some).
    let yaml = crate::load_source("dev.yaml");
    assert_eq!(yaml.matches("    security_groups: [k8s-api]\n").count(), 1);
    let with_groups = yaml.replace("    security_groups: [k8s-api]\n", "");
    let p = plan::plan(&cloud, &crate::parse(&with_groups))
        .await
        .unwrap();
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("nlb/k8s-api")
                && e.contains("immutable field `uses_security_groups`")),
        "{:?}",
        p.errors
    );
    // A health check cannot switch from a host name (the ALB's) to an IP address.
    let yaml = crate::load_source("dev.yaml").replace(
        "            load_balancer: alb\n            port: 80",
        "            ip: 10.0.0.10\n            port: 80",
    );
    let p = plan::plan(&cloud, &crate::parse(&yaml)).await.unwrap();
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("health-check/") && e.contains("immutable field `endpoint`")),
        "{:?}",
        p.errors
    );
    // A security group's description cannot change in place either.
    let yaml = crate::load_source("dev.yaml").replace(
        "description: Nodes dedicated to Postgres",
        "description: Postgres nodes",
    );
    let p = plan::plan(&cloud, &crate::parse(&yaml)).await.unwrap();
    assert!(
        p.errors.iter().any(
            |e| e.contains("sg/postgres-nodes") && e.contains("immutable field `description`")
        ),
        "{:?}",
        p.errors
    );
}

/// A rule's description reaches AWS, and a changed one is planned and applied (the rule is
/// the same to AWS, so it is revoked and authorized again with the new text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_descriptions_are_applied_and_follow_the_template() {
    let guard = harness::emulator().await.unwrap();
    let cloud = cloud(&guard, "dev").await;
    let described = |text: &str| {
        crate::parse(&crate::load_source("dev.yaml").replace(
            "description: Postgres only from the app nodes",
            &format!("description: {text}"),
        ))
    };
    let postgres_rule = || async {
        let ec2 = aws_sdk_ec2::Client::new(&raw_conf(&guard).await);
        let sg = ec2
            .describe_security_groups()
            .filters(by_name("postgres-nodes"))
            .send()
            .await
            .unwrap();
        sg.security_groups()[0]
            .ip_permissions()
            .iter()
            .find(|p| p.from_port() == Some(5432))
            .and_then(|p| p.user_id_group_pairs().first())
            .and_then(|g| g.description())
            .map(String::from)
    };
    let first = described("Postgres only from the app nodes");
    let r = up::converge(&cloud, &first, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        postgres_rule().await.as_deref(),
        Some("Postgres only from the app nodes")
    );

    let second = described("Postgres from the agents");
    let p = plan::plan(&cloud, &second).await.unwrap();
    let rules = p
        .changes
        .iter()
        .find(|c| c.key.as_str() == "sg-rules/postgres-nodes")
        .unwrap();
    assert_eq!(rules.action, Action::Update, "{}", plan::render_text(&p));
    let r = up::converge(&cloud, &second, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        postgres_rule().await.as_deref(),
        Some("Postgres from the agents")
    );
    let p = plan::plan(&cloud, &second).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));
}

/// A private zone follows the template's VPC list both ways: a VPC dropped from `dns.vpcs`
/// is disassociated by `up`; a VPC someone else associated by hand is neither shown in the
/// plan nor removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_zone_associations_follow_the_template_and_spare_foreign_vpcs() {
    let guard = harness::emulator().await.unwrap();
    let yaml = |vpcs: &str| {
        format!(
            r#"
name: zones
region: us-east-1
cluster: {{k3s_version: v1.34.1+k3s1, service_image: "example/img:1"}}
vpcs:
  - name: main
    cidr: 10.80.0.0/16
    az_count: 1
    nat: none
    subnets:
      - {{name: private-a, kind: private, az_index: 0, cidr: 10.80.0.0/20}}
  - name: other
    cidr: 10.81.0.0/16
    az_count: 1
    nat: none
    subnets:
      - {{name: private-a, kind: private, az_index: 0, cidr: 10.81.0.0/20}}
dns:
  zone: zones.internal
  private: true
  vpcs: [{vpcs}]
  records:
    - {{name: db, type: A, values: [10.80.0.10], ttl: 60}}
"#
        )
    };
    let both = crate::parse(&yaml("main, other"));
    let cloud = cloud(&guard, "zones").await;
    let r = up::converge(&cloud, &both, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    let conf = raw_conf(&guard).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    let zone = r53
        .list_hosted_zones_by_name()
        .dns_name("zones.internal")
        .send()
        .await
        .unwrap()
        .hosted_zones()[0]
        .id()
        .to_string();
    let vpc_id = |name: &'static str| {
        let ec2 = ec2.clone();
        async move {
            ec2.describe_vpcs()
                .filters(by_name(name))
                .send()
                .await
                .unwrap()
                .vpcs()[0]
                .vpc_id()
                .unwrap()
                .to_string()
        }
    };
    let (main, other) = (vpc_id("main").await, vpc_id("other").await);
    // Someone else's VPC, associated by hand.
    let foreign = crate::untagged_vpc(&ec2, "10.99.0.0/16").await;
    r53.associate_vpc_with_hosted_zone()
        .hosted_zone_id(&zone)
        .vpc(
            aws_sdk_route53::types::Vpc::builder()
                .vpc_id(&foreign)
                .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let associated = || {
        let r53 = r53.clone();
        let zone = zone.clone();
        async move {
            let mut v: Vec<String> = r53
                .get_hosted_zone()
                .id(&zone)
                .send()
                .await
                .unwrap()
                .vpcs()
                .iter()
                .filter_map(|v| v.vpc_id().map(String::from))
                .collect();
            v.sort();
            v
        }
    };

    // The foreign association is not drift.
    let p = plan::plan(&cloud, &both).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));

    // Drop `other` from the template: planned as an update of the zone, done by `up`.
    let only_main = crate::parse(&yaml("main"));
    let p = plan::plan(&cloud, &only_main).await.unwrap();
    let text = plan::render_text(&p);
    let z = p
        .changes
        .iter()
        .find(|c| c.key.as_str() == "zone/zones.internal")
        .unwrap();
    assert_eq!(z.action, Action::Update, "{text}");
    assert!(z.reason.contains("vpcs"), "{text}");
    let fix = up::converge(&cloud, &only_main, &no_progress())
        .await
        .unwrap();
    assert!(fix.errors.is_empty(), "{:?}", fix.errors);
    let mut expected = vec![main.clone(), foreign.clone()];
    expected.sort();
    assert_eq!(associated().await, expected, "other ({other}) removed");
    let p = plan::plan(&cloud, &only_main).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));
}

/// A pool on an SSM parameter stays on the AMI its launch template has when the parameter
/// moves (no permanent drift after every release); `--refresh-ami` moves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_stays_on_its_ami_when_the_parameter_moves_until_refresh_ami() {
    let guard = harness::emulator().await.unwrap();
    let conf = crate::raw_conf(&guard).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let images = ec2.describe_images().send().await.unwrap();
    let ids: Vec<String> = images
        .images()
        .iter()
        .filter_map(|i| i.image_id().map(String::from))
        .take(2)
        .collect();
    let (first, second) = (&ids[0], &ids[1]);
    let put = |v: String| {
        let ssm = ssm.clone();
        async move {
            ssm.put_parameter()
                .name("/team/ami/agents")
                .value(v)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .unwrap();
        }
    };
    put(first.clone()).await;
    let yaml = crate::load_source("dev.yaml").replace(
        "    role: k3s-agent\n    security_groups: [k3s-nodes, k3s-agent]",
        "    role: k3s-agent\n    ami: {ssm: /team/ami/agents}\n    security_groups: [k3s-nodes, k3s-agent]",
    );
    assert!(yaml.contains("/team/ami/agents"));
    let env = crate::parse(&yaml);
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    // The parameter moves on (a new release): the plan stays clean.
    put(second.clone()).await;
    cloud.inventory.clear();
    let p = plan::plan(&cloud, &env).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));

    // --refresh-ami: the agents' launch template moves to the parameter's value.
    let mut refreshing = cloud;
    refreshing.refresh_ami = true;
    refreshing.inventory.clear();
    let p = plan::plan(&refreshing, &env).await.unwrap();
    let text = plan::render_text(&p);
    assert_eq!(p.update, 1, "{text}");
    assert!(
        text.contains("launch-template/agents") && text.contains(second.as_str()),
        "{text}"
    );
    let r = up::converge(&refreshing, &env, &no_progress())
        .await
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // Pinned again, now to the new AMI.
    let mut pinned = refreshing;
    pinned.refresh_ami = false;
    pinned.inventory.clear();
    let p = plan::plan(&pinned, &env).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));
}

/// A launch template change rolls its pool: every instance launched from the old
/// configuration is replaced (one at a time, the group back in service and healthy in its
/// target groups before the next), the other pools are left alone, and the next plan is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_template_change_replaces_the_pools_instances_one_at_a_time() {
    use std::collections::BTreeMap;
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let ec2 = aws_sdk_ec2::Client::new(&crate::raw_conf(&guard).await);
    // pool -> (instance id -> config tag), running instances only, read through the SDK.
    let by_pool = || async {
        let out = ec2.describe_instances().send().await.unwrap();
        let mut m: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for i in out.reservations().iter().flat_map(|r| r.instances()) {
            if i.state().and_then(|s| s.name()).map(|n| n.as_str()) != Some("running") {
                continue;
            }
            let tag = |k: &str| {
                i.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
                    .unwrap_or_default()
                    .to_string()
            };
            m.entry(tag("provisioner:name")).or_default().insert(
                i.instance_id().unwrap().to_string(),
                tag("provisioner:config"),
            );
        }
        m
    };
    let before = by_pool().await;
    assert_eq!(before["agents"].len(), 2, "{before:?}");
    assert!(
        before["agents"].values().all(|c| !c.is_empty()),
        "{before:?}"
    );

    let bigger = crate::parse(&crate::load_source("dev.yaml").replacen(
        "instance_type: t3.large\n    min: 2",
        "instance_type: t3.xlarge\n    min: 2",
        1,
    ));
    cloud.inventory.clear();
    let r = up::converge(&cloud, &bigger, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let after = by_pool().await;
    let agents = &after["agents"];
    assert_eq!(agents.len(), 2, "{after:?}");
    assert!(
        agents.keys().all(|id| !before["agents"].contains_key(id)),
        "every agent replaced: {before:?} -> {after:?}"
    );
    let new_config = agents.values().next().unwrap();
    assert!(agents.values().all(|c| c == new_config));
    assert_ne!(new_config, before["agents"].values().next().unwrap());
    assert_eq!(after["servers"], before["servers"], "other pools untouched");
    assert_eq!(after["postgres"], before["postgres"]);

    cloud.inventory.clear();
    let p = plan::plan(&cloud, &bigger).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));

    // The pool dedicated to Postgres keeps its data on node-local volumes: its launch
    // template changes, its instances are reported, not replaced.
    let yaml = crate::load_source("dev.yaml").replacen(
        "instance_type: t3.large\n    min: 1",
        "instance_type: t3.xlarge\n    min: 1",
        1,
    );
    assert!(yaml.contains("t3.xlarge\n    min: 1"));
    let pg_bigger = crate::parse(&yaml);
    cloud.inventory.clear();
    let r = up::converge(&cloud, &pg_bigger, &no_progress())
        .await
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let held = by_pool().await;
    assert_eq!(held["postgres"], before["postgres"], "postgres pool held");
}

/// Changed extra `tags:` reach what already exists: a changed value and a new key are set, a
/// key the template dropped is removed, a tag someone else added stays; read back through
/// the SDK for EC2, ELBv2, Auto Scaling and Route 53. The next plan is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_extra_tags_are_reconciled_and_foreign_tags_kept() {
    use provisioner::aws::api::{HostedZones, Vpcs};
    use std::collections::BTreeMap;
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    assert_eq!(env.tags.get("stage").map(String::as_str), Some("dev"));
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let conf = crate::raw_conf(&guard).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let asg = aws_sdk_autoscaling::Client::new(&conf);
    let r53 = aws_sdk_route53::Client::new(&conf);
    cloud.inventory.clear();
    let vpc = cloud.vpcs().await.unwrap().remove(0).id;
    // Someone else's tag on our VPC.
    ec2.create_tags()
        .resources(&vpc)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("owner")
                .value("alice")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let changed = crate::parse(&crate::load_source("dev.yaml").replace(
        "tags:\n  project: proximity\n  stage: dev\n",
        "tags:\n  stage: prod\n  team: geo\n",
    ));
    assert!(changed.tags.contains_key("team"));
    cloud.inventory.clear();
    let p = plan::plan(&cloud, &changed).await.unwrap();
    let text = plan::render_text(&p);
    assert!(text.contains("tags/extra"), "{text}");
    cloud.inventory.clear();
    let r = up::converge(&cloud, &changed, &no_progress())
        .await
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);

    let want = |tags: &BTreeMap<String, String>, what: &str| {
        assert_eq!(
            tags.get("stage").map(String::as_str),
            Some("prod"),
            "{what}: {tags:?}"
        );
        assert_eq!(
            tags.get("team").map(String::as_str),
            Some("geo"),
            "{what}: {tags:?}"
        );
        assert!(!tags.contains_key("project"), "{what}: {tags:?}");
    };
    let ec2_tags = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_tags()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("resource-id")
                        .values(id)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            out.tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    let vpc_tags = ec2_tags(vpc.clone()).await;
    want(&vpc_tags, "vpc");
    assert_eq!(vpc_tags.get("owner").map(String::as_str), Some("alice"));
    let sg = ec2
        .describe_security_groups()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:provisioner:env")
                .values("dev")
                .build(),
        )
        .send()
        .await
        .unwrap();
    want(
        &ec2_tags(sg.security_groups()[0].group_id().unwrap().to_string()).await,
        "sg",
    );
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let arn = lbs.load_balancers()[0]
        .load_balancer_arn()
        .unwrap()
        .to_string();
    let lb_tags: BTreeMap<String, String> = elb
        .describe_tags()
        .resource_arns(&arn)
        .send()
        .await
        .unwrap()
        .tag_descriptions()[0]
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    want(&lb_tags, "load balancer");
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    let group_tags: BTreeMap<String, String> = groups.auto_scaling_groups()[0]
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    want(&group_tags, "auto scaling group");
    cloud.inventory.clear();
    let zone = cloud.hosted_zones().await.unwrap().remove(0).id;
    let zone_tags: BTreeMap<String, String> = r53
        .list_tags_for_resource()
        .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
        .resource_id(&zone)
        .send()
        .await
        .unwrap()
        .resource_tag_set()
        .unwrap()
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    want(&zone_tags, "hosted zone");

    cloud.inventory.clear();
    let p = plan::plan(&cloud, &changed).await.unwrap();
    assert!(!p.has_changes(), "{}", plan::render_text(&p));
}
