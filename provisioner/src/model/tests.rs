//! The model builders' graph: dependencies that keep slow steps off each other's path.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::engine::Task;

/// The dependencies of the task `key`, as strings.
fn deps_of(tasks: &[Arc<dyn Task<Cloud>>], key: &str) -> Vec<String> {
    tasks
        .iter()
        .find(|t| t.key().as_str() == key)
        .unwrap_or_else(|| panic!("no task {key}"))
        .deps()
        .iter()
        .map(|d| d.as_str().to_string())
        .collect()
}

/// The tasks of a template of `vpc-templates/`.
fn tasks_of(file: &str) -> (crate::template::Template, Vec<Arc<dyn Task<Cloud>>>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vpc-templates")
        .join(file);
    let t = crate::template::load(&path).unwrap();
    let tasks = build(&t.env, &HashMap::new());
    (t, tasks)
}

#[test]
fn dev_template_builds_an_acyclic_plan() {
    let (_, tasks) = tasks_of("dev.yaml");
    let g = crate::engine::executor::graph_of(&tasks).unwrap();
    let order = g.topo_order().unwrap();
    let pos = |s: &str| order.iter().position(|x| x.as_str() == s).unwrap();
    assert!(pos("vpc/main") < pos("subnet/main-public-a"));
    assert!(pos("sg/k3s-nodes") < pos("sg-rules/k3s-nodes"));
    assert!(pos("target-group/web-service") < pos("asg/agents"));
    assert!(pos("nlb/k8s-api") < pos("launch-template/servers"));
    assert!(pos("routes/main-private-a") < pos("asg/servers"));
    assert!(pos("rt-assoc/main-private-a") < pos("asg/servers"));
    assert!(pos("nat/main-public-a") < pos("routes/main-private-b"));
    assert!(pos("igw-attachment/main") < pos("nat/main-public-a"));
    assert!(pos("igw-attachment/main") < pos("routes/main-public-a"));
    // The new split keeps slow steps off each other's path.
    let deps_of = |s: &str| deps_of(&tasks, s);
    assert_eq!(deps_of("route-table/main-private-a"), ["vpc/main"]);
    assert!(deps_of("igw/main").is_empty());
    assert!(!deps_of("nat/main-public-a").contains(&"subnet-public-ip/main-public-a".into()));
    // Private nodes egress through the NAT gateway's own subnet: its routes too.
    let asg = deps_of("asg/servers");
    for d in [
        "routes/main-private-b",
        "routes/main-public-a",
        "rt-assoc/main-public-a",
    ] {
        assert!(
            asg.contains(&d.to_string()),
            "asg/servers lacks {d}: {asg:?}"
        );
    }
    // The internet-facing ALB waits for the internet gateway; the internal NLB need not.
    assert!(deps_of("alb/web").contains(&"igw-attachment/main".into()));
    assert!(!deps_of("nlb/k8s-api").contains(&"igw-attachment/main".into()));
    let rounds = g.teardown_rounds().unwrap();
    let round = |s: &str| {
        rounds
            .iter()
            .position(|r| r.iter().any(|x| x.as_str() == s))
            .unwrap()
    };
    assert!(round("igw-attachment/main") < round("vpc/main"));
    assert!(round("igw-attachment/main") < round("igw/main"));
    assert!(round("rt-assoc/main-private-a") < round("subnet/main-private-a"));
    assert!(round("routes/main-private-a") < round("nat/main-public-a"));
    assert!(round("asg/servers") < round("subnet/main-private-a"));
    assert!(round("sg-rules/k3s-agent") < round("sg/alb"));
}

#[test]
fn subnets_take_the_accounts_zones_and_az_count_must_fit_them() {
    let (t, _) = tasks_of("dev.yaml");
    // An account whose us-east-1 zones are not a, b, … (each account maps its own).
    let zones: Vec<String> = ["us-east-1c", "us-east-1d"].map(String::from).to_vec();
    assert_eq!(check_zones(&t.env, &zones), Ok(()));
    let err = check_zones(&t.env, &zones[..1]).unwrap_err();
    assert!(err.starts_with("vpcs[0].az_count:"), "{err}");
    assert!(err.contains("offers this account 1 (us-east-1c)"), "{err}");
    let target = Target {
        zones,
        ..Target::default()
    };
    assert_eq!(target.zone(&t.env, 1), "us-east-1d");
    // Without the account's list: the region table's names.
    assert_eq!(Target::default().zone(&t.env, 1), "us-east-1b");
}

#[test]
fn rules_naming_a_group_across_a_peering_wait_for_it() {
    let (_, tasks) = tasks_of("multi-vpc.yaml");
    let deps_of = |s: &str| deps_of(&tasks, s);
    // postgres (data) admits k3s-agent (apps): across apps-data.
    assert!(deps_of("sg-rules/postgres").contains(&"peering/apps-data".into()));
    assert!(deps_of("sg-rules/k3s-nodes").contains(&"peering/apps-data".into()));
    // k3s-agent admits only the ALB's group, in its own VPC.
    assert!(!deps_of("sg-rules/k3s-agent")
        .iter()
        .any(|d| d.starts_with("peering/")));
}

#[test]
fn a_public_api_admits_the_nat_gateways_through_which_nodes_join() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates/dev.yaml");
    let src = std::fs::read_to_string(&path).unwrap();
    let internal = crate::template::parse_str(&src, &path).unwrap();
    let tasks = build(&internal.env, &HashMap::new());
    assert!(!deps_of(&tasks, "sg-rules/k8s-api").contains(&"eip/main-public-a".to_string()));
    let public = src
        .replace("api_access: internal", "api_access: public")
        .replace(
            "subnets: private       # internal",
            "subnets: public        # internet-facing",
        );
    let t = crate::template::parse_str(&public, &path).unwrap();
    assert_eq!(t.env.cluster.api_access, crate::template::ApiAccess::Public);
    let tasks = build(&t.env, &HashMap::new());
    assert!(deps_of(&tasks, "sg-rules/k8s-api").contains(&"eip/main-public-a".to_string()));
    // Only the NLB's group: the servers' groups are reached through it.
    assert!(!deps_of(&tasks, "sg-rules/k3s-server").contains(&"eip/main-public-a".to_string()));
}
