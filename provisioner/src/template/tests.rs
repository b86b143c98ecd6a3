//! Unit tests: a valid base template, then one inline change per error.

use std::path::Path;

use super::*;

const BASE: &str = r#"
name: t
region: us-east-1
tags: {team: proximity}
cluster:
  k3s_version: v1.31.4+k3s1
  operator_cidrs: [203.0.113.0/24]
  service_image: ghcr.io/x/proximity-service:1
vpcs:
  - name: main
    cidr: 10.0.0.0/16
    az_count: 2
    nat: single
    subnets:
      - {name: pub-a, kind: public, az_index: 0, cidr: 10.0.0.0/24}
      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}
      - {name: priv-a, kind: private, az_index: 0, cidr: 10.0.10.0/24}
      - {name: priv-b, kind: private, az_index: 1, cidr: 10.0.11.0/24}
security_groups:
  - name: alb
    vpc: main
    ingress:
      - {protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}
  - name: server
    vpc: main
    ingress:
      - {protocol: tcp, ports: 6443, source: {load_balancer: nlb}}
      - {protocol: tcp, ports: 6443, source: {cidr: 203.0.113.0/24}}
  - name: agent
    vpc: main
    ingress:
      - {protocol: tcp, ports: "30000-32767", source: {group: alb}}
node_pools:
  - {name: servers, vpc: main, subnets: private, instance_type: t3.medium, min: 3, max: 3, role: k3s-server, security_groups: [server]}
  - {name: agents, vpc: main, subnets: private, instance_type: t3.large, min: 1, desired: 2, max: 4, role: k3s-agent, security_groups: [agent]}
