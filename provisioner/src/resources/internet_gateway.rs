//! Internet gateway (`igw/<vpc>`) and its attachment to the VPC (`igw-attachment/<vpc>`), two
//! tasks: the gateway needs nothing and is created at once, beside the VPC; the attachment
//! waits for both. Whatever routes through the gateway (public route tables, NAT gateways)
//! depends on the attachment, whose `id` output is the gateway's id.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::InternetGateways;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct InternetGateway {
    /// Logical name: the VPC's.
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IgwState {}

impl<C: InternetGateways> Resource<C> for InternetGateway {
    type State = IgwState;
    fn key(&self) -> TaskKey {
        TaskKey::new("igw", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![]
    }
    fn desired(&self, _: &Outputs) -> Result<IgwState, TaskError> {
        Ok(IgwState {})
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a IgwState,
    ) -> BoxFuture<'a, Result<Option<Found<IgwState>>, TaskError>> {
        Box::pin(async move {
            Ok(
                by_name(cx.internet_gateways().await?, &self.name, |g| &g.tags).map(|g| Found {
                    state: IgwState {},
                    outputs: out_id(&g.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        _: &'a IgwState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(out_id(&cx.create_internet_gateway(&self.name).await?)) })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<IgwState>,
        _: &'a IgwState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

/// The gateway attached to its VPC (detached out of band: re-attached; attached elsewhere:
/// moved).
pub struct IgwAttachment {
    /// Logical name: the VPC's.
    pub name: String,
    pub igw: TaskKey,
    pub vpc: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentState {
    #[serde(skip)]
    pub igw_id: String,
    /// The VPC it is attached to ("" when detached).
    pub attached_vpc: String,
}

impl<C: InternetGateways> Resource<C> for IgwAttachment {
    type State = AttachmentState;
    fn absent_reason(&self) -> String {
        format!("attach {} to {}", self.igw, self.vpc)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("igw-attachment", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.igw.clone(), self.vpc.clone()]
    }
    fn desired(&self, i: &Outputs) -> Result<AttachmentState, TaskError> {
        Ok(AttachmentState {
            igw_id: i.id(&self.igw)?,
            attached_vpc: i.id(&self.vpc)?,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a AttachmentState,
    ) -> BoxFuture<'a, Result<Option<Found<AttachmentState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.igw_id) || !known(&d.attached_vpc) {
                return Ok(None);
            }
            // A gateway created earlier in this run is not in the cached describe: it is
            // detached, and `create` attaches it.
            Ok(cx
                .internet_gateways()
                .await?
                .into_iter()
                .find(|g| g.id == d.igw_id)
                .map(|g| Found {
                    state: AttachmentState {
                        igw_id: g.id.clone(),
                        attached_vpc: g.attached_vpcs.first().cloned().unwrap_or_default(),
                    },
                    outputs: out_id(&g.id),
                }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a AttachmentState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.attach_internet_gateway(&d.igw_id, &d.attached_vpc)
                .await?;
            Ok(out_id(&d.igw_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<AttachmentState>,
        d: &'a AttachmentState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            if !a.state.attached_vpc.is_empty() {
                cx.detach_internet_gateway(&d.igw_id, &a.state.attached_vpc)
                    .await?;
            }
            cx.attach_internet_gateway(&d.igw_id, &d.attached_vpc)
                .await?;
            Ok(OutputMap::new())
        })
    }
}
