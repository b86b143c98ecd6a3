//! Bounded-concurrency executor (kops `executor.go`): every task whose dependencies finished
//! runs at once (up to `concurrency`); a task reporting [`TaskError::NotReady`] is retried
//! after a pause until its deadline; a failed task's dependents are skipped, not attempted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use super::graph::{Graph, GraphError};
use super::task::{Action, Change, Mode, Outputs, Task, TaskError, TaskKey, TaskResult};

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub mode: Mode,
    /// Most tasks in flight at once.
    pub concurrency: usize,
    /// Deadline per task, counted from its first attempt (includes NotReady retries).
    pub task_deadline: Duration,
    /// Pause before re-running a task that said "not ready".
    pub not_ready_pause: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Apply,
            concurrency: 32,
            task_deadline: Duration::from_secs(900),
            not_ready_pause: Duration::from_secs(2),
        }
    }
}

/// Progress events, for the progress display.
#[derive(Debug)]
pub enum Event<'a> {
    Started(&'a TaskKey),
    Done(&'a Change),
    NotReady(&'a TaskKey, &'a str),
    Failed(&'a TaskKey, &'a str),
}

#[derive(Debug, Clone)]
pub enum TaskOutcome {
    Done(Change),
    Failed(String),
    /// Not attempted because a dependency failed.
    Skipped(TaskKey),
}

#[derive(Debug, Clone)]
pub struct TaskReport {
    pub key: TaskKey,
    pub outcome: TaskOutcome,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Everything the run did, in completion order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub tasks: Vec<TaskReport>,
    pub outputs: Outputs,
    pub elapsed: Duration,
    /// Layers of the dependency graph (critical path length).
    pub depth: usize,
    /// The longest chain of dependent tasks, each weighted by how long it actually took
    /// (its calls, retries and waits included): a lower bound for any order of these tasks
    /// that takes as long per task. `elapsed` close to it means the executor started every
    /// task as soon as its dependencies were done.
    pub critical_path: Duration,
}

impl Report {
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.tasks.iter().filter_map(|t| match &t.outcome {
            TaskOutcome::Done(c) => Some(c),
            _ => None,
        })
    }
    pub fn count(&self, action: Action) -> usize {
        self.changes().filter(|c| c.action == action).count()
    }
    pub fn failures(&self) -> Vec<(&TaskKey, String)> {
        self.tasks
            .iter()
            .filter_map(|t| match &t.outcome {
                TaskOutcome::Failed(m) => Some((&t.key, m.clone())),
                TaskOutcome::Skipped(dep) => Some((&t.key, format!("skipped: {dep} failed"))),
                TaskOutcome::Done(_) => None,
            })
            .collect()
    }
    pub fn has_changes(&self) -> bool {
        self.changes().any(|c| c.action != Action::Unchanged)
    }
}

/// Build the graph of `tasks` (rejects unknown deps and cycles).
pub fn graph_of<C>(tasks: &[Arc<dyn Task<C>>]) -> Result<Graph, GraphError> {
    Graph::new(tasks.iter().map(|t| (t.key(), t.deps())))
}

