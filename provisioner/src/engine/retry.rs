//! The one retry policy shared by every cloud call: exponential backoff with full jitter for
//! throttling, 5xx, transport errors and eventual consistency ("NotFound" right after a
//! create), plus counters of calls and retries for the summary and BENCHMARKS.md.
//!
//! A create that makes a new resource each time it runs (`aws::creates_new_resource`) is not
//! re-sent after a 5xx or a transport error: its response may have been lost after it was
//! done. `ResourceTask` finds it again by tag and adopts it before creating again.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::Rng;

use super::error::{CloudError, ErrorKind};

/// How a call wants NotFound treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// NotFound is an answer (a describe of something that may not exist, a delete).
    Strong,
    /// The call refers to something this process just created: NotFound means "not visible
    /// yet" and is retried (`InvalidVpcID.NotFound` right after `CreateVpc`).
    AfterCreate,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Backoff base: the first retry waits up to this long.
    pub base: Duration,
    /// Upper bound of a single wait.
    pub cap: Duration,
    /// Give up after this many attempts in total.
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first attempt.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
            max_attempts: 10,
            deadline: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    /// Is an error of this kind worth another attempt?
    pub fn is_retryable(kind: ErrorKind, consistency: Consistency) -> bool {
        match kind {
            ErrorKind::Throttling | ErrorKind::ServerError | ErrorKind::Transport => true,
            ErrorKind::NotFound => consistency == Consistency::AfterCreate,
            ErrorKind::DependencyViolation
            | ErrorKind::AlreadyExists
            | ErrorKind::InvalidRequest
            | ErrorKind::AccessDenied
            | ErrorKind::Unsupported
            | ErrorKind::Other => false,
        }
    }

    /// [`Self::is_retryable`] for one call. A call that is not idempotent (a create that makes
    /// a new resource each time it runs) is not retried after a 5xx or a transport error: the
    /// call may have been done and only its response lost, so a blind retry would make a
    /// duplicate. The caller re-finds by tag instead ([`crate::engine::ResourceTask`]).
    /// Throttling and NotFound are rejections (nothing was done), so they stay retryable.
    pub fn is_retryable_call(kind: ErrorKind, consistency: Consistency, idempotent: bool) -> bool {
        if !idempotent && matches!(kind, ErrorKind::ServerError | ErrorKind::Transport) {
            return false;
        }
        Self::is_retryable(kind, consistency)
    }

    /// Upper bound of the wait before retry number `retry` (0-based): `min(cap, base * 2^retry)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let mult = 1u64.checked_shl(retry.min(30)).unwrap_or(u64::MAX);
        let ms = (self.base.as_millis() as u64).saturating_mul(mult);
        Duration::from_millis(ms).min(self.cap)
    }

    /// Full jitter: uniform in `[0, ceiling(retry)]`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceil = self.ceiling(retry).as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ceil))
    }
}

/// Counters for one run: calls, retries, and a log line per retry.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    retries: AtomicU64,
    retried: Mutex<Vec<String>>,
    /// Duration of every attempt, in microseconds (for the critical-path ratio).
    latencies_us: Mutex<Vec<u64>>,
}

impl CallStats {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    /// One line per retried call: `ec2:CreateRoute: Throttling (attempt 2, waited 312ms)`.
    pub fn retried(&self) -> Vec<String> {
        self.retried.lock().map(|v| v.clone()).unwrap_or_default()
    }
    pub fn record_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
    pub fn record_latency(&self, d: Duration) {
        if let Ok(mut v) = self.latencies_us.lock() {
            v.push(d.as_micros() as u64);
        }
    }
    /// Median duration of one call attempt so far.
    pub fn median_latency(&self) -> Option<Duration> {
        let mut v = self.latencies_us.lock().ok()?.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        Some(Duration::from_micros(v[v.len() / 2]))
    }
    fn record_retry(&self, line: String) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "provisioner::retry", "{line}");
        if let Ok(mut v) = self.retried.lock() {
            v.push(line);
        }
    }
}

/// Run `f` under `policy`, counting every attempt in `stats`.
pub async fn with_retry<T, F, Fut>(
    policy: &RetryPolicy,
    stats: &CallStats,
    consistency: Consistency,
    f: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    with_retry_call(policy, stats, consistency, true, f).await
}

