//! Shared by the template's unit tests: a valid base template, then one inline change per error.

use std::path::Path;

use super::*;

pub(super) const BASE: &str = r#"
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

pub(super) fn file() -> &'static Path {
    Path::new("inline.yaml")
}

pub(super) fn ok(src: &str) -> Template {
    match parse_str(src, file()) {
        Ok(t) => t,
        Err(e) => panic!("expected the template to parse:\n{e}"),
    }
}

pub(super) fn errs(src: &str) -> TemplateErrors {
    match parse_str(src, file()) {
        Ok(_) => panic!("expected errors, the template parsed:\n{src}"),
        Err(e) => e,
    }
}

/// BASE with `from` replaced by `to` (which must occur exactly once).
pub(super) fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    BASE.replace(from, to)
}

/// `src` with `from` replaced by `to` (which must occur exactly once).
pub(super) fn edit_in(src: &str, from: &str, to: &str) -> String {
    assert_eq!(src.matches(from).count(), 1, "`{from}` must occur once");
    src.replace(from, to)
}

pub(super) fn assert_err(e: &TemplateErrors, path: &str, needle: &str) {
    assert!(
        e.has(path, needle),
        "no error at `{path}` containing `{needle}`; got:\n{e}"
    );
}

pub(super) fn has_warning(t: &[Diagnostic], path: &str, needle: &str) -> bool {
    t.iter()
        .any(|d| d.path == path && d.message.contains(needle))
}

pub(super) const SECOND_VPC: &str = r#"
  - name: data
    cidr: CIDR
    az_count: 2
    nat: none
    subnet_bits: 4
    subnet_kinds: [private]
security_groups:
"#;

pub(super) fn with_second_vpc(cidr: &str, peered: bool) -> String {
    let mut src = edit("\nsecurity_groups:\n", &SECOND_VPC.replace("CIDR", cidr));
    if peered {
        src = src.replace(
            "\nsecurity_groups:\n",
            "\npeerings:\n  - {name: main-data, requester: main, accepter: data}\nsecurity_groups:\n",
        );
    }
    src
}
