//! Auto Scaling group of a node pool: launch template `$Latest`, subnets, sizes, target groups,
//! health check type and grace period (changed in place).

use futures::future::BoxFuture;

use super::{by_name, known, out_id};
use crate::aws::api::AutoScalingGroups;
use crate::aws::asg::AsgSpec;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct AutoScalingGroup {
    pub name: String,
    pub aws_name: String,
    pub launch_template: TaskKey,
    pub subnets: Vec<TaskKey>,
    pub target_groups: Vec<TaskKey>,
    pub extra_deps: Vec<TaskKey>,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    /// `EC2` or `ELB`.
    pub health_check_type: String,
    pub health_check_grace_secs: i32,
}

impl<C: AutoScalingGroups> Resource<C> for AutoScalingGroup {
    type State = AsgSpec;
    fn key(&self) -> TaskKey {
        TaskKey::new("asg", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.launch_template.clone()];
        d.extend(self.subnets.iter().cloned());
        d.extend(self.target_groups.iter().cloned());
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<AsgSpec, TaskError> {
        let mut subnets = Vec::new();
        for s in &self.subnets {
            subnets.push(i.id(s)?);
        }
        subnets.sort();
        let mut tgs = Vec::new();
        for t in &self.target_groups {
            tgs.push(i.id(t)?);
        }
        tgs.sort();
        Ok(AsgSpec {
            launch_template_id: i.id(&self.launch_template)?,
            min: self.min,
            max: self.max,
            desired: self.desired,
            subnets,
            target_groups: tgs,
            health_check_type: self.health_check_type.clone(),
            health_check_grace_secs: self.health_check_grace_secs,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a AsgSpec,
    ) -> BoxFuture<'a, Result<Option<Found<AsgSpec>>, TaskError>> {
        Box::pin(async move {
            Ok(
                by_name(cx.auto_scaling_groups().await?, &self.name, |g| &g.tags).map(|g| Found {
                    state: g.spec,
                    outputs: out_id(&g.name),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a AsgSpec,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            if !known(&d.launch_template_id) {
                return Err(TaskError::NotReady("launch template not known".into()));
            }
            cx.create_auto_scaling_group(&self.name, &self.aws_name, d)
                .await?;
            // "Done" means the instances run, not that the API accepted the group.
            cx.wait_asg_in_service(&self.aws_name, d.desired).await?;
            Ok(out_id(&self.aws_name))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<AsgSpec>,
        d: &'a AsgSpec,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.update_auto_scaling_group(&a.outputs["id"], &a.state, d)
                .await?;
            cx.wait_asg_in_service(&a.outputs["id"], d.desired).await?;
            Ok(OutputMap::new())
        })
    }
}
