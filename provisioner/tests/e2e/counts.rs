//! Count what carries the `provisioner:env` tag, service by service, with plain SDK clients
//! (independent of the code under test).

use std::collections::BTreeMap;

use aws_config::BehaviorVersion;

/// Resources tagged `provisioner:env=env`, per service/type.
pub async fn tagged(endpoint: &str, env: &str) -> BTreeMap<String, usize> {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await;
    let mut out = BTreeMap::new();

    // EC2: one describe per type with the tag filter (moto's describe-tags keeps the tags of
    // deleted resources, so it cannot be trusted for counting), tags re-checked here.
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let f = || {
        aws_sdk_ec2::types::Filter::builder()
            .name("tag:provisioner:env")
            .values(env)
            .build()
    };
    let mut put = |k: &str, n: usize| {
        if n > 0 {
            out.insert(k.to_string(), n);
        }
    };
    let r = ec2.describe_vpcs().filters(f()).send().await.unwrap();
    put("ec2:vpc", r.vpcs().len());
    let r = ec2.describe_subnets().filters(f()).send().await.unwrap();
    put("ec2:subnet", r.subnets().len());
    let r = ec2
        .describe_internet_gateways()
        .filters(f())
        .send()
        .await
        .unwrap();
    put("ec2:internet-gateway", r.internet_gateways().len());
    let r = ec2
        .describe_route_tables()
        .filters(f())
        .send()
        .await
        .unwrap();
    put("ec2:route-table", r.route_tables().len());
    let r = ec2
        .describe_security_groups()
        .filters(f())
        .send()
        .await
        .unwrap();
    put("ec2:security-group", r.security_groups().len());
    let r = ec2.describe_addresses().filters(f()).send().await.unwrap();
    put("ec2:elastic-ip", r.addresses().len());
    let r = ec2
        .describe_launch_templates()
        .filters(f())
        .send()
        .await
        .unwrap();
    put("ec2:launch-template", r.launch_templates().len());
    let r = ec2
        .describe_vpc_peering_connections()
        .filters(f())
        .send()
        .await
        .unwrap();
    put(
        "ec2:vpc-peering",
        r.vpc_peering_connections()
            .iter()
            .filter(|p| {
                !p.status()
                    .and_then(|s| s.code())
                    .is_some_and(|c| matches!(c.as_str(), "deleted" | "rejected" | "failed"))
            })
            .count(),
    );
    let r = ec2
        .describe_network_interfaces()
        .filters(f())
        .send()
        .await
        .unwrap();
    put("ec2:network-interface", r.network_interfaces().len());
    let r = ec2.describe_instances().filters(f()).send().await.unwrap();
    put(
        "ec2:instance",
        r.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| {
                i.state()
                    .and_then(|s| s.name())
                    .is_some_and(|n| !matches!(n.as_str(), "terminated" | "shutting-down"))
            })
            .count(),
    );
    // NAT gateways: moto ignores tag filters here, so check tags client side.
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    put(
        "ec2:nat-gateway",
        nats.nat_gateways()
            .iter()
            .filter(|n| {
                n.tags()
                    .iter()
                    .any(|t| t.key() == Some("provisioner:env") && t.value() == Some(env))
                    && !n
                        .state()
                        .is_some_and(|s| matches!(s.as_str(), "deleted" | "deleting"))
            })
            .count(),
    );

    // Auto Scaling.
    let asg = aws_sdk_autoscaling::Client::new(&conf);
    let groups = asg.describe_auto_scaling_groups().send().await.unwrap();
    let n = groups
        .auto_scaling_groups()
        .iter()
        .filter(|g| {
            g.tags()
                .iter()
                .any(|t| t.key() == Some("provisioner:env") && t.value() == Some(env))
        })
        .count();
    if n > 0 {
        out.insert("autoscaling:group".into(), n);
    }

    // ELBv2: load balancers and target groups, by their tags.
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
    let mut arns: Vec<String> = elb
        .describe_load_balancers()
        .send()
        .await
        .unwrap()
        .load_balancers()
        .iter()
        .filter_map(|l| l.load_balancer_arn().map(String::from))
        .collect();
    arns.extend(
        elb.describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .iter()
            .filter_map(|t| t.target_group_arn().map(String::from)),
    );
    for chunk in arns.chunks(20) {
        let r = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        for d in r.tag_descriptions() {
            if d.tags()
                .iter()
                .any(|t| t.key() == Some("provisioner:env") && t.value() == Some(env))
            {
                let kind = if d
                    .resource_arn()
                    .unwrap_or_default()
                    .contains(":targetgroup/")
                {
                    "elbv2:targetgroup"
                } else {
                    "elbv2:loadbalancer"
                };
                *out.entry(kind.into()).or_default() += 1;
            }
        }
    }

    // Route 53 zones by tag.
    let r53 = aws_sdk_route53::Client::new(&conf);
    let zones = r53.list_hosted_zones().send().await.unwrap();
    for z in zones.hosted_zones() {
        let id = z.id().trim_start_matches("/hostedzone/");
        let t = r53
            .list_tags_for_resource()
            .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
            .resource_id(id)
            .send()
            .await
            .unwrap();
        if t.resource_tag_set().is_some_and(|s| {
            s.tags()
                .iter()
                .any(|t| t.key() == Some("provisioner:env") && t.value() == Some(env))
        }) {
            *out.entry("route53:zone".into()).or_default() += 1;
        }
    }

    // Route 53 health checks by tag.
    let checks = r53.list_health_checks().send().await.unwrap();
    for h in checks.health_checks() {
        let t = r53
            .list_tags_for_resource()
            .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
            .resource_id(h.id())
            .send()
            .await
            .unwrap();
        if t.resource_tag_set().is_some_and(|s| {
            s.tags()
                .iter()
                .any(|t| t.key() == Some("provisioner:env") && t.value() == Some(env))
        }) {
            *out.entry("route53:healthcheck".into()).or_default() += 1;
        }
    }

    // IAM roles and instance profiles (tagged, under the env's path).
    let iam = aws_sdk_iam::Client::new(&conf);
    let roles = iam.list_roles().send().await.unwrap();
    for r in roles.roles() {
        let t = iam
            .list_role_tags()
            .role_name(r.role_name())
            .send()
            .await
            .unwrap();
        if t.tags()
            .iter()
            .any(|t| t.key() == "provisioner:env" && t.value() == env)
        {
            *out.entry("iam:role".into()).or_default() += 1;
        }
    }
    let profiles = iam.list_instance_profiles().send().await.unwrap();
    let n = profiles
        .instance_profiles()
        .iter()
        .filter(|p| p.path() == format!("/provisioner/us-east-1/{env}/"))
        .count();
    if n > 0 {
        out.insert("iam:instance-profile".into(), n);
    }

    // SSM parameters of the env.
    let ssm = aws_sdk_ssm::Client::new(&conf);
    let params = ssm.describe_parameters().send().await.unwrap();
    let n = params
        .parameters()
        .iter()
        .filter(|p| {
            p.name()
                .is_some_and(|n| n.starts_with(&format!("/provisioner/{env}/")))
        })
        .count();
    if n > 0 {
        out.insert("ssm:parameter".into(), n);
    }
    out
}
