//! Server-side apply of the rendered workload, pruning and rollout waits (kube-rs).
//!
//! - Multi-document YAML is read into [`DynamicObject`]s; each kind is resolved through API
//!   discovery (one `GET /api/v1` or `/apis/<group>/<version>` per group-version, cached).
//! - Every object is applied with one field manager, [`FIELD_MANAGER`], and `force` (the
//!   provisioner owns the fields it sets), and carries the label [`ENV_LABEL`]`=<env>`.
//! - The environment's Namespace records the applied set in the annotation
//!   [`APPLIED_SET_ANNOTATION`] (a JSON list of [`ObjectRef`]). On the next apply, whatever
//!   that list had and the new set has not is **pruned** — after checking that the live
//!   object still carries `provisioner.env=<env>` (and with a uid precondition); anything
//!   else is left alone. While an apply runs the record holds the union of the old and new
//!   sets, narrowed to the new set only once the prune has finished, so an apply that fails
//!   half-way still prunes next time.
//! - Rollouts (Deployment, StatefulSet, Job) are polled until done, each under
//!   `tokio::time::timeout`; a failure reports the failing pods' events and log tails.

// Errors here end a deploy and are built once: their size on the cold path does not matter,
// and keeping the variants flat keeps them easy to match on.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, LogParams, Patch, PatchParams, Preconditions,
};
use kube::core::{GroupVersion, GroupVersionKind};
use kube::discovery::{self, ApiCapabilities, ApiGroup, ApiResource, Scope};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};

/// The one field manager of every apply.
pub const FIELD_MANAGER: &str = "provisioner";
/// Label on every applied object: the environment's name.
pub const ENV_LABEL: &str = "provisioner.env";
/// Annotation on the environment's Namespace: the JSON list of applied objects.
pub const APPLIED_SET_ANNOTATION: &str = "provisioner.env/applied-set";

/// Identity of an applied object, as recorded in [`APPLIED_SET_ANNOTATION`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    fn gvk(&self) -> Result<GroupVersionKind, ApplyError> {
        let gv: GroupVersion = self.api_version.parse().map_err(|_| ApplyError::Parse {
            document: 0,
            reason: format!("invalid apiVersion `{}`", self.api_version),
        })?;
        Ok(GroupVersionKind::gvk(&gv.group, &gv.version, &self.kind))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("manifest document {document}: {reason}")]
    Parse { document: usize, reason: String },
    #[error("the applied set must contain the Namespace `{0}` that records it")]
    MissingNamespace(String),
    #[error("API discovery for {api_version} {kind}: {source}")]
    Discovery {
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    #[error("the API server does not serve {api_version} {kind}")]
    UnknownKind { api_version: String, kind: String },
    #[error("server-side apply of {object}: {source}")]
    Apply {
        object: ObjectRef,
        #[source]
        source: kube::Error,
    },
    /// The API server refused to change a field that is fixed once the object exists (422).
    #[error(
        "{object}: Kubernetes cannot change {field} of an existing {kind} ({message}); {advice}"
    )]
    Immutable {
        object: ObjectRef,
        kind: String,
        field: String,
        message: String,
        advice: String,
    },
    #[error("pruning {object}: {source}")]
    Prune {
        object: ObjectRef,
        #[source]
        source: kube::Error,
    },
    #[error("reading the applied set from Namespace {namespace}: {source}")]
    AppliedSet {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("rollout of {object} failed: {reason}\n{diagnostics}")]
    Rollout {
        object: ObjectRef,
        reason: String,
        /// Events and log tails of the failing pods.
        diagnostics: String,
    },
}

/// An apply's error: a 422 for a field fixed at creation says which and what to do.
fn apply_error(object: &ObjectRef, source: kube::Error) -> ApplyError {
    let kube::Error::Api(status) = &source else {
        return ApplyError::Apply {
            object: object.clone(),
            source,
        };
    };
    let fixed = status.message.contains("field is immutable")
        || status.message.contains("Forbidden: updates to");
    if status.code != 422 || !fixed {
        return ApplyError::Apply {
            object: object.clone(),
            source,
        };
    }
    let (field, advice) = match object.kind.as_str() {
        "StatefulSet" if status.message.contains("updates to statefulset spec") => (
            "spec.volumeClaimTemplates (or another field but replicas, template, \
             updateStrategy, ordinals, minReadySeconds, persistentVolumeClaimRetentionPolicy)"
                .to_string(),
            format!(
                "its volume claims (storage class, size) are fixed when it is created: to \
                 replace it keeping its pods and volumes, run `kubectl -n {} delete statefulset \
                 {} --cascade=orphan`, then `up` again (existing claims keep their storage \
                 class; move the data itself with a backup and restore)",
                object.namespace.as_deref().unwrap_or("default"),
                object.name
            ),
        ),
        _ => (
            status
                .message
                .split(':')
                .nth(1)
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| "a field".to_string()),
            "delete the object and run `up` again to recreate it".to_string(),
        ),
    };
    ApplyError::Immutable {
        object: object.clone(),
        kind: object.kind.clone(),
        field,
        message: status.message.clone(),
        advice,
    }
}

