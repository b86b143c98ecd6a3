//! The reconcile engine: cloud-agnostic, knows nothing of aws-sdk.
//!
//! Modelled on kops `upup/pkg/fi`:
//! - [`resource::Resource`]: one implementation per cloud resource type (in `crate::resources`).
//!   Each can **find** its actual state, which is **diffed** against the desired state,
//!   **check_changes** rejects changes to immutable fields, then the difference is **rendered**
//!   (create / update). That sequence lives once, in [`resource::ResourceTask`].
//! - [`graph::Graph`]: explicit `deps()`, topological order, cycle detection, depth (critical
//!   path) and DOT / Mermaid export for `provisioner graph`.
//! - [`executor`]: runs every dependency-ready task at once (bounded), retries tasks that report
//!   "not ready yet", gives each a deadline. Outputs (ids) flow to dependents through a typed
//!   [`task::Outputs`] map.
//! - A plan is the very same run with [`task::Mode::DryRun`]: the render step records what it
//!   would do instead of doing it, so plan and apply cannot disagree. Ids of resources that do
//!   not exist yet read as [`task::UNKNOWN`] ("(known after up)").
//! - [`teardown`]: delete order derived from the dependency graph of what was discovered by tag
//!   (not the apply replayed backwards), in rounds.
//! - [`retry`]: the one retry policy (exponential backoff with full jitter) and call counters,
//!   classified on the cloud-agnostic [`error::CloudError`].

pub mod error;
pub mod executor;
pub mod graph;
pub mod resource;
pub mod retry;
pub mod task;
pub mod teardown;

pub use error::{CloudError, ErrorKind};
pub use executor::{execute, ExecOptions, Report, TaskOutcome};
pub use graph::Graph;
pub use resource::{FieldChange, Found, Rescan, Resource, ResourceTask};
pub use task::{
    is_known, Action, Change, Mode, OutputMap, Outputs, Task, TaskError, TaskKey, UNKNOWN,
};
