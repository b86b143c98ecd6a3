//! VPC (kops `awstasks/vpc.go`). CIDR is immutable.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, out_id};
use crate::aws::api::Vpcs;
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
