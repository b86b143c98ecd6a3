//! The find → diff → check_changes → render sequence, written once for every resource type
//! (kops `default_methods.go`).

use futures::future::BoxFuture;
use serde::Serialize;

use super::task::{
    is_known, Action, Change, FieldDiff, Mode, OutputMap, Outputs, Task, TaskError, TaskKey,
    TaskResult, UNKNOWN,
};

/// Re-exported name for a differing field.
pub type FieldChange = FieldDiff;

/// What `find` returns for an existing resource: its state (in the same shape as the desired
/// state, so the two can be diffed) and its outputs (ids dependents need).
#[derive(Debug, Clone)]
pub struct Found<S> {
    pub state: S,
    pub outputs: OutputMap,
}

/// One cloud resource type. Implementations live in `crate::resources`, one file per type.
pub trait Resource<C>: Send + Sync + 'static {
    /// Desired/actual state. Serialised to JSON objects for the field-by-field diff, so field
    /// names here are the names the plan shows.
    type State: Serialize + std::fmt::Debug + Clone + Send + Sync;

    fn key(&self) -> TaskKey;
    fn deps(&self) -> Vec<TaskKey>;
    /// Names of the outputs `create` returns (shown as [`UNKNOWN`] in a plan).
    fn output_names(&self) -> &'static [&'static str] {
        &["id"]
    }
    /// Fields that cannot be changed in place (a VPC's CIDR, a subnet's AZ …).
    fn immutable_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Desired state, resolving references to other resources through `inputs`.
    fn desired(&self, inputs: &Outputs) -> Result<Self::State, TaskError>;
    /// Actual state, found by tags; `None` if it does not exist.
    fn find<'a>(
        &'a self,
        cx: &'a C,
        desired: &'a Self::State,
    ) -> BoxFuture<'a, Result<Option<Found<Self::State>>, TaskError>>;
    fn create<'a>(
        &'a self,
        cx: &'a C,
        desired: &'a Self::State,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>>;
    /// Apply `changes` (never immutable ones) to the existing resource.
    fn update<'a>(
        &'a self,
        cx: &'a C,
        actual: &'a Found<Self::State>,
        desired: &'a Self::State,
        changes: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>>;
}

/// Field-by-field diff of two states (top-level fields of their JSON form).
/// A desired value containing [`UNKNOWN`] counts as a change (the referenced resource will be
/// created, so this one will point to something new).
pub fn diff<S: Serialize>(actual: &S, desired: &S) -> Result<Vec<FieldChange>, TaskError> {
    let a = serde_json::to_value(actual).map_err(|e| TaskError::Failed(e.to_string()))?;
    let d = serde_json::to_value(desired).map_err(|e| TaskError::Failed(e.to_string()))?;
    let (serde_json::Value::Object(a), serde_json::Value::Object(d)) = (a, d) else {
        return Err(TaskError::Failed("resource state must be a struct".into()));
    };
    let mut out = Vec::new();
    for (field, dv) in &d {
        let av = a.get(field).cloned().unwrap_or(serde_json::Value::Null);
        if &av != dv {
            out.push(FieldChange {
                field: field.clone(),
                actual: av,
                desired: dv.clone(),
            });
        }
    }
    Ok(out)
}

/// kops `CheckChanges`: reject a diff that touches an immutable field.
pub fn check_changes(
    key: &TaskKey,
    immutable: &[&str],
    changes: &[FieldChange],
) -> Result<(), TaskError> {
    match changes
        .iter()
        .find(|c| immutable.contains(&c.field.as_str()))
    {
        Some(c) => Err(TaskError::Immutable {
            key: key.clone(),
            field: c.field.clone(),
            actual: c.actual.to_string(),
            desired: c.desired.to_string(),
        }),
        None => Ok(()),
    }
}

fn describe_changes(changes: &[FieldChange]) -> String {
    let parts: Vec<String> = changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.field, c.actual, c.desired))
        .collect();
    format!("drift: {}", parts.join("; "))
}