load_balancers:
  nlb:
    name: api
    vpc: main
    subnets: private
    listeners: [{port: 6443, target_pool: servers}]
  alb:
    name: web
    vpc: main
    subnets: public
    security_groups: [alb]
    listeners:
      - port: 80
        default_target: web
        rules: [{path_pattern: /v1/*, target: web}]
    target_groups:
      - {name: web, pool: agents, port: 30080, health_check: {path: /readyz}}
dns:
  zone: t.example.internal
  private: true
  records:
    - {name: api, type: A, alias: alb}
"#;

fn file() -> &'static Path {
    Path::new("inline.yaml")
}

fn ok(src: &str) -> Template {
    match parse_str(src, file()) {
        Ok(t) => t,
        Err(e) => panic!("expected the template to parse:\n{e}"),
    }
}

fn errs(src: &str) -> TemplateErrors {
    match parse_str(src, file()) {
        Ok(_) => panic!("expected errors, the template parsed:\n{src}"),
        Err(e) => e,
    }
}

/// BASE with `from` replaced by `to` (which must occur exactly once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replace(from, to)
}

fn assert_err(e: &TemplateErrors, path: &str, needle: &str) {
    assert!(
        e.has(path, needle),
        "no error at `{path}` containing `{needle}`; got:\n{e}"
    );
}

fn has_warning(t: &[Diagnostic], path: &str, needle: &str) -> bool {
    t.iter()
        .any(|d| d.path == path && d.message.contains(needle))
}

#[test]
fn base_parses_into_the_model() {
    let t = ok(BASE);
    let env = &t.env;
    assert_eq!(env.name.as_str(), "t");
    assert_eq!(env.region.as_str(), "us-east-1");
    assert_eq!(env.vpcs[0].subnets.len(), 4);
    assert_eq!(env.vpcs[0].nat_subnets().len(), 1);
    assert_eq!(env.vpcs[0].nat_subnets()[0].name.as_str(), "pub-a");
    assert!(env.vpcs[0].needs_internet_gateway());
    let rule = &env.security_groups[2].ingress[0];
    assert_eq!(
        rule.protocol,
        Protocol::Tcp(PortRange::new(30000, 32767).unwrap())
    );
    assert_eq!(rule.protocol.ec2_ports(), (30000, 32767));
    assert_eq!(rule.source, Source::Group(Name::parse("alb").unwrap()));
    let servers = env.node_pool(&Name::parse("servers").unwrap()).unwrap();
    assert_eq!((servers.min, servers.desired, servers.max), (3, 3, 3));
    assert_eq!(servers.ami, Ami::default());
    let alb = env.load_balancers.alb.as_ref().unwrap();
    assert_eq!(alb.listeners[0].rules[0].priority, 1);
    assert_eq!(alb.target_groups[0].health_check.path, "/readyz");
    assert_eq!(alb.target_groups[0].health_check.interval_secs, 30);
    let nlb = env.load_balancers.nlb.as_ref().unwrap();
    assert_eq!(nlb.listeners[0].target_port.get(), 6443);
    let dns = env.dns.as_ref().unwrap();
    assert_eq!(dns.vpcs, vec![Name::parse("main").unwrap()]);
    assert_eq!(dns.records[0].name.as_str(), "api.t.example.internal");
    assert_eq!(dns.records[0].ttl, None);
    assert_eq!(
        env.load_balancer_subnet_cidrs(LbKind::Nlb),
        vec![
            "10.0.10.0/24".parse().unwrap(),
            "10.0.11.0/24".parse().unwrap()
        ]
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let e = errs("name: t\nregion: [us-east-1\n");
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].line.is_some(), "{e}");
    assert!(e.errors[0].column.is_some(), "{e}");
    assert!(e.to_string().contains("inline.yaml:"), "{e}");
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = errs(&edit("    az_count: 2\n", "    az_count: 2\n    azs: 2\n"));
    let d = &e.errors[0];
    assert_eq!(d.path, "vpcs[0]", "{e}");
    assert!(d.message.contains("unknown field `azs`"), "{e}");
    assert!(d.line.is_some(), "{e}");
}

#[test]
fn unknown_keys_in_several_items_are_all_reported() {
    let src = edit("    az_count: 2\n", "    az_count: 2\n    azs: 2\n").replace(
        "  - name: server\n    vpc: main\n",
        "  - name: server\n    vpc: main\n    egress: []\n",
    );
    let e = errs(&src);
    assert!(e.errors.iter().any(|d| d.path == "vpcs[0]"), "{e}");
    assert!(
        e.errors
            .iter()
            .any(|d| d.path == "security_groups[1]" && d.message.contains("egress")),
        "{e}"
    );
}

#[test]
fn wrong_enum_value_names_the_key() {
    let e = errs(&edit("nat: single", "nat: per-az"));
    assert!(e.errors[0].path.starts_with("vpcs[0].nat"), "{e}");
    assert!(e.errors[0].message.contains("per_az"), "{e}");
}

#[test]
fn all_errors_are_collected() {
    let src = edit("name: t\n", "name: Bad_Name\n")
        .replace("region: us-east-1", "region: us-east-9")
        .replace("min: 1, desired: 2, max: 4", "min: 5, desired: 2, max: 4")
        .replace("target_pool: servers", "target_pool: nope");
    let e = errs(&src);
    assert_err(&e, "name", "lowercase");
    assert_err(&e, "region", "unknown AWS region `us-east-9`");
    assert_err(&e, "node_pools[1].min", "greater than max");
    assert_err(
        &e,
        "load_balancers.nlb.listeners[0].target_pool",
        "unknown node pool `nope`",
    );
    assert!(e.errors.len() >= 4);
}

#[test]
fn environment_name_is_dns_safe_and_short() {
    let e = errs(&edit("name: t\n", &format!("name: {}\n", "a".repeat(33))));
    assert_err(&e, "name", "at most 32");
    let e = errs(&edit("name: t\n", "name: dev-\n"));
    assert_err(&e, "name", "must not end with `-`");
}

#[test]
fn more_azs_than_the_region_has() {
    let e =
        errs(&edit("region: us-east-1", "region: us-west-1").replace("az_count: 2", "az_count: 3"));
    assert_err(&e, "vpcs[0].az_count", "region us-west-1 has only 2");
    let e = errs(&edit("az_count: 2", "az_count: 7"));
    assert_err(&e, "vpcs[0].az_count", "outside 1..=6");
}

#[test]
fn subnet_outside_its_vpc() {
    let e = errs(&edit("cidr: 10.0.11.0/24", "cidr: 10.1.11.0/24"));
    assert_err(
        &e,
        "vpcs[0].subnets[3].cidr",
        "outside its VPC's CIDR 10.0.0.0/16",
    );
}

#[test]
fn overlapping_subnets() {
    let e = errs(&edit("cidr: 10.0.11.0/24", "cidr: 10.0.8.0/21"));
    assert_err(&e, "vpcs[0].subnets[3].cidr", "overlaps subnet `priv-a`");
}

#[test]
fn subnet_in_an_az_the_vpc_does_not_have() {
    let e = errs(&edit(
        "kind: private, az_index: 1",
        "kind: private, az_index: 2",
    ));
    assert_err(&e, "vpcs[0].subnets[3].az_index", "az_count 2");
}

#[test]
fn cidr_with_host_bits_and_garbage() {
    let e = errs(&edit("cidr: 10.0.0.0/16", "cidr: 10.0.0.1/16"));
    assert_err(&e, "vpcs[0].cidr", "did you mean `10.0.0.0/16`");
    let e = errs(&edit("cidr: 10.0.0.0/16", "cidr: ten"));
    assert_err(&e, "vpcs[0].cidr", "not an IPv4 CIDR");
    let e = errs(&edit("cidr: 10.0.0.0/16", "cidr: 10.0.0.0/8"));
    assert_err(&e, "vpcs[0].cidr", "/16 to /28");
}

#[test]
fn duplicate_names() {
    let e = errs(&edit("name: pub-b,", "name: pub-a,"));
    assert_err(
        &e,
        "vpcs[0].subnets[1].name",
        "duplicate subnet name `pub-a`",
    );
    let e = errs(&edit("  - name: agent\n", "  - name: alb\n"));
    assert_err(
        &e,
        "security_groups[2].name",
        "duplicate security group name",
    );
}

const SECOND_VPC: &str = r#"
  - name: data
    cidr: CIDR
    az_count: 2
    nat: none
    subnet_bits: 4
    subnet_kinds: [private]
security_groups:
"#;

fn with_second_vpc(cidr: &str, peered: bool) -> String {
    let mut src = edit("\nsecurity_groups:\n", &SECOND_VPC.replace("CIDR", cidr));
    if peered {
        src = src.replace(
            "\nsecurity_groups:\n",
            "\npeerings:\n  - {name: main-data, requester: main, accepter: data}\nsecurity_groups:\n",
        );
    }
    src
}

#[test]
fn overlapping_unpeered_vpcs_are_a_warning() {
    let t = ok(&with_second_vpc("10.0.0.0/20", false));
    assert!(
        has_warning(&t.warnings, "vpcs[1].cidr", "overlaps VPC `main`"),
        "{:?}",
        t.warnings
    );
}

#[test]
fn peering_overlapping_vpcs_is_an_error() {
    let e = errs(&with_second_vpc("10.0.0.0/20", true));
    assert_err(&e, "peerings[0]", "cannot peer overlapping VPCs");
    let t = ok(&with_second_vpc("10.1.0.0/16", true));
    assert_eq!(t.env.peerings.len(), 1);
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn peering_references_and_duplicates() {
    let src = with_second_vpc("10.1.0.0/16", true).replace(
        "accepter: data}\n",
        "accepter: data}\n  - {name: again, requester: data, accepter: main}\n  - {name: ghost, requester: main, accepter: nowhere}\n  - {name: selfie, requester: main, accepter: main}\n",
    );
    let e = errs(&src);
    assert_err(&e, "peerings[1]", "already peered by peerings[0]");
    assert_err(&e, "peerings[2].accepter", "unknown VPC `nowhere`");
    assert_err(&e, "peerings[3].accepter", "peered with itself");
}

#[test]
fn generated_subnets() {
    let t = ok(&with_second_vpc("10.1.0.0/16", false));
    let data = &t.env.vpcs[1];
    let cidrs: Vec<String> = data.subnets.iter().map(|s| s.cidr.to_string()).collect();
    assert_eq!(cidrs, ["10.1.0.0/20", "10.1.16.0/20"]);
    assert_eq!(data.subnets[1].name.as_str(), "private-1");
    assert_eq!(data.subnets[1].az_index, 1);

    let src = edit("az_count: 2\n    nat: single\n", "az_count: 3\n    nat: per_az\n    subnet_bits: 4\n")
        .replace(
            "    subnets:\n      - {name: pub-a, kind: public, az_index: 0, cidr: 10.0.0.0/24}\n      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}\n      - {name: priv-a, kind: private, az_index: 0, cidr: 10.0.10.0/24}\n      - {name: priv-b, kind: private, az_index: 1, cidr: 10.0.11.0/24}\n",
            "",
        );
    let t = ok(&src);
    let v = &t.env.vpcs[0];
    assert_eq!(v.subnets.len(), 6);
    assert_eq!(v.subnets[3].name.as_str(), "private-0");
    assert_eq!(v.subnets[3].cidr.to_string(), "10.0.48.0/20");
    assert_eq!(v.nat_subnets().len(), 3);
    assert_eq!(v.nat_subnet_for(2).unwrap().name.as_str(), "public-2");

    let e = errs(&with_second_vpc("10.1.0.0/26", false));
    assert_err(&e, "vpcs[1].subnet_bits", "at most /28");
    let e = errs(
        &with_second_vpc("10.1.0.0/16", false)
            .replace(
                "subnet_bits: 4",
                "subnet_bits: 1\n    subnet_kinds: [private, public]",
            )
            .replace("    subnet_kinds: [private]\n", ""),
    );
    assert_err(&e, "vpcs[1].subnet_bits", "do not fit");
}

#[test]
fn subnets_or_subnet_bits() {
    let e = errs(&edit("nat: single\n", "nat: single\n    subnet_bits: 4\n"));
    assert_err(&e, "vpcs[0].subnet_bits", "not both");
}

#[test]
fn nat_needs_public_subnets() {
    let src = with_second_vpc("10.1.0.0/16", false).replace(
        "    nat: none\n    subnet_bits",
        "    nat: single\n    subnet_bits",
    );
    let e = errs(&src);
    assert_err(&e, "vpcs[1].nat", "needs a public subnet");
    let e = errs(&edit("nat: single", "nat: per_az").replace(
        "{name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}",
        "{name: pub-b, kind: public, az_index: 0, cidr: 10.0.1.0/24}",
    ));
    assert_err(&e, "vpcs[0].nat", "missing in AZ index 1");
}

#[test]
fn private_nodes_without_nat_warn() {
    let t = ok(&edit("nat: single", "nat: none"));
    assert!(
        has_warning(&t.warnings, "node_pools[0].subnets", "nat: none"),
        "{:?}",
        t.warnings
    );
}

#[test]
fn unknown_references() {
    let src = edit("security_groups: [agent]", "security_groups: [agnet]")
        .replace("default_target: web", "default_target: webb")
        .replace("target: web}]", "target: api}]")
        .replace("pool: agents", "pool: workers")
        .replace("source: {group: alb}", "source: {group: lb}")
        .replace(
            "  - name: alb\n    vpc: main",
            "  - name: alb\n    vpc: mian",
        );
    let e = errs(&src);
    assert_err(
        &e,
        "node_pools[1].security_groups[0]",
        "unknown security group `agnet`",
    );
    assert_err(
        &e,
        "load_balancers.alb.listeners[0].default_target",
        "unknown target group `webb`",
    );
    assert_err(
        &e,
        "load_balancers.alb.listeners[0].rules[0].target",
        "unknown target group `api`",
    );
    assert_err(
        &e,
        "load_balancers.alb.target_groups[0].pool",
        "unknown node pool `workers`",
    );
    assert_err(
        &e,
        "security_groups[2].ingress[0].source.group",
        "unknown security group `lb`",
    );
    assert_err(
        &e,
        "security_groups[0].vpc",
        "unknown VPC `mian` (declared: main)",
    );
}

#[test]
fn pool_counts() {
    let e = errs(&edit(
        "min: 1, desired: 2, max: 4",
        "min: 1, desired: 5, max: 4",
    ));
    assert_err(&e, "node_pools[1].desired", "outside min..=max (1..=4)");
    let e = errs(&edit(
        "min: 1, desired: 2, max: 4",
        "min: -1, desired: 2, max: 4",
    ));
    assert_err(&e, "node_pools[1].min", "outside 0..=1000");
    let t = ok(&edit(
        "min: 3, max: 3, role: k3s-server",
        "min: 2, max: 2, role: k3s-server",
    ));
    assert!(
        has_warning(&t.warnings, "node_pools[0].desired", "even"),
        "{:?}",
        t.warnings
    );
}

#[test]
fn pool_fields() {
    let e = errs(&edit("instance_type: t3.large", "instance_type: large"));
    assert_err(&e, "node_pools[1].instance_type", "not an instance type");
    let e = errs(&edit(
        "role: k3s-agent,",
        "role: k3s-agent, ami: {id: ami-xyz},",
    ));
    assert_err(&e, "node_pools[1].ami.id", "not an AMI id");
    let t = ok(&edit(
        "role: k3s-agent,",
        "role: k3s-agent, ami: {id: ami-0123456789abcdef0},",
    ));
    assert_eq!(
        t.env.node_pools[1].ami,
        Ami::Id("ami-0123456789abcdef0".into())
    );
    let e = errs(&edit(
        "role: k3s-agent,",
        "role: k3s-agent, ami: {ssm: /x, id: ami-01234567},",
    ));
    assert_err(&e, "node_pools[1].ami", "exactly one");
    let e = errs(&edit(
        "role: k3s-agent,",
        "role: k3s-agent, labels: {\"-bad\": x},",
    ));
    assert_err(&e, "node_pools[1].labels.-bad", "label key");
    let e = errs(&edit("role: k3s-server", "role: k3s-agent"));
    assert_err(&e, "node_pools", "no pool has role k3s-server");
    let e = errs(&with_second_vpc("10.1.0.0/16", false).replace(
        "node_pools:\n",
        "node_pools:\n  - {name: x, vpc: data, subnets: public, instance_type: t3.small, min: 0, max: 1, role: k3s-agent}\n",
    ));
    assert_err(
        &e,
        "node_pools[0].subnets",
        "VPC `data` has no public subnet",
    );
}

#[test]
fn security_rule_ports() {
    for (ports, needle) in [
        ("0", "outside 1..=65535"),
        ("70000", "outside 1..=65535"),
        ("\"200-100\"", "reversed"),
        ("\"80-x\"", "not a port"),
    ] {
        let e = errs(&edit("ports: 80,", &format!("ports: {ports},")));
        assert_err(&e, "security_groups[0].ingress[0].ports", needle);
    }
    let e = errs(&edit(
        "{protocol: tcp, ports: 80,",
        "{protocol: icmp, ports: 80,",
    ));
    assert_err(
        &e,
        "security_groups[0].ingress[0].ports",
        "only to tcp and udp",
    );
    let e = errs(&edit("{protocol: tcp, ports: 80,", "{protocol: udp,"));
    assert_err(&e, "security_groups[0].ingress[0].ports", "need `ports`");
    let t = ok(&edit("{protocol: tcp, ports: 80,", "{protocol: icmp,"));
    assert_eq!(
        t.env.security_groups[0].ingress[0].protocol.ip_protocol(),
        "icmp"
    );
}

#[test]
fn security_rule_sources() {
    let e = errs(&edit(
        "source: {cidr: 0.0.0.0/0}",
        "source: {cidr: 0.0.0.0/0, group: alb}",
    ));
    assert_err(&e, "security_groups[0].ingress[0].source", "exactly one");
    let e = errs(&edit(
        "source: {cidr: 0.0.0.0/0}",
        "source: {cidr: 1.2.3.4/8}",
    ));
    assert_err(&e, "security_groups[0].ingress[0].source.cidr", "host bits");
    let t = ok(&edit(
        "source: {cidr: 0.0.0.0/0}",
        "source: {cidr: \"2001:db8::/32\"}",
    ));
    assert!(matches!(
        t.env.security_groups[0].ingress[0].source,
        Source::Cidr(ipnet::IpNet::V6(_))
    ));
    let e = errs(&edit("{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}", "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}\n      - {protocol: tcp, ports: \"80\", source: {cidr: 0.0.0.0/0}}"));
    assert_err(&e, "security_groups[0].ingress[1]", "duplicate of");
    // A load balancer that is not declared.
    let src = BASE.replace("  nlb:\n    name: api\n    vpc: main\n    subnets: private\n    listeners: [{port: 6443, target_pool: servers}]\n", "");
    let e = errs(&src);
    assert_err(
        &e,
        "security_groups[1].ingress[0].source.load_balancer",
        "no `nlb`",
    );
}

#[test]
fn security_group_in_another_unpeered_vpc() {
    let src = with_second_vpc("10.1.0.0/16", false).replace(
        "node_pools:",
        "  - name: db\n    vpc: data\n    ingress: [{protocol: tcp, ports: 5432, source: {group: agent}}]\nnode_pools:",
    );
    let e = errs(&src);
    assert_err(
        &e,
        "security_groups[3].ingress[0].source.group",
        "neither `data` nor peered",
    );
    let peered = with_second_vpc("10.1.0.0/16", true).replace(
        "node_pools:",
        "  - name: db\n    vpc: data\n    ingress: [{protocol: tcp, ports: 5432, source: {group: agent}}]\nnode_pools:",
    );
    ok(&peered);
}

#[test]
fn load_balancer_rules() {
    let e = errs(
        &edit(
            "subnets: public\n    security_groups: [alb]",
            "subnets: public\n    security_groups: [alb]",
        )
        .replace(
            "{name: pub-b, kind: public, az_index: 1,",
            "{name: pub-b, kind: public, az_index: 0,",
        ),
    );
    assert_err(&e, "load_balancers.alb.subnets", "at least two AZs");
    let e = errs(&edit(
        "subnets: public\n    security_groups: [alb]",
        "subnets: public\n    security_groups: []",
    ));
    assert_err(
        &e,
        "load_balancers.alb.security_groups",
        "at least one security group",
    );
    let e = errs(&edit(
        "listeners: [{port: 6443, target_pool: servers}]",
        "listeners: [{port: 6443, target_pool: servers}, {port: 6443, target_pool: agents}]",
    ));
    assert_err(&e, "load_balancers.nlb.listeners[1].port", "already used");
    let e = errs(&edit(
        "rules: [{path_pattern: /v1/*, target: web}]",
        "rules: [{path_pattern: v1, target: web}]",
    ));
    assert_err(
        &e,
        "load_balancers.alb.listeners[0].rules[0].path_pattern",
        "must start with `/`",
    );
    let e = errs(&edit(
        "health_check: {path: /readyz}",
        "health_check: {path: /readyz, interval: 5, timeout: 5}",
    ));
    assert_err(
        &e,
        "load_balancers.alb.target_groups[0].health_check.timeout",
        "shorter than the interval",
    );
    let e = errs(&edit(
        "health_check: {path: /readyz}",
        "health_check: {healthy_threshold: 11}",
    ));
    assert_err(
        &e,
        "load_balancers.alb.target_groups[0].health_check.healthy_threshold",
        "2..=10",
    );
    let t = ok(&edit("name: t\n", "name: a-very-long-environment-name-x\n"));
    assert!(
        has_warning(
            &t.warnings,
            "load_balancers.alb.name",
            "shortened with a hash suffix"
        ),
        "{:?}",
        t.warnings
    );
    assert!(has_warning(
        &t.warnings,
        "load_balancers.alb.target_groups[0].name",
        "a-very-long-environment-name-x-web-web"
    ));
    // The pool's groups do not open the target port.
    let t = ok(&edit("ports: \"30000-32767\"", "ports: \"30000-30079\""));
    assert!(
        has_warning(
            &t.warnings,
            "load_balancers.alb.target_groups[0].port",
            "allows tcp/30080"
        ),
        "{:?}",
        t.warnings
    );
}

const RECORDS: &str = "    - {name: api, type: A, alias: alb}\n";

fn with_records(records: &str) -> String {
    edit(RECORDS, records)
}

#[test]
fn dns_records() {
    let e = errs(&with_records("    - {name: k8s, type: A, alias: nlb, ttl: 60}\n    - {name: www, type: CNAME, values: [a.example.com, b.example.com]}\n    - {name: x, type: A, values: [\"::1\"]}\n    - {name: y.other.org., type: A, values: [10.0.0.1]}\n    - {name: z, type: AAAA, alias: alb}\n    - {name: \"@\", type: CNAME, values: [a.example.com]}\n"));
    assert_err(&e, "dns.records[0].ttl", "remove `ttl`");
    assert_err(&e, "dns.records[1].values", "exactly one value");
    assert_err(&e, "dns.records[2].values[0]", "not an IPv4 address");
    assert_err(&e, "dns.records[3].name", "not inside the zone");
    assert_err(&e, "dns.records[4].alias", "type A");
    assert_err(&e, "dns.records[5].name", "apex");

    let src = BASE.replace("  nlb:\n    name: api\n    vpc: main\n    subnets: private\n    listeners: [{port: 6443, target_pool: servers}]\n", "")
        .replace("source: {load_balancer: nlb}", "source: {cidr: 10.0.0.0/16}")
        .replace(RECORDS, "    - {name: k8s, type: A, alias: nlb}\n");
    let e = errs(&src);
    assert_err(&e, "dns.records[0].alias", "no `nlb`");

    let t = ok(&with_records("    - {name: a.t.example.internal., type: A, values: [10.0.0.1], ttl: 30}\n    - {name: \"@\", type: A, values: [10.0.0.2]}\n"));
    let recs = &t.env.dns.as_ref().unwrap().records;
    assert_eq!(recs[0].name.as_str(), "a.t.example.internal");
    assert_eq!(recs[0].ttl, Some(30));
    assert_eq!(recs[1].name.as_str(), "t.example.internal");
    assert_eq!(recs[1].ttl, Some(300));
}

#[test]
fn dns_routing_policies() {
    let t = ok(&with_records(concat!(
        "    - {name: w, type: A, values: [10.0.0.1], routing: {weighted: {weight: 80, set_id: blue}}}\n",
        "    - {name: w, type: A, values: [10.0.0.2], routing: {weighted: {weight: 20, set_id: green}}}\n",
        "    - {name: f, type: A, alias: alb, routing: {failover: {role: primary, health_check: {protocol: http, load_balancer: alb, path: /healthz}}}}\n",
        "    - {name: f, type: A, values: [10.0.0.9], routing: {failover: {role: secondary}}}\n",
        "    - {name: l, type: A, values: [10.0.0.3], routing: {latency: {region: us-east-1, set_id: use1}}}\n",
        "    - {name: l, type: A, values: [10.0.0.4], routing: {latency: {region: eu-west-1, set_id: euw1}}}\n",
    )));
    let recs = &t.env.dns.as_ref().unwrap().records;
    assert_eq!(recs[0].set_id(), Some("blue"));
    match &recs[2].routing {
        Routing::Failover {
            role,
            set_id,
            health_check,
        } => {
            assert_eq!(*role, FailoverRole::Primary);
            assert_eq!(set_id, "primary");
            let hc = health_check.as_ref().unwrap();
            assert_eq!(hc.endpoint, HealthCheckEndpoint::LoadBalancer(LbKind::Alb));
            assert_eq!(hc.port.get(), 80);
            assert_eq!(hc.path.as_deref(), Some("/healthz"));
        }
        other => panic!("{other:?}"),
    }
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);

    let e = errs(&with_records(concat!(
        "    - {name: w, type: A, values: [10.0.0.1], routing: {weighted: {weight: 80, set_id: blue}}}\n",
        "    - {name: w, type: A, values: [10.0.0.2], routing: {weighted: {weight: 300, set_id: blue}}}\n",
        "    - {name: w, type: A, values: [10.0.0.3]}\n",
        "    - {name: f, type: A, values: [10.0.0.4], routing: {failover: {role: primary, set_id: a}}}\n",
        "    - {name: f, type: A, values: [10.0.0.5], routing: {failover: {role: primary, set_id: b, health_check: {protocol: tcp, ip: 198.51.100.7, path: /x, interval: 20}}}}\n",
        "    - {name: l, type: A, values: [10.0.0.6], routing: {latency: {region: moon-1, set_id: m}}}\n",
        "    - {name: m, type: A, values: [10.0.0.7], routing: {weighted: {weight: 1, set_id: a}, latency: {region: us-east-1, set_id: b}}}\n",
        "    - {name: c, type: CNAME, values: [x.example.com]}\n",
        "    - {name: c, type: A, values: [10.0.0.8]}\n",
        "    - {name: d, type: A, values: [10.0.0.9], routing: {weighted: {weight: 1, set_id: a}}}\n",
        "    - {name: d, type: A, values: [10.0.0.10], routing: {weighted: {weight: 1, set_id: a}}}\n",
    )));
    assert_err(&e, "dns.records[1].routing.weighted.weight", "0..=255");
    assert_err(
        &e,
        "dns.records[2].routing",
        "same weighted/failover/latency routing",
    );
    assert_err(
        &e,
        "dns.records[4].routing.failover.health_check.path",
        "no path",
    );
    assert_err(
        &e,
        "dns.records[4].routing.failover.health_check.interval",
        "10 or 30",
    );
    assert_err(&e, "dns.records[5].routing.latency.region", "moon-1");
    assert_err(&e, "dns.records[6].routing", "only one of");
    assert_err(&e, "dns.records[7].type", "must stand alone");
    assert_err(
        &e,
        "dns.records[10].routing",
        "set_id `a` is already used by dns.records[9]",
    );
}

#[test]
fn failover_pairs() {
    let e = errs(&with_records(concat!(
        "    - {name: f, type: A, alias: alb, routing: {failover: {role: primary}}}\n",
        "    - {name: f, type: A, values: [10.0.0.1], routing: {failover: {role: primary, set_id: p2}}}\n",
    )));
    assert_err(
        &e,
        "dns.records[1].routing.failover.role",
        "already has a primary",
    );
    let t = ok(&with_records(
        "    - {name: f, type: A, values: [10.0.0.1], routing: {failover: {role: primary}}}\n",
    ));
    assert!(
        has_warning(
            &t.warnings,
            "dns.records[0].routing.failover",
            "never fails over"
        ),
        "{:?}",
        t.warnings
    );
    assert!(
        has_warning(
            &t.warnings,
            "dns.records[0].routing.failover.role",
            "no partner"
        ),
        "{:?}",
        t.warnings
    );
}

#[test]
fn dns_zone_rules() {
    let e = errs(&edit("zone: t.example.internal", "zone: internal"));
    assert_err(&e, "dns.zone", "top-level");
    let e = errs(&edit("private: true", "private: false\n  vpcs: [main]"));
    assert_err(&e, "dns.vpcs", "only private zones");
    let e = errs(&edit("private: true", "private: true\n  vpcs: [other]"));
    assert_err(&e, "dns.vpcs[0]", "unknown VPC `other`");
}

#[test]
fn cluster_settings() {
    let e = errs(&edit("k3s_version: v1.31.4+k3s1", "k3s_version: 1.31"));
    assert_err(&e, "cluster.k3s_version", "not a k3s release");
    let e = errs(&edit(
        "operator_cidrs: [203.0.113.0/24]",
        "operator_cidrs: [203.0.113.0/33]",
    ));
    assert_err(&e, "cluster.operator_cidrs[0]", "not a CIDR");
    let t = ok(&edit(
        "operator_cidrs: [203.0.113.0/24]",
        "operator_cidrs: [0.0.0.0/0]",
    ));
    assert!(has_warning(
        &t.warnings,
        "cluster.operator_cidrs[0]",
        "whole internet"
    ));
    let e = errs(&edit(
        "service_image: ghcr.io/x/proximity-service:1",
        "service_image: \"a b\"",
    ));
    assert_err(&e, "cluster.service_image", "not a container image");
}

#[test]
fn reserved_tags() {
    let e = errs(&edit(
        "tags: {team: proximity}",
        "tags: {\"provisioner:env\": x, \"aws:foo\": y}",
    ));
    assert_err(&e, "tags.provisioner:env", "reserved");
    assert_err(&e, "tags.aws:foo", "reserved by AWS");
}

#[test]
fn diagnostics_display_file_and_path() {
    let e = errs(&edit("cidr: 10.0.11.0/24", "cidr: 10.1.11.0/24"));
    let text = e.to_string();
    assert!(
        text.contains(
            "error: inline.yaml:18:58: vpcs[0].subnets[3].cidr: subnet 10.1.11.0/24 is outside"
        ),
        "{text}"
    );
}

#[test]
fn shipped_templates_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("vpc-templates/ exists") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let t = match load(&path) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert!(
            t.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            t.warnings
        );
        n += 1;
    }
    assert!(n >= 2, "expected dev.yaml and multi-vpc.yaml");
}

#[test]
fn missing_file_is_reported() {
    let e = load(Path::new("/nonexistent/x.yaml")).unwrap_err();
    assert!(e.errors[0].message.contains("cannot read"), "{e}");
}

#[test]
fn region_override_revalidates_az_counts() {
    let opts = LoadOptions {
        region_override: Some("us-west-1".into()),
    };
    let t = parse_str_with(BASE, file(), &opts).unwrap();
    assert_eq!(t.env.region.as_str(), "us-west-1");
    let src = edit("az_count: 2", "az_count: 3").replace("region: us-east-1", "region: us-east-2");
    let e = parse_str_with(&src, file(), &opts).unwrap_err();
    assert_err(&e, "vpcs[0].az_count", "region us-west-1 has only 2");
}

#[test]
fn a_misspelt_key_does_not_hide_the_other_errors() {
    // vpcs[0] is malformed; the later subnet/pool errors are still found,
    // with their original indexes, and references to the broken VPC are not
    // reported twice.
    let src = with_second_vpc("10.1.0.0/16", false)
        .replace(
            "    az_count: 2\n    nat: single\n",
            "    az_count: 2\n    nat: single\n    natt: 1\n",
        )
        .replace("min: 1, desired: 2, max: 4", "min: 3, desired: 2, max: 4")
        .replace("    subnet_bits: 4\n", "    subnet_bits: 20\n");
    let e = errs(&src);
    assert!(
        e.errors
            .iter()
            .any(|d| d.path == "vpcs[0]" && d.message.contains("unknown field `natt`")),
        "{e}"
    );
    assert_err(&e, "node_pools[1].desired", "outside min..=max");
    assert_err(&e, "vpcs[1].subnet_bits", "outside 1..=12");
    assert!(
        !e.errors
            .iter()
            .any(|d| d.message.contains("unknown VPC `main`")),
        "references to the malformed VPC are not errors again:\n{e}"
    );
}

#[test]
fn operators_without_a_path_to_the_k3s_api_warn() {
    let t = ok(&edit(
        "      - {protocol: tcp, ports: 6443, source: {cidr: 203.0.113.0/24}}\n",
        "",
    ));
    assert!(
        has_warning(
            &t.warnings,
            "cluster.operator_cidrs[0]",
            "not allowed to reach tcp/6443"
        ),
        "{:?}",
        t.warnings
    );
    // A wider CIDR covers the operators too.
    let t = ok(&edit(
        "source: {cidr: 203.0.113.0/24}",
        "source: {cidr: 203.0.0.0/16}",
    ));
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

mod generated_subnets_properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Generated subnets are inside their VPC, disjoint, one per kind and
        /// AZ — or the template is rejected at `subnet_bits` saying why.
        #[test]
        fn inside_disjoint_and_complete(
            prefix in 16u8..=26,
            az_count in 1u8..=6,
            bits in 1i64..=12,
            both in any::<bool>(),
        ) {
            let kinds = if both { "[public, private]" } else { "[private]" };
            let nat = if both { "single" } else { "none" };
            let src = format!(
                "name: p\nregion: us-east-1\ncluster: {{k3s_version: v1.32.5+k3s1, service_image: x}}\nvpcs:\n  - {{name: v, cidr: 10.0.0.0/{prefix}, az_count: {az_count}, nat: {nat}, subnet_bits: {bits}, subnet_kinds: {kinds}}}\n"
            );
            match parse_str(&src, file()) {
                Ok(t) => {
                    let v = &t.env.vpcs[0];
                    let n_kinds = if both { 2 } else { 1 };
                    prop_assert_eq!(v.subnets.len(), n_kinds * usize::from(az_count));
                    for (i, a) in v.subnets.iter().enumerate() {
                        prop_assert!(v.cidr.contains(&a.cidr));
                        prop_assert!(a.az_index < az_count);
                        prop_assert_eq!(a.cidr.prefix_len(), prefix + bits as u8);
                        for b in &v.subnets[i + 1..] {
                            prop_assert!(!a.cidr.contains(&b.cidr.network()) && !b.cidr.contains(&a.cidr.network()));
                        }
                    }
                }
                Err(e) => {
                    prop_assert!(
                        e.errors.iter().all(|d| d.path == "vpcs[0].subnet_bits"),
                        "{}", e
                    );
                    prop_assert!(
                        i64::from(prefix) + bits > 28
                            || (if both { 2 } else { 1 }) * i64::from(az_count) > (1i64 << bits),
                        "{}", e
                    );
                }
            }
        }
    }
}

#[test]
fn alb_target_ports_are_the_services_node_port() {
    let e = errs(&edit("port: 30080", "port: 8080"));
    assert_err(
        &e,
        "load_balancers.alb.target_groups[0].port",
        "NodePort range 30000-32767",
    );
    let e = errs(&edit(
        "      - {name: web, pool: agents, port: 30080, health_check: {path: /readyz}}\n",
        "      - {name: web, pool: agents, port: 30080, health_check: {path: /readyz}}\n      - {name: web2, pool: agents, port: 30081}\n",
    ));
    assert_err(
        &e,
        "load_balancers.alb.target_groups[1].port",
        "30081 differs from target_groups[0] (30080)",
    );
}

#[test]
fn load_balancers_get_one_subnet_per_az() {
    let t = ok(&edit(
        "      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}\n",
        "      - {name: pub-b, kind: public, az_index: 1, cidr: 10.0.1.0/24}\n      - {name: pub-a2, kind: public, az_index: 0, cidr: 10.0.2.0/24}\n",
    ));
    let vpc = t.env.vpc(&t.env.vpcs[0].name).unwrap();
    let names: Vec<&str> = vpc
        .load_balancer_subnets(SubnetKind::Public)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["pub-a", "pub-b"]);
    // The rules admitting the ALB by CIDR follow the same choice.
    assert_eq!(
        t.env.load_balancer_subnet_cidrs(LbKind::Alb).len(),
        2,
        "{:?}",
        t.env.load_balancer_subnet_cidrs(LbKind::Alb)
    );
}

#[test]
fn descriptions_take_only_what_aws_takes() {
    let e = errs(&edit(
        "  - name: alb\n    vpc: main\n",
        "  - name: alb\n    vpc: main\n    description: the ALB's group\n",
    ));
    assert_err(&e, "security_groups[0].description", "'\\'' is not allowed");
    let e = errs(&edit(
        "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}",
        "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}, description: 100% of the web}",
    ));
    assert_err(
        &e,
        "security_groups[0].ingress[0].description",
        "'%' is not allowed",
    );
    ok(&edit(
        "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}}",
        "{protocol: tcp, ports: 80, source: {cidr: 0.0.0.0/0}, description: \"HTTP (all): web/api #1\"}",
    ));
}

#[test]
fn environment_names_that_make_names_aws_refuses() {
    let e = errs(&BASE.replacen("name: t\n", "name: internal\n", 1));
    assert_err(&e, "name", "begin with `internal-`");
    let e = errs(&BASE.replacen("name: t\n", "name: sg-lab\n", 1));
    assert_err(&e, "name", "begin with `sg-`");
    ok(&BASE.replacen("name: t\n", "name: internals\n", 1));
}

#[test]
fn target_group_names_of_the_two_load_balancers_do_not_clash() {
    // NLB `web-a`, port 6443 → `web-a-6443`; ALB `web`, group `a-6443` → `web-a-6443`.
    let src = BASE
        .replacen("    name: api\n", "    name: web-a\n", 1)
        .replace("default_target: web", "default_target: a-6443")
        .replace("target: web}", "target: a-6443}")
        .replace("{name: web, pool: agents", "{name: a-6443, pool: agents");
    let e = errs(&src);
    assert_err(
        &e,
        "load_balancers.alb.target_groups[0].name",
        "the NLB's for port 6443",
    );
}
