//! Auto Scaling groups (found with one `DescribeAutoScalingGroups` filtered by tag), and their
//! scaling activities (why instances are missing).

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_autoscaling::types::{Filter, LaunchTemplateSpecification, Tag};

use super::{tag_map, Cloud, TAG_ENV};
use crate::engine::retry::Consistency::{AfterCreate, Strong};
use crate::engine::CloudError;

/// Managed settings of an Auto Scaling group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AsgSpec {
    pub launch_template_id: String,
    pub min: i32,
    pub max: i32,
    pub desired: i32,
    /// Sorted subnet ids.
    pub subnets: Vec<String>,
    /// Sorted target group ARNs.
    pub target_groups: Vec<String>,
    /// `EC2` or `ELB` (an instance its target groups call unhealthy is replaced).
    pub health_check_type: String,
    /// Seconds after launch before health checks count.
    pub health_check_grace_secs: i32,
}

/// One scaling activity of a group (DescribeScalingActivities), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingActivity {
    /// `Successful`, `Failed`, `Cancelled`, `InProgress`, `WaitingForSpotInstanceId` …
    pub status: String,
    /// Why it failed or what it waits for (quota, capacity, instance profile …); may be empty.
    pub status_message: String,
    /// What the activity does ("Launching a new EC2 instance …").
    pub description: String,
    /// RFC 3339, empty when not reported.
    pub start_time: String,
}

#[derive(Debug, Clone)]
pub struct AsgInstance {
    pub id: String,
    pub lifecycle: String,
    pub health: String,
}

#[derive(Debug, Clone)]
pub struct AsgInfo {
    pub name: String,
    pub spec: AsgSpec,
    pub instances: Vec<AsgInstance>,
    pub tags: BTreeMap<String, String>,
}