/// Adapter making any [`Resource`] a schedulable [`Task`].
pub struct ResourceTask<R>(pub R);

impl<C: Sync, R: Resource<C>> Task<C> for ResourceTask<R> {
    fn key(&self) -> TaskKey {
        self.0.key()
    }
    fn deps(&self) -> Vec<TaskKey> {
        self.0.deps()
    }
    fn run<'a>(
        &'a self,
        cx: &'a C,
        inputs: &'a Outputs,
        mode: Mode,
    ) -> BoxFuture<'a, Result<TaskResult, TaskError>> {
        Box::pin(async move {
            let r = &self.0;
            let key = r.key();
            let desired = r.desired(inputs)?;
            let found = r.find(cx, &desired).await?;
            match found {
                None => {
                    let reason = format!(
                        "does not exist (nothing tagged provisioner:name={})",
                        key.name()
                    );
                    let outputs = match mode {
                        Mode::Apply => r.create(cx, &desired).await?,
                        Mode::DryRun => r
                            .output_names()
                            .iter()
                            .map(|n| (n.to_string(), UNKNOWN.to_string()))
                            .collect(),
                    };
                    // What will be created: every desired field; references to resources
                    // that do not exist yet read "(known after up)".
                    let fields = match serde_json::to_value(&desired) {
                        Ok(serde_json::Value::Object(m)) => m
                            .into_iter()
                            .map(|(field, v)| FieldChange {
                                field,
                                actual: serde_json::Value::Null,
                                desired: v,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    Ok(TaskResult {
                        change: Change {
                            key,
                            action: Action::Create,
                            reason,
                            fields,
                        },
                        outputs,
                    })
                }
                Some(actual) => {
                    let changes = diff(&actual.state, &desired)?;
                    if changes.is_empty() {
                        return Ok(TaskResult {
                            change: Change {
                                key,
                                action: Action::Unchanged,
                                reason: String::new(),
                                fields: Vec::new(),
                            },
                            outputs: actual.outputs,
                        });
                    }
                    check_changes(&key, r.immutable_fields(), &changes)?;
                    let outputs = match mode {
                        Mode::Apply => {
                            let mut o = actual.outputs.clone();
                            o.extend(r.update(cx, &actual, &desired, &changes).await?);
                            o
                        }
                        Mode::DryRun => actual.outputs.clone(),
                    };
                    // A change caused only by a not-yet-created reference is not drift.
                    let reason = if changes.iter().all(|c| !is_known(&c.desired.to_string())) {
                        "a referenced resource will be created".to_string()
                    } else {
                        describe_changes(&changes)
                    };
                    Ok(TaskResult {
                        change: Change {
                            key,
                            action: Action::Update,
                            reason,
                            fields: changes,
                        },
                        outputs,
                    })
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Debug, Clone)]
    struct S {
        cidr: String,
        name: String,
    }

    #[test]
    fn diff_lists_changed_fields_only() {
        let a = S {
            cidr: "10.0.0.0/16".into(),
            name: "a".into(),
        };
        let d = S {
            cidr: "10.0.0.0/16".into(),
            name: "b".into(),
        };
        let c = diff(&a, &d).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "name");
        assert!(diff(&a, &a).unwrap().is_empty());
    }

    #[test]
    fn immutable_field_change_is_rejected() {
        let a = S {
            cidr: "10.0.0.0/16".into(),
            name: "a".into(),
        };
        let d = S {
            cidr: "10.1.0.0/16".into(),
            name: "a".into(),
        };
        let key = TaskKey::new("vpc", "main");
        let c = diff(&a, &d).unwrap();
        let err = check_changes(&key, &["cidr"], &c).unwrap_err();
        match err {
            TaskError::Immutable { field, .. } => assert_eq!(field, "cidr"),
            other => panic!("expected Immutable, got {other:?}"),
        }
        // a mutable field passes
        let d2 = S {
            cidr: "10.0.0.0/16".into(),
            name: "z".into(),
        };
        check_changes(&key, &["cidr"], &diff(&a, &d2).unwrap()).unwrap();
    }
}
