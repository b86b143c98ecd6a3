//! The template as written: serde structs mirroring the YAML, with
//! `deny_unknown_fields` everywhere. Nothing here is validated beyond its
//! shape; [`super::parse`] turns it into the model.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::model::{
    ApiAccess, FailoverRole, HealthCheckProtocol, LbKind, NatStrategy, NodeRole, RecordType,
    SubnetKind,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub name: String,
    pub region: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub cluster: RawCluster,
    #[serde(default)]
    pub vpcs: Vec<RawVpc>,
    #[serde(default)]
    pub peerings: Vec<RawPeering>,
    #[serde(default)]
    pub security_groups: Vec<RawSecurityGroup>,
    #[serde(default)]
    pub node_pools: Vec<RawNodePool>,
    #[serde(default)]
    pub load_balancers: RawLoadBalancers,
    pub dns: Option<RawDns>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub k3s_version: String,
    #[serde(default)]
    pub operator_cidrs: Vec<String>,
    pub api_access: Option<ApiAccess>,
    pub service_image: String,
    pub image_pull_secret: Option<String>,
    pub k3s_mirror: Option<String>,
    #[serde(default)]
    pub k3s_airgap_images: bool,
    pub init_lease_secs: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVpc {
    pub name: String,
    pub cidr: String,
    pub az_count: i64,
    pub subnets: Option<Vec<RawSubnet>>,
    pub subnet_bits: Option<i64>,
    pub subnet_kinds: Option<Vec<SubnetKind>>,
    #[serde(default = "nat_default")]
    pub nat: NatStrategy,
}

fn nat_default() -> NatStrategy {
    NatStrategy::None
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubnet {
    pub name: String,
    pub kind: SubnetKind,
    pub az_index: i64,
    pub cidr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPeering {
    pub name: String,
    pub requester: String,
    pub accepter: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurityGroup {
    pub name: String,
    pub vpc: String,
    pub description: Option<String>,
    #[serde(default)]
    pub ingress: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub protocol: RawProtocol,
    pub ports: Option<RawPorts>,
    pub source: RawSource,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawProtocol {
    Tcp,
    Udp,
    Icmp,
    All,
}

/// `443` or `"30000-32767"`.
#[derive(Debug, Clone)]
pub enum RawPorts {
    Single(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawPorts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawPorts;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a range like \"30000-32767\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawPorts, E> {
                Ok(RawPorts::Single(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawPorts, E> {
                Ok(RawPorts::Single(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPorts, E> {
                Ok(RawPorts::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub cidr: Option<String>,
    pub group: Option<String>,
    pub load_balancer: Option<LbKind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodePool {
    pub name: String,
    pub vpc: String,
    pub subnets: SubnetKind,
    pub instance_type: String,
    pub ami: Option<RawAmi>,
    pub min: i64,
    pub desired: Option<i64>,
    pub max: i64,
    pub role: NodeRole,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub root_volume_gb: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAmi {
    pub ssm: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoadBalancers {
    pub nlb: Option<RawNlb>,
    pub alb: Option<RawAlb>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNlb {
    pub name: String,
    pub vpc: String,
    pub subnets: SubnetKind,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub listeners: Vec<RawNlbListener>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNlbListener {
    pub port: i64,
    pub target_pool: String,
    pub target_port: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlb {
    pub name: String,
    pub vpc: String,
    pub subnets: SubnetKind,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub listeners: Vec<RawAlbListener>,
    #[serde(default)]
    pub target_groups: Vec<RawTargetGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlbListener {
    pub port: i64,
    pub default_target: String,
    #[serde(default)]
    pub rules: Vec<RawPathRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPathRule {
    pub path_pattern: String,
    pub target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetGroup {
    pub name: String,
    pub pool: String,
    pub port: i64,
    #[serde(default)]
    pub health_check: RawHttpHealthCheck,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpHealthCheck {
    pub path: Option<String>,
    pub interval: Option<i64>,
    pub timeout: Option<i64>,
    pub healthy_threshold: Option<i64>,
    pub unhealthy_threshold: Option<i64>,
    pub matcher: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub zone: String,
    #[serde(default)]
    pub private: bool,
    pub vpcs: Option<Vec<String>>,
    #[serde(default)]
    pub records: Vec<RawRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: RecordType,
    pub alias: Option<LbKind>,
    pub evaluate_target_health: Option<bool>,
    pub values: Option<Vec<String>>,
    pub ttl: Option<i64>,
    pub routing: Option<RawRouting>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    pub weighted: Option<RawWeighted>,
    pub failover: Option<RawFailover>,
    pub latency: Option<RawLatency>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeighted {
    pub weight: i64,
    pub set_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailover {
    pub role: FailoverRole,
    pub set_id: Option<String>,
    pub health_check: Option<RawDnsHealthCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    pub region: String,
    pub set_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnsHealthCheck {
    pub protocol: HealthCheckProtocol,
    pub load_balancer: Option<LbKind>,
    pub fqdn: Option<String>,
    pub ip: Option<String>,
    pub port: Option<i64>,
    pub path: Option<String>,
    pub interval: Option<i64>,
    pub failure_threshold: Option<i64>,
}
