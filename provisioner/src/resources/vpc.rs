//! VPC (kops `awstasks/vpc.go`; CIDR is immutable) and its DNS attributes.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::Vpcs;
use crate::aws::ec2::VpcDnsAttribute;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct Vpc {
    pub name: String,
    pub cidr: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VpcState {
    pub cidr: String,
}

impl<C: Vpcs> Resource<C> for Vpc {
    type State = VpcState;
    fn key(&self) -> TaskKey {
        TaskKey::new("vpc", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![]
    }
    fn output_names(&self) -> &'static [&'static str] {
        &["id"]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["cidr"]
    }
    fn desired(&self, _: &Outputs) -> Result<VpcState, TaskError> {
        Ok(VpcState {
            cidr: self.cidr.clone(),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a VpcState,
    ) -> BoxFuture<'a, Result<Option<Found<VpcState>>, TaskError>> {
        Box::pin(async move {
            Ok(
                by_name(cx.vpcs().await?, &self.name, |v| &v.tags).map(|v| Found {
                    state: VpcState { cidr: v.cidr },
                    outputs: out_id(&v.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a VpcState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(out_id(&cx.create_vpc(&self.name, &d.cidr).await?)) })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<VpcState>,
        _: &'a VpcState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        // Only the (immutable) CIDR is managed: check_changes rejected any diff already.
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

/// A VPC's DNS attributes (`vpc-dns/<name>`): support and hostnames on, which private hosted
/// zones and instance names need. A task of its own, off the path of everything that only
/// needs the VPC's id, and re-applied to a VPC adopted after a lost create response.
pub struct VpcDns {
    pub name: String,
    pub vpc: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct VpcDnsState {
    #[serde(skip)]
    pub vpc_id: String,
    pub dns_support: bool,
    pub dns_hostnames: bool,
}

impl<C: Vpcs> Resource<C> for VpcDns {
    type State = VpcDnsState;
    fn absent_reason(&self) -> String {
        format!("set once {} exists", self.vpc)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("vpc-dns", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.vpc.clone()]
    }
    fn desired(&self, i: &Outputs) -> Result<VpcDnsState, TaskError> {
        Ok(VpcDnsState {
            vpc_id: i.id(&self.vpc)?,
            dns_support: true,
            dns_hostnames: true,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a VpcDnsState,
    ) -> BoxFuture<'a, Result<Option<Found<VpcDnsState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.vpc_id) {
                return Ok(None);
            }
            // A VPC created earlier in this run is not in the cached describe: it has AWS's
            // defaults, which `create` starts from (so plan and up agree it is a create).
            if !cx.vpcs().await?.iter().any(|v| v.id == d.vpc_id) {
                return Ok(None);
            }
            let (dns_support, dns_hostnames) = cx.vpc_dns(&d.vpc_id).await?;
            Ok(Some(Found {
                state: VpcDnsState {
                    vpc_id: d.vpc_id.clone(),
                    dns_support,
                    dns_hostnames,
                },
                outputs: out_id(&d.vpc_id),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a VpcDnsState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        // A new VPC: AWS's defaults are DNS support on, hostnames off.
        Box::pin(async move {
            set_dns(cx, (true, false), d).await?;
            Ok(out_id(&d.vpc_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<VpcDnsState>,
        d: &'a VpcDnsState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            set_dns(cx, (a.state.dns_support, a.state.dns_hostnames), d).await?;
            Ok(OutputMap::new())
        })
    }
}

/// Change only what differs: support before hostnames when turning on, after when turning off
/// (AWS refuses hostnames without support).
async fn set_dns<C: Vpcs>(
    cx: &C,
    (support, hostnames): (bool, bool),
    d: &VpcDnsState,
) -> Result<(), TaskError> {
    use VpcDnsAttribute::{Hostnames, Support};
    let id = &d.vpc_id;
    if d.dns_support && !support {
        cx.set_vpc_dns_attribute(id, Support, true).await?;
    }
    if d.dns_hostnames != hostnames {
        cx.set_vpc_dns_attribute(id, Hostnames, d.dns_hostnames)
            .await?;
    }
    if !d.dns_support && support {
        cx.set_vpc_dns_attribute(id, Support, false).await?;
    }
    Ok(())
}