/// Run `tasks` in dependency order.
pub async fn execute<C: Sync>(
    cx: &C,
    tasks: &[Arc<dyn Task<C>>],
    opts: &ExecOptions,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Report, GraphError> {
    let graph = graph_of(tasks)?;
    let depth = graph.depth()?;
    let order = graph.topo_order()?;
    let by_key: BTreeMap<TaskKey, &Arc<dyn Task<C>>> = tasks.iter().map(|t| (t.key(), t)).collect();

    let started_at = Instant::now();
    let mut outputs = Outputs::default();
    // Longest chain first: when more tasks are ready than the bound lets run, the ones with
    // the most work waiting behind them start first (list scheduling by height). A
    // dependency always has a greater height than what depends on it, so this is still a
    // dependency order, and readiness scans stay cheap.
    let height: BTreeMap<TaskKey, usize> = graph
        .teardown_rounds()?
        .into_iter()
        .enumerate()
        .flat_map(|(h, round)| round.into_iter().map(move |k| (k, h)))
        .collect();
    let mut pending: Vec<TaskKey> = order;
    pending.sort_by_key(|k| std::cmp::Reverse(height.get(k).copied().unwrap_or_default()));
    let mut succeeded: BTreeSet<TaskKey> = BTreeSet::new();
    let mut failed: BTreeSet<TaskKey> = BTreeSet::new();
    let mut first_start: BTreeMap<TaskKey, Instant> = BTreeMap::new();
    let mut attempts: BTreeMap<TaskKey, u32> = BTreeMap::new();
    let mut report = Report {
        depth,
        ..Default::default()
    };
    let mut running = FuturesUnordered::new();
    let mut retry_queue: Vec<TaskKey> = Vec::new();

    type Fut<'a> = futures::future::BoxFuture<'a, (TaskKey, Result<TaskResult, TaskError>)>;
    let launch = |key: TaskKey, inputs: Outputs, delay: Duration, deadline: Duration| -> Fut<'_> {
        let task = by_key[&key];
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let res = match tokio::time::timeout(deadline, task.run(cx, &inputs, opts.mode)).await {
                Ok(r) => r,
                Err(_) => Err(TaskError::Failed(format!(
                    "deadline of {}s exceeded",
                    opts.task_deadline.as_secs()
                ))),
            };
            (key, res)
        })
    };

    loop {
        // Skip tasks whose dependency failed or was skipped.
        let mut i = 0;
        while i < pending.len() {
            let k = &pending[i];
            if let Some(bad) = graph.deps_of(k).find(|d| failed.contains(*d)) {
                let key = pending.remove(i);
                report.tasks.push(TaskReport {
                    key: key.clone(),
                    outcome: TaskOutcome::Skipped(bad.clone()),
                    attempts: 0,
                    elapsed: Duration::ZERO,
                });
                failed.insert(key);
                continue;
            }
            i += 1;
        }
        // Relaunch tasks that were not ready (they carry their own pause), oldest first and
        // within the bound like any other start.
        let room = opts.concurrency.max(1).saturating_sub(running.len());
        let n = room.min(retry_queue.len());
        let relaunch: Vec<TaskKey> = retry_queue.drain(..n).collect();
        for key in relaunch {
            let spent = first_start[&key].elapsed();
            let left = opts.task_deadline.saturating_sub(spent);
            *attempts.entry(key.clone()).or_default() += 1;
            running.push(launch(key, outputs.clone(), opts.not_ready_pause, left));
        }
        // Start every ready task, up to the concurrency bound.
        let mut i = 0;
        while i < pending.len() && running.len() < opts.concurrency.max(1) {
            if graph.deps_of(&pending[i]).all(|d| succeeded.contains(d)) {
                let key = pending.remove(i);
                on_event(Event::Started(&key));
                first_start.insert(key.clone(), Instant::now());
                attempts.insert(key.clone(), 1);
                running.push(launch(
                    key,
                    outputs.clone(),
                    Duration::ZERO,
                    opts.task_deadline,
                ));
            } else {
                i += 1;
            }
        }
        let Some((key, res)) = running.next().await else {
            break;
        };
        let elapsed = first_start[&key].elapsed();
        match res {
            Ok(r) => {
                tracing::debug!(
                    task = %key,
                    started_ms = (first_start[&key] - started_at).as_millis() as u64,
                    took_ms = elapsed.as_millis() as u64,
                    "task done"
                );
                on_event(Event::Done(&r.change));
                outputs.insert(key.clone(), r.outputs);
                succeeded.insert(key.clone());
                report.tasks.push(TaskReport {
                    key: key.clone(),
                    outcome: TaskOutcome::Done(r.change),
                    attempts: attempts[&key],
                    elapsed,
                });
            }
            Err(TaskError::NotReady(why))
                if elapsed + opts.not_ready_pause < opts.task_deadline =>
            {
                on_event(Event::NotReady(&key, &why));
                retry_queue.push(key);
            }
            Err(e) => {
                let msg = e.to_string();
                on_event(Event::Failed(&key, &msg));
                failed.insert(key.clone());
                report.tasks.push(TaskReport {
                    key: key.clone(),
                    outcome: TaskOutcome::Failed(msg),
                    attempts: attempts[&key],
                    elapsed,
                });
            }
        }
    }
    report.outputs = outputs;
    report.elapsed = started_at.elapsed();
    report.critical_path = weighted_critical_path(&graph, &report.tasks)?;
    Ok(report)
}