/// Auto Scaling groups, with the waiter for instances in service.
pub trait AutoScalingGroups: Send + Sync {
    fn auto_scaling_groups(&self) -> impl Future<Output = Result<Vec<AsgInfo>, CloudError>> + Send;
    fn create_auto_scaling_group(
        &self,
        name: &str,
        aws_name: &str,
        spec: &AsgSpec,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn update_auto_scaling_group(
        &self,
        aws_name: &str,
        actual: &AsgSpec,
        spec: &AsgSpec,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Waiter: at least `desired` instances `InService` (real AWS: minutes; moto: at once).
    fn wait_asg_in_service(
        &self,
        aws_name: &str,
        desired: i32,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// The group's most recent scaling activities, newest first (at most `max`).
    fn scaling_activities(
        &self,
        aws_name: &str,
        max: i32,
    ) -> impl Future<Output = Result<Vec<ScalingActivity>, CloudError>> + Send;
    /// Terminates one instance of the group without lowering its desired capacity, so the
    /// group launches a replacement from its launch template (`$Latest`).
    fn replace_instance(
        &self,
        instance_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Waiter: the group has `desired` instances `InService`, `gone` is not among them, and
    /// each is `healthy` in every one of `target_groups`.
    fn wait_replaced(
        &self,
        aws_name: &str,
        gone: &str,
        desired: i32,
        target_groups: &[String],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Force-delete (terminates its instances), then wait until it is gone.
    fn delete_auto_scaling_group(
        &self,
        aws_name: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

impl AutoScalingGroups for Cloud {
    async fn auto_scaling_groups(&self) -> Result<Vec<AsgInfo>, CloudError> {
        self.inventory
            .cached("asg:groups", || async {
                let r = self
                    .call("autoscaling:DescribeAutoScalingGroups", Strong, || {
                        self.asg
                            .describe_auto_scaling_groups()
                            .filters(
                                Filter::builder()
                                    .name(format!("tag:{TAG_ENV}"))
                                    .values(&self.env)
                                    .build(),
                            )
                            .send()
                    })
                    .await?;
                Ok(r.auto_scaling_groups()
                    .iter()
                    .map(|g| {
                        let mut subnets: Vec<String> = g
                            .vpc_zone_identifier()
                            .unwrap_or_default()
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect();
                        subnets.sort();
                        let mut tgs = g.target_group_arns().to_vec();
                        tgs.sort();
                        AsgInfo {
                            name: g.auto_scaling_group_name().unwrap_or_default().into(),
                            spec: AsgSpec {
                                launch_template_id: g
                                    .launch_template()
                                    .and_then(|l| l.launch_template_id())
                                    .unwrap_or_default()
                                    .into(),
                                min: g.min_size().unwrap_or_default(),
                                max: g.max_size().unwrap_or_default(),
                                desired: g.desired_capacity().unwrap_or_default(),
                                subnets,
                                target_groups: tgs,
                                health_check_type: g.health_check_type().unwrap_or_default().into(),
                                health_check_grace_secs: g
                                    .health_check_grace_period()
                                    .unwrap_or_default(),
                            },
                            instances: g
                                .instances()
                                .iter()
                                .map(|i| AsgInstance {
                                    id: i.instance_id().unwrap_or_default().into(),
                                    lifecycle: i
                                        .lifecycle_state()
                                        .map(|s| s.as_str().to_string())
                                        .unwrap_or_default(),
                                    health: i.health_status().unwrap_or_default().into(),
                                })
                                .collect(),
                            tags: tag_map(g.tags().iter().map(|t| (t.key(), t.value()))),
                        }
                    })
                    .filter(|g| g.tags.get(TAG_ENV) == Some(&self.env))
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_auto_scaling_group(
        &self,
        name: &str,
        aws_name: &str,
        spec: &AsgSpec,
    ) -> Result<(), CloudError> {
        let tags: Vec<Tag> = self
            .tags_for(name)
            .into_iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .propagate_at_launch(true)
                    .resource_id(aws_name)
                    .resource_type("auto-scaling-group")
                    .build()
            })
            .collect();
        self.call("autoscaling:CreateAutoScalingGroup", AfterCreate, || {
            self.asg
                .create_auto_scaling_group()
                .auto_scaling_group_name(aws_name)
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(&spec.launch_template_id)
                        .version("$Latest")
                        .build(),
                )
                .min_size(spec.min)
                .max_size(spec.max)
                .desired_capacity(spec.desired)
                .vpc_zone_identifier(spec.subnets.join(","))
                .health_check_type(&spec.health_check_type)
                .health_check_grace_period(spec.health_check_grace_secs)
                .set_target_group_arns(Some(spec.target_groups.clone()))
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn update_auto_scaling_group(
        &self,
        aws_name: &str,
        actual: &AsgSpec,
        spec: &AsgSpec,
    ) -> Result<(), CloudError> {
        self.call("autoscaling:UpdateAutoScalingGroup", Strong, || {
            self.asg
                .update_auto_scaling_group()
                .auto_scaling_group_name(aws_name)
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(&spec.launch_template_id)
                        .version("$Latest")
                        .build(),
                )
                .min_size(spec.min)
                .max_size(spec.max)
                .desired_capacity(spec.desired)
                .vpc_zone_identifier(spec.subnets.join(","))
                .health_check_type(&spec.health_check_type)
                .health_check_grace_period(spec.health_check_grace_secs)
                .send()
        })
        .await?;
        let add: Vec<String> = spec
            .target_groups
            .iter()
            .filter(|t| !actual.target_groups.contains(t))
            .cloned()
            .collect();
        let remove: Vec<String> = actual
            .target_groups
            .iter()
            .filter(|t| !spec.target_groups.contains(t))
            .cloned()
            .collect();
        if !add.is_empty() {
            self.call("autoscaling:AttachLoadBalancerTargetGroups", Strong, || {
                self.asg
                    .attach_load_balancer_target_groups()
                    .auto_scaling_group_name(aws_name)
                    .set_target_group_arns(Some(add.clone()))
                    .send()
            })
            .await?;
        }
        if !remove.is_empty() {
            self.call("autoscaling:DetachLoadBalancerTargetGroups", Strong, || {
                self.asg
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(aws_name)
                    .set_target_group_arns(Some(remove.clone()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }

    async fn replace_instance(&self, instance_id: &str) -> Result<(), CloudError> {
        self.call(
            "autoscaling:TerminateInstanceInAutoScalingGroup",
            Strong,
            || {
                self.asg
                    .terminate_instance_in_auto_scaling_group()
                    .instance_id(instance_id)
                    .should_decrement_desired_capacity(false)
                    .send()
            },
        )
        .await
        .map(|_| ())
    }

    async fn wait_replaced(
        &self,
        aws_name: &str,
        gone: &str,
        desired: i32,
        target_groups: &[String],
    ) -> Result<(), CloudError> {
        use super::elb::TargetGroups;
        self.wait_for(
            &format!("Auto Scaling group {aws_name}: {gone} replaced, {desired} instances in service and healthy"),
            || async {
                let r = self
                    .call("autoscaling:DescribeAutoScalingGroups", Strong, || {
                        self.asg
                            .describe_auto_scaling_groups()
                            .auto_scaling_group_names(aws_name)
                            .send()
                    })
                    .await?;
                let members: Vec<(String, String)> = r
                    .auto_scaling_groups()
                    .iter()
                    .flat_map(|g| g.instances())
                    .map(|i| {
                        (
                            i.instance_id().unwrap_or_default().to_string(),
                            i.lifecycle_state()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
                if members.iter().any(|(id, _)| id == gone) {
                    return Ok(None);
                }
                let in_service: Vec<&String> = members
                    .iter()
                    .filter(|(_, state)| state == "InService")
                    .map(|(id, _)| id)
                    .collect();
                if (in_service.len() as i32) < desired {
                    return Ok(None);
                }
                for tg in target_groups {
                    let health = self.target_health(tg).await?;
                    let healthy = |id: &String| {
                        health
                            .iter()
                            .any(|h| &h.target == id && h.state == "healthy")
                    };
                    if !in_service.iter().all(|id| healthy(id)) {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )
        .await
    }

    async fn wait_asg_in_service(&self, aws_name: &str, desired: i32) -> Result<(), CloudError> {
        if desired <= 0 {
            return Ok(());
        }
        self.wait_for(
            &format!("Auto Scaling group {aws_name}: {desired} instances in service"),
            || async {
                let r = self
                    .call("autoscaling:DescribeAutoScalingGroups", AfterCreate, || {
                        self.asg
                            .describe_auto_scaling_groups()
                            .auto_scaling_group_names(aws_name)
                            .send()
                    })
                    .await?;
                let in_service = r
                    .auto_scaling_groups()
                    .iter()
                    .flat_map(|g| g.instances())
                    .filter(|i| {
                        i.lifecycle_state()
                            .is_some_and(|s| s.as_str() == "InService")
                    })
                    .count();
                Ok((in_service as i32 >= desired).then_some(()))
            },
        )
        .await
    }

    async fn scaling_activities(
        &self,
        aws_name: &str,
        max: i32,
    ) -> Result<Vec<ScalingActivity>, CloudError> {
        let r = self
            .call("autoscaling:DescribeScalingActivities", Strong, || {
                self.asg
                    .describe_scaling_activities()
                    .auto_scaling_group_name(aws_name)
                    .max_records(max)
                    .send()
            })
            .await?;
        Ok(r.activities()
            .iter()
            .map(|a| ScalingActivity {
                status: a
                    .status_code()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                status_message: a.status_message().unwrap_or_default().into(),
                description: a.description().unwrap_or_default().into(),
                start_time: a
                    .start_time()
                    .and_then(|t| t.fmt(aws_smithy_types::date_time::Format::DateTime).ok())
                    .unwrap_or_default(),
            })
            .collect())
    }

    async fn delete_auto_scaling_group(&self, aws_name: &str) -> Result<(), CloudError> {
        self.call("autoscaling:DeleteAutoScalingGroup", Strong, || {
            self.asg
                .delete_auto_scaling_group()
                .auto_scaling_group_name(aws_name)
                .force_delete(true)
                .send()
        })
        .await?;
        self.wait_for(
            &format!("Auto Scaling group {aws_name} deleted"),
            || async {
                let r = self
                    .call("autoscaling:DescribeAutoScalingGroups", Strong, || {
                        self.asg
                            .describe_auto_scaling_groups()
                            .auto_scaling_group_names(aws_name)
                            .send()
                    })
                    .await?;
                Ok(r.auto_scaling_groups().is_empty().then_some(()))
            },
        )
        .await
    }
}