/// [`with_retry`] for a call that may not be idempotent (see
/// [`RetryPolicy::is_retryable_call`]).
pub async fn with_retry_call<T, F, Fut>(
    policy: &RetryPolicy,
    stats: &CallStats,
    consistency: Consistency,
    idempotent: bool,
    mut f: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let start = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        stats.record_call();
        attempt += 1;
        let t0 = Instant::now();
        let res = f().await;
        stats.record_latency(t0.elapsed());
        match res {
            Ok(v) => return Ok(v),
            Err(e) => {
                let retryable = RetryPolicy::is_retryable_call(e.kind, consistency, idempotent);
                if !retryable
                    || attempt >= policy.max_attempts
                    || start.elapsed() >= policy.deadline
                {
                    return Err(e);
                }
                let wait = policy.backoff(attempt - 1);
                let code = if e.code.is_empty() {
                    format!("{:?}", e.kind)
                } else {
                    e.code.clone()
                };
                stats.record_retry(format!(
                    "{}: {} (attempt {}, retrying in {}ms)",
                    e.op,
                    code,
                    attempt,
                    wait.as_millis()
                ));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn err(kind: ErrorKind, code: &str) -> CloudError {
        CloudError::new(kind, "ec2:CreateVpc", code, "x")
    }

    #[test]
    fn classification() {
        use Consistency::*;
        use ErrorKind::*;
        assert!(RetryPolicy::is_retryable(Throttling, Strong));
        assert!(RetryPolicy::is_retryable(ServerError, Strong));
        assert!(RetryPolicy::is_retryable(Transport, Strong));
        assert!(!RetryPolicy::is_retryable(NotFound, Strong));
        assert!(RetryPolicy::is_retryable(NotFound, AfterCreate));
        assert!(!RetryPolicy::is_retryable(InvalidRequest, AfterCreate));
        assert!(!RetryPolicy::is_retryable(DependencyViolation, Strong));
        assert!(!RetryPolicy::is_retryable(AccessDenied, Strong));
    }

    #[tokio::test]
    async fn non_idempotent_call_is_not_retried_after_a_5xx_but_is_after_throttling() {
        let stats = CallStats::default();
        let n = AtomicU32::new(0);
        let r: Result<(), _> =
            with_retry_call(&fast(), &stats, Consistency::Strong, false, || async {
                n.fetch_add(1, Ordering::SeqCst);
                Err(err(ErrorKind::ServerError, "InternalError"))
            })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::ServerError);
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "a lost create must not be re-sent"
        );
        let n = AtomicU32::new(0);
        let r = with_retry_call(&fast(), &stats, Consistency::AfterCreate, false, || async {
            match n.fetch_add(1, Ordering::SeqCst) {
                0 => Err(err(ErrorKind::Throttling, "RequestLimitExceeded")),
                1 => Err(err(ErrorKind::NotFound, "InvalidVpcID.NotFound")),
                _ => Ok(1),
            }
        })
        .await;
        assert_eq!(r.unwrap(), 1);
        assert!(!RetryPolicy::is_retryable_call(
            ErrorKind::Transport,
            Consistency::Strong,
            false
        ));
        assert!(RetryPolicy::is_retryable_call(
            ErrorKind::Transport,
            Consistency::Strong,
            true
        ));
    }

    #[test]
    fn backoff_is_bounded_by_exponential_ceiling() {
        let p = RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            ..Default::default()
        };
        assert_eq!(p.ceiling(0), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(400));
        assert_eq!(p.ceiling(10), Duration::from_secs(1));
        assert_eq!(p.ceiling(200), Duration::from_secs(1));
        for r in 0..8 {
            assert!(p.backoff(r) <= p.ceiling(r));
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            max_attempts: 5,
            deadline: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn retries_throttling_then_succeeds_and_counts() {
        let stats = CallStats::default();
        let n = AtomicU32::new(0);
        let r = with_retry(&fast(), &stats, Consistency::Strong, || async {
            if n.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(err(ErrorKind::Throttling, "RequestLimitExceeded"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(r.unwrap(), 7);
        assert_eq!(stats.calls(), 3);
        assert!(stats.median_latency().is_some());
        assert_eq!(stats.retries(), 2);
        assert!(stats.retried()[0].contains("RequestLimitExceeded"));
    }

    #[tokio::test]
    async fn does_not_retry_invalid_request_or_plain_not_found() {
        let stats = CallStats::default();
        let r: Result<(), _> = with_retry(&fast(), &stats, Consistency::Strong, || async {
            Err(err(ErrorKind::NotFound, "InvalidVpcID.NotFound"))
        })
        .await;
        assert!(r.unwrap_err().is_not_found());
        assert_eq!(stats.calls(), 1);
        let r: Result<(), _> = with_retry(&fast(), &stats, Consistency::AfterCreate, || async {
            Err(err(ErrorKind::InvalidRequest, "InvalidParameterValue"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(stats.calls(), 2);
        assert_eq!(stats.retries(), 0);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let stats = CallStats::default();
        let r: Result<(), _> = with_retry(&fast(), &stats, Consistency::AfterCreate, || async {
            Err(err(ErrorKind::NotFound, "InvalidVpcID.NotFound"))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(stats.calls(), 5);
        assert_eq!(stats.retries(), 4);
    }
}
