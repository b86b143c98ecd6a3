//! The find → diff → check_changes → render sequence, written once for every resource type
//! (kops `default_methods.go`).

use futures::future::BoxFuture;
use serde::Serialize;

use super::error::ErrorKind;
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
    /// Why `create` will run when `find` found nothing (shown in the plan). Tagged resources
    /// keep the default; a part of another resource (routes, an attribute, an attachment, a
    /// waiter) says what it waits for instead.
    fn absent_reason(&self) -> String {
        format!(
            "does not exist (nothing tagged provisioner:name={})",
            self.key().name()
        )
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

/// A cloud context whose cached finds can be dropped, so that the next `find` reads the cloud
/// again (after a create whose outcome is unknown).
pub trait Rescan {
    fn rescan(&self);
}

/// How many times a create whose outcome is unknown is re-found and tried again.
const CREATE_ATTEMPTS: u32 = 4;

/// Did a failed create perhaps happen anyway (response lost: 5xx, transport error), or is
/// there already something in the way (a lost create that was done, a crash after it)?
fn create_outcome_unknown(e: &TaskError) -> Option<ErrorKind> {
    match e {
        TaskError::Cloud(c)
            if matches!(
                c.kind,
                ErrorKind::ServerError | ErrorKind::Transport | ErrorKind::AlreadyExists
            ) =>
        {
            Some(c.kind)
        }
        _ => None,
    }
}

enum Created<S> {
    Created(OutputMap),
    /// The create had been done (its response was lost): the resource found by tag.
    Adopted(Found<S>),
}

/// Create, idempotently: a create that failed in a way that may mean it was done (a lost
/// response) is never re-sent blindly; the resource is found again by tag (it was tagged at
/// creation) and adopted if it exists, and only created again if it does not.
async fn create_or_adopt<C: Rescan + Sync, R: Resource<C>>(
    r: &R,
    cx: &C,
    desired: &R::State,
) -> Result<Created<R::State>, TaskError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let err = match r.create(cx, desired).await {
            Ok(o) => return Ok(Created::Created(o)),
            Err(e) => e,
        };
        let Some(kind) = create_outcome_unknown(&err) else {
            return Err(err);
        };
        tracing::info!(
            target: "provisioner::retry",
            "{}: create failed ({err}); finding it by tag before trying again",
            r.key()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
        cx.rescan();
        if let Some(found) = r.find(cx, desired).await? {
            return Ok(Created::Adopted(found));
        }
        // "Already exists" but nothing of ours is found: someone else's; never adopt it.
        if kind == ErrorKind::AlreadyExists || attempt >= CREATE_ATTEMPTS {
            return Err(err);
        }
    }
}

/// Adapter making any [`Resource`] a schedulable [`Task`].
pub struct ResourceTask<R>(pub R);

impl<C: Sync + Rescan, R: Resource<C>> Task<C> for ResourceTask<R> {
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
                    let reason = r.absent_reason();
                    let outputs = match mode {
                        Mode::Apply => match create_or_adopt(r, cx, &desired).await? {
                            Created::Created(o) => o,
                            Created::Adopted(actual) => {
                                let mut res = existing(r, cx, key, actual, &desired, mode).await?;
                                if res.change.action == Action::Unchanged {
                                    res.change.action = Action::Create;
                                    res.change.reason = format!(
                                        "{reason}; created (its response was lost, found by tag)"
                                    );
                                }
                                return Ok(res);
                            }
                        },
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
                Some(actual) => existing(r, cx, key, actual, &desired, mode).await,
            }
        })
    }
}

