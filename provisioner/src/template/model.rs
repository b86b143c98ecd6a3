//! The validated environment model.
//!
//! Every value of these types came out of [`crate::template::parse_str`] /
//! [`crate::template::load`], which checks all invariants documented on each
//! type (CIDRs inside their VPC, references that resolve, `min <= desired <=
//! max`, …). Fields are public for reading; build values only through the
//! parser (tests included: write the YAML inline) so the invariants hold.
//!
//! Names ([`Name`]) are the *logical ids* of resources: the engine tags every
//! AWS object with its environment and its logical name, so they are stable
//! and unique per kind (subnet names are unique within their VPC).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

pub use super::region::Region;

/// A DNS-label-safe name: lowercase ASCII letters, digits and `-`, starting
/// with a letter, not ending with `-`, at most [`Name::MAX_LEN`] characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Maximum length of any name (the environment's and each resource's).
    pub const MAX_LEN: usize = 32;

    /// Parses a name, returning the reason it is invalid.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!(
                "`{s}` is {} characters long; at most {} allowed",
                s.len(),
                Self::MAX_LEN
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(format!("`{s}` must start with a lowercase letter"));
        }
        if s.ends_with('-') {
            return Err(format!("`{s}` must not end with `-`"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(format!(
                "`{s}` contains `{c}`; only lowercase letters, digits and `-` are allowed"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A whole environment: everything `provisioner up` converges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Environment name; every AWS object is tagged `provisioner:env = name`.
    pub name: Name,
    pub region: Region,
    pub vpcs: Vec<Vpc>,
    pub peerings: Vec<Peering>,
    pub security_groups: Vec<SecurityGroup>,
    pub node_pools: Vec<NodePool>,
    pub load_balancers: LoadBalancers,
    pub dns: Option<Dns>,
    pub cluster: Cluster,
    /// Extra tags put on every resource (never `provisioner:*` nor `aws:*`).
    pub tags: BTreeMap<String, String>,
}

impl Environment {
    pub fn vpc(&self, name: &Name) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| &v.name == name)
    }

    pub fn security_group(&self, name: &Name) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| &g.name == name)
    }

    pub fn node_pool(&self, name: &Name) -> Option<&NodePool> {
        self.node_pools.iter().find(|p| &p.name == name)
    }

    pub fn peering(&self, name: &Name) -> Option<&Peering> {
        self.peerings.iter().find(|p| &p.name == name)
    }

    /// The load balancer's VPC and subnet kind, if that load balancer exists.
    pub fn load_balancer(&self, kind: LbKind) -> Option<LbPlacement<'_>> {
        match kind {
            LbKind::Nlb => self.load_balancers.nlb.as_ref().map(|n| LbPlacement {
                name: &n.name,
                vpc: &n.vpc,
                subnets: n.subnets,
                security_groups: &n.security_groups,
            }),
            LbKind::Alb => self.load_balancers.alb.as_ref().map(|a| LbPlacement {
                name: &a.name,
                vpc: &a.vpc,
                subnets: a.subnets,
                security_groups: &a.security_groups,
            }),
        }
    }

    /// The CIDRs of the subnets a load balancer lives in (what a
    /// [`Source::LoadBalancer`] rule expands to when the load balancer has no
    /// security group of its own).
    pub fn load_balancer_subnet_cidrs(&self, kind: LbKind) -> Vec<Ipv4Net> {
        let Some(lb) = self.load_balancer(kind) else {
            return Vec::new();
        };
        self.vpc(lb.vpc)
            .map(|v| {
                v.load_balancer_subnets(lb.subnets)
                    .into_iter()
                    .map(|s| s.cidr)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Pools whose role is [`NodeRole::K3sServer`].
    pub fn server_pools(&self) -> impl Iterator<Item = &NodePool> {
        self.node_pools
            .iter()
            .filter(|p| p.role == NodeRole::K3sServer)
    }
}

/// Where a load balancer lives (see [`Environment::load_balancer`]).
#[derive(Clone, Copy, Debug)]
pub struct LbPlacement<'a> {
    pub name: &'a Name,
    pub vpc: &'a Name,
    pub subnets: SubnetKind,
    pub security_groups: &'a [Name],
}

/// A VPC. Invariants: `1 <= az_count <= region AZs`; every subnet lies inside
/// `cidr`, in an AZ `< az_count`, and no two subnets overlap; a NAT strategy
/// other than `None` has a public subnet to live in (every AZ for `PerAz`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vpc {
    pub name: Name,
    pub cidr: Ipv4Net,
    pub az_count: u8,
    pub subnets: Vec<Subnet>,
    pub nat: NatStrategy,
}

