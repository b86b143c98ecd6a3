//! Unit tests of the template as a whole (loading, YAML errors, diagnostics, the shipped
//! templates); each section's own checks are tested beside them in `parse/`.

use super::fixtures::*;
use super::*;

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
