//! Teardown (kops `pkg/resources/ops/delete.go`): not the apply replayed backwards, but a
//! delete order derived from what was actually *discovered* by tag, with an explicit "uses"
//! relation between discovered resources. Rounds run one after the other; inside a round
//! deletions run concurrently; `DependencyViolation` is retried (something not yet visible as
//! gone) until a deadline; `NotFound` counts as deleted.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};

use super::error::{CloudError, ErrorKind};
use super::graph::Graph;
use super::retry::RetryPolicy;
use super::task::TaskKey;

/// One discovered resource to delete. `key` is `kind/cloud-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doomed {
    pub key: TaskKey,
    /// Resources this one uses (its VPC, subnet, the SG it references …): it is deleted
    /// before every one of them.
    pub uses: Vec<TaskKey>,
}

/// Delete rounds for `items`. Edges to resources not in the set are ignored (already gone or
/// not ours). A cycle cannot stop a teardown: its members go to a last round, where
/// DependencyViolation retries sort them out.
pub fn plan_rounds(items: &[Doomed]) -> Vec<Vec<TaskKey>> {
    let g = Graph::new_lenient(items.iter().map(|d| (d.key.clone(), d.uses.clone())));
    match g.teardown_rounds() {
        Ok(r) => r,
        Err(_) => {
            // Peel what can be ordered, leave the cycle for the end.
            let mut rounds = Vec::new();
            let mut left: Vec<Doomed> = items.to_vec();
            loop {
                let used: std::collections::BTreeSet<&TaskKey> = left
                    .iter()
                    .flat_map(|d| d.uses.iter())
                    .filter(|u| left.iter().any(|l| &l.key == *u))
                    .collect();
                let free: Vec<TaskKey> = left
                    .iter()
                    .filter(|d| !used.contains(&d.key))
                    .map(|d| d.key.clone())
                    .collect();
                if free.is_empty() {
                    rounds.push(left.iter().map(|d| d.key.clone()).collect());
                    return rounds;
                }
                left.retain(|d| !free.contains(&d.key));
                rounds.push(free);
                if left.is_empty() {
                    return rounds;
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct TeardownOptions {
    /// How long DependencyViolation is retried, per round.
    pub round_deadline: Duration,
    pub concurrency: usize,
    pub policy: RetryPolicy,
}

impl Default for TeardownOptions {
    fn default() -> Self {
        Self {
            round_deadline: Duration::from_secs(600),
            concurrency: 16,
            policy: RetryPolicy {
                base: Duration::from_millis(500),
                cap: Duration::from_secs(15),
                max_attempts: u32::MAX,
                deadline: Duration::from_secs(600),
            },
        }
    }
}

/// Outcome of deleting one resource.
#[derive(Debug, Clone)]
pub struct Deleted {
    pub key: TaskKey,
    pub result: Result<(), CloudError>,
    /// DependencyViolation retries it took.
    pub dependency_retries: u32,
}

/// Delete `items` in rounds with `delete`. Returns one entry per item.
pub async fn delete_in_rounds<'a, C: Sync>(
    cx: &'a C,
    items: &[Doomed],
    opts: &TeardownOptions,
    delete: &'a (dyn Fn(&'a C, TaskKey) -> BoxFuture<'a, Result<(), CloudError>> + Sync),
    on_done: &(dyn Fn(&Deleted) + Sync),
) -> Vec<Deleted> {
    let mut out = Vec::new();
    for round in plan_rounds(items) {
        let results: Vec<Deleted> = stream::iter(round)
            .map(|key| async move {
                let start = Instant::now();
                let mut retries = 0u32;
                loop {
                    match delete(cx, key.clone()).await {
                        Ok(()) => {
                            break Deleted {
                                key,
                                result: Ok(()),
                                dependency_retries: retries,
                            }
                        }
                        Err(e) if e.kind == ErrorKind::NotFound => {
                            break Deleted {
                                key,
                                result: Ok(()),
                                dependency_retries: retries,
                            }
                        }
                        Err(e)
                            if e.kind == ErrorKind::DependencyViolation
                                && start.elapsed() < opts.round_deadline =>
                        {
                            tracing::info!(target: "provisioner::retry",
                                "{key}: {} (DependencyViolation), retrying", e.code);
                            tokio::time::sleep(opts.policy.backoff(retries)).await;
                            retries += 1;
                        }
                        Err(e) => {
                            break Deleted {
                                key,
                                result: Err(e),
                                dependency_retries: retries,
                            }
                        }
                    }
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect()
            .await;
        for r in &results {
            on_done(r);
        }
        out.extend(results);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    fn k(s: &str) -> TaskKey {
        let (a, b) = s.split_once('/').unwrap();
        TaskKey::new(a, b)
    }
    fn d(key: &str, uses: &[&str]) -> Doomed {
        Doomed {
            key: k(key),
            uses: uses.iter().map(|u| k(u)).collect(),
        }
    }
    fn round_of(r: &[Vec<TaskKey>], s: &str) -> usize {
        r.iter().position(|x| x.contains(&k(s))).unwrap()
    }

    /// What `down --env` discovers for one VPC with NAT, an ALB and an ASG.
    fn discovered() -> Vec<Doomed> {
        vec![
            d("vpc/vpc-1", &[]),
            d("igw/igw-1", &["vpc/vpc-1"]),
            d("subnet/subnet-pub", &["vpc/vpc-1"]),
            d("subnet/subnet-priv", &["vpc/vpc-1"]),
            d("eip/eipalloc-1", &[]),
            // Mapped public addresses block the IGW's detachment.
            d(
                "nat/nat-1",
                &["subnet/subnet-pub", "eip/eipalloc-1", "igw/igw-1"],
            ),
            d(
                "rtb/rtb-priv",
                &["vpc/vpc-1", "nat/nat-1", "subnet/subnet-priv"],
            ),
            d(
                "rtb/rtb-pub",
                &["vpc/vpc-1", "igw/igw-1", "subnet/subnet-pub"],
            ),
            d("sg/sg-app", &["vpc/vpc-1"]),
            d("sg/sg-db", &["vpc/vpc-1", "sg/sg-app"]),
            d("sg/sg-alb", &["vpc/vpc-1"]),
            d("lt/lt-1", &["sg/sg-app"]),
            // An ASG replaces terminated instances: the group goes first, then its instances.
            d(
                "asg/app",
                &["lt/lt-1", "subnet/subnet-priv", "tg/tg-1", "instance/i-1"],
            ),
            d("tg/tg-1", &["vpc/vpc-1"]),
            d("lb/alb", &["subnet/subnet-pub", "sg/sg-alb"]),
            d("listener/l-1", &["lb/alb", "tg/tg-1"]),
            d("eni/eni-stray", &["subnet/subnet-priv", "sg/sg-app"]),
            d("instance/i-1", &["subnet/subnet-priv"]),
        ]
    }

    #[test]
    fn igw_before_vpc_and_nat_before_its_subnet_and_eip() {
        let r = plan_rounds(&discovered());
        assert!(round_of(&r, "igw/igw-1") < round_of(&r, "vpc/vpc-1"));
        assert!(round_of(&r, "nat/nat-1") < round_of(&r, "subnet/subnet-pub"));
        assert!(round_of(&r, "nat/nat-1") < round_of(&r, "eip/eipalloc-1"));
        assert!(round_of(&r, "nat/nat-1") < round_of(&r, "igw/igw-1"));
        assert!(round_of(&r, "rtb/rtb-priv") < round_of(&r, "nat/nat-1"));
    }

    #[test]
    fn referenced_security_group_outlives_its_referrers() {
        let r = plan_rounds(&discovered());
        assert!(round_of(&r, "sg/sg-db") < round_of(&r, "sg/sg-app"));
        assert!(round_of(&r, "lt/lt-1") < round_of(&r, "sg/sg-app"));
        assert!(round_of(&r, "eni/eni-stray") < round_of(&r, "sg/sg-app"));
        assert!(round_of(&r, "lb/alb") < round_of(&r, "sg/sg-alb"));
    }

    #[test]
    fn occupied_subnet_is_emptied_first() {
        let r = plan_rounds(&discovered());
        assert!(round_of(&r, "asg/app") < round_of(&r, "instance/i-1"));
        for user in ["asg/app", "instance/i-1", "eni/eni-stray", "rtb/rtb-priv"] {
            assert!(
                round_of(&r, user) < round_of(&r, "subnet/subnet-priv"),
                "{user}"
            );
        }
        assert!(round_of(&r, "listener/l-1") < round_of(&r, "lb/alb"));
        assert!(round_of(&r, "listener/l-1") < round_of(&r, "tg/tg-1"));
        assert!(round_of(&r, "asg/app") < round_of(&r, "tg/tg-1"));
        assert_eq!(round_of(&r, "vpc/vpc-1"), r.len() - 1);
    }

    #[test]
    fn a_cycle_does_not_block_teardown() {
        let items = vec![
            d("sg/a", &["sg/b"]),
            d("sg/b", &["sg/a"]),
            d("lt/x", &["sg/a"]),
        ];
        let r = plan_rounds(&items);
        assert_eq!(r[0], vec![k("lt/x")]);
        let last: BTreeSet<_> = r.last().unwrap().iter().cloned().collect();
        assert_eq!(last, [k("sg/a"), k("sg/b")].into_iter().collect());
    }

    #[tokio::test]
    async fn dependency_violation_is_retried_and_not_found_is_success() {
        struct Cx {
            vpc_tries: Mutex<u32>,
            order: Mutex<Vec<String>>,
        }
        let cx = Cx {
            vpc_tries: Mutex::new(0),
            order: Mutex::new(vec![]),
        };
        let items = vec![
            d("vpc/v", &[]),
            d("subnet/s", &["vpc/v"]),
            d("igw/i", &["vpc/v"]),
        ];
        let opts = TeardownOptions {
            policy: RetryPolicy {
                base: Duration::from_millis(1),
                cap: Duration::from_millis(2),
                ..Default::default()
            },
            ..Default::default()
        };
        fn del(cx: &Cx, key: TaskKey) -> BoxFuture<'_, Result<(), CloudError>> {
            Box::pin(async move {
                cx.order.lock().unwrap().push(key.to_string());
                match key.kind() {
                    "vpc" => {
                        let mut n = cx.vpc_tries.lock().unwrap();
                        *n += 1;
                        if *n < 3 {
                            return Err(CloudError::new(
                                ErrorKind::DependencyViolation,
                                "ec2:DeleteVpc",
                                "DependencyViolation",
                                "has dependencies",
                            ));
                        }
                        Ok(())
                    }
                    "igw" => Err(CloudError::new(
                        ErrorKind::NotFound,
                        "ec2:DeleteInternetGateway",
                        "InvalidInternetGatewayID.NotFound",
                        "gone",
                    )),
                    _ => Ok(()),
                }
            })
        }
        let res = delete_in_rounds(&cx, &items, &opts, &del, &|_| {}).await;
        assert!(res.iter().all(|r| r.result.is_ok()));
        let vpc = res.iter().find(|r| r.key.kind() == "vpc").unwrap();
        assert_eq!(vpc.dependency_retries, 2);
        let order = cx.order.lock().unwrap().clone();
        assert_eq!(order.first().map(|s| s.starts_with("vpc")), Some(false));
    }
}
