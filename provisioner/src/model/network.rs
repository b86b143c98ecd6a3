//! Network: per VPC its DNS attributes, internet gateway, subnets, NAT gateways and one route
//! table per subnet (with its routes and association); then the peerings.

use std::sync::Arc;

use super::{k, task, Target};
use crate::aws::Cloud;
use crate::engine::{Task, TaskKey};
use crate::resources::{internet_gateway, nat_gateway, route_table, subnet, vpc, vpc_peering};
use crate::template::{Environment, SubnetKind, Vpc};

/// Every network task of `env`.
pub fn build(env: &Environment, target: &Target) -> Vec<Arc<dyn Task<Cloud>>> {
    let mut tasks = Vec::new();
    for v in &env.vpcs {
        tasks.extend(vpc_and_gateway(v));
        tasks.extend(subnets(env, target, v));
        tasks.extend(nat_gateways(v));
        tasks.extend(route_tables(env, v));
    }
    for p in &env.peerings {
        tasks.push(task(vpc_peering::VpcPeering {
            name: p.name.to_string(),
            requester: k("vpc", p.requester.as_str()),
            accepter: k("vpc", p.accepter.as_str()),
        }));
    }
    tasks
}

/// The VPC, its DNS attributes and, when a subnet needs it, its internet gateway.
fn vpc_and_gateway(v: &Vpc) -> Vec<Arc<dyn Task<Cloud>>> {
    let vpc = k("vpc", v.name.as_str());
    let mut tasks = vec![
        task(vpc::Vpc {
            name: v.name.to_string(),
            cidr: v.cidr.to_string(),
        }),
        task(vpc::VpcDns {
            name: v.name.to_string(),
            vpc: vpc.clone(),
        }),
    ];
    if v.needs_internet_gateway() {
        tasks.push(task(internet_gateway::InternetGateway {
            name: v.name.to_string(),
        }));
        tasks.push(task(internet_gateway::IgwAttachment {
            name: v.name.to_string(),
            igw: k("igw", v.name.as_str()),
            vpc,
        }));
    }
    tasks
}

/// Each subnet in the account's zone for its `az_index`, and its public-IP attribute.
fn subnets(env: &Environment, target: &Target, v: &Vpc) -> Vec<Arc<dyn Task<Cloud>>> {
    let mut tasks = Vec::new();
    for s in &v.subnets {
        let name = format!("{}-{}", v.name, s.name);
        tasks.push(task(subnet::Subnet {
            name: name.clone(),
            vpc: k("vpc", v.name.as_str()),
            cidr: s.cidr.to_string(),
            az: target.zone(env, s.az_index),
        }));
        tasks.push(task(subnet::SubnetPublicIp {
            name: name.clone(),
            subnet: k("subnet", &name),
            public: s.kind == SubnetKind::Public,
        }));
    }
    tasks
}

/// An Elastic IP and a NAT gateway in each subnet that hosts one. Routes and NAT gateways go
/// through the attached gateway: its `id` is the gateway's.
fn nat_gateways(v: &Vpc) -> Vec<Arc<dyn Task<Cloud>>> {
    let mut tasks = Vec::new();
    for s in v.nat_subnets() {
        let id = format!("{}-{}", v.name, s.name);
        tasks.push(task(nat_gateway::ElasticIp { name: id.clone() }));
        tasks.push(task(nat_gateway::NatGateway {
            name: id.clone(),
            subnet: k("subnet", &id),
            eip: k("eip", &id),
            igw: k("igw-attachment", v.name.as_str()),
        }));
    }
    tasks
}

/// The routes to every peered VPC (added to every route table of both sides).
fn peer_routes(env: &Environment, v: &Vpc) -> Vec<route_table::RouteSpec> {
    let mut routes = Vec::new();
    for p in &env.peerings {
        let other = if p.requester == v.name {
            &p.accepter
        } else if p.accepter == v.name {
            &p.requester
        } else {
            continue;
        };
        if let Some(o) = env.vpc(other) {
            routes.push(route_table::RouteSpec {
                destination: o.cidr.to_string(),
                target: k("peering", p.name.as_str()),
            });
        }
    }
    routes
}

/// One route table per subnet: the peerings' routes, and the default route (public: the
/// internet gateway; private: the NAT gateway of its zone, if any); its association.
fn route_tables(env: &Environment, v: &Vpc) -> Vec<Arc<dyn Task<Cloud>>> {
    let igw = k("igw-attachment", v.name.as_str());
    let peers = peer_routes(env, v);
    let mut tasks = Vec::new();
    for s in &v.subnets {
        let sid = format!("{}-{}", v.name, s.name);
        let mut routes = peers.clone();
        let default_target: Option<TaskKey> = match s.kind {
            SubnetKind::Public => Some(igw.clone()),
            SubnetKind::Private => v
                .nat_subnet_for(s.az_index)
                .map(|n| k("nat", &format!("{}-{}", v.name, n.name))),
        };
        if let Some(target) = default_target {
            routes.push(route_table::RouteSpec {
                destination: "0.0.0.0/0".into(),
                target,
            });
        }
        let table = k("route-table", &sid);
        tasks.push(task(route_table::RouteTable {
            name: sid.clone(),
            vpc: k("vpc", v.name.as_str()),
        }));
        tasks.push(task(route_table::Routes {
            name: sid.clone(),
            table: table.clone(),
            routes,
        }));
        tasks.push(task(route_table::RouteTableAssociations {
            name: sid.clone(),
            table,
            subnets: vec![k("subnet", &sid)],
        }));
    }
    tasks
}
