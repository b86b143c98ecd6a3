//! Subnet. VPC, CIDR and AZ are immutable; public subnets map public IPs on launch.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::Cloud;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct Subnet {
    /// Logical name `<vpc>-<subnet>`.
    pub name: String,
    pub vpc: TaskKey,
    pub cidr: String,
    pub az: String,
    pub public: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubnetState {
    pub vpc_id: String,
    pub cidr: String,
    pub az: String,
    pub map_public_ip: bool,
}

impl Resource<Cloud> for Subnet {
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
            map_public_ip: self.public,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a Cloud,
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
                        map_public_ip: s.map_public_ip,
                    },
                    outputs: [("id".into(), s.id), ("cidr".into(), s.cidr)].into(),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a SubnetState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx
                .create_subnet(&self.name, &d.vpc_id, &d.cidr, &d.az)
                .await?;
            if d.map_public_ip {
                cx.set_subnet_public_ip(&id, true).await?;
            }
            let mut o = out_id(&id);
            o.insert("cidr".into(), d.cidr.clone());
            Ok(o)
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cloud,
        a: &'a Found<SubnetState>,
        d: &'a SubnetState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.set_subnet_public_ip(&a.outputs["id"], d.map_public_ip)
                .await?;
            Ok(OutputMap::new())
        })
    }
}
