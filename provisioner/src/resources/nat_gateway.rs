//! NAT gateway and its Elastic IP (two tasks: `eip/<name>` and `nat/<name>`). Creating a NAT
//! gateway waits until it is `available` (real AWS: minutes; moto: at once).

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::{ElasticIps, NatGateways};
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

/// An address's outputs: `id` (allocation) and `public_ip`, which security-group rules may
/// admit (nodes behind this NAT gateway reach an internet-facing NLB from it).
fn eip_outputs(allocation_id: &str, public_ip: &str) -> OutputMap {
    let mut out = out_id(allocation_id);
    out.insert("public_ip".into(), public_ip.into());
    out
}

pub struct ElasticIp {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EipState {}

impl<C: ElasticIps> Resource<C> for ElasticIp {
    type State = EipState;
    fn key(&self) -> TaskKey {
        TaskKey::new("eip", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![]
    }
    fn desired(&self, _: &Outputs) -> Result<EipState, TaskError> {
        Ok(EipState {})
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a EipState,
    ) -> BoxFuture<'a, Result<Option<Found<EipState>>, TaskError>> {
        Box::pin(async move {
            Ok(
                by_name(cx.elastic_ips().await?, &self.name, |a| &a.tags).map(|a| Found {
                    state: EipState {},
                    outputs: eip_outputs(&a.allocation_id, &a.public_ip),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        _: &'a EipState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let (id, ip) = cx.allocate_eip(&self.name).await?;
            Ok(eip_outputs(&id, &ip))
        })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<EipState>,
        _: &'a EipState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

pub struct NatGateway {
    pub name: String,
    pub subnet: TaskKey,
    pub eip: TaskKey,
    /// The IGW must exist (and be attached) before a public NAT gateway works.
    pub igw: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct NatState {
    pub subnet_id: String,
    pub allocation_id: String,
}

impl<C: NatGateways> Resource<C> for NatGateway {
    type State = NatState;
    fn key(&self) -> TaskKey {
        TaskKey::new("nat", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.subnet.clone(), self.eip.clone(), self.igw.clone()]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["subnet_id", "allocation_id"]
    }
    fn desired(&self, i: &Outputs) -> Result<NatState, TaskError> {
        Ok(NatState {
            subnet_id: i.id(&self.subnet)?,
            allocation_id: i.id(&self.eip)?,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a NatState,
    ) -> BoxFuture<'a, Result<Option<Found<NatState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.subnet_id) {
                return Ok(None);
            }
            let live: Vec<_> = cx
                .nat_gateways()
                .await?
                .into_iter()
                .filter(|n| matches!(n.state.as_str(), "pending" | "available"))
                .collect();
            let Some(n) = by_name(live, &self.name, |n| &n.tags) else {
                return Ok(None);
            };
            if n.state == "pending" {
                // A previous run was interrupted while it came up: wait for it here.
                cx.wait_nat_available(&n.id).await?;
            }
            Ok(Some(Found {
                state: NatState {
                    subnet_id: n.subnet_id,
                    allocation_id: n.allocation_ids.first().cloned().unwrap_or_default(),
                },
                outputs: out_id(&n.id),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a NatState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let (id, state) = cx
                .create_nat_gateway(&self.name, &d.subnet_id, &d.allocation_id)
                .await?;
            if state != "available" {
                cx.wait_nat_available(&id).await?;
            }
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<NatState>,
        _: &'a NatState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}
