//! What an environment owns in AWS: everything tagged `provisioner:env=NAME` across services,
//! plus known untagged children (routes and associations go with their tables, records with
//! their zones, listeners with their load balancers, a NAT gateway's network interfaces with
//! it), each with what it uses, so that `down` can delete it in dependency rounds
//! ([`crate::engine::teardown`]) and list what is left.
//!
//! Nothing untagged for this environment is ever listed: every item comes from an owned
//! describe (tag filter + client-side check) or is a child of an owned item. One function per
//! resource family; [`discover`] calls them in a fixed order, each adding its items.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::aws::api::*;
use crate::aws::Cloud;
use crate::engine::{CloudError, TaskKey};

/// What was found for this environment, keyed `kind/cloud-id`, with a label for humans.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Inventory {
    pub items: Vec<Item>,
    /// What is in the way but not this environment's (a network interface someone left in
    /// one of its subnets): never deleted, named so the user knows what blocks `down`.
    pub in_the_way: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub key: TaskKey,
    /// The logical name (`provisioner:name`), when tagged.
    pub name: String,
    #[serde(skip)]
    pub uses: Vec<TaskKey>,
    /// Its tags, for the families that list them (empty for untagged children, IAM and SSM).
    #[serde(skip)]
    pub tags: BTreeMap<String, String>,
}

fn key(kind: &str, id: &str) -> TaskKey {
    TaskKey::new(kind, id)
}

fn name(tags: &BTreeMap<String, String>) -> String {
    crate::aws::ec2::name_of(tags).to_string()
}

fn item(key: TaskKey, name: String, uses: Vec<TaskKey>) -> Item {
    Item {
        key,
        name,
        uses,
        tags: BTreeMap::new(),
    }
}

/// An item listed with its tags.
fn tagged(key: TaskKey, tags: &BTreeMap<String, String>, uses: Vec<TaskKey>) -> Item {
    Item {
        key,
        name: name(tags),
        uses,
        tags: tags.clone(),
    }
}

/// The listing of a service the endpoint does not offer (an emulator without ELBv2 …) is
/// empty: nothing of it can exist there. Any other failure fails the discovery, so `down`
/// never deletes from, or reports "nothing left" after, a listing it could not read.
fn unless_unsupported<T: Default>(listed: Result<T, CloudError>) -> Result<T, CloudError> {
    match listed {
        Err(e) if e.kind == crate::engine::ErrorKind::Unsupported => Ok(T::default()),
        listed => listed,
    }
}

/// Discover everything the environment owns (one describe per type).
pub async fn discover(cloud: &Cloud) -> Result<Inventory, CloudError> {
    cloud.inventory.clear();
    // Every batched describe at once; the families below then read the cache.
    cloud
        .prefetch(&[
            crate::aws::Service::Ec2,
            crate::aws::Service::AutoScaling,
            crate::aws::Service::ElasticLoadBalancingV2,
            crate::aws::Service::Route53,
        ])
        .await;
    let mut items = Vec::new();
    let net = network(cloud, &mut items).await?;
    routing(cloud, &mut items).await?;
    security_groups(cloud, &mut items).await?;
    launch_templates(cloud, &mut items).await?;
    load_balancing(cloud, &net, &mut items).await?;
    let identities = Identities::list(cloud).await?;
    compute(cloud, &net, &identities, &mut items).await?;
    let in_the_way = network_interfaces(cloud, &net, &mut items).await?;
    dns(cloud, &net, &mut items).await?;
    identities.push_items(&mut items);
    parameters(cloud, &mut items).await?;
    Ok(Inventory { items, in_the_way })
}

