//! DNS: the Route 53 zone (private zones associated with the template's VPCs), its records
//! (values or an alias to a load balancer; simple, weighted, failover or latency routing) and
//! the health checks failover records use.

use std::sync::Arc;

use super::load_balancing::lb_key;
use super::{k, task};
use crate::aws::route53::{HealthCheckSpec, RecordSet};
use crate::aws::Cloud;
use crate::engine::{Task, TaskKey};
use crate::resources::route53;
use crate::template::{
    Dns, DnsHealthCheck, Environment, HealthCheckEndpoint, Record, RecordTarget, Routing,
};

/// The zone and every record of `env`'s `dns`, if it has one.
pub fn build(env: &Environment) -> Vec<Arc<dyn Task<Cloud>>> {
    let Some(d) = &env.dns else {
        return Vec::new();
    };
    let mut tasks = vec![zone(env, d)];
    for r in &d.records {
        tasks.extend(record(env, d, r));
    }
    tasks
}

/// The hosted zone. A private zone answers only in VPCs with DNS on (`vpc-dns/…`), but can be
/// made before: the instances that query it wait for `vpc-dns/…`.
fn zone(env: &Environment, d: &Dns) -> Arc<dyn Task<Cloud>> {
    let private_vpcs: Vec<TaskKey> = if !d.private {
        vec![]
    } else if d.vpcs.is_empty() {
        env.vpcs.iter().map(|v| k("vpc", v.name.as_str())).collect()
    } else {
        d.vpcs.iter().map(|v| k("vpc", v.as_str())).collect()
    };
    task(route53::HostedZone {
        name: d.zone.to_string(),
        private_vpcs,
        extra_deps: vec![],
    })
}

/// One record, and the health check its failover routing names (if any).
fn record(env: &Environment, d: &Dns, r: &Record) -> Vec<Arc<dyn Task<Cloud>>> {
    let id = match r.set_id() {
        Some(s) => format!("{}-{}-{s}", r.name, r.rtype),
        None => format!("{}-{}", r.name, r.rtype),
    };
    let mut rs = RecordSet {
        name: r.name.to_string(),
        rtype: r.rtype.as_str().to_string(),
        set_id: r.set_id().map(String::from),
        ttl: r.ttl.map(i64::from),
        values: vec![],
        alias: None,
        weight: None,
        failover: None,
        region: None,
        health_check_id: None,
    };
    let mut alias = None;
    match &r.target {
        RecordTarget::Values(v) => rs.values = v.clone(),
        RecordTarget::Alias {
            lb,
            evaluate_target_health,
        } => {
            alias = lb_key(env, *lb).map(|lb| route53::AliasSpec {
                lb,
                evaluate_target_health: *evaluate_target_health,
            });
        }
    }
    let mut tasks = Vec::new();
    let mut health_check = None;
    match &r.routing {
        Routing::Simple => {}
        Routing::Weighted { weight, .. } => rs.weight = Some(i64::from(*weight)),
        Routing::Failover {
            role,
            health_check: hc,
            ..
        } => {
            rs.failover = Some(role.as_route53().to_string());
            if let Some(hc) = hc {
                tasks.push(health_check_task(env, &id, hc));
                health_check = Some(k("health-check", &id));
            }
        }
        Routing::Latency { region, .. } => rs.region = Some(region.to_string()),
    }
    tasks.push(task(route53::Record {
        name: id,
        zone: k("zone", d.zone.as_str()),
        record: rs,
        alias,
        health_check,
        extra_deps: vec![],
    }));
    tasks
}

/// The Route 53 health check of the failover record `id`.
fn health_check_task(env: &Environment, id: &str, hc: &DnsHealthCheck) -> Arc<dyn Task<Cloud>> {
    let (fqdn, ip, lb) = match &hc.endpoint {
        HealthCheckEndpoint::LoadBalancer(kind) => (None, None, lb_key(env, *kind)),
        HealthCheckEndpoint::Fqdn(f) => (Some(f.to_string()), None, None),
        HealthCheckEndpoint::Ip(ip) => (None, Some(ip.to_string()), None),
    };
    task(route53::HealthCheck {
        name: id.to_string(),
        spec: HealthCheckSpec {
            kind: hc.protocol.as_route53().to_string(),
            fqdn,
            ip,
            port: i32::from(hc.port.get()),
            path: hc.path.clone(),
            interval: i32::from(hc.request_interval_secs),
            failure_threshold: i32::from(hc.failure_threshold),
        },
        lb,
    })
}
