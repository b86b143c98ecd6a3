//! Launch template of a node pool: AMI (resolved from the SSM public parameter by the
//! builder), instance type, security groups, instance profile, user-data, IMDSv2 required
//! (HttpTokens=required, hop limit 1: a pod, one network hop further, gets no metadata token
//! and so never the node role's credentials).
//! A change makes a new version, set as default; the ASG uses `$Latest`.

use std::hash::{Hash, Hasher};

use base64::Engine;
use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::LaunchTemplates;
use crate::aws::ec2::LaunchTemplateData;
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
}

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
}

fn hash(s: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}

impl LtState {
    fn data(&self) -> LaunchTemplateData {
        LaunchTemplateData {
            image_id: self.image_id.clone(),
            instance_type: self.instance_type.clone(),
            user_data: self.user_data_b64.clone(),
            security_group_ids: self.security_groups.clone(),
            http_tokens_required: self.http_tokens_required,
            hop_limit: self.hop_limit,
            instance_profile: self.instance_profile.clone(),
            instance_tags: self.instance_tags.clone(),
        }
    }
}

impl<C: LaunchTemplates> Resource<C> for LaunchTemplate {
    type State = LtState;
    fn key(&self) -> TaskKey {
        TaskKey::new("launch-template", &self.name)
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
                },
                outputs: out_id(&t.id),
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
            let id = cx
                .create_launch_template(&self.name, &self.template_name, &d.data())
                .await?;
            Ok(out_id(&id))
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
            cx.update_launch_template(&a.outputs["id"], &d.data())
                .await?;
            Ok(OutputMap::new())
        })
    }
}