/// Everything of the environment whose tags can be changed in place, with its tags, read
/// from the listings already made where they are cached (a resource created in this run is
/// missing from a cached listing, and was created with the template's tags).
pub async fn taggable(cloud: &Cloud) -> Result<Vec<Item>, CloudError> {
    let mut items = Vec::new();
    let net = network(cloud, &mut items).await?;
    routing(cloud, &mut items).await?;
    security_groups(cloud, &mut items).await?;
    launch_templates(cloud, &mut items).await?;
    load_balancing(cloud, &net, &mut items).await?;
    for g in unless_unsupported(cloud.auto_scaling_groups().await)? {
        items.push(tagged(key("asg", &g.name), &g.tags, vec![]));
    }
    for i in cloud.instances().await? {
        if matches!(i.state.as_str(), "pending" | "running" | "stopped") {
            items.push(tagged(key("instance", &i.id), &i.tags, vec![]));
        }
    }
    for h in unless_unsupported(cloud.health_checks().await)? {
        items.push(tagged(key("hc", &h.id), &h.tags, vec![]));
    }
    for z in unless_unsupported(cloud.hosted_zones().await)? {
        items.push(tagged(key("zone", &z.id), &z.tags, vec![]));
    }
    Ok(items)
}

/// What later families need to know of the network.
struct Network {
    vpcs: Vec<String>,
    subnets: Vec<String>,
    igw_of_vpc: BTreeMap<String, String>,
    vpc_of_subnet: BTreeMap<String, String>,
    /// A NAT gateway's network interfaces are its own (AWS deletes them with it; an
    /// emulator may leave them behind, detached): children of an owned resource.
    nat_enis: BTreeSet<String>,
}

impl Network {
    /// A VPC's internet gateway cannot be detached while public addresses are mapped in it
    /// (NAT gateways, instances, internet-facing load balancers): those go first.
    fn igw_for_subnet(&self, subnet: &str) -> Option<TaskKey> {
        let vpc = self.vpc_of_subnet.get(subnet)?;
        self.igw_of_vpc.get(vpc).map(|g| key("igw", g))
    }
}

/// VPCs, subnets, internet gateways, elastic IPs and NAT gateways.
async fn network(cloud: &Cloud, items: &mut Vec<Item>) -> Result<Network, CloudError> {
    let vpcs = cloud.vpcs().await?;
    for v in &vpcs {
        items.push(tagged(key("vpc", &v.id), &v.tags, vec![]));
    }
    let subnets = cloud.subnets().await?;
    for s in &subnets {
        items.push(tagged(
            key("subnet", &s.id),
            &s.tags,
            vec![key("vpc", &s.vpc_id)],
        ));
    }
    let igws = cloud.internet_gateways().await?;
    let net = Network {
        vpcs: vpcs.iter().map(|v| v.id.clone()).collect(),
        subnets: subnets.iter().map(|s| s.id.clone()).collect(),
        igw_of_vpc: igws
            .iter()
            .flat_map(|g| g.attached_vpcs.iter().map(|v| (v.clone(), g.id.clone())))
            .collect(),
        vpc_of_subnet: subnets
            .iter()
            .map(|s| (s.id.clone(), s.vpc_id.clone()))
            .collect(),
        nat_enis: BTreeSet::new(),
    };
    for g in &igws {
        let uses = g.attached_vpcs.iter().map(|v| key("vpc", v)).collect();
        items.push(tagged(key("igw", &g.id), &g.tags, uses));
    }
    for a in cloud.elastic_ips().await? {
        items.push(tagged(key("eip", &a.allocation_id), &a.tags, vec![]));
    }
    let nats = cloud.nat_gateways().await?;
    let nat_enis = nats
        .iter()
        .flat_map(|n| n.network_interface_ids.iter().cloned())
        .collect();
    for n in &nats {
        if matches!(n.state.as_str(), "deleted" | "failed") {
            continue;
        }
        let mut uses = vec![key("subnet", &n.subnet_id), key("vpc", &n.vpc_id)];
        // It goes before its interfaces.
        uses.extend(n.network_interface_ids.iter().map(|e| key("eni", e)));
        uses.extend(n.allocation_ids.iter().map(|a| key("eip", a)));
        uses.extend(net.igw_of_vpc.get(&n.vpc_id).map(|g| key("igw", g)));
        items.push(tagged(key("nat", &n.id), &n.tags, uses));
    }
    Ok(Network { nat_enis, ..net })
}

