//! Subnet (VPC, CIDR and AZ are immutable), and its public-IP-on-launch attribute as a task of
//! its own (`subnet-public-ip/<name>`): `CreateSubnet` cannot set it, and a NAT gateway or a
//! load balancer in the subnet does not need it, so it stays off their path. As a task with
//! its own find/diff it is also re-applied to a subnet adopted after a lost create response.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::Subnets;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct Subnet {
    /// Logical name `<vpc>-<subnet>`.
    pub name: String,
    pub vpc: TaskKey,
    pub cidr: String,
    pub az: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubnetState {
    pub vpc_id: String,
    pub cidr: String,
    pub az: String,
}

impl<C: Subnets> Resource<C> for Subnet {
    type State = SubnetState;
    fn key(&self) -> TaskKey {
        TaskKey::new("subnet", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.vpc.clone()]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["vpc_id", "cidr", "az"]
    }
    fn output_names(&self) -> &'static [&'static str] {
        &["id", "cidr"]
    }
    fn desired(&self, i: &Outputs) -> Result<SubnetState, TaskError> {
        Ok(SubnetState {
            vpc_id: i.id(&self.vpc)?,
            cidr: self.cidr.clone(),
            az: self.az.clone(),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a SubnetState,
    ) -> BoxFuture<'a, Result<Option<Found<SubnetState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.vpc_id) {
                return Ok(None);
            }
            Ok(
                by_name(cx.subnets().await?, &self.name, |s| &s.tags).map(|s| Found {
                    state: SubnetState {
                        vpc_id: s.vpc_id,
                        cidr: s.cidr.clone(),
                        az: s.az,
                    },
                    outputs: [("id".into(), s.id), ("cidr".into(), s.cidr)].into(),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a SubnetState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx
                .create_subnet(&self.name, &d.vpc_id, &d.cidr, &d.az)
                .await?;
            let mut o = out_id(&id);
            o.insert("cidr".into(), d.cidr.clone());
            Ok(o)
        })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<SubnetState>,
        _: &'a SubnetState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        // Every managed field is immutable: check_changes rejected any diff already.
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

/// `MapPublicIpOnLaunch` of one subnet: on for public subnets (instances there get a public
/// address), off for private ones (drift either way is shown and repaired).
pub struct SubnetPublicIp {
    /// The subnet's logical name.
    pub name: String,
    pub subnet: TaskKey,
    pub public: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicIpState {
    #[serde(skip)]
    pub subnet_id: String,
    pub map_public_ip: bool,
}

impl<C: Subnets> Resource<C> for SubnetPublicIp {
    type State = PublicIpState;
    fn absent_reason(&self) -> String {
        format!("set once {} exists", self.subnet)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("subnet-public-ip", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.subnet.clone()]
    }
    fn desired(&self, i: &Outputs) -> Result<PublicIpState, TaskError> {
        Ok(PublicIpState {
            subnet_id: i.id(&self.subnet)?,
            map_public_ip: self.public,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a PublicIpState,
    ) -> BoxFuture<'a, Result<Option<Found<PublicIpState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.subnet_id) {
                return Ok(None);
            }
            // A subnet created earlier in this run is not in the cached describe: it has the
            // default (off), which `create` below starts from.
            Ok(cx
                .subnets()
                .await?
                .into_iter()
                .find(|s| s.id == d.subnet_id)
                .map(|s| Found {
                    state: PublicIpState {
                        subnet_id: s.id.clone(),
                        map_public_ip: s.map_public_ip,
                    },
                    outputs: out_id(&s.id),
                }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a PublicIpState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            // A new subnet maps no public addresses: only "on" needs a call.
            if d.map_public_ip {
                cx.set_subnet_public_ip(&d.subnet_id, true).await?;
            }
            Ok(out_id(&d.subnet_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        _: &'a Found<PublicIpState>,
        d: &'a PublicIpState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.set_subnet_public_ip(&d.subnet_id, d.map_public_ip)
                .await?;
            Ok(OutputMap::new())
        })
    }
}
