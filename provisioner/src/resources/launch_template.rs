//! Launch template of a node pool: AMI (resolved from the SSM public parameter by the
//! builder), instance type, security groups, instance profile, user-data, IMDSv2 required
//! (HttpTokens=required, hop limit 1: a pod, one network hop further, gets no metadata token
//! and so never the node role's credentials).
//! The root volume: gp3, encrypted, deleted with the instance, `root_volume_gb` in size, on
//! the AMI's root device (its `RootDeviceName`, read by DescribeImages when the template or
//! a version is written; `/dev/sda1`, the Ubuntu AMIs', if the image is not visible).
//! A change makes a new version, set as default; the ASG uses `$Latest`.

use std::hash::{Hash, Hasher};

use base64::Engine;
use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::LaunchTemplates;
use crate::aws::ec2::{LaunchTemplateData, RootVolume};
use crate::aws::TAG_CONFIG;
use crate::engine::{
    FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey, UNKNOWN,
};

/// How the user-data is produced from the inputs; `None` while an input (the NLB's DNS
/// name) is not known yet, in a plan.
pub type UserDataFn = Box<dyn Fn(&Outputs) -> Result<Option<String>, TaskError> + Send + Sync>;

pub struct LaunchTemplate {
    pub name: String,
    pub template_name: String,
    pub image_id: String,
    pub instance_type: String,
    pub security_groups: Vec<TaskKey>,
    pub instance_profile: Option<TaskKey>,
    pub extra_deps: Vec<TaskKey>,
    pub user_data: UserDataFn,
    pub instance_tags: Vec<(String, String)>,
    /// GiB.
    pub root_volume_gb: i32,
    /// Where `image_id` came from, kept as each version's description (see
    /// [`crate::model::amis`]: a pool stays on its AMI until this source changes).
    pub ami_source: String,
}

/// The root device of the Ubuntu AMIs the template defaults to, for an AMI DescribeImages
/// does not show.
const FALLBACK_ROOT_DEVICE: &str = "/dev/sda1";
/// The root volume's EBS type.
const ROOT_VOLUME_TYPE: &str = "gp3";

#[derive(Debug, Clone, Serialize)]
pub struct LtState {
    pub image_id: String,
    pub instance_type: String,
    pub security_groups: Vec<String>,
    pub instance_profile: Option<String>,
    pub http_tokens_required: bool,
    pub hop_limit: i32,
    /// Hash of the base64 user-data (the script itself is long and not secret, but noisy).
    pub user_data_hash: String,
    #[serde(skip)]
    pub user_data_b64: String,
    #[serde(skip)]
    pub instance_tags: Vec<(String, String)>,
    /// GiB; 0 when the template has no EBS block device mapping.
    pub root_volume_gb: i32,
    pub root_volume_type: String,
    pub root_volume_encrypted: bool,
    pub root_volume_delete_on_termination: bool,
    /// Not diffed: a new description alone is no reason for a new version.
    #[serde(skip)]
    pub ami_source: String,
}

/// The configuration hash instances carry in [`TAG_CONFIG`]; `None` while a part is unknown.
fn config_hash(parts: &[&str]) -> Option<String> {
    if parts.iter().any(|p| !known(p)) {
        return None;
    }
    Some(hash(&parts.join("\n")))
}

/// A template's outputs: its id, and the configuration hash its instances carry.
fn lt_outputs(id: &str, tags: &[(String, String)]) -> OutputMap {
    let mut out = out_id(id);
    let config = tags
        .iter()
        .find(|(k, _)| k == TAG_CONFIG)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    out.insert("config".into(), config);
    out
}

fn hash(s: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}

impl LtState {
    /// What EC2 is sent; `root_device`: the AMI's root device name.
    fn data(&self, root_device: &str) -> LaunchTemplateData {
        LaunchTemplateData {
            image_id: self.image_id.clone(),
            instance_type: self.instance_type.clone(),
            user_data: self.user_data_b64.clone(),
            security_group_ids: self.security_groups.clone(),
            http_tokens_required: self.http_tokens_required,
            hop_limit: self.hop_limit,
            instance_profile: self.instance_profile.clone(),
            instance_tags: self.instance_tags.clone(),
            root_volume: Some(RootVolume {
                device_name: root_device.to_string(),
                size_gb: self.root_volume_gb,
                volume_type: self.root_volume_type.clone(),
                encrypted: self.root_volume_encrypted,
                delete_on_termination: self.root_volume_delete_on_termination,
            }),
            version_description: self.ami_source.clone(),
        }
    }
}

