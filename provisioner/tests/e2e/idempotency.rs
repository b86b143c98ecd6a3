//! Per resource type: create twice → the second run changes nothing (kops' `vpc_test.go`
//! pattern, against the real emulator). Each case is a small template exercising one kind.

use provisioner::commands::{plan, up};

use crate::{cloud, no_progress, parse};

const HEAD: &str = r#"
name: idem
region: us-east-1
cluster: {k3s_version: v1.34.1+k3s1, service_image: "example/img:1"}
"#;

const NETWORK: &str = r#"
vpcs:
  - name: main
    cidr: 10.70.0.0/16
    az_count: 2
    nat: per_az
    subnets:
      - {name: public-a,  kind: public,  az_index: 0, cidr: 10.70.0.0/24}
      - {name: public-b,  kind: public,  az_index: 1, cidr: 10.70.1.0/24}
      - {name: private-a, kind: private, az_index: 0, cidr: 10.70.16.0/20}
      - {name: private-b, kind: private, az_index: 1, cidr: 10.70.32.0/20}
"#;

fn cases() -> Vec<(&'static str, String, &'static [&'static str])> {
    vec![
        (
            "vpc, subnets, igw, nat + eip, route tables",
            format!("{HEAD}{NETWORK}"),
            &[
                "vpc/",
                "subnet/",
                "subnet-public-ip/",
                "igw/",
                "igw-attachment/",
                "eip/",
                "nat/",
                "route-table/",
                "routes/",
                "rt-assoc/",
            ],
        ),
        (
            "vpc peering with routes on both sides",
            format!(
                "{HEAD}{NETWORK}{}",
                r#"
  - name: other
    cidr: 10.71.0.0/16
    az_count: 1
    nat: none
    subnets:
      - {name: private-a, kind: private, az_index: 0, cidr: 10.71.0.0/20}
peerings:
  - {name: main-other, requester: main, accepter: other}
"#
            ),
            &["peering/"],
        ),
        (
            "security groups with rules referencing groups (and themselves)",
            format!(
                "{HEAD}{NETWORK}{}",
                r#"
security_groups:
  - name: web
    vpc: main
    description: web
    ingress:
      - {protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}
      - {protocol: icmp, source: {cidr: 10.0.0.0/8}}
  - name: app
    vpc: main
    description: app
    ingress:
      - {protocol: tcp, ports: "8000-8100", source: {group: web}}
      - {protocol: all, source: {group: app}}
"#
            ),
            &["sg/", "sg-rules/"],
        ),
        (
            "node pool: instance profile, launch template, auto scaling group; ALB, NLB, target groups, listeners",
            format!(
                "{HEAD}{NETWORK}{}",
                r#"
security_groups:
  - name: nodes
    vpc: main
    description: nodes
    ingress: []
  - name: alb
    vpc: main
    description: alb
    ingress:
      - {protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}
node_pools:
  - name: servers
    vpc: main
    subnets: private
    instance_type: t3.medium
    ami: {id: ami-12c6146b}
    min: 1
    desired: 1
    max: 2
    role: k3s-server
    security_groups: [nodes]
load_balancers:
  nlb:
    name: api
    vpc: main
    subnets: private
    listeners:
      - {port: 6443, target_pool: servers}
  alb:
    name: web
    vpc: main
    subnets: public
    security_groups: [alb]
    listeners:
      - port: 80
        default_target: svc
        rules:
          - {path_pattern: /v1/*, target: svc}
    target_groups:
      - name: svc
        pool: servers
        port: 30080
        health_check: {path: /readyz}
"#
            ),
            &[
                "instance-profile/",
                "launch-template/",
                "asg/",
                "nlb/",
                "alb/",
                "target-group/",
                "listener/",
            ],
        ),
        (
            "route 53 public zone: simple, weighted, latency records",
            format!(
                "{HEAD}{NETWORK}{}",
                r#"
dns:
  zone: idem.example.com
  private: false
  records:
    - {name: www, type: A, values: [192.0.2.9, 192.0.2.10], ttl: 60}
    - {name: "*.apps", type: A, values: [192.0.2.11], ttl: 60}
    - {name: w, type: A, values: [192.0.2.1], ttl: 60, routing: {weighted: {weight: 10, set_id: one}}}
    - {name: w, type: A, values: [192.0.2.2], ttl: 60, routing: {weighted: {weight: 90, set_id: two}}}
    - {name: l, type: A, values: [192.0.2.3], ttl: 60, routing: {latency: {region: us-east-1, set_id: use1}}}
    - {name: c, type: CNAME, values: [www.idem.example.com], ttl: 300}
    - name: f
      type: A
      values: [192.0.2.20]
      ttl: 60
      routing:
        failover:
          role: primary
          health_check: {protocol: http, ip: 192.0.2.20, port: 80, path: /healthz}
    - {name: f, type: A, values: [192.0.2.21], ttl: 60, routing: {failover: {role: secondary}}}
"#
            ),
            &["zone/", "record/", "health-check/"],
        ),
        (
            "route 53 private zone associated with two VPCs",
            format!(
                "{HEAD}{NETWORK}{}",
                r#"
  - name: other
    cidr: 10.71.0.0/16
    az_count: 1
    nat: none
    subnets:
      - {name: private-a, kind: private, az_index: 0, cidr: 10.71.0.0/20}
dns:
  zone: idem.internal
  private: true
  records:
    - {name: db, type: A, values: [10.71.0.10], ttl: 60}
"#
            ),
            &["zone/", "record/"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_twice_second_run_changes_nothing() {
    for (what, yaml, kinds) in cases() {
        let guard = harness::emulator().await.unwrap();
        let env = parse(&yaml);
        let cloud = cloud(&guard, "idem").await;
        let first = up::converge(&cloud, &env, &no_progress()).await.unwrap();
        assert!(first.errors.is_empty(), "{what}: {:?}", first.errors);
        assert!(first.created > 0, "{what}");
        let second = up::converge(&cloud, &env, &no_progress()).await.unwrap();
        assert!(second.errors.is_empty(), "{what}: {:?}", second.errors);
        assert_eq!(
            (second.created, second.updated),
            (0, 0),
            "{what}: second run must change nothing ({})",
            up::render_summary(&second)
        );
        // Every task of the first run (waiters and rolls included) is unchanged now.
        assert_eq!(second.unchanged, first.created + first.unchanged, "{what}");
        let p = plan::plan(&cloud, &env).await.unwrap();
        assert!(!p.has_changes(), "{what}: {}", plan::render_text(&p));
        // The kinds under test really were part of the run.
        let keys: Vec<String> = p.changes.iter().map(|c| c.key.to_string()).collect();
        for k in kinds {
            assert!(
                keys.iter().any(|x| x.starts_with(k)),
                "{what}: no {k}* task in {keys:?}"
            );
        }
        drop(guard);
    }
}
