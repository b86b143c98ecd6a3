//! EC2: VPCs, subnets, gateways, addresses, route tables, security groups, launch templates,
//! peerings, ENIs and instances. Every describe is one call per type per environment with a
//! `tag:provisioner:env` filter, re-checked client side (some emulators ignore tag filters).

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange,
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag,
    TagSpecification, UserIdGroupPair, VolumeType, VpcAttributeName,
};

use super::{tag_map, Cloud, TAG_ENV};
use crate::engine::retry::Consistency::{AfterCreate, Strong};
use crate::engine::{CloudError, ErrorKind};

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// Logical name (`provisioner:name`) of a tag map.
pub fn name_of(tags: &BTreeMap<String, String>) -> &str {
    tags.get(super::TAG_NAME).map_or("", String::as_str)
}

#[derive(Debug, Clone)]
pub struct VpcInfo {
    pub id: String,
    pub cidr: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SubnetInfo {
    pub id: String,
    pub vpc_id: String,
    pub cidr: String,
    pub az: String,
    pub map_public_ip: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct IgwInfo {
    pub id: String,
    pub attached_vpcs: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct EipInfo {
    pub allocation_id: String,
    pub public_ip: String,
    pub association_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct NatInfo {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub state: String,
    pub allocation_ids: Vec<String>,
    /// Its network interfaces (AWS deletes them with it; moto leaves them `available`).
    pub network_interface_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct RouteInfo {
    pub destination: String,
    /// `igw-…`, `nat-…`, `pcx-…` (local routes are left out).
    pub target: String,
}

#[derive(Debug, Clone)]
pub struct RouteTableInfo {
    pub id: String,
    pub vpc_id: String,
    pub routes: Vec<RouteInfo>,
    /// `(association id, subnet id)`; main associations left out.
    pub associations: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
}

/// One ingress permission, flattened to a single source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct RuleInfo {
    /// `tcp`, `udp`, `icmp`, `-1`.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// A CIDR, or a security group id (`sg-…`).
    pub source: String,
    /// Empty for none. Not part of what AWS matches a rule by (see [`RuleInfo::same_rule`]).
    pub description: String,
}

impl RuleInfo {
    /// The same rule to AWS: protocol, ports and source (a description does not count).
    pub fn same_rule(&self, other: &RuleInfo) -> bool {
        (&self.protocol, self.from_port, self.to_port, &self.source)
            == (
                &other.protocol,
                other.from_port,
                other.to_port,
                &other.source,
            )
    }
}

#[derive(Debug, Clone)]
pub struct SgInfo {
    pub id: String,
    pub group_name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: Vec<RuleInfo>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct LaunchTemplateInfo {
    pub id: String,
    pub name: String,
    pub latest_version: i64,
    pub tags: BTreeMap<String, String>,
}

/// The parts of a launch template version we manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchTemplateData {
    pub image_id: String,
    pub instance_type: String,
    /// Base64, as EC2 stores it.
    pub user_data: String,
    pub security_group_ids: Vec<String>,
    pub http_tokens_required: bool,
    pub hop_limit: i32,
    pub instance_profile: Option<String>,
    /// Tags put on instances launched from it.
    pub instance_tags: Vec<(String, String)>,
    /// The root volume's block device mapping (the only mapping we set).
    pub root_volume: Option<RootVolume>,
    /// The version's description: where its AMI came from (`ami: ssm:<parameter>` or
    /// `ami: <id>`), read back to keep a pool pinned to the AMI it runs.
    pub version_description: String,
}

/// An EBS block device mapping of a launch template: the instance's root volume when its
/// device is the AMI's `RootDeviceName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootVolume {
    pub device_name: String,
    pub size_gb: i32,
    pub volume_type: String,
    pub encrypted: bool,
    pub delete_on_termination: bool,
}

#[derive(Debug, Clone)]
pub struct PeeringInfo {
    pub id: String,
    pub requester_vpc: String,
    pub accepter_vpc: String,
    pub status: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct EniInfo {
    pub id: String,
    pub subnet_id: String,
    pub status: String,
    pub attachment_id: Option<String>,
    pub description: String,
    pub group_ids: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct InstanceInfo {
    pub id: String,
    pub state: String,
    pub subnet_id: String,
    pub private_ip: String,
    pub tags: BTreeMap<String, String>,
}

fn tag_spec(cloud: &Cloud, rt: ResourceType, name: &str) -> TagSpecification {
    let mut b = TagSpecification::builder().resource_type(rt);
    for (k, v) in cloud.tags_for(name) {
        b = b.tags(Tag::builder().key(k).value(v).build());
    }
    b.build()
}

fn missing(op: &str, what: &str) -> CloudError {
    CloudError::new(ErrorKind::Other, op, "", format!("response had no {what}"))
}

/// One rule as AWS takes it. A revoke names the rule as it was read, description included
/// (AWS ignores it there; moto matches on it).
fn to_permission(r: &RuleInfo) -> IpPermission {
    let description = Some(r.description.clone()).filter(|d| !d.is_empty());
    let mut b = IpPermission::builder()
        .ip_protocol(&r.protocol)
        .from_port(r.from_port)
        .to_port(r.to_port);
    if r.source.starts_with("sg-") {
        b = b.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(&r.source)
                .set_description(description)
                .build(),
        );
    } else if r.source.contains(':') {
        b = b.ipv6_ranges(
            aws_sdk_ec2::types::Ipv6Range::builder()
                .cidr_ipv6(&r.source)
                .set_description(description)
                .build(),
        );
    } else {
        b = b.ip_ranges(
            IpRange::builder()
                .cidr_ip(&r.source)
                .set_description(description)
                .build(),
        );
    }
    b.build()
}

/// One of a VPC's two DNS attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpcDnsAttribute {
    Support,
    Hostnames,
}

/// VPCs of this environment.
pub trait Vpcs: Send + Sync {
    fn vpcs(&self) -> impl Future<Output = Result<Vec<VpcInfo>, CloudError>> + Send;
    fn create_vpc(
        &self,
        name: &str,
        cidr: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn delete_vpc(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// `(enableDnsSupport, enableDnsHostnames)` of one VPC.
    fn vpc_dns(&self, id: &str) -> impl Future<Output = Result<(bool, bool), CloudError>> + Send;
    /// One DNS attribute (AWS changes one per call; hostnames need support on).
    fn set_vpc_dns_attribute(
        &self,
        id: &str,
        attribute: VpcDnsAttribute,
        on: bool,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Subnets and their public-IP-on-launch attribute.
pub trait Subnets: Send + Sync {
    fn subnets(&self) -> impl Future<Output = Result<Vec<SubnetInfo>, CloudError>> + Send;
    /// The availability zones this account can use in the region, by name: available,
    /// of type `availability-zone` (not Local or Wavelength zones), not an opt-in zone the
    /// account has not opted into.
    fn availability_zones(&self) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
    fn create_subnet(
        &self,
        name: &str,
        vpc_id: &str,
        cidr: &str,
        az: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn set_subnet_public_ip(
        &self,
        id: &str,
        on: bool,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_subnet(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Internet gateways and their VPC attachments.
pub trait InternetGateways: Send + Sync {
    fn internet_gateways(&self) -> impl Future<Output = Result<Vec<IgwInfo>, CloudError>> + Send;
    fn create_internet_gateway(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn attach_internet_gateway(
        &self,
        igw: &str,
        vpc: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn detach_internet_gateway(
        &self,
        igw: &str,
        vpc: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_internet_gateway(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Elastic IP addresses (for NAT gateways).
pub trait ElasticIps: Send + Sync {
    fn elastic_ips(&self) -> impl Future<Output = Result<Vec<EipInfo>, CloudError>> + Send;
    /// Allocates a VPC address: (allocation id, public IP).
    fn allocate_eip(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(String, String), CloudError>> + Send;
    fn release_eip(
        &self,
        allocation_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// NAT gateways, with the waiter for `available`.
pub trait NatGateways: Send + Sync {
    fn nat_gateways(&self) -> impl Future<Output = Result<Vec<NatInfo>, CloudError>> + Send;
    fn create_nat_gateway(
        &self,
        name: &str,
        subnet: &str,
        allocation_id: &str,
    ) -> impl Future<Output = Result<(String, String), CloudError>> + Send;
    /// State of one NAT gateway (`pending`, `available`, `deleting`, `deleted`, `failed`).
    fn nat_gateway_state(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    /// Waiter: NAT gateway `available` (fails early on `failed`).
    fn wait_nat_available(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_nat_gateway(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Route tables, their routes and subnet associations.
pub trait RouteTables: Send + Sync {
    fn route_tables(&self) -> impl Future<Output = Result<Vec<RouteTableInfo>, CloudError>> + Send;
    fn create_route_table(
        &self,
        name: &str,
        vpc: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn create_route(
        &self,
        rtb: &str,
        route: &RouteInfo,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_route(
        &self,
        rtb: &str,
        destination: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn associate_route_table(
        &self,
        rtb: &str,
        subnet: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn disassociate_route_table(
        &self,
        association: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_route_table(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Security groups and their ingress rules.
pub trait SecurityGroups: Send + Sync {
    fn security_groups(&self) -> impl Future<Output = Result<Vec<SgInfo>, CloudError>> + Send;
    fn create_security_group(
        &self,
        name: &str,
        group_name: &str,
        description: &str,
        vpc: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn authorize_ingress(
        &self,
        sg: &str,
        rules: &[RuleInfo],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn revoke_ingress(
        &self,
        sg: &str,
        rules: &[RuleInfo],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_security_group(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Launch templates (IMDSv2 required, user-data, tags for instances).
pub trait LaunchTemplates: Send + Sync {
    fn launch_templates(
        &self,
    ) -> impl Future<Output = Result<Vec<LaunchTemplateInfo>, CloudError>> + Send;
    fn launch_template_data(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<LaunchTemplateData>, CloudError>> + Send;
    fn create_launch_template(
        &self,
        name: &str,
        template_name: &str,
        data: &LaunchTemplateData,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    /// A new version, made the default.
    fn update_launch_template(
        &self,
        id: &str,
        data: &LaunchTemplateData,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_launch_template(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// The AMI's `RootDeviceName` (DescribeImages); `None` when the image is not visible.
    fn image_root_device(
        &self,
        image_id: &str,
    ) -> impl Future<Output = Result<Option<String>, CloudError>> + Send;
}

/// VPC peering connections.
pub trait Peerings: Send + Sync {
    fn peerings(&self) -> impl Future<Output = Result<Vec<PeeringInfo>, CloudError>> + Send;
    fn create_peering(
        &self,
        name: &str,
        requester: &str,
        accepter: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn accept_peering(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_peering(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// What teardown and `status` look at beyond the tasks: network interfaces, instances, and every tagged EC2 id.
pub trait Leftovers: Send + Sync {
    /// Network interfaces in the given subnets (untagged children of owned subnets).
    fn enis_in_subnets(
        &self,
        subnets: &[String],
    ) -> impl Future<Output = Result<Vec<EniInfo>, CloudError>> + Send;
    fn delete_eni(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Instances tagged for this environment (launched by its Auto Scaling groups).
    fn instances(&self) -> impl Future<Output = Result<Vec<InstanceInfo>, CloudError>> + Send;
    fn terminate_instances(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Every resource id in this env by `describe-tags` (used to count leftovers).
    fn tagged_resource_ids(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String)>, CloudError>> + Send;
}

impl Vpcs for Cloud {
    async fn vpcs(&self) -> Result<Vec<VpcInfo>, CloudError> {
        self.inventory
            .cached("ec2:vpcs", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeVpcs",
                        |token| {
                            self.ec2
                                .describe_vpcs()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.vpcs())
                    .map(|v| VpcInfo {
                        id: v.vpc_id().unwrap_or_default().into(),
                        cidr: v.cidr_block().unwrap_or_default().into(),
                        tags: tags_of(v.tags()),
                    })
                    .filter(|v| self.mine(&v.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_vpc(&self, name: &str, cidr: &str) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateVpc", Strong, || {
                self.ec2
                    .create_vpc()
                    .cidr_block(cidr)
                    .tag_specifications(tag_spec(self, ResourceType::Vpc, name))
                    .send()
            })
            .await?;
        let id = out
            .vpc()
            .and_then(|v| v.vpc_id())
            .ok_or_else(|| missing("ec2:CreateVpc", "VpcId"))?
            .to_string();
        Ok(id)
    }

    async fn vpc_dns(&self, id: &str) -> Result<(bool, bool), CloudError> {
        self.inventory
            .cached(&format!("ec2:vpc-dns:{id}"), || self.read_vpc_dns(id))
            .await
    }

    async fn set_vpc_dns_attribute(
        &self,
        id: &str,
        attribute: VpcDnsAttribute,
        on: bool,
    ) -> Result<(), CloudError> {
        self.call("ec2:ModifyVpcAttribute", AfterCreate, || {
            let value = AttributeBooleanValue::builder().value(on).build();
            let b = self.ec2.modify_vpc_attribute().vpc_id(id);
            match attribute {
                VpcDnsAttribute::Support => b.enable_dns_support(value).send(),
                VpcDnsAttribute::Hostnames => b.enable_dns_hostnames(value).send(),
            }
        })
        .await
        .map(|_| ())
    }

    async fn delete_vpc(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteVpc", Strong, || {
            self.ec2.delete_vpc().vpc_id(id).send()
        })
        .await
        .map(|_| ())
    }
}

impl Subnets for Cloud {
    async fn availability_zones(&self) -> Result<Vec<String>, CloudError> {
        let out = self
            .call("ec2:DescribeAvailabilityZones", Strong, || {
                self.ec2.describe_availability_zones().send()
            })
            .await?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
            .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
            .filter(|z| {
                z.opt_in_status()
                    .is_none_or(|o| o.as_str() != "not-opted-in")
            })
            .filter_map(|z| z.zone_name().map(String::from))
            .collect();
        zones.sort();
        Ok(zones)
    }

    async fn subnets(&self) -> Result<Vec<SubnetInfo>, CloudError> {
        self.inventory
            .cached("ec2:subnets", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeSubnets",
                        |token| {
                            self.ec2
                                .describe_subnets()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.subnets())
                    .map(|s| SubnetInfo {
                        id: s.subnet_id().unwrap_or_default().into(),
                        vpc_id: s.vpc_id().unwrap_or_default().into(),
                        cidr: s.cidr_block().unwrap_or_default().into(),
                        az: s.availability_zone().unwrap_or_default().into(),
                        map_public_ip: s.map_public_ip_on_launch().unwrap_or(false),
                        tags: tags_of(s.tags()),
                    })
                    .filter(|s| self.mine(&s.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_subnet(
        &self,
        name: &str,
        vpc_id: &str,
        cidr: &str,
        az: &str,
    ) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateSubnet", AfterCreate, || {
                self.ec2
                    .create_subnet()
                    .vpc_id(vpc_id)
                    .cidr_block(cidr)
                    .availability_zone(az)
                    .tag_specifications(tag_spec(self, ResourceType::Subnet, name))
                    .send()
            })
            .await?;
        Ok(out
            .subnet()
            .and_then(|s| s.subnet_id())
            .ok_or_else(|| missing("ec2:CreateSubnet", "SubnetId"))?
            .to_string())
    }

    async fn set_subnet_public_ip(&self, id: &str, on: bool) -> Result<(), CloudError> {
        self.call("ec2:ModifySubnetAttribute", AfterCreate, || {
            self.ec2
                .modify_subnet_attribute()
                .subnet_id(id)
                .map_public_ip_on_launch(AttributeBooleanValue::builder().value(on).build())
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_subnet(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteSubnet", Strong, || {
            self.ec2.delete_subnet().subnet_id(id).send()
        })
        .await
        .map(|_| ())
    }
}

impl InternetGateways for Cloud {
    async fn internet_gateways(&self) -> Result<Vec<IgwInfo>, CloudError> {
        self.inventory
            .cached("ec2:igws", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeInternetGateways",
                        |token| {
                            self.ec2
                                .describe_internet_gateways()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.internet_gateways())
                    .map(|g| IgwInfo {
                        id: g.internet_gateway_id().unwrap_or_default().into(),
                        // One on its way out is no longer attached (and cannot be detached
                        // again).
                        attached_vpcs: g
                            .attachments()
                            .iter()
                            .filter(|a| {
                                !matches!(
                                    a.state().map(|st| st.as_str()),
                                    Some("detaching" | "detached")
                                )
                            })
                            .filter_map(|a| a.vpc_id().map(String::from))
                            .collect(),
                        tags: tags_of(g.tags()),
                    })
                    .filter(|g| self.mine(&g.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_internet_gateway(&self, name: &str) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateInternetGateway", Strong, || {
                self.ec2
                    .create_internet_gateway()
                    .tag_specifications(tag_spec(self, ResourceType::InternetGateway, name))
                    .send()
            })
            .await?;
        Ok(out
            .internet_gateway()
            .and_then(|g| g.internet_gateway_id())
            .ok_or_else(|| missing("ec2:CreateInternetGateway", "InternetGatewayId"))?
            .to_string())
    }

    async fn attach_internet_gateway(&self, igw: &str, vpc: &str) -> Result<(), CloudError> {
        self.call("ec2:AttachInternetGateway", AfterCreate, || {
            self.ec2
                .attach_internet_gateway()
                .internet_gateway_id(igw)
                .vpc_id(vpc)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn detach_internet_gateway(&self, igw: &str, vpc: &str) -> Result<(), CloudError> {
        self.call("ec2:DetachInternetGateway", Strong, || {
            self.ec2
                .detach_internet_gateway()
                .internet_gateway_id(igw)
                .vpc_id(vpc)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_internet_gateway(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteInternetGateway", Strong, || {
            self.ec2
                .delete_internet_gateway()
                .internet_gateway_id(id)
                .send()
        })
        .await
        .map(|_| ())
    }
}

impl ElasticIps for Cloud {
    async fn elastic_ips(&self) -> Result<Vec<EipInfo>, CloudError> {
        self.inventory
            .cached("ec2:eips", || async {
                let out = self
                    .call("ec2:DescribeAddresses", Strong, || {
                        self.ec2
                            .describe_addresses()
                            .filters(self.env_filter())
                            .send()
                    })
                    .await?;
                Ok(out
                    .addresses()
                    .iter()
                    .map(|a| EipInfo {
                        allocation_id: a.allocation_id().unwrap_or_default().into(),
                        public_ip: a.public_ip().unwrap_or_default().into(),
                        association_id: a.association_id().map(String::from),
                        tags: tags_of(a.tags()),
                    })
                    .filter(|a| self.mine(&a.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn allocate_eip(&self, name: &str) -> Result<(String, String), CloudError> {
        let out = self
            .call("ec2:AllocateAddress", Strong, || {
                self.ec2
                    .allocate_address()
                    .domain(DomainType::Vpc)
                    .tag_specifications(tag_spec(self, ResourceType::ElasticIp, name))
                    .send()
            })
            .await?;
        let id = out
            .allocation_id()
            .ok_or_else(|| missing("ec2:AllocateAddress", "AllocationId"))?;
        let ip = out
            .public_ip()
            .ok_or_else(|| missing("ec2:AllocateAddress", "PublicIp"))?;
        Ok((id.to_string(), ip.to_string()))
    }

    async fn release_eip(&self, allocation_id: &str) -> Result<(), CloudError> {
        self.call("ec2:ReleaseAddress", Strong, || {
            self.ec2
                .release_address()
                .allocation_id(allocation_id)
                .send()
        })
        .await
        .map(|_| ())
    }
}

impl NatGateways for Cloud {
    async fn nat_gateways(&self) -> Result<Vec<NatInfo>, CloudError> {
        self.inventory
            .cached("ec2:nats", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeNatGateways",
                        |token| {
                            self.ec2
                                .describe_nat_gateways()
                                .filter(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.nat_gateways())
                    .map(nat_info)
                    .filter(|n| self.mine(&n.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_nat_gateway(
        &self,
        name: &str,
        subnet: &str,
        allocation_id: &str,
    ) -> Result<(String, String), CloudError> {
        let out = self
            .call("ec2:CreateNatGateway", AfterCreate, || {
                self.ec2
                    .create_nat_gateway()
                    .subnet_id(subnet)
                    .allocation_id(allocation_id)
                    .tag_specifications(tag_spec(self, ResourceType::Natgateway, name))
                    .send()
            })
            .await?;
        let n = out
            .nat_gateway()
            .ok_or_else(|| missing("ec2:CreateNatGateway", "NatGateway"))?;
        let id = n
            .nat_gateway_id()
            .ok_or_else(|| missing("ec2:CreateNatGateway", "NatGatewayId"))?
            .to_string();
        // The id and the state the create answered with (`pending` on AWS).
        Ok((id, nat_info(n).state))
    }

    async fn nat_gateway_state(&self, id: &str) -> Result<String, CloudError> {
        let out = self
            .call("ec2:DescribeNatGateways", AfterCreate, || {
                self.ec2.describe_nat_gateways().nat_gateway_ids(id).send()
            })
            .await?;
        Ok(out
            .nat_gateways()
            .first()
            .map(|n| nat_info(n).state)
            .unwrap_or_else(|| "deleted".into()))
    }

    async fn wait_nat_available(&self, id: &str) -> Result<(), CloudError> {
        self.wait_for(&format!("NAT gateway {id} available"), || async {
            match self.nat_gateway_state(id).await?.as_str() {
                "available" => Ok(Some(())),
                "failed" | "deleted" | "deleting" => Err(CloudError::new(
                    ErrorKind::Other,
                    "ec2:DescribeNatGateways",
                    "NatGatewayFailed",
                    format!("NAT gateway {id} failed"),
                )),
                _ => Ok(None),
            }
        })
        .await
    }

    async fn delete_nat_gateway(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteNatGateway", Strong, || {
            self.ec2.delete_nat_gateway().nat_gateway_id(id).send()
        })
        .await?;
        // Its EIP and subnet stay in use until it is really gone.
        self.wait_for(&format!("NAT gateway {id} deleted"), || async {
            Ok(matches!(self.nat_gateway_state(id).await?.as_str(), "deleted").then_some(()))
        })
        .await
    }
}

impl RouteTables for Cloud {
    async fn route_tables(&self) -> Result<Vec<RouteTableInfo>, CloudError> {
        self.inventory
            .cached("ec2:rtbs", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeRouteTables",
                        |token| {
                            self.ec2
                                .describe_route_tables()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.route_tables())
                    .map(|t| RouteTableInfo {
                        id: t.route_table_id().unwrap_or_default().into(),
                        vpc_id: t.vpc_id().unwrap_or_default().into(),
                        routes: t
                            .routes()
                            .iter()
                            .filter_map(|r| {
                                let dest = r.destination_cidr_block()?;
                                let target = r
                                    .nat_gateway_id()
                                    .or(r.vpc_peering_connection_id())
                                    .or(r.gateway_id())?;
                                (target != "local").then(|| RouteInfo {
                                    destination: dest.into(),
                                    target: target.into(),
                                })
                            })
                            .collect(),
                        associations: t
                            .associations()
                            .iter()
                            .filter(|a| !a.main().unwrap_or(false))
                            .filter_map(|a| {
                                Some((
                                    a.route_table_association_id()?.to_string(),
                                    a.subnet_id()?.to_string(),
                                ))
                            })
                            .collect(),
                        tags: tags_of(t.tags()),
                    })
                    .filter(|t| self.mine(&t.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_route_table(&self, name: &str, vpc: &str) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateRouteTable", AfterCreate, || {
                self.ec2
                    .create_route_table()
                    .vpc_id(vpc)
                    .tag_specifications(tag_spec(self, ResourceType::RouteTable, name))
                    .send()
            })
            .await?;
        Ok(out
            .route_table()
            .and_then(|t| t.route_table_id())
            .ok_or_else(|| missing("ec2:CreateRouteTable", "RouteTableId"))?
            .to_string())
    }

    async fn create_route(&self, rtb: &str, route: &RouteInfo) -> Result<(), CloudError> {
        self.call("ec2:CreateRoute", AfterCreate, || {
            let b = self
                .ec2
                .create_route()
                .route_table_id(rtb)
                .destination_cidr_block(&route.destination);
            let b = if route.target.starts_with("nat-") {
                b.nat_gateway_id(&route.target)
            } else if route.target.starts_with("pcx-") {
                b.vpc_peering_connection_id(&route.target)
            } else {
                b.gateway_id(&route.target)
            };
            b.send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_route(&self, rtb: &str, destination: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteRoute", Strong, || {
            self.ec2
                .delete_route()
                .route_table_id(rtb)
                .destination_cidr_block(destination)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn associate_route_table(&self, rtb: &str, subnet: &str) -> Result<(), CloudError> {
        self.call("ec2:AssociateRouteTable", AfterCreate, || {
            self.ec2
                .associate_route_table()
                .route_table_id(rtb)
                .subnet_id(subnet)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn disassociate_route_table(&self, association: &str) -> Result<(), CloudError> {
        self.call("ec2:DisassociateRouteTable", Strong, || {
            self.ec2
                .disassociate_route_table()
                .association_id(association)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_route_table(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteRouteTable", Strong, || {
            self.ec2.delete_route_table().route_table_id(id).send()
        })
        .await
        .map(|_| ())
    }
}

impl SecurityGroups for Cloud {
    async fn security_groups(&self) -> Result<Vec<SgInfo>, CloudError> {
        self.inventory
            .cached("ec2:sgs", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeSecurityGroups",
                        |token| {
                            self.ec2
                                .describe_security_groups()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.security_groups())
                    .map(|g| {
                        let mut ingress = Vec::new();
                        for p in g.ip_permissions() {
                            let proto = p.ip_protocol().unwrap_or("-1").to_string();
                            let (from, to) = if proto == "-1" {
                                (-1, -1)
                            } else {
                                (p.from_port().unwrap_or(-1), p.to_port().unwrap_or(-1))
                            };
                            let mut push = |source: &str, description: Option<&str>| {
                                ingress.push(RuleInfo {
                                    protocol: proto.clone(),
                                    from_port: from,
                                    to_port: to,
                                    source: source.into(),
                                    description: description.unwrap_or_default().into(),
                                })
                            };
                            for r in p.ip_ranges() {
                                push(r.cidr_ip().unwrap_or_default(), r.description());
                            }
                            for r in p.ipv6_ranges() {
                                push(r.cidr_ipv6().unwrap_or_default(), r.description());
                            }
                            for r in p.user_id_group_pairs() {
                                push(r.group_id().unwrap_or_default(), r.description());
                            }
                        }
                        ingress.sort();
                        ingress.dedup();
                        SgInfo {
                            id: g.group_id().unwrap_or_default().into(),
                            group_name: g.group_name().unwrap_or_default().into(),
                            description: g.description().unwrap_or_default().into(),
                            vpc_id: g.vpc_id().unwrap_or_default().into(),
                            ingress,
                            tags: tags_of(g.tags()),
                        }
                    })
                    .filter(|g| self.mine(&g.tags))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_security_group(
        &self,
        name: &str,
        group_name: &str,
        description: &str,
        vpc: &str,
    ) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateSecurityGroup", AfterCreate, || {
                self.ec2
                    .create_security_group()
                    .group_name(group_name)
                    .description(description)
                    .vpc_id(vpc)
                    .tag_specifications(tag_spec(self, ResourceType::SecurityGroup, name))
                    .send()
            })
            .await?;
        Ok(out
            .group_id()
            .ok_or_else(|| missing("ec2:CreateSecurityGroup", "GroupId"))?
            .to_string())
    }

    async fn authorize_ingress(&self, sg: &str, rules: &[RuleInfo]) -> Result<(), CloudError> {
        if rules.is_empty() {
            return Ok(());
        }
        let r = self
            .call("ec2:AuthorizeSecurityGroupIngress", AfterCreate, || {
                self.ec2
                    .authorize_security_group_ingress()
                    .group_id(sg)
                    .set_ip_permissions(Some(rules.iter().map(to_permission).collect()))
                    .send()
            })
            .await;
        match r {
            Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(()),
            r => r.map(|_| ()),
        }
    }

    async fn revoke_ingress(&self, sg: &str, rules: &[RuleInfo]) -> Result<(), CloudError> {
        if rules.is_empty() {
            return Ok(());
        }
        self.call("ec2:RevokeSecurityGroupIngress", Strong, || {
            self.ec2
                .revoke_security_group_ingress()
                .group_id(sg)
                .set_ip_permissions(Some(rules.iter().map(to_permission).collect()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_security_group(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteSecurityGroup", Strong, || {
            self.ec2.delete_security_group().group_id(id).send()
        })
        .await
        .map(|_| ())
    }
}

impl LaunchTemplates for Cloud {
    async fn launch_templates(&self) -> Result<Vec<LaunchTemplateInfo>, CloudError> {
        self.inventory
            .cached("ec2:lts", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeLaunchTemplates",
                        |token| {
                            self.ec2
                                .describe_launch_templates()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                let mut list: Vec<LaunchTemplateInfo> = out
                    .iter()
                    .flat_map(|o| o.launch_templates())
                    .map(|t| LaunchTemplateInfo {
                        id: t.launch_template_id().unwrap_or_default().into(),
                        name: t.launch_template_name().unwrap_or_default().into(),
                        latest_version: t.latest_version_number().unwrap_or(1),
                        tags: tags_of(t.tags()),
                    })
                    .filter(|t| self.mine(&t.tags))
                    .collect();
                // Their current tags from DescribeTags: a template's own listing may show the
                // tags it was created with (moto does), not those changed since.
                if !list.is_empty() {
                    let ids: Vec<String> = list.iter().map(|t| t.id.clone()).collect();
                    let pages = match self
                        .all_pages(
                            "ec2:DescribeTags",
                            |token| {
                                self.ec2
                                    .describe_tags()
                                    .filters(
                                        Filter::builder()
                                            .name("resource-id")
                                            .set_values(Some(ids.clone()))
                                            .build(),
                                    )
                                    .set_next_token(token)
                                    .send()
                            },
                            |o| o.next_token(),
                        )
                        .await
                    {
                        Ok(pages) => pages,
                        // A template just created may not be in DescribeTags yet (eventual
                        // consistency): its listing's tags, from its creation, stand.
                        Err(e) if e.kind == crate::engine::ErrorKind::NotFound => Vec::new(),
                        Err(e) => return Err(e),
                    };
                    let mut current: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
                    for d in pages.iter().flat_map(|o| o.tags()) {
                        if let (Some(id), Some(k)) = (d.resource_id(), d.key()) {
                            current
                                .entry(id.to_string())
                                .or_default()
                                .insert(k.to_string(), d.value().unwrap_or_default().to_string());
                        }
                    }
                    for t in &mut list {
                        if let Some(tags) = current.remove(&t.id) {
                            t.tags = tags;
                        }
                    }
                }
                Ok(list)
            })
            .await
    }

    async fn launch_template_data(
        &self,
        id: &str,
    ) -> Result<Option<LaunchTemplateData>, CloudError> {
        // The template was just listed by DescribeLaunchTemplates: a NotFound for its versions
        // is the read lagging a create (real AWS is eventually consistent), not absence.
        let out = self
            .call("ec2:DescribeLaunchTemplateVersions", AfterCreate, || {
                self.ec2
                    .describe_launch_template_versions()
                    .launch_template_id(id)
                    .versions("$Latest")
                    .send()
            })
            .await?;
        let Some(version) = out.launch_template_versions().first() else {
            return Ok(None);
        };
        let Some(d) = version.launch_template_data() else {
            return Ok(None);
        };
        let md = d.metadata_options();
        let mut instance_tags: Vec<(String, String)> = d
            .tag_specifications()
            .iter()
            .flat_map(|s| s.tags())
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        instance_tags.sort();
        instance_tags.dedup();
        Ok(Some(LaunchTemplateData {
            image_id: d.image_id().unwrap_or_default().into(),
            instance_type: d
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            user_data: d.user_data().unwrap_or_default().into(),
            security_group_ids: {
                let mut v: Vec<String> = d.security_group_ids().to_vec();
                v.sort();
                v
            },
            http_tokens_required: md
                .and_then(|m| m.http_tokens())
                .is_some_and(|t| *t == LaunchTemplateHttpTokensState::Required),
            hop_limit: md
                .and_then(|m| m.http_put_response_hop_limit())
                .unwrap_or(1),
            instance_profile: d
                .iam_instance_profile()
                .and_then(|p| p.name().or(p.arn()))
                .map(String::from),
            instance_tags,
            root_volume: d.block_device_mappings().iter().find_map(|m| {
                let ebs = m.ebs()?;
                Some(RootVolume {
                    device_name: m.device_name().unwrap_or_default().into(),
                    size_gb: ebs.volume_size().unwrap_or_default(),
                    volume_type: ebs
                        .volume_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    encrypted: ebs.encrypted().unwrap_or_default(),
                    delete_on_termination: ebs.delete_on_termination().unwrap_or_default(),
                })
            }),
            version_description: version.version_description().unwrap_or_default().into(),
        }))
    }

    async fn image_root_device(&self, image_id: &str) -> Result<Option<String>, CloudError> {
        let out = self
            .call("ec2:DescribeImages", Strong, || {
                self.ec2.describe_images().image_ids(image_id).send()
            })
            .await?;
        Ok(out
            .images()
            .iter()
            .find(|i| i.image_id() == Some(image_id))
            .and_then(|i| i.root_device_name())
            .map(String::from))
    }

    async fn create_launch_template(
        &self,
        name: &str,
        template_name: &str,
        data: &LaunchTemplateData,
    ) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateLaunchTemplate", AfterCreate, || {
                self.ec2
                    .create_launch_template()
                    .launch_template_name(template_name)
                    .version_description(&data.version_description)
                    .launch_template_data(Self::lt_request(data))
                    .tag_specifications(tag_spec(self, ResourceType::LaunchTemplate, name))
                    .send()
            })
            .await?;
        Ok(out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .ok_or_else(|| missing("ec2:CreateLaunchTemplate", "LaunchTemplateId"))?
            .to_string())
    }

    async fn update_launch_template(
        &self,
        id: &str,
        data: &LaunchTemplateData,
    ) -> Result<(), CloudError> {
        let out = self
            .call("ec2:CreateLaunchTemplateVersion", Strong, || {
                self.ec2
                    .create_launch_template_version()
                    .launch_template_id(id)
                    .version_description(&data.version_description)
                    .launch_template_data(Self::lt_request(data))
                    .send()
            })
            .await?;
        let v = out
            .launch_template_version()
            .and_then(|v| v.version_number())
            .unwrap_or(1);
        self.call("ec2:ModifyLaunchTemplate", Strong, || {
            self.ec2
                .modify_launch_template()
                .launch_template_id(id)
                .default_version(v.to_string())
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_launch_template(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteLaunchTemplate", Strong, || {
            self.ec2
                .delete_launch_template()
                .launch_template_id(id)
                .send()
        })
        .await
        .map(|_| ())
    }
}

impl Peerings for Cloud {
    async fn peerings(&self) -> Result<Vec<PeeringInfo>, CloudError> {
        self.inventory
            .cached("ec2:pcx", || async {
                let out = self
                    .all_pages(
                        "ec2:DescribeVpcPeeringConnections",
                        |token| {
                            self.ec2
                                .describe_vpc_peering_connections()
                                .filters(self.env_filter())
                                .set_next_token(token)
                                .send()
                        },
                        |o| o.next_token(),
                    )
                    .await?;
                Ok(out
                    .iter()
                    .flat_map(|o| o.vpc_peering_connections())
                    .map(|p| PeeringInfo {
                        id: p.vpc_peering_connection_id().unwrap_or_default().into(),
                        requester_vpc: p
                            .requester_vpc_info()
                            .and_then(|v| v.vpc_id())
                            .unwrap_or_default()
                            .into(),
                        accepter_vpc: p
                            .accepter_vpc_info()
                            .and_then(|v| v.vpc_id())
                            .unwrap_or_default()
                            .into(),
                        status: p
                            .status()
                            .and_then(|s| s.code())
                            .map(|c| c.as_str().to_string())
                            .unwrap_or_default(),
                        tags: tags_of(p.tags()),
                    })
                    .filter(|p| self.mine(&p.tags))
                    .filter(|p| !matches!(p.status.as_str(), "deleted" | "rejected" | "failed"))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_peering(
        &self,
        name: &str,
        requester: &str,
        accepter: &str,
    ) -> Result<String, CloudError> {
        let out = self
            .call("ec2:CreateVpcPeeringConnection", AfterCreate, || {
                self.ec2
                    .create_vpc_peering_connection()
                    .vpc_id(requester)
                    .peer_vpc_id(accepter)
                    .tag_specifications(tag_spec(self, ResourceType::VpcPeeringConnection, name))
                    .send()
            })
            .await?;
        Ok(out
            .vpc_peering_connection()
            .and_then(|p| p.vpc_peering_connection_id())
            .ok_or_else(|| missing("ec2:CreateVpcPeeringConnection", "VpcPeeringConnectionId"))?
            .to_string())
    }

    async fn accept_peering(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:AcceptVpcPeeringConnection", AfterCreate, || {
            self.ec2
                .accept_vpc_peering_connection()
                .vpc_peering_connection_id(id)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_peering(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteVpcPeeringConnection", Strong, || {
            self.ec2
                .delete_vpc_peering_connection()
                .vpc_peering_connection_id(id)
                .send()
        })
        .await
        .map(|_| ())
    }
}

impl Leftovers for Cloud {
    async fn enis_in_subnets(&self, subnets: &[String]) -> Result<Vec<EniInfo>, CloudError> {
        if subnets.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .all_pages(
                "ec2:DescribeNetworkInterfaces",
                |token| {
                    self.ec2
                        .describe_network_interfaces()
                        .filters(
                            Filter::builder()
                                .name("subnet-id")
                                .set_values(Some(subnets.to_vec()))
                                .build(),
                        )
                        .set_next_token(token)
                        .send()
                },
                |o| o.next_token(),
            )
            .await?;
        Ok(out
            .iter()
            .flat_map(|o| o.network_interfaces())
            .map(|n| EniInfo {
                id: n.network_interface_id().unwrap_or_default().into(),
                subnet_id: n.subnet_id().unwrap_or_default().into(),
                status: n
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                attachment_id: n
                    .attachment()
                    .and_then(|a| a.attachment_id())
                    .map(String::from),
                description: n.description().unwrap_or_default().into(),
                group_ids: n
                    .groups()
                    .iter()
                    .filter_map(|g| g.group_id().map(String::from))
                    .collect(),
                tags: tags_of(n.tag_set()),
            })
            .collect())
    }

    async fn delete_eni(&self, id: &str) -> Result<(), CloudError> {
        self.call("ec2:DeleteNetworkInterface", Strong, || {
            self.ec2
                .delete_network_interface()
                .network_interface_id(id)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn instances(&self) -> Result<Vec<InstanceInfo>, CloudError> {
        let out = self
            .all_pages(
                "ec2:DescribeInstances",
                |token| {
                    self.ec2
                        .describe_instances()
                        .filters(self.env_filter())
                        .set_next_token(token)
                        .send()
                },
                |o| o.next_token(),
            )
            .await?;
        Ok(out
            .iter()
            .flat_map(|o| o.reservations())
            .flat_map(|r| r.instances())
            .map(|i| InstanceInfo {
                id: i.instance_id().unwrap_or_default().into(),
                state: i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
                subnet_id: i.subnet_id().unwrap_or_default().into(),
                private_ip: i.private_ip_address().unwrap_or_default().into(),
                tags: tags_of(i.tags()),
            })
            .filter(|i| self.mine(&i.tags))
            .collect())
    }

    async fn terminate_instances(&self, ids: &[String]) -> Result<(), CloudError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.call("ec2:TerminateInstances", Strong, || {
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(ids.to_vec()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn tagged_resource_ids(&self) -> Result<Vec<(String, String)>, CloudError> {
        let out = self
            .all_pages(
                "ec2:DescribeTags",
                |token| {
                    self.ec2
                        .describe_tags()
                        .filters(Filter::builder().name("key").values(TAG_ENV).build())
                        .filters(Filter::builder().name("value").values(&self.env).build())
                        .set_next_token(token)
                        .send()
                },
                |o| o.next_token(),
            )
            .await?;
        Ok(out
            .iter()
            .flat_map(|o| o.tags())
            .map(|t| {
                (
                    t.resource_type()
                        .map(|r| r.as_str().to_string())
                        .unwrap_or_default(),
                    t.resource_id().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

impl Cloud {
    fn env_filter(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:{TAG_ENV}"))
            .values(&self.env)
            .build()
    }

    fn mine(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(TAG_ENV).is_some_and(|v| v == &self.env)
    }

    fn lt_request(data: &LaunchTemplateData) -> RequestLaunchTemplateData {
        let mut it =
            LaunchTemplateTagSpecificationRequest::builder().resource_type(ResourceType::Instance);
        for (k, v) in &data.instance_tags {
            it = it.tags(Tag::builder().key(k).value(v).build());
        }
        let mut b = RequestLaunchTemplateData::builder()
            .image_id(&data.image_id)
            .instance_type(aws_sdk_ec2::types::InstanceType::from(
                data.instance_type.as_str(),
            ))
            .user_data(&data.user_data)
            .set_security_group_ids(Some(data.security_group_ids.clone()))
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    .http_tokens(if data.http_tokens_required {
                        LaunchTemplateHttpTokensState::Required
                    } else {
                        LaunchTemplateHttpTokensState::Optional
                    })
                    .http_put_response_hop_limit(data.hop_limit)
                    .build(),
            )
            .tag_specifications(it.build());
        if let Some(v) = &data.root_volume {
            b = b.block_device_mappings(
                LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name(&v.device_name)
                    .ebs(
                        LaunchTemplateEbsBlockDeviceRequest::builder()
                            .volume_size(v.size_gb)
                            .volume_type(VolumeType::from(v.volume_type.as_str()))
                            .encrypted(v.encrypted)
                            .delete_on_termination(v.delete_on_termination)
                            .build(),
                    )
                    .build(),
            );
        }
        if let Some(p) = &data.instance_profile {
            b = b.iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(p)
                    .build(),
            );
        }
        b.build()
    }

    /// DescribeVpcAttribute, twice at once.
    async fn read_vpc_dns(&self, id: &str) -> Result<(bool, bool), CloudError> {
        let read = |attr: VpcAttributeName| {
            self.call("ec2:DescribeVpcAttribute", AfterCreate, move || {
                self.ec2
                    .describe_vpc_attribute()
                    .vpc_id(id)
                    .attribute(attr.clone())
                    .send()
            })
        };
        let (support, hostnames) = futures::try_join!(
            read(VpcAttributeName::EnableDnsSupport),
            read(VpcAttributeName::EnableDnsHostnames)
        )?;
        Ok((
            support
                .enable_dns_support()
                .and_then(|a| a.value())
                .unwrap_or(false),
            hostnames
                .enable_dns_hostnames()
                .and_then(|a| a.value())
                .unwrap_or(false),
        ))
    }
}

fn nat_info(n: &aws_sdk_ec2::types::NatGateway) -> NatInfo {
    NatInfo {
        id: n.nat_gateway_id().unwrap_or_default().into(),
        subnet_id: n.subnet_id().unwrap_or_default().into(),
        vpc_id: n.vpc_id().unwrap_or_default().into(),
        state: n
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        allocation_ids: n
            .nat_gateway_addresses()
            .iter()
            .filter_map(|a| a.allocation_id().map(String::from))
            .collect(),
        network_interface_ids: n
            .nat_gateway_addresses()
            .iter()
            .filter_map(|a| a.network_interface_id().map(String::from))
            .collect(),
        tags: tags_of(n.tags()),
    }
}