/// Timing of the rollout waits.
#[derive(Clone, Debug)]
pub struct WaitConfig {
    /// Deadline of each rollout.
    pub rollout_timeout: Duration,
    /// Pause between two status reads.
    pub poll_interval: Duration,
    /// Lines of each failing container's log in a failure report.
    pub log_tail_lines: i64,
}

impl Default for WaitConfig {
    fn default() -> Self {
        Self {
            rollout_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(3),
            log_tail_lines: 20,
        }
    }
}

/// What an apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: Vec<ObjectRef>,
    pub pruned: Vec<ObjectRef>,
    /// Recorded objects not pruned because they no longer carry our label (or their kind
    /// is no longer served).
    pub skipped: Vec<(ObjectRef, String)>,
}

/// Parses multi-document YAML into objects (empty documents skipped). Each must have
/// `apiVersion`, `kind` and `metadata.name`.
pub fn parse_documents(yaml: &str) -> Result<Vec<DynamicObject>, ApplyError> {
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let value = serde_json::Value::deserialize(doc).map_err(|e| ApplyError::Parse {
            document: i + 1,
            reason: e.to_string(),
        })?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value).map_err(|e| ApplyError::Parse {
            document: i + 1,
            reason: e.to_string(),
        })?;
        if obj.types.is_none() || obj.metadata.name.is_none() {
            return Err(ApplyError::Parse {
                document: i + 1,
                reason: "apiVersion, kind and metadata.name are required".into(),
            });
        }
        out.push(obj);
    }
    Ok(out)
}

/// The annotation value: the sorted refs as a JSON list.
fn record(set: &BTreeSet<ObjectRef>) -> String {
    serde_json::to_string(&set.iter().collect::<Vec<_>>()).expect("object refs serialise")
}

fn object_ref(obj: &DynamicObject) -> ObjectRef {
    let types = obj.types.clone().unwrap_or_default();
    ObjectRef {
        api_version: types.api_version,
        kind: types.kind,
        namespace: obj.metadata.namespace.clone(),
        name: obj.name_any(),
    }
}

/// Applies, prunes and waits for one environment's objects.
pub struct Applier {
    client: Client,
    env: String,
    namespace: String,
    wait: WaitConfig,
    groups: HashMap<String, ApiGroup>,
}

impl Applier {
    /// `namespace` is the environment's Namespace, which must be among the applied objects
    /// and records the applied set.
    pub fn new(client: Client, env: &str, namespace: &str, wait: WaitConfig) -> Self {
        Self {
            client,
            env: env.to_owned(),
            namespace: namespace.to_owned(),
            wait,
            groups: HashMap::new(),
        }
    }

    async fn resolve(
        &mut self,
        r: &ObjectRef,
    ) -> Result<(ApiResource, ApiCapabilities), ApplyError> {
        let gvk = r.gvk()?;
        let key = r.api_version.clone();
        if !self.groups.contains_key(&key) {
            let gv = GroupVersion::gv(&gvk.group, &gvk.version);
            let group = discovery::pinned_group(&self.client, &gv)
                .await
                .map_err(|source| ApplyError::Discovery {
                    api_version: r.api_version.clone(),
                    kind: r.kind.clone(),
                    source,
                })?;
            self.groups.insert(key.clone(), group);
        }
        self.groups[&key]
            .recommended_kind(&r.kind)
            .ok_or_else(|| ApplyError::UnknownKind {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
            })
    }