impl Vpc {
    pub fn subnet(&self, name: &Name) -> Option<&Subnet> {
        self.subnets.iter().find(|s| &s.name == name)
    }

    pub fn subnets_of(&self, kind: SubnetKind) -> impl Iterator<Item = &Subnet> {
        self.subnets.iter().filter(move |s| s.kind == kind)
    }

    /// The subnets a load balancer on `kind` subnets is placed in: the first of that kind
    /// in each AZ (AWS refuses two subnets of one AZ for a load balancer).
    pub fn load_balancer_subnets(&self, kind: SubnetKind) -> Vec<&Subnet> {
        let mut seen = std::collections::BTreeSet::new();
        self.subnets_of(kind)
            .filter(|s| seen.insert(s.az_index))
            .collect()
    }

    /// An internet gateway is needed iff the VPC has a public subnet.
    pub fn needs_internet_gateway(&self) -> bool {
        self.subnets.iter().any(|s| s.kind == SubnetKind::Public)
    }

    /// The public subnets that host a NAT gateway: none, the first public
    /// subnet (lowest AZ index, then declaration order) for `Single`, the
    /// first public subnet of each AZ for `PerAz`.
    pub fn nat_subnets(&self) -> Vec<&Subnet> {
        let mut out: Vec<&Subnet> = Vec::new();
        let limit = match self.nat {
            NatStrategy::None => return out,
            NatStrategy::Single => 1,
            NatStrategy::PerAz => usize::from(self.az_count),
        };
        for az in 0..self.az_count {
            if let Some(s) = self
                .subnets_of(SubnetKind::Public)
                .find(|s| s.az_index == az)
            {
                out.push(s);
            }
            if out.len() == limit {
                break;
            }
        }
        out
    }

    /// The NAT gateway a private subnet in `az_index` routes through: the one
    /// in the same AZ for `PerAz`, the single one for `Single`.
    pub fn nat_subnet_for(&self, az_index: u8) -> Option<&Subnet> {
        let nats = self.nat_subnets();
        match self.nat {
            NatStrategy::None => None,
            NatStrategy::Single => nats.first().copied(),
            NatStrategy::PerAz => nats.into_iter().find(|s| s.az_index == az_index),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Subnet {
    /// Unique within the VPC.
    pub name: Name,
    pub kind: SubnetKind,
    /// Index into the region's availability zones (`0..vpc.az_count`).
    pub az_index: u8,
    pub cidr: Ipv4Net,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubnetKind {
    /// Routed to the internet gateway; instances get public IPs.
    Public,
    /// Routed through the VPC's NAT gateway(s), if any.
    Private,
}

impl fmt::Display for SubnetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubnetKind::Public => "public",
            SubnetKind::Private => "private",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatStrategy {
    None,
    Single,
    PerAz,
}

/// A VPC peering; routes to the other side's CIDR are added to every route
/// table of both VPCs. Invariant: the two VPCs differ and do not overlap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Peering {
    pub name: Name,
    pub requester: Name,
    pub accepter: Name,
}

/// A security group. Egress is always "all traffic to anywhere".
/// Invariant: every `Source::Group` names a group in the same VPC or in a
/// VPC peered with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityGroup {
    pub name: Name,
    pub vpc: Name,
    pub description: String,
    pub ingress: Vec<IngressRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressRule {
    pub protocol: Protocol,
    pub source: Source,
    pub description: Option<String>,
}

/// IP protocol with its port range where one applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp(PortRange),
    Udp(PortRange),
    /// All ICMP types and codes.
    Icmp,
    /// Every protocol and port.
    All,
}

impl Protocol {
    /// The EC2 `IpProtocol` value: `tcp`, `udp`, `icmp` or `-1`.
    pub fn ip_protocol(&self) -> &'static str {
        match self {
            Protocol::Tcp(_) => "tcp",
            Protocol::Udp(_) => "udp",
            Protocol::Icmp => "icmp",
            Protocol::All => "-1",
        }
    }

    /// `(FromPort, ToPort)` as EC2 wants them (`-1, -1` for ICMP/all).
    pub fn ec2_ports(&self) -> (i32, i32) {
        match self {
            Protocol::Tcp(r) | Protocol::Udp(r) => (i32::from(r.from()), i32::from(r.to())),
            Protocol::Icmp | Protocol::All => (-1, -1),
        }
    }
}

/// An inclusive port range, `1 <= from <= to <= 65535`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortRange {
    from: u16,
    to: u16,
}

