//! Route 53 hosted zone (tagged through ChangeTagsForResource) and its record sets (no tags:
//! owned through the owned zone). Records: simple, alias to a load balancer, weighted,
//! failover, latency.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::route53::RecordSet;
use crate::aws::Cloud;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct HostedZone {
    /// The domain (also the logical name).
    pub name: String,
    /// For a private zone: the VPC it is associated with at creation.
    pub private_vpc: Option<TaskKey>,
    pub extra_deps: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneState {
    pub private: bool,
    #[serde(skip)]
    pub vpc_id: Option<String>,
}

impl Resource<Cloud> for HostedZone {
    type State = ZoneState;
    fn key(&self) -> TaskKey {
        TaskKey::new("zone", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d: Vec<TaskKey> = self.private_vpc.iter().cloned().collect();
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["private"]
    }
    fn desired(&self, i: &Outputs) -> Result<ZoneState, TaskError> {
        Ok(ZoneState {
            private: self.private_vpc.is_some(),
            vpc_id: match &self.private_vpc {
                Some(v) => Some(i.id(v)?),
                None => None,
            },
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a Cloud,
        _: &'a ZoneState,
    ) -> BoxFuture<'a, Result<Option<Found<ZoneState>>, TaskError>> {
        Box::pin(async move {
            Ok(
                by_name(cx.hosted_zones().await?, &self.name, |z| &z.tags).map(|z| Found {
                    state: ZoneState {
                        private: z.private,
                        vpc_id: None,
                    },
                    outputs: out_id(&z.id),
                }),
            )
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a ZoneState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx
                .create_hosted_zone(&self.name, &self.name, d.vpc_id.as_deref())
                .await?;
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        _: &'a Cloud,
        _: &'a Found<ZoneState>,
        _: &'a ZoneState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}

/// Alias target: a load balancer task (`dns_name` and `zone_id` outputs).
pub struct AliasSpec {
    pub lb: TaskKey,
    pub evaluate_target_health: bool,
}

pub struct Record {
    /// Logical id `<name>-<type>[-<set id>]`.
    pub name: String,
    pub zone: TaskKey,
    /// The record set with alias fields left empty (filled from `alias`).
    pub record: RecordSet,
    pub alias: Option<AliasSpec>,
    pub extra_deps: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordState {
    #[serde(skip)]
    pub zone_id: String,
    #[serde(flatten)]
    pub record: RecordSet,
}

impl Resource<Cloud> for Record {
    type State = RecordState;
    fn key(&self) -> TaskKey {
        TaskKey::new("record", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.zone.clone()];
        d.extend(self.alias.iter().map(|a| a.lb.clone()));
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<RecordState, TaskError> {
        let mut record = self.record.clone();
        if let Some(a) = &self.alias {
            record.alias = Some((
                i.get(&a.lb, "dns_name")?.to_ascii_lowercase(),
                i.get(&a.lb, "zone_id")?,
                a.evaluate_target_health,
            ));
        }
        Ok(RecordState {
            zone_id: i.id(&self.zone)?,
            record,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a RecordState,
    ) -> BoxFuture<'a, Result<Option<Found<RecordState>>, TaskError>> {
        Box::pin(async move {
            if !known(&d.zone_id) {
                return Ok(None);
            }
            let want = d.record.identity();
            Ok(cx
                .record_sets(&d.zone_id)
                .await?
                .into_iter()
                .find(|r| r.identity() == want)
                .map(|mut r| {
                    if let Some(a) = &mut r.alias {
                        a.0 = a.0.to_ascii_lowercase();
                    }
                    Found {
                        state: RecordState {
                            zone_id: d.zone_id.clone(),
                            record: r,
                        },
                        outputs: out_id(&self.name),
                    }
                }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a Cloud,
        d: &'a RecordState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.change_records(&d.zone_id, std::slice::from_ref(&d.record), &[])
                .await?;
            Ok(out_id(&self.name))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a Cloud,
        _: &'a Found<RecordState>,
        d: &'a RecordState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.change_records(&d.zone_id, std::slice::from_ref(&d.record), &[])
                .await?;
            Ok(OutputMap::new())
        })
    }
}
