//! Network and application load balancers (`nlb/<name>`, `alb/<name>`): type and scheme are
//! immutable, and so is whether it has security groups at all; subnets and the groups are
//! updated in place. Waiting until one is `active`
//! is a task of its own (`nlb-active/<name>`, `alb-active/<name>`) that nothing else waits
//! for: listeners, alias records and the launch templates that name the NLB need only its ARN
//! and DNS name, so on real AWS the instances boot while the load balancer provisions (minutes),
//! and `up` still ends only once it is active.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known};
use crate::aws::api::LoadBalancers;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct LoadBalancer {
    /// `nlb` or `alb`.
    pub kind: &'static str,
    pub name: String,
    pub aws_name: String,
    pub internal: bool,
    /// Ordering only (an internet-facing one waits for its VPC's internet gateway).
    pub extra_deps: Vec<TaskKey>,
    pub subnets: Vec<TaskKey>,
    pub security_groups: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LbState {
    pub lb_type: String,
    pub scheme: String,
    pub subnets: Vec<String>,
    /// Whether it has security groups at all: AWS cannot give groups to an NLB made
    /// without any, nor take the last one away (immutable; the groups themselves are not).
    pub uses_security_groups: bool,
    pub security_groups: Vec<String>,
}

fn outputs(arn: &str, dns: &str, zone: &str) -> OutputMap {
    [
        ("id".to_string(), arn.to_string()),
        ("dns_name".to_string(), dns.to_string()),
        ("zone_id".to_string(), zone.to_string()),
    ]
    .into()
}

impl<C: LoadBalancers> Resource<C> for LoadBalancer {
    type State = LbState;
    fn key(&self) -> TaskKey {
        TaskKey::new(self.kind, &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = self.subnets.clone();
        d.extend(self.security_groups.iter().cloned());
        d.extend(self.extra_deps.iter().cloned());
        d
    }
    fn output_names(&self) -> &'static [&'static str] {
        &["id", "dns_name", "zone_id"]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["lb_type", "scheme", "uses_security_groups"]
    }
    fn desired(&self, i: &Outputs) -> Result<LbState, TaskError> {
        let mut subnets = Vec::new();
        for s in &self.subnets {
            subnets.push(i.id(s)?);
        }
        subnets.sort();
        let mut sgs = Vec::new();
        for g in &self.security_groups {
            sgs.push(i.id(g)?);
        }
        sgs.sort();
        Ok(LbState {
            lb_type: if self.kind == "nlb" {
                "network".into()
            } else {
                "application".into()
            },
            scheme: if self.internal {
                "internal".into()
            } else {
                "internet-facing".into()
            },
            subnets,
            uses_security_groups: !sgs.is_empty(),
            security_groups: sgs,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a LbState,
    ) -> BoxFuture<'a, Result<Option<Found<LbState>>, TaskError>> {
        Box::pin(async move {
            let found =
                by_name(cx.load_balancers().await?, &self.name, |l| &l.tags).map(|l| Found {
                    outputs: outputs(&l.arn, &l.dns_name, &l.canonical_zone_id),
                    state: LbState {
                        lb_type: l.lb_type,
                        scheme: l.scheme,
                        subnets: l.subnets,
                        uses_security_groups: !l.security_groups.is_empty(),
                        security_groups: l.security_groups,
                    },
                });
            if found.is_none() {
                // The plan fails as `up` would: the name is someone else's.
                cx.check_lb_name_free(&self.aws_name).await?;
            }
            Ok(found)
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a LbState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            if d.subnets
                .iter()
                .chain(&d.security_groups)
                .any(|s| !known(s))
            {
                return Err(TaskError::NotReady("subnets not known".into()));
            }
            let lb = cx
                .create_load_balancer(
                    &self.name,
                    &self.aws_name,
                    self.kind == "nlb",
                    self.internal,
                    &d.subnets,
                    &d.security_groups,
                )
                .await?;
            Ok(outputs(&lb.arn, &lb.dns_name, &lb.canonical_zone_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<LbState>,
        d: &'a LbState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let arn = &a.outputs["id"];
            if a.state.subnets != d.subnets {
                cx.set_lb_subnets(arn, &d.subnets).await?;
            }
            if a.state.security_groups != d.security_groups {
                cx.set_lb_security_groups(arn, &d.security_groups).await?;
            }
            Ok(OutputMap::new())
        })
    }
}

/// The waiter: a load balancer `active`.
pub struct LoadBalancerActive {
    /// `nlb` or `alb`.
    pub kind: &'static str,
    pub name: String,
    pub aws_name: String,
    pub lb: TaskKey,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActiveState {
    #[serde(skip)]
    pub arn: String,
    pub state: String,
}

impl<C: LoadBalancers> Resource<C> for LoadBalancerActive {
    type State = ActiveState;
    fn absent_reason(&self) -> String {
        format!("wait for {} to be active", self.lb)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new(&format!("{}-active", self.kind), &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.lb.clone()]
    }
    fn desired(&self, i: &Outputs) -> Result<ActiveState, TaskError> {
        Ok(ActiveState {
            arn: i.id(&self.lb)?,
            state: "active".into(),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a ActiveState,
    ) -> BoxFuture<'a, Result<Option<Found<ActiveState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.arn) {
                return Ok(None);
            }
            // One created earlier in this run is not in the cached describe: `create` waits.
            Ok(cx
                .load_balancers()
                .await?
                .into_iter()
                .find(|l| l.arn == d.arn)
                .map(|l| Found {
                    state: ActiveState {
                        arn: l.arn.clone(),
                        state: l.state,
                    },
                    outputs: [("id".to_string(), l.arn)].into(),
                }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a ActiveState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.wait_lb_active(&d.arn, &self.aws_name).await?;
            Ok([("id".to_string(), d.arn.clone())].into())
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        _: &'a Found<ActiveState>,
        d: &'a ActiveState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        // Still provisioning (a run interrupted while it came up): wait here.
        Box::pin(async move {
            cx.wait_lb_active(&d.arn, &self.aws_name).await?;
            Ok(OutputMap::new())
        })
    }
}
