//! Route 53 hosted zone (tagged through ChangeTagsForResource) and its record sets (no tags:
//! owned through the owned zone). Records: simple, alias to a load balancer, weighted,
//! failover, latency.

use futures::future::BoxFuture;
use serde::Serialize;

use super::{by_name, known, out_id};
use crate::aws::api::{HealthChecks, HostedZones, Owner, Records, Vpcs};
use crate::aws::route53::{logical_hash, HealthCheckSpec, RecordSet, Route53Kind};
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct HostedZone {
    /// The domain (also the logical name).
    pub name: String,
    /// For a private zone: the VPCs it is associated with (the first at creation).
    pub private_vpcs: Vec<TaskKey>,
    pub extra_deps: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZoneState {
    /// Carries the ownership tags (false: created, but the tagging call never happened).
    pub tagged: bool,
    pub private: bool,
    /// Associated VPCs of this environment (private zones), sorted. A VPC someone else
    /// associated is neither shown nor removed: it is not ours.
    pub vpcs: Vec<String>,
}

impl<C: HostedZones + Owner + Vpcs> Resource<C> for HostedZone {
    type State = ZoneState;
    fn key(&self) -> TaskKey {
        TaskKey::new("zone", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d: Vec<TaskKey> = self.private_vpcs.clone();
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["private"]
    }
    fn desired(&self, i: &Outputs) -> Result<ZoneState, TaskError> {
        let mut vpcs = Vec::new();
        for v in &self.private_vpcs {
            vpcs.push(i.id(v)?);
        }
        vpcs.sort();
        Ok(ZoneState {
            tagged: true,
            private: !self.private_vpcs.is_empty(),
            vpcs,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a ZoneState,
    ) -> BoxFuture<'a, Result<Option<Found<ZoneState>>, TaskError>> {
        Box::pin(async move {
            let zones = cx.hosted_zones().await?;
            let hash = logical_hash(&self.name);
            let tagged = by_name(zones.clone(), &self.name, |z| &z.tags);
            let Some(z) = tagged.or_else(|| {
                zones
                    .into_iter()
                    .find(|z| z.ref_hash.as_deref() == Some(hash.as_str()))
            }) else {
                return Ok(None);
            };
            let vpcs = if z.private {
                let ours: Vec<String> = cx.vpcs().await?.into_iter().map(|v| v.id).collect();
                let mut vpcs: Vec<String> = cx
                    .zone_vpcs(&z.id)
                    .await?
                    .into_iter()
                    .filter(|v| ours.contains(v))
                    .collect();
                vpcs.sort();
                vpcs
            } else {
                Vec::new()
            };
            Ok(Some(Found {
                state: ZoneState {
                    tagged: z.tags.get(crate::aws::TAG_ENV).map(String::as_str)
                        == Some(cx.env_name()),
                    private: z.private,
                    vpcs,
                },
                outputs: out_id(&z.id),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a ZoneState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = cx
                .create_hosted_zone(&self.name, &self.name, d.vpcs.first().map(String::as_str))
                .await?;
            for v in d.vpcs.iter().skip(1) {
                cx.associate_zone_vpc(&id, v).await?;
            }
            Ok(out_id(&id))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<ZoneState>,
        d: &'a ZoneState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = &a.outputs["id"];
            if !a.state.tagged {
                cx.tag_route53(Route53Kind::Zone, id, &self.name).await?;
            }
            // Add first: Route 53 refuses to remove a zone's last VPC, so a template that
            // moves the zone to other VPCs must see them associated before the old go.
            for v in &d.vpcs {
                if !a.state.vpcs.contains(v) {
                    cx.associate_zone_vpc(id, v).await?;
                }
            }
            // Only this environment's VPCs are in `a.state.vpcs`: one the template no longer
            // lists is removed; a VPC someone else associated is left alone.
            for v in &a.state.vpcs {
                if !d.vpcs.contains(v) {
                    cx.disassociate_zone_vpc(id, v).await?;
                }
            }
            Ok(OutputMap::new())
        })
    }
}

/// A Route 53 health check (for failover records), tagged like everything else.
pub struct HealthCheck {
    pub name: String,
    /// The spec; `fqdn` is taken from `lb`'s DNS name when set.
    pub spec: HealthCheckSpec,
    pub lb: Option<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthCheckState {
    /// Carries the ownership tags (false: created, but the tagging call never happened).
    pub tagged: bool,
    /// `ip` or `name`: Route 53 cannot switch a check between an IP address and a host name
    /// in place (immutable; the address or name itself can change).
    pub endpoint: &'static str,
    #[serde(flatten)]
    pub spec: HealthCheckSpec,
}

fn endpoint_of(spec: &HealthCheckSpec) -> &'static str {
    if spec.ip.is_some() {
        "ip"
    } else {
        "name"
    }
}

impl<C: HealthChecks + HostedZones + Owner> Resource<C> for HealthCheck {
    type State = HealthCheckState;
    fn key(&self) -> TaskKey {
        TaskKey::new("health-check", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        self.lb.iter().cloned().collect()
    }
    fn immutable_fields(&self) -> &'static [&'static str] {
        &["kind", "interval", "endpoint"]
    }
    fn desired(&self, i: &Outputs) -> Result<Self::State, TaskError> {
        let mut s = self.spec.clone();
        if let Some(lb) = &self.lb {
            s.fqdn = Some(i.get(lb, "dns_name")?.to_ascii_lowercase());
        }
        Ok(HealthCheckState {
            tagged: true,
            endpoint: endpoint_of(&s),
            spec: s,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a Self::State,
    ) -> BoxFuture<'a, Result<Option<Found<Self::State>>, TaskError>> {
        Box::pin(async move {
            let checks = cx.health_checks().await?;
            let hash = logical_hash(&self.name);
            let found = by_name(checks.clone(), &self.name, |h| &h.tags).or_else(|| {
                checks
                    .into_iter()
                    .find(|h| h.ref_hash.as_deref() == Some(hash.as_str()))
            });
            let Some(h) = found else {
                return Ok(None);
            };
            Ok(Some(Found {
                state: HealthCheckState {
                    tagged: h.tags.get(crate::aws::TAG_ENV).map(String::as_str)
                        == Some(cx.env_name()),
                    endpoint: endpoint_of(&h.spec),
                    spec: h.spec,
                },
                outputs: out_id(&h.id),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        d: &'a Self::State,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            if d.spec.fqdn.as_deref().is_some_and(|f| !known(f)) {
                return Err(TaskError::NotReady(
                    "load balancer DNS name not known".into(),
                ));
            }
            Ok(out_id(&cx.create_health_check(&self.name, &d.spec).await?))
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        a: &'a Found<Self::State>,
        d: &'a Self::State,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let id = &a.outputs["id"];
            if !a.state.tagged {
                cx.tag_route53(Route53Kind::HealthCheck, id, &self.name)
                    .await?;
            }
            if a.state.spec != d.spec {
                cx.update_health_check(id, &d.spec).await?;
            }
            Ok(OutputMap::new())
        })
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
    /// The failover record's health check.
    pub health_check: Option<TaskKey>,
    pub extra_deps: Vec<TaskKey>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecordState {
    #[serde(skip)]
    pub zone_id: String,
    #[serde(flatten)]
    pub record: RecordSet,
}

impl<C: Records> Resource<C> for Record {
    type State = RecordState;
    fn absent_reason(&self) -> String {
        let set = self
            .record
            .set_id
            .as_deref()
            .map(|id| format!(" (set {id})"))
            .unwrap_or_default();
        format!(
            "no {} record {}{set} in {}",
            self.record.rtype, self.record.name, self.zone
        )
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("record", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        let mut d = vec![self.zone.clone()];
        d.extend(self.alias.iter().map(|a| a.lb.clone()));
        d.extend(self.health_check.iter().cloned());
        d.extend(self.extra_deps.iter().cloned());
        d.sort();
        d.dedup();
        d
    }
    fn desired(&self, i: &Outputs) -> Result<RecordState, TaskError> {
        let mut record = self.record.clone();
        // A set of values: Route 53 need not list them in the template's order.
        record.values.sort();
        if let Some(a) = &self.alias {
            record.alias = Some((
                i.get(&a.lb, "dns_name")?.to_ascii_lowercase(),
                i.get(&a.lb, "zone_id")?,
                a.evaluate_target_health,
            ));
        }
        if let Some(h) = &self.health_check {
            record.health_check_id = Some(i.id(h)?);
        }
        Ok(RecordState {
            zone_id: i.id(&self.zone)?,
            record,
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
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
                    r.values.sort();
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
        cx: &'a C,
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
        cx: &'a C,
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