impl PortRange {
    pub fn new(from: u16, to: u16) -> Result<Self, String> {
        if from == 0 || to == 0 {
            return Err("ports must be in 1..=65535".into());
        }
        if from > to {
            return Err(format!("range {from}-{to} is reversed"));
        }
        Ok(Self { from, to })
    }

    pub fn single(port: Port) -> Self {
        Self {
            from: port.get(),
            to: port.get(),
        }
    }

    pub fn from(&self) -> u16 {
        self.from
    }

    pub fn to(&self) -> u16 {
        self.to
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// A TCP/UDP port in `1..=65535`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    pub fn new(port: i64) -> Result<Self, String> {
        match u16::try_from(port) {
            Ok(p) if p >= 1 => Ok(Self(p)),
            _ => Err(format!("port {port} is outside 1..=65535")),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where allowed traffic comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Cidr(IpNet),
    /// Another security group of this environment (same or peered VPC).
    Group(Name),
    /// The load balancer: its security groups if it has any, else the CIDRs
    /// of its subnets (see [`Environment::load_balancer_subnet_cidrs`]).
    LoadBalancer(LbKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LbKind {
    Nlb,
    Alb,
}

impl fmt::Display for LbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LbKind::Nlb => "nlb",
            LbKind::Alb => "alb",
        })
    }
}

/// An Auto Scaling group of identical nodes. Invariants: `min <= desired <=
/// max`; the VPC has at least one subnet of kind `subnets`; every security
/// group belongs to `vpc`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodePool {
    pub name: Name,
    pub vpc: Name,
    pub subnets: SubnetKind,
    pub instance_type: InstanceType,
    pub ami: Ami,
    pub min: u32,
    pub desired: u32,
    pub max: u32,
    pub role: NodeRole,
    pub security_groups: Vec<Name>,
    /// Kubernetes node labels (keys and values validated as Kubernetes does).
    pub labels: BTreeMap<String, String>,
    /// Size of the root volume (gp3, encrypted, deleted with the instance), GiB.
    pub root_volume_gb: u32,
}

/// `node_pools[].root_volume_gb` when the template does not say: etcd, container images and
/// the Postgres volumes share the root volume, which the AMIs' 8 GiB does not hold.
pub const DEFAULT_ROOT_VOLUME_GB: u32 = 30;
/// The bounds of `node_pools[].root_volume_gb` (gp3 allows 1..=16384; below 8 no Ubuntu boots).
pub const ROOT_VOLUME_GB_RANGE: (i64, i64) = (8, 16384);

/// An EC2 instance type such as `t3.medium` (`family.size`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct InstanceType(String);

