//! Target group (instances of a node pool). Protocol, port and VPC are immutable.

use futures::future::BoxFuture;

use super::{by_name, known, out_id};
use crate::aws::api::TargetGroups;
use crate::aws::elb::TgSpec;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct TargetGroup {
    pub name: String,
    pub aws_name: String,
    pub vpc: TaskKey,
    /// The spec with an empty `vpc_id` (filled from the VPC's output).
    pub spec: TgSpec,
}

impl<C: TargetGroups> Resource<C> for TargetGroup {
    type State = TgSpec;
    fn key(&self) -> TaskKey {
        TaskKey::new("target-group", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.vpc.clone()]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["protocol", "port", "vpc_id"]
    }
    fn desired(&self, i: &Outputs) -> Result<TgSpec, TaskError> {
        Ok(TgSpec {
            vpc_id: i.id(&self.vpc)?,
            ..self.spec.clone()
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a TgSpec,
    ) -> BoxFuture<'a, Result<Option<Found<TgSpec>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.vpc_id) {
                // A new VPC: nothing of ours can be in it, but the name can still be taken.
                cx.check_tg_name_free(&self.aws_name).await?;
                return Ok(None);
            }
            let found =
                by_name(cx.target_groups().await?, &self.name, |t| &t.tags).map(|t| Found {
                    state: t.spec,
                    outputs: out_id(&t.arn),
                });
            if found.is_none() {
                // The plan fails as `up` would: the name is someone else's.
                cx.check_tg_name_free(&self.aws_name).await?;
            }
            Ok(found)
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a TgSpec,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            Ok(out_id(
                &cx.create_target_group(&self.name, &self.aws_name, d)
                    .await?,
            ))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<TgSpec>,
        d: &'a TgSpec,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.modify_target_group(&a.outputs["id"], d).await?;
            Ok(OutputMap::new())
        })
    }
}
