//! VPC peering connection (same account and region): created and accepted. The routes on both
//! sides are part of each side's route tables (`route_table.rs`).

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::Peerings;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct VpcPeering {
    pub name: String,
    pub requester: TaskKey,
    pub accepter: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeeringState {
    pub requester_vpc: String,
    pub accepter_vpc: String,
    pub active: bool,
}

impl<C: Peerings> Resource<C> for VpcPeering {
    type State = PeeringState;
    fn key(&self) -> TaskKey {
        TaskKey::new("peering", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.requester.clone(), self.accepter.clone()]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["requester_vpc", "accepter_vpc"]
    }
    fn desired(&self, i: &Outputs) -> Result<PeeringState, TaskError> {
        Ok(PeeringState {
            requester_vpc: i.id(&self.requester)?,
            accepter_vpc: i.id(&self.accepter)?,
            active: true,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a PeeringState,
    ) -> BoxFuture<'a, Result<Option<Found<PeeringState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.requester_vpc) || !known(&d.accepter_vpc) {
                return Ok(None);
            }
            Ok(
                by_name(cx.peerings().await?, &self.name, |p| &p.tags).map(|p| Found {
                    state: PeeringState {
                        requester_vpc: p.requester_vpc,
                        accepter_vpc: p.accepter_vpc,
                        active: p.status == "active",
                    },
                    outputs: out_id(&p.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a PeeringState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx
                .create_peering(&self.name, &d.requester_vpc, &d.accepter_vpc)
                .await?;
            cx.accept_peering(&id).await?;
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<PeeringState>,
        _: &'a PeeringState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.accept_peering(&a.outputs["id"]).await?;
            Ok(OutputMap::new())
        })
    }
}