/// Route tables (with their routes and associations) and peerings.
async fn routing(cloud: &Cloud, items: &mut Vec<Item>) -> Result<(), CloudError> {
    for t in cloud.route_tables().await? {
        let mut uses = vec![key("vpc", &t.vpc_id)];
        for r in &t.routes {
            let kind = if r.target.starts_with("nat-") {
                "nat"
            } else if r.target.starts_with("pcx-") {
                "pcx"
            } else {
                "igw"
            };
            uses.push(key(kind, &r.target));
        }
        uses.extend(t.associations.iter().map(|(_, s)| key("subnet", s)));
        items.push(tagged(key("rtb", &t.id), &t.tags, uses));
    }
    for p in cloud.peerings().await? {
        let uses = vec![key("vpc", &p.requester_vpc), key("vpc", &p.accepter_vpc)];
        items.push(tagged(key("pcx", &p.id), &p.tags, uses));
    }
    Ok(())
}

async fn security_groups(cloud: &Cloud, items: &mut Vec<Item>) -> Result<(), CloudError> {
    for g in cloud.security_groups().await? {
        // SG-to-SG references are revoked before the rounds, so they are not edges here.
        items.push(tagged(
            key("sg", &g.id),
            &g.tags,
            vec![key("vpc", &g.vpc_id)],
        ));
    }
    Ok(())
}

async fn launch_templates(cloud: &Cloud, items: &mut Vec<Item>) -> Result<(), CloudError> {
    for t in cloud.launch_templates().await? {
        items.push(tagged(key("lt", &t.id), &t.tags, vec![]));
    }
    Ok(())
}

/// Target groups and load balancers (their listeners go with them).
async fn load_balancing(
    cloud: &Cloud,
    net: &Network,
    items: &mut Vec<Item>,
) -> Result<(), CloudError> {
    let tgs = unless_unsupported(cloud.target_groups().await)?;
    for t in &tgs {
        items.push(tagged(
            key("tg", &t.arn),
            &t.tags,
            vec![key("vpc", &t.spec.vpc_id)],
        ));
    }
    for lb in unless_unsupported(cloud.load_balancers().await)? {
        let mut uses: Vec<TaskKey> = lb.subnets.iter().map(|s| key("subnet", s)).collect();
        uses.extend(lb.subnets.iter().filter_map(|s| net.igw_for_subnet(s)));
        uses.extend(lb.security_groups.iter().map(|g| key("sg", g)));
        uses.extend(tgs.iter().map(|t| key("tg", &t.arn)));
        items.push(tagged(key("lb", &lb.arn), &lb.tags, uses));
    }
    Ok(())
}

/// The node pools' IAM roles and instance profiles (under the environment's path).
struct Identities {
    roles: Vec<String>,
    /// Each profile with the roles it holds.
    profiles: Vec<(String, Vec<String>)>,
}

impl Identities {
    async fn list(cloud: &Cloud) -> Result<Self, CloudError> {
        let roles = unless_unsupported(cloud.iam_roles().await)?;
        let profiles = unless_unsupported(cloud.iam_instance_profiles().await)?;
        Ok(Self {
            roles: roles.into_iter().map(|r| r.name).collect(),
            profiles,
        })
    }

    /// What an instance runs as: its profile, which holds the role.
    fn keys(&self) -> Vec<TaskKey> {
        self.profiles
            .iter()
            .map(|(p, _)| key("profile", p))
            .chain(self.roles.iter().map(|r| key("role", r)))
            .collect()
    }

    /// A profile goes before the roles it holds (DeleteRole: DeleteConflict). A profile
    /// without its role (a crash between the two creates) is found and deleted too.
    fn push_items(self, items: &mut Vec<Item>) {
        for (p, held) in &self.profiles {
            let uses = held.iter().map(|r| key("role", r)).collect();
            items.push(item(key("profile", p), p.clone(), uses));
        }
        for r in self.roles {
            items.push(item(key("role", &r), r.clone(), vec![]));
        }
    }
}

