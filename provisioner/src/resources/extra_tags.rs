//! The template's extra `tags` on what already exists (`tags/extra`): every resource of the
//! environment whose tags can be changed in place (EC2, load balancers and target groups, Auto
//! Scaling groups, Route 53 zones and health checks) gets each extra tag with the template's
//! value, and loses a key the template no longer has — only a key it was given by the
//! provisioner (its `provisioner:tag-keys` tag lists them), never one someone else added. Runs
//! after every other task, on the environment's listings (cached where they were read already).
//!
//! Not covered: IAM roles and instance profiles and SSM parameters keep the extra tags they
//! were created with.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::aws::api::Retag;
use crate::aws::tags::RETAGGABLE;
use crate::aws::{managed_keys_tag, Cloud, TAG_ENV, TAG_EXTRA_KEYS};
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct ExtraTags {
    pub env: String,
    /// The template's `tags`.
    pub tags: BTreeMap<String, String>,
    /// Every other task: this one runs last.
    pub after: Vec<TaskKey>,
}

/// One resource's tag changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retagging {
    pub kind: String,
    pub id: String,
    pub set: Vec<(String, String)>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagsState {
    /// `kind/id: +key=value -key` per resource whose tags differ from the template.
    pub outdated: Vec<String>,
    #[serde(skip)]
    changes: Vec<Retagging>,
}

/// What must change on a resource tagged `actual` for the template's `extra` tags.
pub fn retagging(
    extra: &BTreeMap<String, String>,
    actual: &BTreeMap<String, String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut desired: Vec<(String, String)> =
        extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if let Some(keys) = managed_keys_tag(extra.keys().map(String::as_str)) {
        desired.push((TAG_EXTRA_KEYS.to_string(), keys));
    }
    let set: Vec<(String, String)> = desired
        .into_iter()
        .filter(|(k, v)| actual.get(k) != Some(v))
        .collect();
    let mut remove: Vec<String> = actual
        .get(TAG_EXTRA_KEYS)
        .map(|keys| {
            keys.split(',')
                .filter(|k| !k.is_empty() && !extra.contains_key(*k) && actual.contains_key(*k))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if extra.is_empty() && actual.contains_key(TAG_EXTRA_KEYS) {
        remove.push(TAG_EXTRA_KEYS.to_string());
    }
    (set, remove)
}

fn describe(r: &Retagging) -> String {
    let mut parts: Vec<String> = r.set.iter().map(|(k, v)| format!("+{k}={v}")).collect();
    parts.extend(r.remove.iter().map(|k| format!("-{k}")));
    format!("{}/{}: {}", r.kind, r.id, parts.join(" "))
}

impl Resource<Cloud> for ExtraTags {
    type State = TagsState;
    fn key(&self) -> TaskKey {
        TaskKey::new("tags", "extra")
    }
    fn deps(&self) -> Vec<TaskKey> {
        self.after.clone()
    }
    fn output_names(&self) -> &'static [&'static str] {
        &[]
    }
    fn desired(&self, _: &Outputs) -> Result<TagsState, TaskError> {
        Ok(TagsState {
            outdated: Vec::new(),
            changes: Vec::new(),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a Cloud,
        _: &'a TagsState,
    ) -> BoxFuture<'a, Result<Option<Found<TagsState>>, TaskError>> {
        Box::pin(async move {
            let mut changes = Vec::new();
            for item in crate::discover::taggable(cx).await? {
                let kind = item.key.kind();
                if !RETAGGABLE.contains(&kind)
                    || item.tags.get(TAG_ENV).map(String::as_str) != Some(self.env.as_str())
                {
                    continue;
                }
                let (set, remove) = retagging(&self.tags, &item.tags);
                if set.is_empty() && remove.is_empty() {
                    continue;
                }
                changes.push(Retagging {
                    kind: kind.to_string(),
                    id: item.key.name().to_string(),
                    set,
                    remove,
                });
            }
            Ok(Some(Found {
                state: TagsState {
                    outdated: changes.iter().map(describe).collect(),
                    changes,
                },
                outputs: OutputMap::new(),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        _: &'a Cloud,
        _: &'a TagsState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cloud,
        a: &'a Found<TagsState>,
        _: &'a TagsState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            for c in &a.state.changes {
                cx.retag(&c.kind, &c.id, &c.set, &c.remove).await?;
            }
            Ok(OutputMap::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn changed_and_dropped_keys_are_fixed_and_foreign_ones_kept() {
        let extra = map(&[("team", "geo"), ("stage", "prod")]);
        let actual = map(&[
            ("provisioner:env", "dev"),
            ("team", "maps"),
            ("cost-center", "42"),
            ("owner", "someone"),
            ("provisioner:tag-keys", "cost-center,team"),
        ]);
        let (set, remove) = retagging(&extra, &actual);
        assert_eq!(
            set,
            [
                ("stage".to_string(), "prod".to_string()),
                ("team".to_string(), "geo".to_string()),
                ("provisioner:tag-keys".to_string(), "stage,team".to_string()),
            ]
        );
        // `cost-center` was ours and left the template; `owner` was never ours.
        assert_eq!(remove, ["cost-center"]);
        // Up to date: nothing.
        let now = map(&[
            ("provisioner:env", "dev"),
            ("team", "geo"),
            ("stage", "prod"),
            ("provisioner:tag-keys", "stage,team"),
            ("owner", "someone"),
        ]);
        assert_eq!(retagging(&extra, &now), (vec![], vec![]));
        // No extra tags any more: ours go, the record too.
        let (set, remove) = retagging(&BTreeMap::new(), &now);
        assert!(set.is_empty());
        assert_eq!(remove, ["stage", "team", "provisioner:tag-keys"]);
    }
}
