//! Listener of a load balancer, with its path rules (ALB). Listeners and rules are owned
//! through their owned load balancer (found by its ARN, not by tag).

use futures::future::BoxFuture;
use serde::Serialize;

use super::{known, out_id};
use crate::aws::api::Listeners;
use crate::aws::elb::PathRuleInfo;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct PathRuleSpec {
    pub priority: i32,
    pub path: String,
    pub target: TaskKey,
}

pub struct Listener {
    pub name: String,
    pub lb: TaskKey,
    /// `TCP` or `HTTP`.
    pub protocol: String,
    pub port: i32,
    pub default_target: TaskKey,
    pub rules: Vec<PathRuleSpec>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenerState {
    #[serde(skip)]
    pub lb_arn: String,
    pub protocol: String,
    pub default_target: String,
    pub rules: Vec<PathRuleInfo>,
}

impl<C: Listeners> Resource<C> for Listener {
    type State = ListenerState;
    fn absent_reason(&self) -> String {
        format!("no listener on port {} of {}", self.port, self.lb)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("listener", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.lb.clone(), self.default_target.clone()];
        d.extend(self.rules.iter().map(|r| r.target.clone()));
        d.sort();
        d.dedup();
        d
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["protocol"]
    }
    fn desired(&self, i: &Outputs) -> Result<ListenerState, TaskError> {
        let mut rules = Vec::new();
        for r in &self.rules {
            rules.push(PathRuleInfo {
                priority: r.priority,
                path: r.path.clone(),
                target: i.id(&r.target)?,
                arn: String::new(),
            });
        }
        rules.sort();
        Ok(ListenerState {
            lb_arn: i.id(&self.lb)?,
            protocol: self.protocol.clone(),
            default_target: i.id(&self.default_target)?,
            rules,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a ListenerState,
    ) -> BoxFuture<'a, Result<Option<Found<ListenerState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.lb_arn) {
                return Ok(None);
            }
            let Some(l) = cx
                .listeners(&d.lb_arn)
                .await?
                .into_iter()
                .find(|l| l.port == self.port)
            else {
                return Ok(None);
            };
            let rules = if self.protocol == "HTTP" {
                cx.listener_rules(&l.arn).await?
            } else {
                Vec::new()
            };
            Ok(Some(Found {
                state: ListenerState {
                    lb_arn: d.lb_arn.clone(),
                    protocol: l.protocol,
                    default_target: l.default_target.unwrap_or_default(),
                    rules,
                },
                outputs: out_id(&l.arn),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a ListenerState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let arn = cx
                .create_listener(&d.lb_arn, &d.protocol, self.port, &d.default_target)
                .await?;
            // Distinct priorities: independent of each other, all at once.
            futures::future::try_join_all(d.rules.iter().map(|r| cx.create_rule(&arn, r))).await?;
            Ok(out_id(&arn))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<ListenerState>,
        d: &'a ListenerState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let arn = &a.outputs["id"];
            if a.state.default_target != d.default_target {
                cx.modify_listener_target(arn, &d.default_target).await?;
            }
            let same = |x: &PathRuleInfo, y: &PathRuleInfo| {
                x.priority == y.priority && x.path == y.path && x.target == y.target
            };
            // Stale rules first (a new rule may take a priority an old one holds).
            let stale = a
                .state
                .rules
                .iter()
                .filter(|r| !d.rules.iter().any(|w| same(w, r)));
            futures::future::try_join_all(stale.map(|r| cx.delete_rule(&r.arn))).await?;
            let missing = d
                .rules
                .iter()
                .filter(|r| !a.state.rules.iter().any(|h| same(h, r)));
            futures::future::try_join_all(missing.map(|r| cx.create_rule(arn, r))).await?;
            Ok(OutputMap::new())
        })
    }
}