impl LaunchTemplate {
    /// The AMI's root device name, where the root volume's mapping goes.
    async fn root_device<C: LaunchTemplates>(
        &self,
        cx: &C,
        image_id: &str,
    ) -> Result<String, TaskError> {
        Ok(match cx.image_root_device(image_id).await? {
            Some(d) => d,
            None => {
                tracing::warn!(
                    "node_pools.{}: image {image_id} not visible to DescribeImages; root volume on {FALLBACK_ROOT_DEVICE}",
                    self.name
                );
                FALLBACK_ROOT_DEVICE.to_string()
            }
        })
    }
}

impl<C: LaunchTemplates> Resource<C> for LaunchTemplate {
    type State = LtState;
    fn key(&self) -> TaskKey {
        TaskKey::new("launch-template", &self.name)
    }
    fn output_names(&self) -> &'static [&'static str] {
        &["id", "config"]
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = self.security_groups.clone();
        d.extend(self.instance_profile.iter().cloned());
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<LtState, TaskError> {
        let mut sgs = Vec::new();
        for g in &self.security_groups {
            sgs.push(i.id(g)?);
        }
        sgs.sort();
        let b64 = match (self.user_data)(i)? {
            Some(ud) => base64::engine::general_purpose::STANDARD.encode(ud.as_bytes()),
            None => UNKNOWN.to_string(),
        };
        let mut instance_tags = self.instance_tags.clone();
        let config = config_hash(&[
            &self.image_id,
            &self.instance_type,
            &sgs.join(","),
            &self
                .instance_profile
                .as_ref()
                .map(|p| i.get(p, "name"))
                .transpose()?
                .unwrap_or_default(),
            &b64,
            &self.root_volume_gb.to_string(),
        ]);
        if let Some(c) = &config {
            instance_tags.push((TAG_CONFIG.to_string(), c.clone()));
        }
        instance_tags.sort();
        Ok(LtState {
            image_id: self.image_id.clone(),
            instance_type: self.instance_type.clone(),
            security_groups: sgs,
            instance_profile: match &self.instance_profile {
                Some(p) => Some(i.get(p, "name")?),
                None => None,
            },
            http_tokens_required: true,
            hop_limit: 1,
            user_data_hash: if known(&b64) {
                hash(&b64)
            } else {
                UNKNOWN.to_string()
            },
            user_data_b64: b64,
            instance_tags,
            root_volume_gb: self.root_volume_gb,
            root_volume_type: ROOT_VOLUME_TYPE.to_string(),
            root_volume_encrypted: true,
            root_volume_delete_on_termination: true,
            ami_source: self.ami_source.clone(),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a LtState,
    ) -> BoxFuture<'a, Result<Option<Found<LtState>>, TaskError>> {
        Box::pin(async move {
            let Some(t) = by_name(cx.launch_templates().await?, &self.name, |t| &t.tags) else {
                return Ok(None);
            };
            let Some(data) = cx.launch_template_data(&t.id).await? else {
                return Ok(None);
            };
            let _ = d;
            let root = data.root_volume.unwrap_or(RootVolume {
                device_name: String::new(),
                size_gb: 0,
                volume_type: String::new(),
                encrypted: false,
                delete_on_termination: false,
            });
            let instance_tags_of_found = data.instance_tags.clone();
            Ok(Some(Found {
                state: LtState {
                    image_id: data.image_id,
                    instance_type: data.instance_type,
                    security_groups: data.security_group_ids,
                    instance_profile: data.instance_profile,
                    http_tokens_required: data.http_tokens_required,
                    hop_limit: data.hop_limit,
                    user_data_hash: hash(&data.user_data),
                    user_data_b64: data.user_data,
                    instance_tags: data.instance_tags,
                    root_volume_gb: root.size_gb,
                    root_volume_type: root.volume_type,
                    root_volume_encrypted: root.encrypted,
                    root_volume_delete_on_termination: root.delete_on_termination,
                    ami_source: data.version_description,
                },
                outputs: lt_outputs(&t.id, &instance_tags_of_found),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a LtState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            if d.security_groups.iter().any(|s| !known(s)) || !known(&d.user_data_b64) {
                return Err(TaskError::NotReady("security groups not known".into()));
            }
            let dev = self.root_device(cx, &d.image_id).await?;
            let id = cx
                .create_launch_template(&self.name, &self.template_name, &d.data(&dev))
                .await?;
            Ok(lt_outputs(&id, &d.instance_tags))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<LtState>,
        d: &'a LtState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let dev = self.root_device(cx, &d.image_id).await?;
            cx.update_launch_template(&a.outputs["id"], &d.data(&dev))
                .await?;
            Ok(lt_outputs(&a.outputs["id"], &d.instance_tags))
        })
    }
}