/// An existing resource: diff it against the desired state and update it if needed.
async fn existing<C: Sync, R: Resource<C>>(
    r: &R,
    cx: &C,
    key: TaskKey,
    actual: Found<R::State>,
    desired: &R::State,
    mode: Mode,
) -> Result<TaskResult, TaskError> {
    let changes = diff(&actual.state, desired)?;
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
            o.extend(r.update(cx, &actual, desired, &changes).await?);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::error::CloudError;

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

    /// A cloud with a cached describe (like `aws::Inventory`), where `create` is done but its
    /// response lost `lose` times (5xx), or fails "already exists".
    struct FakeCloud {
        made: std::sync::Mutex<Vec<String>>,
        cache: std::sync::Mutex<Option<Vec<String>>>,
        creates: std::sync::atomic::AtomicU32,
        fail: ErrorKind,
        lose: u32,
    }

    impl FakeCloud {
        fn new(fail: ErrorKind, lose: u32) -> Self {
            Self {
                made: Default::default(),
                cache: Default::default(),
                creates: Default::default(),
                fail,
                lose,
            }
        }
    }

    impl Rescan for FakeCloud {
        fn rescan(&self) {
            *self.cache.lock().unwrap() = None;
        }
    }

    struct Thing;

    impl Resource<FakeCloud> for Thing {
        type State = S;
        fn key(&self) -> TaskKey {
            TaskKey::new("vpc", "main")
        }
        fn deps(&self) -> Vec<TaskKey> {
            vec![]
        }
        fn desired(&self, _: &Outputs) -> Result<S, TaskError> {
            Ok(S {
                cidr: "10.0.0.0/16".into(),
                name: "main".into(),
            })
        }
        fn find<'a>(
            &'a self,
            cx: &'a FakeCloud,
            d: &'a S,
        ) -> BoxFuture<'a, Result<Option<Found<S>>, TaskError>> {
            Box::pin(async move {
                let mut cache = cx.cache.lock().unwrap();
                let seen = cache.get_or_insert_with(|| cx.made.lock().unwrap().clone());
                Ok(seen.first().map(|id| Found {
                    state: d.clone(),
                    outputs: [("id".to_string(), id.clone())].into(),
                }))
            })
        }
        fn create<'a>(
            &'a self,
            cx: &'a FakeCloud,
            _: &'a S,
        ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
            Box::pin(async move {
                let n = cx.creates.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if cx.fail == ErrorKind::AlreadyExists {
                    return Err(CloudError::new(cx.fail, "ec2:CreateVpc", "Dup", "x").into());
                }
                let id = format!("vpc-{n}");
                cx.made.lock().unwrap().push(id.clone());
                if n < cx.lose {
                    return Err(
                        CloudError::new(cx.fail, "ec2:CreateVpc", "InternalError", "x").into(),
                    );
                }
                Ok([("id".to_string(), id)].into())
            })
        }
        fn update<'a>(
            &'a self,
            _: &'a FakeCloud,
            _: &'a Found<S>,
            _: &'a S,
            _: &'a [FieldChange],
        ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
            Box::pin(async move { Ok(OutputMap::new()) })
        }
    }

    #[tokio::test]
    async fn a_lost_create_response_is_adopted_not_created_twice() {
        let cx = FakeCloud::new(ErrorKind::ServerError, 1);
        // The describe was cached before the create (as `up`'s prefetch does).
        *cx.cache.lock().unwrap() = Some(vec![]);
        let r = ResourceTask(Thing)
            .run(&cx, &Outputs::default(), Mode::Apply)
            .await
            .unwrap();
        assert_eq!(cx.creates.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(*cx.made.lock().unwrap(), vec!["vpc-0".to_string()]);
        assert_eq!(r.outputs["id"], "vpc-0");
        assert_eq!(r.change.action, Action::Create);
        assert!(
            r.change.reason.contains("found by tag"),
            "{}",
            r.change.reason
        );
    }

    #[tokio::test]
    async fn already_exists_with_nothing_of_ours_found_is_an_error() {
        let cx = FakeCloud::new(ErrorKind::AlreadyExists, 0);
        let err = ResourceTask(Thing)
            .run(&cx, &Outputs::default(), Mode::Apply)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, TaskError::Cloud(c) if c.kind == ErrorKind::AlreadyExists),
            "{err:?}"
        );
        assert_eq!(cx.creates.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
