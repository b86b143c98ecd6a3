//! Security group (`sg/<name>`) and its ingress rules (`sg-rules/<name>`), two tasks so that
//! groups referencing each other (or themselves) never form a cycle: every group exists
//! before any rule that names it. Egress stays AWS's default (all traffic out).

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::SecurityGroups;
use crate::aws::ec2::RuleInfo;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct SecurityGroup {
    pub name: String,
    pub vpc: TaskKey,
    pub group_name: String,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SgState {
    pub vpc_id: String,
    pub group_name: String,
    /// Immutable in AWS: a change is rejected by the plan, naming the field.
    pub description: String,
}

impl<C: SecurityGroups> Resource<C> for SecurityGroup {
    type State = SgState;
    fn key(&self) -> TaskKey {
        TaskKey::new("sg", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![self.vpc.clone()]
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["vpc_id", "group_name", "description"]
    }
    fn desired(&self, i: &Outputs) -> Result<SgState, TaskError> {
        Ok(SgState {
            vpc_id: i.id(&self.vpc)?,
            group_name: self.group_name.clone(),
            description: self.description.clone(),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a SgState,
    ) -> BoxFuture<'a, Result<Option<Found<SgState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.vpc_id) {
                return Ok(None);
            }
            Ok(
                by_name(cx.security_groups().await?, &self.name, |g| &g.tags).map(|g| Found {
                    state: SgState {
                        vpc_id: g.vpc_id,
                        group_name: g.group_name,
                        description: g.description,
                    },
                    outputs: out_id(&g.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a SgState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx
                .create_security_group(&self.name, &d.group_name, &self.description, &d.vpc_id)
                .await?;
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<SgState>,
        _: &'a SgState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

/// Where a rule's traffic comes from, before ids are known.
pub enum RuleSource {
    Cidr(String),
    Group(TaskKey),
    /// The `public_ip` output of an Elastic IP task, as a /32 (a NAT gateway's address).
    PublicIp(TaskKey),
}

pub struct RuleSpec {
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub source: RuleSource,
    pub description: Option<String>,
}

pub struct SecurityGroupRules {
    /// The group's logical name.
    pub name: String,
    pub group: TaskKey,
    pub rules: Vec<RuleSpec>,
    /// Extra ordering dependencies (the load balancer's subnets …).
    pub extra_deps: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RulesState {
    #[serde(skip)]
    pub group_id: String,
    pub ingress: Vec<RuleInfo>,
}

impl<C: SecurityGroups> Resource<C> for SecurityGroupRules {
    type State = RulesState;
    fn absent_reason(&self) -> String {
        format!("added once {} exists", self.group)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("sg-rules", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.group.clone()];
        for r in &self.rules {
            if let RuleSource::Group(g) | RuleSource::PublicIp(g) = &r.source {
                d.push(g.clone());
            }
        }
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<RulesState, TaskError> {
        let mut ingress = Vec::new();
        for r in &self.rules {
            ingress.push(RuleInfo {
                protocol: r.protocol.clone(),
                from_port: r.from_port,
                to_port: r.to_port,
                source: match &r.source {
                    RuleSource::Cidr(c) => c.clone(),
                    RuleSource::Group(g) => i.id(g)?,
                    RuleSource::PublicIp(eip) => {
                        let ip = i.get(eip, "public_ip")?;
                        if known(&ip) {
                            format!("{ip}/32")
                        } else {
                            ip
                        }
                    }
                },
                description: r.description.clone().unwrap_or_default(),
            });
        }
        ingress.sort();
        // One rule to AWS (a group named directly and through its load balancer …): one
        // description is kept.
        ingress.dedup_by(|later, first| later.same_rule(first));
        Ok(RulesState {
            group_id: i.id(&self.group)?,
            ingress,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RulesState,
    ) -> BoxFuture<'a, Result<Option<Found<RulesState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.group_id) {
                return Ok(None);
            }
            // A group created earlier in this run is not in the cached describe: its rules
            // are then created (as the plan, which did not know the group, said).
            Ok(
                by_name(cx.security_groups().await?, &self.name, |g| &g.tags).map(|g| Found {
                    state: RulesState {
                        group_id: d.group_id.clone(),
                        ingress: g.ingress,
                    },
                    outputs: out_id(&d.group_id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a RulesState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        // The group is new (created earlier in this run): add every rule.
        Box::pin(async move {
            cx.authorize_ingress(&d.group_id, &d.ingress).await?;
            Ok(out_id(&d.group_id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<RulesState>,
        d: &'a RulesState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = &a.outputs["id"];
            let add: Vec<RuleInfo> = d
                .ingress
                .iter()
                .filter(|r| !a.state.ingress.contains(r) && known(&r.source))
                .cloned()
                .collect();
            let remove: Vec<RuleInfo> = a
                .state
                .ingress
                .iter()
                .filter(|r| !d.ingress.contains(r))
                .cloned()
                .collect();
            // New rules go in before old ones go out, so no traffic that both allow is cut
            // off in between. A rule whose description changed is the same rule to AWS:
            // authorizing it again before the revoke would be a duplicate, so it goes last.
            let (redescribed, new): (Vec<RuleInfo>, Vec<RuleInfo>) = add
                .into_iter()
                .partition(|r| remove.iter().any(|x| x.same_rule(r)));
            cx.authorize_ingress(id, &new).await?;
            cx.revoke_ingress(id, &remove).await?;
            cx.authorize_ingress(id, &redescribed).await?;
            Ok(OutputMap::new())
        })
    }
}
