//! Elastic Load Balancing v2: load balancers, target groups, listeners, listener rules.
//! ELBv2 has no tag filter on describes: one paginated describe per type, then the tags of
//! all of them in batches of 20 (`DescribeTags`), keeping only this environment's.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, Matcher, ProtocolEnum,
    RuleCondition, Tag, TargetTypeEnum,
};

use super::{tag_map, Cloud, TAG_ENV};
use crate::engine::retry::Consistency::{AfterCreate, Strong};
use crate::engine::{CloudError, ErrorKind};

#[derive(Debug, Clone)]
pub struct LbInfo {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
    pub canonical_zone_id: String,
    pub scheme: String,
    pub lb_type: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

/// Desired/actual settings of a target group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TgSpec {
    /// `HTTP` or `TCP`.
    pub protocol: String,
    pub port: i32,
    pub vpc_id: String,
    pub health_path: Option<String>,
    pub interval: i32,
    pub timeout: i32,
    pub healthy: i32,
    pub unhealthy: i32,
    pub matcher: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TgInfo {
    pub arn: String,
    pub name: String,
    pub spec: TgSpec,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub arn: String,
    pub port: i32,
    pub protocol: String,
    pub default_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PathRuleInfo {
    pub priority: i32,
    pub path: String,
    pub target: String,
    #[serde(skip)]
    pub arn: String,
}

#[derive(Debug, Clone)]
pub struct TargetHealthInfo {
    pub target: String,
    pub state: String,
}

fn to_tags(cloud: &Cloud, name: &str) -> Vec<Tag> {
    cloud
        .tags_for(name)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn forward(tg: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build()
}

/// One ELBv2 describe, split by owner (cached as one value, so the names of the others are
/// always those of the describe the caller just read).
#[derive(Debug, Clone)]
struct Listing<T> {
    mine: Vec<T>,
    foreign: BTreeSet<String>,
}

impl<T> Listing<T> {
    /// Refuse to "create" a name someone else's object holds: CreateLoadBalancer and
    /// CreateTargetGroup would answer with that object (same name and settings), and this
    /// environment would then change what it does not own.
    fn check_free(&self, what: &str, aws_name: &str, env: &str) -> Result<(), CloudError> {
        if !self.foreign.contains(aws_name) {
            return Ok(());
        }
        Err(CloudError::new(
            ErrorKind::InvalidRequest,
            "elbv2:Create",
            "NameHeldByAnotherOwner",
            format!(
                "a {what} named {aws_name} already exists and is not tagged {TAG_ENV}={env}: it is not adopted (rename the environment or the resource)"
            ),
        ))
    }
}

/// An ELBv2 resource listed before its tags are known (ELBv2 describes return no tags).
trait ElbTagged {
    fn arn(&self) -> &str;
    fn name(&self) -> &str;
    fn tags_mut(&mut self) -> &mut BTreeMap<String, String>;
    fn tags(&self) -> &BTreeMap<String, String>;
}

/// Both listings carry `arn`, `name` and `tags` fields.
macro_rules! elb_tagged {
    ($($t:ty),*) => {$(
        impl ElbTagged for $t {
            fn arn(&self) -> &str {
                &self.arn
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn tags_mut(&mut self) -> &mut BTreeMap<String, String> {
                &mut self.tags
            }
            fn tags(&self) -> &BTreeMap<String, String> {
                &self.tags
            }
        }
    )*};
}
elb_tagged!(LbInfo, TgInfo);

/// Application and network load balancers, with the waiter for `active`.
pub trait LoadBalancers: Send + Sync {
    fn load_balancers(&self) -> impl Future<Output = Result<Vec<LbInfo>, CloudError>> + Send;
    /// An error if a load balancer named `aws_name` exists and is not this environment's:
    /// CreateLoadBalancer would answer with it (same name and settings), and it would be
    /// changed as if it were ours. From the describe `load_balancers` reads.
    fn check_lb_name_free(
        &self,
        aws_name: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn create_load_balancer(
        &self,
        name: &str,
        aws_name: &str,
        network: bool,
        internal: bool,
        subnets: &[String],
        security_groups: &[String],
    ) -> impl Future<Output = Result<LbInfo, CloudError>> + Send;
    /// Waiter: the load balancer `active` (fails early on `failed`).
    fn wait_lb_active(
        &self,
        arn: &str,
        aws_name: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn set_lb_subnets(
        &self,
        arn: &str,
        subnets: &[String],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn set_lb_security_groups(
        &self,
        arn: &str,
        sgs: &[String],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_load_balancer(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Target groups and the health of their targets.
pub trait TargetGroups: Send + Sync {
    fn target_groups(&self) -> impl Future<Output = Result<Vec<TgInfo>, CloudError>> + Send;
    /// As [`LoadBalancers::check_lb_name_free`], for target groups.
    fn check_tg_name_free(
        &self,
        aws_name: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn create_target_group(
        &self,
        name: &str,
        aws_name: &str,
        spec: &TgSpec,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn modify_target_group(
        &self,
        arn: &str,
        spec: &TgSpec,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_target_group(&self, arn: &str)
        -> impl Future<Output = Result<(), CloudError>> + Send;
    fn target_health(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<TargetHealthInfo>, CloudError>> + Send;
}

/// Listeners and their path rules.
pub trait Listeners: Send + Sync {
    /// Listeners of one (owned) load balancer: untagged children, owned through it.
    fn listeners(
        &self,
        lb_arn: &str,
    ) -> impl Future<Output = Result<Vec<ListenerInfo>, CloudError>> + Send;
    fn create_listener(
        &self,
        lb_arn: &str,
        protocol: &str,
        port: i32,
        target: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn modify_listener_target(
        &self,
        arn: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_listener(&self, arn: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn listener_rules(
        &self,
        listener_arn: &str,
    ) -> impl Future<Output = Result<Vec<PathRuleInfo>, CloudError>> + Send;
    fn create_rule(
        &self,
        listener_arn: &str,
        rule: &PathRuleInfo,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_rule(&self, arn: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

impl LoadBalancers for Cloud {
    async fn load_balancers(&self) -> Result<Vec<LbInfo>, CloudError> {
        Ok(self.lb_listing().await?.mine)
    }

    async fn check_lb_name_free(&self, aws_name: &str) -> Result<(), CloudError> {
        self.lb_listing()
            .await?
            .check_free("load balancer", aws_name, &self.env)
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_load_balancer(
        &self,
        name: &str,
        aws_name: &str,
        network: bool,
        internal: bool,
        subnets: &[String],
        security_groups: &[String],
    ) -> Result<LbInfo, CloudError> {
        // A name held by another owner is refused here (and already by `find`); one taken in
        // the moment between that describe and this create is not caught.
        self.check_lb_name_free(aws_name).await?;
        let out = self
            .call("elbv2:CreateLoadBalancer", AfterCreate, || {
                let mut b = self
                    .elb
                    .create_load_balancer()
                    .name(aws_name)
                    .r#type(if network {
                        LoadBalancerTypeEnum::Network
                    } else {
                        LoadBalancerTypeEnum::Application
                    })
                    .scheme(if internal {
                        LoadBalancerSchemeEnum::Internal
                    } else {
                        LoadBalancerSchemeEnum::InternetFacing
                    })
                    .set_subnets(Some(subnets.to_vec()))
                    .set_tags(Some(to_tags(self, name)));
                if !security_groups.is_empty() {
                    b = b.set_security_groups(Some(security_groups.to_vec()));
                }
                b.send()
            })
            .await?;
        let lb = out.load_balancers().first().ok_or_else(|| {
            CloudError::new(
                ErrorKind::Other,
                "elbv2:CreateLoadBalancer",
                "",
                "no load balancer returned",
            )
        })?;
        let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
        // A load balancer just made has no listeners: they need not be listed.
        self.inventory
            .seed(&format!("elb:listeners:{arn}"), Vec::<ListenerInfo>::new());
        let created_state = lb
            .state()
            .and_then(|s| s.code())
            .map(|c| c.as_str().to_string())
            .unwrap_or_default();
        Ok(LbInfo {
            arn,
            name: aws_name.to_string(),
            dns_name: lb.dns_name().unwrap_or_default().into(),
            canonical_zone_id: lb.canonical_hosted_zone_id().unwrap_or_default().into(),
            scheme: String::new(),
            lb_type: String::new(),
            subnets: subnets.to_vec(),
            security_groups: security_groups.to_vec(),
            state: created_state,
            tags: BTreeMap::new(),
        })
    }

    async fn wait_lb_active(&self, arn: &str, aws_name: &str) -> Result<(), CloudError> {
        self.wait_for(&format!("load balancer {aws_name} active"), || async {
            let r = self
                .call("elbv2:DescribeLoadBalancers", AfterCreate, || {
                    self.elb
                        .describe_load_balancers()
                        .load_balancer_arns(arn)
                        .send()
                })
                .await?;
            let state = r
                .load_balancers()
                .first()
                .and_then(|l| l.state())
                .and_then(|s| s.code())
                .map(|c| c.as_str().to_string())
                .unwrap_or_default();
            match state.as_str() {
                "active" | "" => Ok(Some(())),
                "failed" => Err(CloudError::new(
                    ErrorKind::Other,
                    "elbv2:DescribeLoadBalancers",
                    "LoadBalancerFailed",
                    format!("{aws_name} failed to provision"),
                )),
                _ => Ok(None),
            }
        })
        .await?;
        Ok(())
    }

    async fn set_lb_subnets(&self, arn: &str, subnets: &[String]) -> Result<(), CloudError> {
        self.call("elbv2:SetSubnets", Strong, || {
            self.elb
                .set_subnets()
                .load_balancer_arn(arn)
                .set_subnets(Some(subnets.to_vec()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn set_lb_security_groups(&self, arn: &str, sgs: &[String]) -> Result<(), CloudError> {
        self.call("elbv2:SetSecurityGroups", Strong, || {
            self.elb
                .set_security_groups()
                .load_balancer_arn(arn)
                .set_security_groups(Some(sgs.to_vec()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_load_balancer(&self, arn: &str) -> Result<(), CloudError> {
        self.call("elbv2:DeleteLoadBalancer", Strong, || {
            self.elb
                .delete_load_balancer()
                .load_balancer_arn(arn)
                .send()
        })
        .await
        .map(|_| ())
    }
}

impl TargetGroups for Cloud {
    async fn target_groups(&self) -> Result<Vec<TgInfo>, CloudError> {
        Ok(self.tg_listing().await?.mine)
    }

    async fn check_tg_name_free(&self, aws_name: &str) -> Result<(), CloudError> {
        self.tg_listing()
            .await?
            .check_free("target group", aws_name, &self.env)
    }

    async fn create_target_group(
        &self,
        name: &str,
        aws_name: &str,
        spec: &TgSpec,
    ) -> Result<String, CloudError> {
        self.check_tg_name_free(aws_name).await?;
        let out = self
            .call("elbv2:CreateTargetGroup", AfterCreate, || {
                let mut b = self
                    .elb
                    .create_target_group()
                    .name(aws_name)
                    .protocol(ProtocolEnum::from(spec.protocol.as_str()))
                    .port(spec.port)
                    .vpc_id(&spec.vpc_id)
                    .target_type(TargetTypeEnum::Instance)
                    .health_check_interval_seconds(spec.interval)
                    .health_check_timeout_seconds(spec.timeout)
                    .healthy_threshold_count(spec.healthy)
                    .unhealthy_threshold_count(spec.unhealthy)
                    .set_tags(Some(to_tags(self, name)));
                if let Some(p) = &spec.health_path {
                    b = b
                        .health_check_path(p)
                        .health_check_protocol(ProtocolEnum::Http);
                }
                if let Some(m) = &spec.matcher {
                    b = b.matcher(Matcher::builder().http_code(m).build());
                }
                b.send()
            })
            .await?;
        Ok(out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .unwrap_or_default()
            .to_string())
    }

    async fn modify_target_group(&self, arn: &str, spec: &TgSpec) -> Result<(), CloudError> {
        self.call("elbv2:ModifyTargetGroup", Strong, || {
            let mut b = self
                .elb
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_interval_seconds(spec.interval)
                .health_check_timeout_seconds(spec.timeout)
                .healthy_threshold_count(spec.healthy)
                .unhealthy_threshold_count(spec.unhealthy);
            if let Some(p) = &spec.health_path {
                b = b.health_check_path(p);
            }
            if let Some(m) = &spec.matcher {
                b = b.matcher(Matcher::builder().http_code(m).build());
            }
            b.send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_target_group(&self, arn: &str) -> Result<(), CloudError> {
        self.call("elbv2:DeleteTargetGroup", Strong, || {
            self.elb.delete_target_group().target_group_arn(arn).send()
        })
        .await
        .map(|_| ())
    }

    async fn target_health(&self, arn: &str) -> Result<Vec<TargetHealthInfo>, CloudError> {
        let r = self
            .call("elbv2:DescribeTargetHealth", AfterCreate, || {
                self.elb
                    .describe_target_health()
                    .target_group_arn(arn)
                    .send()
            })
            .await?;
        Ok(r.target_health_descriptions()
            .iter()
            .map(|d| TargetHealthInfo {
                target: d.target().and_then(|t| t.id()).unwrap_or_default().into(),
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect())
    }
}

impl Listeners for Cloud {
    async fn listeners(&self, lb_arn: &str) -> Result<Vec<ListenerInfo>, CloudError> {
        self.inventory
            .cached(&format!("elb:listeners:{lb_arn}"), || async {
                let r = self
                    .call("elbv2:DescribeListeners", AfterCreate, || {
                        self.elb
                            .describe_listeners()
                            .load_balancer_arn(lb_arn)
                            .send()
                    })
                    .await?;
                Ok(r.listeners()
                    .iter()
                    .map(|l| ListenerInfo {
                        arn: l.listener_arn().unwrap_or_default().into(),
                        port: l.port().unwrap_or_default(),
                        protocol: l
                            .protocol()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                        default_target: l
                            .default_actions()
                            .iter()
                            .find_map(|a| a.target_group_arn().map(String::from)),
                    })
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn create_listener(
        &self,
        lb_arn: &str,
        protocol: &str,
        port: i32,
        target: &str,
    ) -> Result<String, CloudError> {
        let r = self
            .call("elbv2:CreateListener", AfterCreate, || {
                self.elb
                    .create_listener()
                    .load_balancer_arn(lb_arn)
                    .protocol(ProtocolEnum::from(protocol))
                    .port(port)
                    .default_actions(forward(target))
                    .send()
            })
            .await?;
        Ok(r.listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default()
            .to_string())
    }

    async fn modify_listener_target(&self, arn: &str, target: &str) -> Result<(), CloudError> {
        self.call("elbv2:ModifyListener", Strong, || {
            self.elb
                .modify_listener()
                .listener_arn(arn)
                .default_actions(forward(target))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_listener(&self, arn: &str) -> Result<(), CloudError> {
        self.call("elbv2:DeleteListener", Strong, || {
            self.elb.delete_listener().listener_arn(arn).send()
        })
        .await
        .map(|_| ())
    }

    async fn listener_rules(&self, listener_arn: &str) -> Result<Vec<PathRuleInfo>, CloudError> {
        let r = self
            .call("elbv2:DescribeRules", AfterCreate, || {
                self.elb.describe_rules().listener_arn(listener_arn).send()
            })
            .await?;
        let mut v: Vec<PathRuleInfo> = r
            .rules()
            .iter()
            .filter(|r| !r.is_default().unwrap_or(false))
            .filter_map(|r| {
                let path = r
                    .conditions()
                    .iter()
                    .find(|c| c.field() == Some("path-pattern"))
                    .and_then(|c| {
                        c.path_pattern_config()
                            .and_then(|p| p.values().first().cloned())
                            .or_else(|| c.values().first().cloned())
                    })?;
                Some(PathRuleInfo {
                    priority: r.priority()?.parse().ok()?,
                    path,
                    target: r
                        .actions()
                        .iter()
                        .find_map(|a| a.target_group_arn().map(String::from))
                        .unwrap_or_default(),
                    arn: r.rule_arn().unwrap_or_default().into(),
                })
            })
            .collect();
        v.sort();
        Ok(v)
    }

    async fn create_rule(&self, listener_arn: &str, rule: &PathRuleInfo) -> Result<(), CloudError> {
        self.call("elbv2:CreateRule", AfterCreate, || {
            self.elb
                .create_rule()
                .listener_arn(listener_arn)
                .priority(rule.priority)
                .conditions(
                    RuleCondition::builder()
                        .field("path-pattern")
                        .values(&rule.path)
                        .build(),
                )
                .actions(forward(&rule.target))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_rule(&self, arn: &str) -> Result<(), CloudError> {
        self.call("elbv2:DeleteRule", Strong, || {
            self.elb.delete_rule().rule_arn(arn).send()
        })
        .await
        .map(|_| ())
    }
}

impl Cloud {
    /// Every load balancer of the account and region: this environment's, and the names of the others.
    async fn lb_listing(&self) -> Result<Listing<LbInfo>, CloudError> {
        self.inventory
            .cached("elb:lbs", || async {
                let pages = self
                    .all_pages(
                        "elbv2:DescribeLoadBalancers",
                        |marker| self.elb.describe_load_balancers().set_marker(marker).send(),
                        |r| r.next_marker(),
                    )
                    .await?;
                let mut all = Vec::new();
                for r in &pages {
                    for lb in r.load_balancers() {
                        all.push(LbInfo {
                            arn: lb.load_balancer_arn().unwrap_or_default().into(),
                            name: lb.load_balancer_name().unwrap_or_default().into(),
                            dns_name: lb.dns_name().unwrap_or_default().into(),
                            canonical_zone_id: lb
                                .canonical_hosted_zone_id()
                                .unwrap_or_default()
                                .into(),
                            scheme: lb
                                .scheme()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                            lb_type: lb
                                .r#type()
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                            subnets: {
                                let mut v: Vec<String> = lb
                                    .availability_zones()
                                    .iter()
                                    .filter_map(|z| z.subnet_id().map(String::from))
                                    .collect();
                                v.sort();
                                v
                            },
                            security_groups: {
                                let mut v = lb.security_groups().to_vec();
                                v.sort();
                                v
                            },
                            state: lb
                                .state()
                                .and_then(|s| s.code())
                                .map(|c| c.as_str().to_string())
                                .unwrap_or_default(),
                            tags: BTreeMap::new(),
                        });
                    }
                }
                self.keep_owned(all).await
            })
            .await
    }

    /// Every target group: this environment's, and the names of the others.
    async fn tg_listing(&self) -> Result<Listing<TgInfo>, CloudError> {
        self.inventory
            .cached("elb:tgs", || async {
                let pages = self
                    .all_pages(
                        "elbv2:DescribeTargetGroups",
                        |marker| self.elb.describe_target_groups().set_marker(marker).send(),
                        |r| r.next_marker(),
                    )
                    .await?;
                let mut all = Vec::new();
                for r in &pages {
                    for t in r.target_groups() {
                        let protocol = t
                            .protocol()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default();
                        let http = protocol.starts_with("HTTP");
                        all.push(TgInfo {
                            arn: t.target_group_arn().unwrap_or_default().into(),
                            name: t.target_group_name().unwrap_or_default().into(),
                            spec: TgSpec {
                                protocol,
                                port: t.port().unwrap_or_default(),
                                vpc_id: t.vpc_id().unwrap_or_default().into(),
                                health_path: if http {
                                    t.health_check_path().map(String::from)
                                } else {
                                    None
                                },
                                interval: t.health_check_interval_seconds().unwrap_or_default(),
                                timeout: t.health_check_timeout_seconds().unwrap_or_default(),
                                healthy: t.healthy_threshold_count().unwrap_or_default(),
                                unhealthy: t.unhealthy_threshold_count().unwrap_or_default(),
                                matcher: if http {
                                    t.matcher().and_then(|m| m.http_code()).map(String::from)
                                } else {
                                    None
                                },
                            },
                            tags: BTreeMap::new(),
                        });
                    }
                }
                self.keep_owned(all).await
            })
            .await
    }

    /// Fills in the tags of `all` and splits it into what this environment owns and the names
    /// of the rest (names are unique per account and region).
    async fn keep_owned<T: ElbTagged>(&self, mut all: Vec<T>) -> Result<Listing<T>, CloudError> {
        let arns: Vec<String> = all.iter().map(|x| x.arn().to_string()).collect();
        let tags = self.elb_tags(&arns).await?;
        for x in &mut all {
            *x.tags_mut() = tags.get(x.arn()).cloned().unwrap_or_default();
        }
        let (mine, foreign): (Vec<T>, Vec<T>) = all
            .into_iter()
            .partition(|x| x.tags().get(TAG_ENV) == Some(&self.env));
        Ok(Listing {
            mine,
            foreign: foreign.iter().map(|x| x.name().to_string()).collect(),
        })
    }

    /// Tags of ELBv2 resources, 20 ARNs per call.
    async fn elb_tags(
        &self,
        arns: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, CloudError> {
        let mut out = BTreeMap::new();
        for chunk in arns.chunks(20) {
            let r = self
                .call("elbv2:DescribeTags", Strong, || {
                    self.elb
                        .describe_tags()
                        .set_resource_arns(Some(chunk.to_vec()))
                        .send()
                })
                .await?;
            for d in r.tag_descriptions() {
                out.insert(
                    d.resource_arn().unwrap_or_default().to_string(),
                    tag_map(d.tags().iter().map(|t| (t.key(), t.value()))),
                );
            }
        }
        Ok(out)
    }
}
