//! Internet gateway, attached to its VPC.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::Cloud;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct InternetGateway {
    /// Logical name: the VPC's.
    pub name: String,
    pub vpc: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct IgwState {
    /// The VPC it is attached to ("" when detached).
    pub attached_vpc: String,
}

impl Resource<Cloud> for InternetGateway {
    type State = IgwState;
    fn key(&self) -> TaskKey {
        TaskKey::new("igw", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.vpc.clone()]
    }
    fn desired(&self, i: &Outputs) -> Result<IgwState, TaskError> {
        Ok(IgwState {
            attached_vpc: i.id(&self.vpc)?,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a IgwState,
    ) -> BoxFuture<'a, Result<Option<Found<IgwState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.attached_vpc) {
                return Ok(None);
            }
            Ok(
                by_name(cx.internet_gateways().await?, &self.name, |g| &g.tags).map(|g| Found {
                    state: IgwState {
                        attached_vpc: g.attached_vpcs.first().cloned().unwrap_or_default(),
                    },
                    outputs: out_id(&g.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a IgwState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx.create_internet_gateway(&self.name).await?;
            cx.attach_internet_gateway(&id, &d.attached_vpc).await?;
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cloud,
        a: &'a Found<IgwState>,
        d: &'a IgwState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = &a.outputs["id"];
            if !a.state.attached_vpc.is_empty() {
                cx.detach_internet_gateway(id, &a.state.attached_vpc)
                    .await?;
            }
            cx.attach_internet_gateway(id, &d.attached_vpc).await?;
            Ok(OutputMap::new())
        })
    }
}