    fn api(
        &self,
        ar: &ApiResource,
        caps: &ApiCapabilities,
        ns: Option<&str>,
    ) -> Api<DynamicObject> {
        match (caps.scope == Scope::Namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, ar),
            (true, None) => Api::namespaced_with(self.client.clone(), &self.namespace, ar),
            (false, _) => Api::all_with(self.client.clone(), ar),
        }
    }

    /// The applied set recorded by the previous apply (empty on the first).
    pub async fn previous_set(&self) -> Result<BTreeSet<ObjectRef>, ApplyError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let ns = api
            .get_opt(&self.namespace)
            .await
            .map_err(|source| ApplyError::AppliedSet {
                namespace: self.namespace.clone(),
                source,
            })?;
        let recorded = ns
            .as_ref()
            .and_then(|ns| ns.annotations().get(APPLIED_SET_ANNOTATION))
            .map(|a| serde_json::from_str::<Vec<ObjectRef>>(a))
            .transpose()
            .map_err(|e| ApplyError::Parse {
                document: 0,
                reason: format!(
                    "annotation {APPLIED_SET_ANNOTATION} of Namespace {} is not a list of objects: {e}",
                    self.namespace
                ),
            })?
            .unwrap_or_default();
        Ok(recorded.into_iter().collect())
    }

    /// Server-side applies `objects` in order, then prunes what the previous apply recorded
    /// and this one no longer has.
    pub async fn apply(
        &mut self,
        mut objects: Vec<DynamicObject>,
    ) -> Result<ApplyReport, ApplyError> {
        let previous = self.previous_set().await?;
        for obj in &mut objects {
            obj.labels_mut()
                .insert(ENV_LABEL.to_owned(), self.env.clone());
        }
        // Namespaced objects without a namespace go to the environment's.
        let current: BTreeSet<ObjectRef> = objects.iter().map(object_ref).collect();
        // Until the prune has finished, the record covers the old set too: an apply that
        // fails half-way must not forget what it still has to prune next time.
        let union: BTreeSet<ObjectRef> = previous.union(&current).cloned().collect();
        let ns_index = objects
            .iter()
            .position(|o| {
                o.types
                    .as_ref()
                    .is_some_and(|t| t.kind == "Namespace" && t.api_version == "v1")
                    && o.name_any() == self.namespace
            })
            .ok_or_else(|| ApplyError::MissingNamespace(self.namespace.clone()))?;
        objects[ns_index]
            .annotations_mut()
            .insert(APPLIED_SET_ANNOTATION.to_owned(), record(&union));

        let mut report = ApplyReport::default();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for obj in &objects {
            let r = object_ref(obj);
            let (ar, caps) = self.resolve(&r).await?;
            let api = self.api(&ar, &caps, r.namespace.as_deref());
            api.patch(&r.name, &params, &Patch::Apply(obj))
                .await
                .map_err(|source| apply_error(&r, source))?;
            tracing::info!(object = %r, "applied");
            report.applied.push(r);
        }

        for stale in previous.difference(&current) {
            let (ar, caps) = match self.resolve(stale).await {
                Ok(found) => found,
                Err(ApplyError::UnknownKind { .. }) => {
                    report
                        .skipped
                        .push((stale.clone(), "its kind is no longer served".into()));
                    continue;
                }
                Err(ApplyError::Discovery {
                    source: kube::Error::Api(status),
                    ..
                }) if status.code == 404 => {
                    report.skipped.push((
                        stale.clone(),
                        format!("its API {} is no longer served", stale.api_version),
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let api = self.api(&ar, &caps, stale.namespace.as_deref());
            let prune_err = |source| ApplyError::Prune {
                object: stale.clone(),
                source,
            };
            let Some(live) = api.get_opt(&stale.name).await.map_err(prune_err)? else {
                continue;
            };
            if live.labels().get(ENV_LABEL) != Some(&self.env) {
                report.skipped.push((
                    stale.clone(),
                    format!("it does not carry {ENV_LABEL}={}", self.env),
                ));
                continue;
            }
            // Precondition on the uid: never delete an object re-created since the read.
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: live.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::background()
            };
            api.delete(&stale.name, &params).await.map_err(prune_err)?;
            tracing::info!(object = %stale, "pruned");
            report.pruned.push(stale.clone());
        }

        if union != current {
            // Pruned (or no longer ours): narrow the record to what this apply has.
            let mut ns = objects.swap_remove(ns_index);
            ns.annotations_mut()
                .insert(APPLIED_SET_ANNOTATION.to_owned(), record(&current));
            let r = object_ref(&ns);
            let (ar, caps) = self.resolve(&r).await?;
            self.api(&ar, &caps, None)
                .patch(&r.name, &params, &Patch::Apply(&ns))
                .await
                .map_err(|source| ApplyError::Apply { object: r, source })?;
        }
        Ok(report)
    }

    /// Waits for every Deployment, StatefulSet and Job among `objects` to finish rolling
    /// out, in order, each within [`WaitConfig::rollout_timeout`].
    pub async fn wait_for_rollouts(&self, objects: &[ObjectRef]) -> Result<(), ApplyError> {
        for r in objects {
            if !matches!(r.kind.as_str(), "Deployment" | "StatefulSet" | "Job") {
                continue;
            }
            let ns = r
                .namespace
                .clone()
                .unwrap_or_else(|| self.namespace.clone());
            let outcome =
                tokio::time::timeout(self.wait.rollout_timeout, self.poll_rollout(r, &ns)).await;
            let (reason, selector) = match outcome {
                Ok(Ok(())) => {
                    tracing::info!(object = %r, "rolled out");
                    continue;
                }
                Ok(Err(RolloutFailure { reason, selector })) => (reason, selector),
                Err(_) => (
                    format!("not ready within {:?}", self.wait.rollout_timeout),
                    self.selector_of(r, &ns).await,
                ),
            };
            let diagnostics = match selector {
                Some(sel) => self.diagnose(&ns, &sel).await,
                None => String::new(),
            };
            return Err(ApplyError::Rollout {
                object: r.clone(),
                reason,
                diagnostics,
            });
        }
        Ok(())
    }

    async fn selector_of(&self, r: &ObjectRef, ns: &str) -> Option<String> {
        let selector = match r.kind.as_str() {
            "Deployment" => Api::<Deployment>::namespaced(self.client.clone(), ns)
                .get(&r.name)
                .await
                .ok()
                .and_then(|d| d.spec.map(|s| s.selector)),
            "StatefulSet" => Api::<StatefulSet>::namespaced(self.client.clone(), ns)
                .get(&r.name)
                .await
                .ok()
                .and_then(|d| d.spec.map(|s| s.selector)),
            _ => Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("job-name".to_owned(), r.name.clone())])),
                ..LabelSelector::default()
            }),
        };
        selector.as_ref().and_then(label_selector_string)
    }

    async fn poll_rollout(&self, r: &ObjectRef, ns: &str) -> Result<(), RolloutFailure> {
        loop {
            let (state, selector) = match r.kind.as_str() {
                "Deployment" => {
                    let api = Api::<Deployment>::namespaced(self.client.clone(), ns);
                    match api.get(&r.name).await {
                        Ok(d) => (
                            deployment_state(&d),
                            d.spec
                                .as_ref()
                                .and_then(|s| label_selector_string(&s.selector)),
                        ),
                        Err(e) => (RolloutState::Pending(format!("reading it: {e}")), None),
                    }
                }
                "StatefulSet" => {
                    let api = Api::<StatefulSet>::namespaced(self.client.clone(), ns);
                    match api.get(&r.name).await {
                        Ok(s) => (
                            statefulset_state(&s),
                            s.spec
                                .as_ref()
                                .and_then(|s| label_selector_string(&s.selector)),
                        ),
                        Err(e) => (RolloutState::Pending(format!("reading it: {e}")), None),
                    }
                }
                _ => {
                    let api = Api::<Job>::namespaced(self.client.clone(), ns);
                    match api.get(&r.name).await {
                        Ok(j) => (job_state(&j), Some(format!("job-name={}", r.name))),
                        Err(e) => (RolloutState::Pending(format!("reading it: {e}")), None),
                    }
                }
            };
            match state {
                RolloutState::Done => return Ok(()),
                RolloutState::Failed(reason) => return Err(RolloutFailure { reason, selector }),
                RolloutState::Pending(why) => {
                    tracing::info!(object = %r, "waiting: {why}");
                }
            }
            tokio::time::sleep(self.wait.poll_interval).await;
        }
    }

    /// Events and log tails of the pods matching `selector` that are not Ready.
    pub async fn diagnose(&self, ns: &str, selector: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let list = match pods.list(&ListParams::default().labels(selector)).await {
            Ok(l) => l,
            Err(e) => return format!("(could not list pods {selector}: {e})"),
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), ns);
        let mut out = String::new();
        for pod in list.items.iter().filter(|p| !pod_ready(p)) {
            let name = pod.name_any();
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Unknown".into());
            out.push_str(&format!("pod {name} ({phase}):\n"));
            match events
                .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                .await
            {
                Ok(evs) => {
                    for ev in evs.items {
                        out.push_str(&format!(
                            "  event {} {}: {}\n",
                            ev.type_.unwrap_or_default(),
                            ev.reason.unwrap_or_default(),
                            ev.message.unwrap_or_default().trim_end()
                        ));
                    }
                }
                Err(e) => out.push_str(&format!("  (events unavailable: {e})\n")),
            }
            let containers = pod
                .spec
                .as_ref()
                .map(|s| {
                    s.init_containers
                        .iter()
                        .flatten()
                        .chain(s.containers.iter())
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for c in containers {
                let lp = LogParams {
                    container: Some(c.clone()),
                    tail_lines: Some(self.wait.log_tail_lines),
                    ..LogParams::default()
                };
                match pods.logs(&name, &lp).await {
                    Ok(log) => {
                        out.push_str(&format!(
                            "  logs of {c} (last {} lines):\n",
                            self.wait.log_tail_lines
                        ));
                        for line in log.lines() {
                            out.push_str(&format!("    {line}\n"));
                        }
                    }
                    Err(e) => out.push_str(&format!("  (logs of {c} unavailable: {e})\n")),
                }
            }
        }
        if out.is_empty() {
            out = format!("(no failing pod matches {selector})");
        }
        out
    }
}