/// Auto Scaling groups and the instances left running.
async fn compute(
    cloud: &Cloud,
    net: &Network,
    identities: &Identities,
    items: &mut Vec<Item>,
) -> Result<(), CloudError> {
    let identities = identities.keys();
    for g in unless_unsupported(cloud.auto_scaling_groups().await)? {
        let mut uses: Vec<TaskKey> = g.spec.subnets.iter().map(|s| key("subnet", s)).collect();
        uses.extend(g.spec.target_groups.iter().map(|t| key("tg", t)));
        uses.push(key("lt", &g.spec.launch_template_id));
        // A group replaces terminated instances: it goes first ("uses" its instances), then
        // whatever instance is left.
        uses.extend(g.instances.iter().map(|i| key("instance", &i.id)));
        uses.extend(identities.iter().cloned());
        items.push(tagged(key("asg", &g.name), &g.tags, uses));
    }
    for i in cloud.instances().await? {
        if matches!(i.state.as_str(), "terminated" | "shutting-down") {
            continue;
        }
        let mut uses = vec![key("subnet", &i.subnet_id)];
        uses.extend(net.igw_for_subnet(&i.subnet_id));
        uses.extend(identities.iter().cloned());
        items.push(tagged(key("instance", &i.id), &i.tags, uses));
    }
    Ok(())
}

/// Detached network interfaces in the environment's subnets. Returns those that are in the
/// way but not the environment's.
async fn network_interfaces(
    cloud: &Cloud,
    net: &Network,
    items: &mut Vec<Item>,
) -> Result<Vec<String>, CloudError> {
    let mut in_the_way = Vec::new();
    for e in cloud.enis_in_subnets(&net.subnets).await? {
        // Attached interfaces belong to their owner (instance, NAT, LB) and go with it.
        if e.attachment_id.is_some() || e.status != "available" {
            continue;
        }
        // A detached one is deleted only if it is this environment's (tagged, or one of its
        // NAT gateways'): any other in our subnet is someone else's, and blocks the subnet.
        let ours = e.tags.get(crate::aws::TAG_ENV).map(String::as_str) == Some(cloud.env_name())
            || net.nat_enis.contains(&e.id);
        if !ours {
            in_the_way.push(format!(
                "eni/{} in subnet/{} ({:?}): not tagged {}={}",
                e.id,
                e.subnet_id,
                e.description,
                crate::aws::TAG_ENV,
                cloud.env_name()
            ));
            continue;
        }
        let mut uses = vec![key("subnet", &e.subnet_id)];
        uses.extend(e.group_ids.iter().map(|g| key("sg", g)));
        items.push(item(key("eni", &e.id), e.description.clone(), uses));
    }
    Ok(in_the_way)
}

/// Route 53 health checks and hosted zones (their records go with them).
async fn dns(cloud: &Cloud, net: &Network, items: &mut Vec<Item>) -> Result<(), CloudError> {
    let checks = unless_unsupported(cloud.health_checks().await)?;
    for h in &checks {
        items.push(tagged(key("hc", &h.id), &h.tags, vec![]));
    }
    for z in unless_unsupported(cloud.hosted_zones().await)? {
        // Its records may use the health checks: the zone (records first) goes before them.
        let mut uses: Vec<TaskKey> = net.vpcs.iter().map(|v| key("vpc", v)).collect();
        uses.extend(checks.iter().map(|h| key("hc", &h.id)));
        let mut zone = tagged(key("zone", &z.id), &z.tags, uses);
        zone.name = z.name.clone();
        items.push(zone);
    }
    Ok(())
}

/// SSM parameters under the environment's path.
async fn parameters(cloud: &Cloud, items: &mut Vec<Item>) -> Result<(), CloudError> {
    for p in unless_unsupported(cloud.ssm_env_parameters().await)? {
        items.push(item(key("ssm", &p), p.clone(), vec![]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ErrorKind;

    fn failed(kind: ErrorKind) -> Result<Vec<String>, CloudError> {
        Err(CloudError::new(
            kind,
            "elbv2:DescribeLoadBalancers",
            "",
            "x",
        ))
    }

    #[test]
    fn only_a_service_the_endpoint_lacks_lists_as_empty() {
        assert_eq!(
            unless_unsupported(failed(ErrorKind::Unsupported)).unwrap(),
            Vec::<String>::new()
        );
        // Anything else fails the discovery: never "nothing left" from an unread listing.
        for kind in [
            ErrorKind::AccessDenied,
            ErrorKind::Throttling,
            ErrorKind::ServerError,
            ErrorKind::Transport,
        ] {
            assert!(unless_unsupported(failed(kind)).is_err(), "{kind:?}");
        }
        assert_eq!(
            unless_unsupported(Ok(vec!["tg".to_string()])).unwrap(),
            ["tg"]
        );
    }
}
