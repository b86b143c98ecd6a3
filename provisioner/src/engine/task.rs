//! The unit of work the executor schedules, and the values that flow between tasks.

use std::collections::BTreeMap;
use std::fmt;

use futures::future::BoxFuture;
use serde::Serialize;

use super::error::CloudError;

/// Placeholder for an output of a resource that a plan would create: its id is not known yet.
pub const UNKNOWN: &str = "(known after up)";

/// `true` unless `v` is the [`UNKNOWN`] placeholder (or contains it, e.g. an ARN built from it).
pub fn is_known(v: &str) -> bool {
    !v.contains(UNKNOWN)
}

/// Stable identity of a task: `kind/name`, e.g. `vpc/main`, `subnet/main-private-a`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskKey(String);

impl TaskKey {
    pub fn new(kind: &str, name: &str) -> Self {
        Self(format!("{kind}/{name}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The resource kind part (`vpc` in `vpc/main`).
    pub fn kind(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(k, _)| k)
    }
    /// The logical-name part (`main` in `vpc/main`): the `provisioner:name` tag value.
    pub fn name(&self) -> &str {
        self.0.split_once('/').map_or(&self.0, |(_, n)| n)
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Outputs of one task: named values (ids, ARNs, DNS names) that dependents need.
pub type OutputMap = BTreeMap<String, String>;

/// Outputs of every finished task, keyed by task. Missing values are a bug in `deps()`.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    map: BTreeMap<TaskKey, OutputMap>,
}

impl Outputs {
    pub fn insert(&mut self, key: TaskKey, out: OutputMap) {
        self.map.insert(key, out);
    }
    /// The value `field` of task `key`; [`UNKNOWN`] stays [`UNKNOWN`] (plan of a new resource).
    pub fn get(&self, key: &TaskKey, field: &str) -> Result<String, TaskError> {
        self.map
            .get(key)
            .and_then(|m| m.get(field))
            .cloned()
            .ok_or_else(|| {
                TaskError::Failed(format!(
                    "output `{field}` of {key} is not available (missing dependency?)"
                ))
            })
    }
    /// Shorthand for the conventional `id` output.
    pub fn id(&self, key: &TaskKey) -> Result<String, TaskError> {
        self.get(key, "id")
    }
    pub fn of(&self, key: &TaskKey) -> Option<&OutputMap> {
        self.map.get(key)
    }
}

/// Whether tasks render for real or only record what they would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    /// The plan: the same run against a target that only records changes.
    DryRun,
}

/// What a task did (or, in a dry run, would do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

/// One field that differs between actual and desired state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    pub actual: serde_json::Value,
    pub desired: serde_json::Value,
}

/// A recorded change, with the reason for it: the plan's unit of output.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub key: TaskKey,
    pub action: Action,
    /// Why: "no resource tagged provisioner:name=…", or the drifted fields.
    pub reason: String,
    pub fields: Vec<FieldDiff>,
}

/// Errors a task can report to the executor.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// Try again later (a dependency is still pending, an attachment not visible yet …).
    #[error("not ready: {0}")]
    NotReady(String),
    /// The template wants a change AWS cannot make in place (kops `CheckChanges`).
    #[error("cannot change immutable field `{field}` of {key}: actual {actual}, template wants {desired}; delete it (provisioner down) or revert the template")]
    Immutable {
        key: TaskKey,
        field: String,
        actual: String,
        desired: String,
    },
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{0}")]
    Failed(String),
}

/// Result of running one task.
#[derive(Debug, Clone)]
pub struct TaskResult {
    pub change: Change,
    pub outputs: OutputMap,
}

/// A schedulable unit. Implemented generically for every [`super::Resource`] through
/// [`super::ResourceTask`]; `C` is the cloud context (the engine never looks inside).
pub trait Task<C>: Send + Sync {
    fn key(&self) -> TaskKey;
    /// Tasks whose outputs this one needs: they run first, and it is deleted before them.
    fn deps(&self) -> Vec<TaskKey>;
    fn run<'a>(
        &'a self,
        cx: &'a C,
        inputs: &'a Outputs,
        mode: Mode,
    ) -> BoxFuture<'a, Result<TaskResult, TaskError>>;
}