struct RolloutFailure {
    reason: String,
    selector: Option<String>,
}

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutState {
    Done,
    Pending(String),
    Failed(String),
}

/// `kubectl rollout status` semantics for a Deployment.
pub fn deployment_state(d: &Deployment) -> RolloutState {
    let generation = d.metadata.generation.unwrap_or(0);
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &d.status else {
        return RolloutState::Pending("no status yet".into());
    };
    if st.observed_generation.unwrap_or(0) < generation {
        return RolloutState::Pending("the controller has not seen the new spec yet".into());
    }
    if let Some(c) = st.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return RolloutState::Failed(format!(
            "progress deadline exceeded: {}",
            c.message.clone().unwrap_or_default()
        ));
    }
    let updated = st.updated_replicas.unwrap_or(0);
    let replicas = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if updated < want {
        RolloutState::Pending(format!("{updated} of {want} replicas updated"))
    } else if replicas > updated {
        RolloutState::Pending(format!(
            "{} old replicas pending termination",
            replicas - updated
        ))
    } else if available < updated {
        RolloutState::Pending(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        RolloutState::Done
    }
}

/// `kubectl rollout status` semantics for a RollingUpdate StatefulSet.
pub fn statefulset_state(s: &StatefulSet) -> RolloutState {
    let generation = s.metadata.generation.unwrap_or(0);
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &s.status else {
        return RolloutState::Pending("no status yet".into());
    };
    if st.observed_generation.unwrap_or(0) < generation {
        return RolloutState::Pending("the controller has not seen the new spec yet".into());
    }
    let ready = st.ready_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    if ready < want {
        RolloutState::Pending(format!("{ready} of {want} pods ready"))
    } else if updated < want {
        RolloutState::Pending(format!("{updated} of {want} pods updated"))
    } else if st.update_revision.is_some() && st.current_revision != st.update_revision {
        RolloutState::Pending("waiting for the update revision to become current".into())
    } else {
        RolloutState::Done
    }
}

/// A Job is done when Complete, failed when Failed.
pub fn job_state(j: &Job) -> RolloutState {
    let conditions = j.status.as_ref().and_then(|s| s.conditions.as_ref());
    for c in conditions.into_iter().flatten() {
        if c.status == "True" && c.type_ == "Complete" {
            return RolloutState::Done;
        }
        if c.status == "True" && c.type_ == "Failed" {
            return RolloutState::Failed(format!(
                "{}: {}",
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            ));
        }
    }
    let active = j.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    RolloutState::Pending(format!("{active} pods running"))
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `matchLabels` as a label-selector string (`a=b,c=d`).
fn label_selector_string(sel: &LabelSelector) -> Option<String> {
    let labels = sel.match_labels.as_ref()?;
    if labels.is_empty() {
        return None;
    }
    Some(
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}
