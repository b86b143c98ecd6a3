//! `up` on each template in vpc-templates/, then `plan` reports no changes, then `down`
//! leaves nothing tagged for the environment (counted through the emulator's APIs).

use provisioner::aws::api::*;
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
    eprintln!(
        "{template}: no-change plan: {} API calls for {total} resources",
        again.api_calls
    );
    assert!(
        (again.api_calls as usize) < total,
        "a no-change plan needs fewer calls ({}) than one per resource ({total})",
        again.api_calls
    );

    if !env.node_pools.is_empty() {
        launch_templates_are_hardened(&guard, &cloud).await;
    }

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

/// Every launch template: IMDSv2 required with hop limit 1, an instance profile, and the
/// bootstrap user-data pointing at the NLB.
async fn launch_templates_are_hardened(
    guard: &harness::EmulatorGuard,
    cloud: &provisioner::aws::Cloud,
) {
    use base64::Engine;
    cloud.inventory.clear();
    let nlb_dns = cloud
        .load_balancers()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.lb_type == "network")
        .map(|l| l.dns_name.to_ascii_lowercase());
    let ec2 = aws_sdk_ec2::Client::new(&crate::raw_conf(guard).await);
    let lts = cloud.launch_templates().await.unwrap();
    assert!(!lts.is_empty());
    for lt in lts {
        let v = ec2
            .describe_launch_template_versions()
            .launch_template_id(&lt.id)
            .versions("$Latest")
            .send()
            .await
            .unwrap();
        let d = v.launch_template_versions()[0]
            .launch_template_data()
            .unwrap();
        let md = d.metadata_options().unwrap();
        assert_eq!(
            md.http_tokens().unwrap().as_str(),
            "required",
            "{}",
            lt.name
        );
        assert_eq!(md.http_put_response_hop_limit(), Some(1), "{}", lt.name);
        assert!(d.iam_instance_profile().is_some(), "{}", lt.name);
        let ud = base64::engine::general_purpose::STANDARD
            .decode(d.user_data().unwrap())
            .unwrap();
        let ud = String::from_utf8(ud).unwrap();
        assert!(ud.starts_with("#!"), "{}", lt.name);
        if let Some(dns) = &nlb_dns {
            assert!(
                ud.contains(dns.as_str()),
                "{}: user-data must name the NLB",
                lt.name
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_resources_and_health() {
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let s = provisioner::commands::status::collect(&cloud)
        .await
        .unwrap();
    assert!(s.resources.iter().any(|(k, _)| k.starts_with("vpc/")));
    assert!(s.resources.iter().any(|(_, n)| n == "main-private-a"));
    let health = s.health.join("\n");
    assert!(
        health.contains("nat ") && health.contains("available"),
        "{health}"
    );
    assert!(
        health.contains("application") && health.contains("active"),
        "{health}"
    );
    assert!(health.contains("asg dev-servers: 3/3"), "{health}");
    assert!(health.contains("target group"), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_of_a_new_environment_shows_ids_known_after_up() {
    let guard = harness::emulator().await.unwrap();
    let env = load("dev.yaml");
    let cloud = cloud(&guard, "dev").await;
    let p = plan::plan(&cloud, &env).await.unwrap();
    let subnet = p
        .changes
        .iter()
        .find(|c| c.key.as_str() == "subnet/main-private-a")
        .unwrap();
    let vpc_id = subnet.fields.iter().find(|f| f.field == "vpc_id").unwrap();
    assert_eq!(
        vpc_id.desired,
        serde_json::json!(provisioner::engine::UNKNOWN)
    );
    let cidr = subnet.fields.iter().find(|f| f.field == "cidr").unwrap();
    assert_eq!(cidr.desired, serde_json::json!("10.0.16.0/20"));
    let text = plan::render_text(&p);
    assert!(text.contains("vpc_id: \"(known after up)\""), "{text}");
    // A tagged resource is absent by tag; a part of one says what it waits for.
    let reason = |k: &str| {
        p.changes
            .iter()
            .find(|c| c.key.as_str() == k)
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("vpc/main").contains("nothing tagged provisioner:name=main"),
        "{text}"
    );
    assert!(
        reason("routes/main-private-a").contains("route-table/main-private-a"),
        "{text}"
    );
    assert!(
        reason("nlb-active/k8s-api").contains("nlb/k8s-api"),
        "{text}"
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["create"], serde_json::json!(p.create));
    // Nothing was created by the plan.
    assert!(crate::e2e::counts::tagged(&guard.endpoint, "dev")
        .await
        .is_empty());
}

/// AMI parameters are read all at once (plain names in one call, a `:version` one on its own)
/// and keyed as the template names them; a name that does not exist is simply absent (the
/// caller names it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ami_parameters_resolve_with_and_without_a_version_selector() {
    let guard = harness::emulator().await.unwrap();
    let cloud = cloud(&guard, "amis").await;
    let ssm = aws_sdk_ssm::Client::new(&crate::raw_conf(&guard).await);
    for value in ["ami-0000000000000001a", "ami-0000000000000002b"] {
        ssm.put_parameter()
            .name("/test/ami")
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }
    let names = ["/test/ami", "/test/ami:1", "/test/missing"].map(String::from);
    let calls = cloud.stats.calls();
    let got = cloud.ssm_parameter_values(&names).await.unwrap();
    assert_eq!(
        cloud.stats.calls() - calls,
        2,
        "one GetParameters for the plain names, one GetParameter for the versioned one"
    );
    assert_eq!(got["/test/ami"], "ami-0000000000000002b", "{got:?}");
    assert_eq!(got["/test/ami:1"], "ami-0000000000000001a", "{got:?}");
    assert!(!got.contains_key("/test/missing"), "{got:?}");
}

/// `cluster.api_access: public`: the NLB is internet-facing with the template's group, which
/// admits the operators and the NAT gateway's address (nodes in private subnets reach the
/// internet-facing NLB through it), read back through the SDK; a second plan is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_api_is_an_internet_facing_nlb_admitting_operators_and_nat_gateways() {
    let guard = harness::emulator().await.unwrap();
    let src = crate::load_source("dev.yaml")
        .replace("api_access: internal", "api_access: public")
        .replace(
            "subnets: private       # internal",
            "subnets: public        # internet-facing",
        )
        .replace("  private: true ", "  private: false ");
    let env = crate::parse(&src);
    let cloud = cloud(&guard, "dev").await;
    let r = up::converge(&cloud, &env, &no_progress()).await.unwrap();
    assert!(r.errors.is_empty(), "{}", up::render_summary(&r));
    let again = plan::plan(&cloud, &env).await.unwrap();
    assert!(!again.has_changes(), "{}", plan::render_text(&again));

    let conf = crate::raw_conf(&guard).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let lbs = elb.describe_load_balancers().send().await.unwrap();
    let nlb = lbs
        .load_balancers()
        .iter()
        .find(|l| l.r#type().map(|t| t.as_str()) == Some("network"))
        .expect("an NLB");
    assert_eq!(nlb.scheme().unwrap().as_str(), "internet-facing");
    let groups = ec2
        .describe_security_groups()
        .group_ids(nlb.security_groups()[0].clone())
        .send()
        .await
        .unwrap();
    let g = &groups.security_groups()[0];
    assert_eq!(g.group_name(), Some("dev-k8s-api"));
    let eips = ec2.describe_addresses().send().await.unwrap();
    let nat_ip = format!("{}/32", eips.addresses()[0].public_ip().unwrap());
    let cidrs: Vec<String> = g
        .ip_permissions()
        .iter()
        .filter(|p| p.from_port() == Some(6443))
        .flat_map(|p| {
            p.ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(String::from))
        })
        .collect();
    assert!(cidrs.contains(&"203.0.113.0/24".to_string()), "{cidrs:?}");
    assert!(cidrs.contains(&nat_ip), "{nat_ip} not in {cidrs:?}");
    assert_eq!(
        cidrs.len(),
        2,
        "only operators and the NAT gateway: {cidrs:?}"
    );

    // The public zone's delegation: what `up` tells the user to add to the parent zone.
    cloud.inventory.clear();
    let zone = cloud.hosted_zones().await.unwrap().remove(0);
    assert!(!zone.private);
    let ns = cloud.zone_name_servers(&zone.id).await.unwrap();
    assert_eq!(ns.len(), 4, "{ns:?}");
}