impl InstanceType {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = s.split_once('.').is_some_and(|(family, size)| {
            !family.is_empty()
                && !size.is_empty()
                && family.starts_with(|c: char| c.is_ascii_lowercase())
                && family
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && size
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "`{s}` is not an instance type (expected `family.size`, e.g. `t3.medium`)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a pool's AMI is chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ami {
    /// Resolved at `up`/`plan` time through an SSM public parameter.
    Ssm(String),
    /// A fixed image id `ami-` + 8 or 17 hex digits.
    Id(String),
}

impl Ami {
    /// Ubuntu 24.04 LTS, amd64, gp3 — the default when `ami` is omitted.
    pub const DEFAULT_SSM_PARAMETER: &'static str =
        "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id";
}

impl Default for Ami {
    fn default() -> Self {
        Ami::Ssm(Self::DEFAULT_SSM_PARAMETER.to_owned())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    K3sServer,
    K3sAgent,
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeRole::K3sServer => "k3s-server",
            NodeRole::K3sAgent => "k3s-agent",
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LoadBalancers {
    pub nlb: Option<Nlb>,
    pub alb: Option<Alb>,
}

/// A network load balancer (TCP). Scheme: `internet-facing` on public
/// subnets, `internal` on private ones. One target group per listener, over
/// the instances of `target_pool` on `target_port`.
/// Invariants: target pools are in the NLB's VPC; listener ports unique.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Nlb {
    pub name: Name,
    pub vpc: Name,
    pub subnets: SubnetKind,
    /// Optional security groups of the NLB itself (same VPC).
    pub security_groups: Vec<Name>,
    pub listeners: Vec<NlbListener>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NlbListener {
    pub port: Port,
    pub target_pool: Name,
    /// Port on the instances; defaults to `port`.
    pub target_port: Port,
}

/// An application load balancer (HTTP). Invariants: its subnets span at
/// least two AZs; every target named by a listener or rule is one of
/// `target_groups`; every target group's pool is in the ALB's VPC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Alb {
    pub name: Name,
    pub vpc: Name,
    pub subnets: SubnetKind,
    pub security_groups: Vec<Name>,
    pub listeners: Vec<AlbListener>,
    pub target_groups: Vec<TargetGroup>,
}

impl Alb {
    pub fn target_group(&self, name: &Name) -> Option<&TargetGroup> {
        self.target_groups.iter().find(|t| &t.name == name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AlbListener {
    pub port: Port,
    /// Target group for requests no rule matches.
    pub default_target: Name,
    /// Path rules in priority order.
    pub rules: Vec<PathRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathRule {
    /// ALB rule priority, `1..`; the rule's 1-based position in the list.
    pub priority: u16,
    /// e.g. `/v1/*` (at most 128 characters, starts with `/`).
    pub path_pattern: String,
    pub target: Name,
}

/// An ALB target group over the instances of a node pool (target type
/// `instance`, protocol HTTP).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    pub name: Name,
    pub pool: Name,
    /// Port on the instances: the proximity-service NodePort (in
    /// `30000..=32767`, the same for every target group of the ALB).
    pub port: Port,
    pub health_check: HttpHealthCheck,
}

/// Target-group health check. Invariants: `path` starts with `/`;
/// `5 <= interval_secs <= 300`; `2 <= timeout_secs <= 120` and
/// `timeout_secs < interval_secs`; thresholds in `2..=10`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpHealthCheck {
    pub path: String,
    pub interval_secs: u16,
    pub timeout_secs: u16,
    pub healthy_threshold: u8,
    pub unhealthy_threshold: u8,
    /// HTTP codes counted as healthy, e.g. `200` or `200-299`.
    pub matcher: String,
}

/// A Route 53 hosted zone and its records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dns {
    /// The zone's domain, lowercase, without the trailing dot.
    pub zone: DomainName,
    /// Private zones are associated with `vpcs` (default: every VPC).
    pub private: bool,
    pub vpcs: Vec<Name>,
    pub records: Vec<Record>,
}

/// A lowercase DNS name without trailing dot (labels 1..=63 chars, total
/// at most 253).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim_end_matches('.').to_ascii_lowercase();
        if lower.is_empty() {
            return Err("must not be empty".into());
        }
        if lower.len() > 253 {
            return Err(format!("`{s}` is longer than 253 characters"));
        }
        for label in lower.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("`{s}` has an empty or over-long (> 63) label"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("label `{label}` of `{s}` starts or ends with `-`"));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '*'))
            {
                return Err(format!("`{s}` contains `{c}`"));
            }
            if label.contains('*') && label != "*" {
                return Err(format!("`{s}`: `*` must be a whole label"));
            }
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if `self` equals `zone` or is below it.
    pub fn is_within(&self, zone: &DomainName) -> bool {
        self.0 == zone.0 || self.0.ends_with(&format!(".{}", zone.0))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record (set). Invariants: records sharing `(name, rtype)` all use the
/// same non-simple routing kind with distinct set ids (at most one simple
/// record per name/type); a CNAME shares its name with nothing else and is
/// not at the apex; values match the type; `ttl` is `Some` exactly for
/// value records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Record {
    /// Fully qualified, inside the zone.
    pub name: DomainName,
    pub rtype: RecordType,
    pub target: RecordTarget,
    pub routing: Routing,
    /// Seconds; `None` for alias records (Route 53 uses the target's TTL).
    pub ttl: Option<u32>,
}

impl Record {
    /// Route 53 `SetIdentifier`, present for every non-simple routing.
    pub fn set_id(&self) -> Option<&str> {
        match &self.routing {
            Routing::Simple => None,
            Routing::Weighted { set_id, .. }
            | Routing::Failover { set_id, .. }
            | Routing::Latency { set_id, .. } => Some(set_id),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
    #[allow(clippy::upper_case_acronyms)]
    CNAME,
}

impl RecordType {
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::AAAA => "AAAA",
            RecordType::CNAME => "CNAME",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordTarget {
    /// Alias to the environment's load balancer (A records only).
    Alias {
        lb: LbKind,
        evaluate_target_health: bool,
    },
    /// Literal values: IPv4 for A, IPv6 for AAAA, one domain name for CNAME.
    Values(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    Simple,
    Weighted {
        /// 0..=255
        weight: u8,
        set_id: String,
    },
    Failover {
        role: FailoverRole,
        set_id: String,
        health_check: Option<DnsHealthCheck>,
    },
    Latency {
        region: Region,
        set_id: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverRole {
    Primary,
    Secondary,
}

impl FailoverRole {
    /// Route 53's spelling: `PRIMARY` / `SECONDARY`.
    pub fn as_route53(&self) -> &'static str {
        match self {
            FailoverRole::Primary => "PRIMARY",
            FailoverRole::Secondary => "SECONDARY",
        }
    }
}

/// A Route 53 health check attached to a failover record.
/// Invariants: `request_interval_secs` is 10 or 30; `failure_threshold` in
/// `1..=10`; `path` only (and always starting with `/`) for HTTP(S).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DnsHealthCheck {
    pub protocol: HealthCheckProtocol,
    pub endpoint: HealthCheckEndpoint,
    pub port: Port,
    pub path: Option<String>,
    pub request_interval_secs: u8,
    pub failure_threshold: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckProtocol {
    Http,
    Https,
    Tcp,
}

impl HealthCheckProtocol {
    /// Route 53's `Type`: `HTTP`, `HTTPS` or `TCP`.
    pub fn as_route53(&self) -> &'static str {
        match self {
            HealthCheckProtocol::Http => "HTTP",
            HealthCheckProtocol::Https => "HTTPS",
            HealthCheckProtocol::Tcp => "TCP",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckEndpoint {
    /// The DNS name of the environment's load balancer (resolved at `up`).
    LoadBalancer(LbKind),
    Fqdn(DomainName),
    Ip(IpAddr),
}

/// Where the k3s API is reachable from (`cluster.api_access`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiAccess {
    /// An internal NLB: `up` (and `kubectl`) must run inside the VPC, a peered VPC or a VPN.
    Internal,
    /// An internet-facing NLB whose security groups admit only `operator_cidrs` (and the
    /// environment's NAT gateways, through which the nodes reach it).
    Public,
}

impl fmt::Display for ApiAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiAccess::Internal => "internal",
            ApiAccess::Public => "public",
        })
    }
}

/// Cluster-wide settings used by the Kubernetes bootstrap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// e.g. `v1.31.4+k3s1`.
    pub k3s_version: String,
    /// Where operators reach the k3s API from (through the NLB).
    pub operator_cidrs: Vec<IpNet>,
    /// Where the k3s API (the NLB) answers: inside the VPC only, or on the internet for
    /// `operator_cidrs`. Defaults to what the NLB's subnets make it.
    pub api_access: ApiAccess,
    /// Container image of proximity-service.
    pub service_image: String,
    /// An SSM SecureString parameter holding the `.dockerconfigjson` for the image's registry
    /// (a private registry): `up` reads it and the pods pull with it.
    pub image_pull_secret: Option<String>,
    /// Where nodes download k3s from instead of GitHub: `<mirror>/<version>/<asset>` with
    /// the release's `sha256sum-<arch>.txt` and `install.sh` beside the binary.
    pub k3s_mirror: Option<String>,
    /// Also install the release's air-gap image tarball (no image pulled from a registry
    /// for k3s's own components).
    pub k3s_airgap_images: bool,
    /// How long a joining server waits for the elected first server's API before it opens a
    /// new election round (the first died before k3s answered).
    pub init_lease_secs: u32,
}