/// The longest path through `graph` where each task weighs its measured `elapsed`.
fn weighted_critical_path(graph: &Graph, tasks: &[TaskReport]) -> Result<Duration, GraphError> {
    let took: BTreeMap<&TaskKey, Duration> = tasks.iter().map(|t| (&t.key, t.elapsed)).collect();
    let mut finish: BTreeMap<TaskKey, Duration> = BTreeMap::new();
    for key in graph.topo_order()? {
        let ready = graph
            .deps_of(&key)
            .filter_map(|d| finish.get(d))
            .max()
            .copied()
            .unwrap_or_default();
        let own = took.get(&key).copied().unwrap_or_default();
        finish.insert(key, ready + own);
    }
    Ok(finish.into_values().max().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::OutputMap;
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A fake cloud: records the order tasks ran in and the peak concurrency.
    #[derive(Default)]
    struct Cx {
        log: Mutex<Vec<String>>,
        in_flight: AtomicUsize,
        peak: AtomicUsize,
    }

    struct T {
        key: TaskKey,
        deps: Vec<TaskKey>,
        not_ready_times: AtomicUsize,
        fail: bool,
    }

    impl T {
        fn task(name: &str, deps: &[&str]) -> Arc<dyn Task<Cx>> {
            Arc::new(T {
                key: TaskKey::new("t", name),
                deps: deps.iter().map(|d| TaskKey::new("t", d)).collect(),
                not_ready_times: AtomicUsize::new(0),
                fail: false,
            })
        }
    }

    impl Task<Cx> for T {
        fn key(&self) -> TaskKey {
            self.key.clone()
        }
        fn deps(&self) -> Vec<TaskKey> {
            self.deps.clone()
        }
        fn run<'a>(
            &'a self,
            cx: &'a Cx,
            inputs: &'a Outputs,
            _mode: Mode,
        ) -> BoxFuture<'a, Result<TaskResult, TaskError>> {
            Box::pin(async move {
                for d in &self.deps {
                    inputs.id(d)?; // dependency outputs must be visible
                }
                let n = cx.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                cx.peak.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                cx.in_flight.fetch_sub(1, Ordering::SeqCst);
                if self.not_ready_times.load(Ordering::SeqCst) > 0 {
                    self.not_ready_times.fetch_sub(1, Ordering::SeqCst);
                    return Err(TaskError::NotReady("pending".into()));
                }
                if self.fail {
                    return Err(TaskError::Failed("boom".into()));
                }
                cx.log.lock().unwrap().push(self.key.to_string());
                let mut out = OutputMap::new();
                out.insert("id".into(), format!("id-{}", self.key.name()));
                Ok(TaskResult {
                    change: Change {
                        key: self.key.clone(),
                        action: Action::Create,
                        reason: String::new(),
                        fields: vec![],
                    },
                    outputs: out,
                })
            })
        }
    }

    #[tokio::test]
    async fn with_one_slot_the_longest_chain_goes_first() {
        let cx = Cx::default();
        // z1 → z2 → z3 is the critical path; a, b and c could run any time.
        let tasks = vec![
            T::task("a", &[]),
            T::task("b", &[]),
            T::task("c", &[]),
            T::task("z1", &[]),
            T::task("z2", &["z1"]),
            T::task("z3", &["z2"]),
        ];
        let o = ExecOptions {
            concurrency: 1,
            ..opts()
        };
        let r = execute(&cx, &tasks, &o, &|_| {}).await.unwrap();
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        // Without the priority, the topological order would run a, b and c first (layer 0
        // holds a, b, c, z1, by name). z3 then ties with a, b and c: nothing waits on any.
        let log = cx.log.lock().unwrap().clone();
        assert_eq!(log[..2], ["t/z1", "t/z2"], "{log:?}");
        assert_eq!(log.len(), 6);
    }

    fn opts() -> ExecOptions {
        ExecOptions {
            not_ready_pause: Duration::from_millis(5),
            task_deadline: Duration::from_secs(5),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn runs_ready_tasks_concurrently_in_dependency_order() {
        let cx = Cx::default();
        let tasks = vec![
            T::task("vpc", &[]),
            T::task("a", &["vpc"]),
            T::task("b", &["vpc"]),
            T::task("c", &["vpc"]),
            T::task("rt", &["a", "b", "c"]),
        ];
        let r = execute(&cx, &tasks, &opts(), &|_| {}).await.unwrap();
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        let log = cx.log.lock().unwrap().clone();
        assert_eq!(log.first().unwrap(), "t/vpc");
        assert_eq!(log.last().unwrap(), "t/rt");
        assert_eq!(cx.peak.load(Ordering::SeqCst), 3, "a, b, c run at once");
        assert_eq!(r.depth, 3);
        // vpc → (a | b | c) → rt: three 20 ms tasks one after the other, never more than
        // the run itself took.
        assert!(r.critical_path >= Duration::from_millis(60), "{r:?}");
        assert!(r.critical_path <= r.elapsed, "{r:?}");
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let cx = Cx::default();
        let tasks: Vec<_> = (0..10).map(|i| T::task(&format!("n{i}"), &[])).collect();
        let o = ExecOptions {
            concurrency: 4,
            ..opts()
        };
        execute(&cx, &tasks, &o, &|_| {}).await.unwrap();
        assert_eq!(cx.peak.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn not_ready_is_retried_and_failure_skips_dependents() {
        let cx = Cx::default();
        let slow = Arc::new(T {
            key: TaskKey::new("t", "nat"),
            deps: vec![],
            not_ready_times: AtomicUsize::new(2),
            fail: false,
        });
        let bad = Arc::new(T {
            key: TaskKey::new("t", "bad"),
            deps: vec![],
            not_ready_times: AtomicUsize::new(0),
            fail: true,
        });
        let tasks: Vec<Arc<dyn Task<Cx>>> = vec![
            slow,
            bad,
            T::task("after-bad", &["bad"]),
            T::task("x", &["after-bad"]),
        ];
        let r = execute(&cx, &tasks, &opts(), &|_| {}).await.unwrap();
        let nat = r.tasks.iter().find(|t| t.key.name() == "nat").unwrap();
        assert!(matches!(nat.outcome, TaskOutcome::Done(_)));
        assert_eq!(nat.attempts, 3);
        assert_eq!(r.failures().len(), 3, "bad failed, two dependents skipped");
        assert!(!cx.log.lock().unwrap().contains(&"t/x".to_string()));
    }

    #[tokio::test]
    async fn cycle_is_an_error_before_anything_runs() {
        let cx = Cx::default();
        let tasks = vec![T::task("a", &["b"]), T::task("b", &["a"])];
        assert!(matches!(
            execute(&cx, &tasks, &opts(), &|_| {}).await,
            Err(GraphError::Cycle(_))
        ));
        assert!(cx.log.lock().unwrap().is_empty());
    }
}
