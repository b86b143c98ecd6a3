//! Changing the tags of an existing resource, one call family per service: EC2 `CreateTags`
//! / `DeleteTags`, ELBv2 `AddTags` / `RemoveTags`, Auto Scaling `CreateOrUpdateTags` /
//! `DeleteTags` (propagated to the instances it launches), Route 53 `ChangeTagsForResource`.
//! The resource is named as `crate::discover` keys it (`vpc/…`, `lb/<arn>`, `asg/<name>`,
//! `zone/<id>`, `hc/<id>` …).

use std::future::Future;

use super::Cloud;
use crate::engine::retry::Consistency::Strong;
use crate::engine::{CloudError, ErrorKind};

/// Sets and removes tags on one resource of the environment.
pub trait Retag: Send + Sync {
    /// `kind`: the discover kind (`vpc`, `subnet`, `lb`, `tg`, `asg`, `zone`, `hc` …).
    fn retag(
        &self,
        kind: &str,
        id: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// The discover kinds whose tags [`Retag`] can change.
pub const RETAGGABLE: &[&str] = &[
    "vpc", "subnet", "igw", "eip", "nat", "rtb", "pcx", "sg", "lt", "instance", "lb", "tg", "asg",
    "zone", "hc",
];

impl Retag for Cloud {
    async fn retag(
        &self,
        kind: &str,
        id: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), CloudError> {
        match kind {
            "lb" | "tg" => self.retag_elb(id, set, remove).await,
            "asg" => self.retag_asg(id, set, remove).await,
            "zone" | "hc" => self.retag_route53(kind, id, set, remove).await,
            k if RETAGGABLE.contains(&k) => self.retag_ec2(id, set, remove).await,
            other => Err(CloudError::new(
                ErrorKind::Other,
                "retag",
                "",
                format!("tags of {other}/{id} cannot be changed here"),
            )),
        }
    }
}

impl Cloud {
    async fn retag_ec2(
        &self,
        id: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), CloudError> {
        use aws_sdk_ec2::types::Tag;
        if !set.is_empty() {
            let tags: Vec<Tag> = set
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            self.call("ec2:CreateTags", Strong, || {
                self.ec2
                    .create_tags()
                    .resources(id)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        }
        if !remove.is_empty() {
            let tags: Vec<Tag> = remove
                .iter()
                .map(|k| Tag::builder().key(k).build())
                .collect();
            self.call("ec2:DeleteTags", Strong, || {
                self.ec2
                    .delete_tags()
                    .resources(id)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }

    async fn retag_elb(
        &self,
        arn: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), CloudError> {
        use aws_sdk_elasticloadbalancingv2::types::Tag;
        if !set.is_empty() {
            let tags: Vec<Tag> = set
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            self.call("elasticloadbalancing:AddTags", Strong, || {
                self.elb
                    .add_tags()
                    .resource_arns(arn)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        }
        if !remove.is_empty() {
            self.call("elasticloadbalancing:RemoveTags", Strong, || {
                self.elb
                    .remove_tags()
                    .resource_arns(arn)
                    .set_tag_keys(Some(remove.to_vec()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }

    async fn retag_asg(
        &self,
        name: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), CloudError> {
        use aws_sdk_autoscaling::types::Tag;
        let tag = |k: &str, v: Option<&str>| {
            Tag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(k)
                .set_value(v.map(String::from))
                .propagate_at_launch(true)
                .build()
        };
        if !set.is_empty() {
            let tags: Vec<Tag> = set.iter().map(|(k, v)| tag(k, Some(v))).collect();
            self.call("autoscaling:CreateOrUpdateTags", Strong, || {
                self.asg
                    .create_or_update_tags()
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        }
        if !remove.is_empty() {
            let tags: Vec<Tag> = remove.iter().map(|k| tag(k, None)).collect();
            self.call("autoscaling:DeleteTags", Strong, || {
                self.asg.delete_tags().set_tags(Some(tags.clone())).send()
            })
            .await?;
        }
        Ok(())
    }

    async fn retag_route53(
        &self,
        kind: &str,
        id: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), CloudError> {
        use aws_sdk_route53::types::{Tag, TagResourceType};
        let resource_type = if kind == "zone" {
            TagResourceType::Hostedzone
        } else {
            TagResourceType::Healthcheck
        };
        let tags: Vec<Tag> = set
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.call("route53:ChangeTagsForResource", Strong, || {
            self.r53
                .change_tags_for_resource()
                .resource_type(resource_type.clone())
                .resource_id(id)
                .set_add_tags((!tags.is_empty()).then(|| tags.clone()))
                .set_remove_tag_keys((!remove.is_empty()).then(|| remove.to_vec()))
                .send()
        })
        .await
        .map(|_| ())
    }
}
