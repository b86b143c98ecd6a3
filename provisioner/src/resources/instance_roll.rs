//! Rolling a node pool onto its launch template (`instance-roll/<pool>`): the instances of the
//! pool's Auto Scaling group that were launched from an older configuration (their
//! `provisioner:config` tag differs from the template's) are replaced **one at a time**: each
//! is terminated without lowering the desired capacity, and the next waits until the group is
//! back to its desired size with every instance in service and healthy in the group's target
//! groups — for the k3s servers, the new one's API answers through the NLB, so etcd keeps its
//! quorum. As kops' rolling update, rather than an ASG instance refresh: the same calls on every
//! endpoint, and `up` waits for each step and reports it.
//!
//! Instances launched before their template carried the tag are left alone until the template
//! changes (then they are on an older configuration by definition).

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known};
use crate::aws::api::{AutoScalingGroups, Leftovers};
use crate::aws::TAG_CONFIG;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct InstanceRoll {
    /// The pool's name (the group's and the template's logical name).
    pub name: String,
    pub asg: TaskKey,
    pub launch_template: TaskKey,
    pub target_groups: Vec<TaskKey>,
    /// Why this pool is not rolled automatically (its instances hold data on local volumes):
    /// instances on an older configuration are reported, not replaced.
    pub hold: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollState {
    /// Instances on an older configuration than the launch template's.
    pub stale_instances: Vec<String>,
    #[serde(skip)]
    config: String,
    #[serde(skip)]
    target_groups: Vec<String>,
}

impl<C: AutoScalingGroups + Leftovers> Resource<C> for InstanceRoll {
    type State = RollState;
    fn key(&self) -> TaskKey {
        TaskKey::new("instance-roll", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.asg.clone(), self.launch_template.clone()];
        d.extend(self.target_groups.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn output_names(&self) -> &'static [&'static str] {
        &[]
    }
    fn desired(&self, i: &Outputs) -> Result<RollState, TaskError> {
        let mut tgs = Vec::new();
        for t in &self.target_groups {
            tgs.push(i.id(t)?);
        }
        Ok(RollState {
            stale_instances: Vec::new(),
            config: i.get(&self.launch_template, "config")?,
            target_groups: tgs,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RollState,
    ) -> BoxFuture<'a, Result<Option<Found<RollState>>, TaskError>> {
        Box::pin(async move {
            let mut stale = Vec::new();
            // A new template (plan) or one that predates the tag: nothing to compare with.
            if known(&d.config) && !d.config.is_empty() {
                if let Some(g) = by_name(cx.auto_scaling_groups().await?, &self.name, |g| &g.tags) {
                    let tagged = cx.instances().await?;
                    for member in g.instances {
                        let config = tagged
                            .iter()
                            .find(|i| i.id == member.id)
                            .and_then(|i| i.tags.get(TAG_CONFIG));
                        if config != Some(&d.config) {
                            stale.push(member.id);
                        }
                    }
                }
            }
            stale.sort();
            if let (Some(why), false) = (&self.hold, stale.is_empty()) {
                tracing::warn!(
                    "node_pools.{}: {} instance(s) run an older launch template configuration \
                     ({}) and are not replaced: {why}",
                    self.name,
                    stale.len(),
                    stale.join(", ")
                );
                stale.clear();
            }
            Ok(Some(Found {
                state: RollState {
                    stale_instances: stale,
                    config: d.config.clone(),
                    target_groups: d.target_groups.clone(),
                },
                outputs: OutputMap::new(),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        _: &'a C,
        _: &'a RollState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<RollState>,
        d: &'a RollState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let Some(g) = by_name(cx.auto_scaling_groups().await?, &self.name, |g| &g.tags) else {
                return Ok(OutputMap::new());
            };
            let total = a.state.stale_instances.len();
            for (n, id) in a.state.stale_instances.iter().enumerate() {
                tracing::warn!(
                    "node_pools.{}: replacing {id} ({}/{total}), launched from an older launch \
                     template configuration",
                    self.name,
                    n + 1
                );
                cx.replace_instance(id).await?;
                cx.wait_replaced(&g.name, id, g.spec.desired, &d.target_groups)
                    .await?;
            }
            Ok(OutputMap::new())
        })
    }
}
