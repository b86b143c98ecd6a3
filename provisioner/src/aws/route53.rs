//! Route 53: hosted zones (tagged with ChangeTagsForResource; found by listing zones and
//! reading their tags 10 at a time) and record sets (untagged: owned through their zone).

use std::collections::BTreeMap;
use std::future::Future;

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, HostedZoneConfig, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, ResourceRecordSetRegion, RrType, Tag,
    TagResourceType, Vpc, VpcRegion,
};

use super::{tag_map, Cloud, TAG_ENV};
use crate::engine::retry::Consistency::{AfterCreate, Strong};
use crate::engine::{CloudError, ErrorKind};

#[derive(Debug, Clone)]
pub struct ZoneInfo {
    /// Without the `/hostedzone/` prefix.
    pub id: String,
    /// Logical-name hash from our caller reference (set even if tagging never happened).
    pub ref_hash: Option<String>,
    /// With the trailing dot stripped.
    pub name: String,
    pub private: bool,
    pub tags: BTreeMap<String, String>,
}

/// A record set as we manage it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct RecordSet {
    /// Without trailing dot.
    pub name: String,
    pub rtype: String,
    pub set_id: Option<String>,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    /// `(dns name, hosted zone id, evaluate target health)`.
    pub alias: Option<(String, String, bool)>,
    pub weight: Option<i64>,
    pub failover: Option<String>,
    pub region: Option<String>,
    pub health_check_id: Option<String>,
}

impl RecordSet {
    /// Identity within a zone: name, type, set id.
    pub fn identity(&self) -> (String, String, Option<String>) {
        (self.name.clone(), self.rtype.clone(), self.set_id.clone())
    }
}

fn strip_zone(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

fn to_rrset(r: &RecordSet) -> Result<ResourceRecordSet, CloudError> {
    let mut b = ResourceRecordSet::builder()
        .name(format!("{}.", r.name))
        .r#type(RrType::from(r.rtype.as_str()));
    if let Some(s) = &r.set_id {
        b = b.set_identifier(s);
    }
    if let Some(t) = r.ttl {
        b = b.ttl(t);
    }
    for v in &r.values {
        b = b.resource_records(ResourceRecord::builder().value(v).build().map_err(bad)?);
    }
    if let Some((dns, zone, eval)) = &r.alias {
        b = b.alias_target(
            AliasTarget::builder()
                .dns_name(dns)
                .hosted_zone_id(zone)
                .evaluate_target_health(*eval)
                .build()
                .map_err(bad)?,
        );
    }
    if let Some(w) = r.weight {
        b = b.weight(w);
    }
    if let Some(f) = &r.failover {
        b = b.failover(ResourceRecordSetFailover::from(f.as_str()));
    }
    if let Some(reg) = &r.region {
        b = b.region(ResourceRecordSetRegion::from(reg.as_str()));
    }
    if let Some(h) = &r.health_check_id {
        b = b.health_check_id(h);
    }
    b.build().map_err(bad)
}

/// Route 53 tags a zone or health check only after creating it: a crash in between would
/// leave an untagged object. The caller reference (returned by the list calls) therefore
/// carries the ownership too: `pv:<env>:<hash of the logical name>:<nanos>` (≤ 64 chars).
pub fn caller_ref(env: &str, logical: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
        % 1_000_000_000_000;
    format!("pv:{env}:{}:{nanos}", logical_hash(logical))
}

/// Stable 12-hex-digit hash of a logical name (FNV-1a, so it never changes across builds).
pub fn logical_hash(logical: &str) -> String {
    format!(
        "{:012x}",
        crate::naming::fnv1a(logical.as_bytes()) & 0xffff_ffff_ffff
    )
}

/// The logical-name hash of a caller reference made by [`caller_ref`] for `env`.
fn owned_hash(env: &str, caller_reference: &str) -> Option<String> {
    let rest = caller_reference.strip_prefix(&format!("pv:{env}:"))?;
    Some(rest.split(':').next()?.to_string())
}

fn bad(e: impl std::fmt::Display) -> CloudError {
    CloudError::new(
        ErrorKind::InvalidRequest,
        "route53",
        "BuildError",
        e.to_string(),
    )
}

/// Route 53 hosted zones (public, or private with VPC associations).
pub trait HostedZones: Send + Sync {
    fn hosted_zones(&self) -> impl Future<Output = Result<Vec<ZoneInfo>, CloudError>> + Send;
    /// Create a zone (private ones associated with `vpc`), then tag it.
    fn create_hosted_zone(
        &self,
        logical: &str,
        domain: &str,
        private_vpc: Option<&str>,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    /// Put the ownership tags on a zone or health check.
    fn tag_route53(
        &self,
        kind: Route53Kind,
        id: &str,
        logical: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_hosted_zone(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Associate one more VPC with a private zone (idempotent: "already associated" is fine).
    fn associate_zone_vpc(
        &self,
        zone_id: &str,
        vpc_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Remove one VPC from a private zone (idempotent: "not associated" is fine). Route 53
    /// refuses to remove the last one.
    fn disassociate_zone_vpc(
        &self,
        zone_id: &str,
        vpc_id: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// VPC ids associated with a private zone.
    fn zone_vpcs(
        &self,
        zone_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
    /// The name servers Route 53 gave a public zone (its delegation set): what the parent
    /// zone must delegate to. Empty for a private zone.
    fn zone_name_servers(
        &self,
        zone_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
}

/// Record sets of one zone, changed in one batch.
pub trait Records: Send + Sync {
    /// Record sets of a zone except its own SOA and apex NS.
    fn record_sets(
        &self,
        zone_id: &str,
    ) -> impl Future<Output = Result<Vec<RecordSet>, CloudError>> + Send;
    fn change_records(
        &self,
        zone_id: &str,
        upsert: &[RecordSet],
        delete: &[RecordSet],
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// Route 53 health checks (for failover records).
pub trait HealthChecks: Send + Sync {
    /// Health checks tagged for this environment (list, then tags 10 at a time).
    fn health_checks(
        &self,
    ) -> impl Future<Output = Result<Vec<HealthCheckInfo>, CloudError>> + Send;
    fn create_health_check(
        &self,
        logical: &str,
        spec: &HealthCheckSpec,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn update_health_check(
        &self,
        id: &str,
        spec: &HealthCheckSpec,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    fn delete_health_check(&self, id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

impl HostedZones for Cloud {
    async fn hosted_zones(&self) -> Result<Vec<ZoneInfo>, CloudError> {
        self.inventory
            .cached("r53:zones", || async {
                let pages = self
                    .all_pages(
                        "route53:ListHostedZones",
                        |marker| self.r53.list_hosted_zones().set_marker(marker).send(),
                        |r| r.is_truncated().then(|| r.next_marker()).flatten(),
                    )
                    .await?;
                let mut zones = Vec::new();
                for r in &pages {
                    for z in r.hosted_zones() {
                        zones.push(ZoneInfo {
                            id: strip_zone(z.id()),
                            ref_hash: owned_hash(&self.env, z.caller_reference()),
                            name: z.name().trim_end_matches('.').to_string(),
                            private: z.config().is_some_and(|c| c.private_zone()),
                            tags: BTreeMap::new(),
                        });
                    }
                }
                for chunk in zones.chunks_mut(10) {
                    let ids: Vec<String> = chunk.iter().map(|z| z.id.clone()).collect();
                    let r = self
                        .call("route53:ListTagsForResources", Strong, || {
                            self.r53
                                .list_tags_for_resources()
                                .resource_type(TagResourceType::Hostedzone)
                                .set_resource_ids(Some(ids.clone()))
                                .send()
                        })
                        .await?;
                    for ts in r.resource_tag_sets() {
                        let id = ts.resource_id().unwrap_or_default();
                        if let Some(z) = chunk.iter_mut().find(|z| z.id == id) {
                            z.tags = tag_map(ts.tags().iter().map(|t| (t.key(), t.value())));
                        }
                    }
                }
                zones.retain(|z| z.tags.get(TAG_ENV) == Some(&self.env) || z.ref_hash.is_some());
                Ok(zones)
            })
            .await
    }

    async fn create_hosted_zone(
        &self,
        logical: &str,
        domain: &str,
        private_vpc: Option<&str>,
    ) -> Result<String, CloudError> {
        let caller_ref = caller_ref(&self.env, logical);
        let r = self
            .call("route53:CreateHostedZone", Strong, || {
                let mut b = self
                    .r53
                    .create_hosted_zone()
                    .name(domain)
                    .caller_reference(&caller_ref)
                    .hosted_zone_config(
                        HostedZoneConfig::builder()
                            .comment(format!("provisioner env {}", self.env))
                            .private_zone(private_vpc.is_some())
                            .build(),
                    );
                if let Some(vpc) = private_vpc {
                    b = b.vpc(self.zone_vpc(vpc));
                }
                b.send()
            })
            .await?;
        let id = strip_zone(r.hosted_zone().map(|z| z.id()).unwrap_or_default());
        // A zone just made holds only its SOA and NS: its records need not be listed.
        self.inventory
            .seed(&format!("r53:records:{id}"), Vec::<RecordSet>::new());
        self.tag_route53(Route53Kind::Zone, &id, logical).await?;
        Ok(id)
    }

    async fn tag_route53(
        &self,
        kind: Route53Kind,
        id: &str,
        logical: &str,
    ) -> Result<(), CloudError> {
        let kind = match kind {
            Route53Kind::Zone => TagResourceType::Hostedzone,
            Route53Kind::HealthCheck => TagResourceType::Healthcheck,
        };
        let tags: Vec<Tag> = self
            .tags_for(logical)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.call("route53:ChangeTagsForResource", AfterCreate, || {
            self.r53
                .change_tags_for_resource()
                .resource_type(kind.clone())
                .resource_id(id)
                .set_add_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_hosted_zone(&self, id: &str) -> Result<(), CloudError> {
        self.call("route53:DeleteHostedZone", Strong, || {
            self.r53.delete_hosted_zone().id(id).send()
        })
        .await
        .map(|_| ())
    }

    async fn disassociate_zone_vpc(&self, zone_id: &str, vpc_id: &str) -> Result<(), CloudError> {
        let r = self
            .call("route53:DisassociateVPCFromHostedZone", Strong, || {
                self.r53
                    .disassociate_vpc_from_hosted_zone()
                    .hosted_zone_id(zone_id)
                    .vpc(self.zone_vpc(vpc_id))
                    .send()
            })
            .await;
        match r {
            Err(e) if e.code == "VPCAssociationNotFound" => Ok(()),
            r => r.map(|_| ()),
        }
    }

    async fn associate_zone_vpc(&self, zone_id: &str, vpc_id: &str) -> Result<(), CloudError> {
        let r = self
            .call("route53:AssociateVPCWithHostedZone", AfterCreate, || {
                self.r53
                    .associate_vpc_with_hosted_zone()
                    .hosted_zone_id(zone_id)
                    .vpc(self.zone_vpc(vpc_id))
                    .send()
            })
            .await;
        match r {
            // Also what AWS answers when the VPC already has *another* zone of this name:
            // done only if this zone now lists the VPC.
            Err(e) if e.code == "ConflictingDomainExists" || e.kind == ErrorKind::AlreadyExists => {
                if self.zone_vpcs(zone_id).await?.iter().any(|v| v == vpc_id) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            r => r.map(|_| ()),
        }
    }

    async fn zone_vpcs(&self, zone_id: &str) -> Result<Vec<String>, CloudError> {
        let r = self
            .call("route53:GetHostedZone", AfterCreate, || {
                self.r53.get_hosted_zone().id(zone_id).send()
            })
            .await?;
        let mut v: Vec<String> = r
            .vpcs()
            .iter()
            .filter_map(|v| v.vpc_id().map(String::from))
            .collect();
        v.sort();
        Ok(v)
    }

    async fn zone_name_servers(&self, zone_id: &str) -> Result<Vec<String>, CloudError> {
        let r = self
            .call("route53:GetHostedZone", AfterCreate, || {
                self.r53.get_hosted_zone().id(zone_id).send()
            })
            .await?;
        Ok(r.delegation_set()
            .map(|d| d.name_servers().to_vec())
            .unwrap_or_default())
    }
}

impl Records for Cloud {
    async fn record_sets(&self, zone_id: &str) -> Result<Vec<RecordSet>, CloudError> {
        self.inventory
            .cached(&format!("r53:records:{zone_id}"), || async {
                let mut out = Vec::new();
                // Records are listed in name order: the apex's SOA comes before any other.
                let mut apex: Option<String> = None;
                let mut start: Option<(String, RrType, Option<String>)> = None;
                loop {
                    let r = self
                        .call("route53:ListResourceRecordSets", AfterCreate, || {
                            let mut b =
                                self.r53.list_resource_record_sets().hosted_zone_id(zone_id);
                            if let Some((n, t, s)) = &start {
                                b = b
                                    .start_record_name(n)
                                    .start_record_type(t.clone())
                                    .set_start_record_identifier(s.clone());
                            }
                            b.send()
                        })
                        .await?;
                    for s in r.resource_record_sets() {
                        let rtype = s.r#type().as_str().to_string();
                        let name = unescape_name(s.name().trim_end_matches('.'));
                        if rtype == "SOA" {
                            apex = Some(name.clone());
                        }
                        if is_route53s_own(&rtype, &name, apex.as_deref()) {
                            continue;
                        }
                        out.push(RecordSet {
                            name,
                            rtype,
                            set_id: s.set_identifier().map(String::from),
                            // Alias records have no TTL (some emulators report 0).
                            ttl: if s.alias_target().is_some() {
                                None
                            } else {
                                s.ttl()
                            },
                            values: s
                                .resource_records()
                                .iter()
                                .map(|v| v.value().to_string())
                                .collect(),
                            alias: s.alias_target().map(|a| {
                                (
                                    a.dns_name().trim_end_matches('.').to_string(),
                                    a.hosted_zone_id().to_string(),
                                    a.evaluate_target_health(),
                                )
                            }),
                            weight: s.weight(),
                            failover: s.failover().map(|f| f.as_str().to_string()),
                            region: s.region().map(|f| f.as_str().to_string()),
                            health_check_id: s.health_check_id().map(String::from),
                        });
                    }
                    if !r.is_truncated() {
                        break;
                    }
                    start = match (r.next_record_name(), r.next_record_type()) {
                        (Some(n), Some(t)) => Some((
                            n.to_string(),
                            t.clone(),
                            r.next_record_identifier().map(String::from),
                        )),
                        _ => None,
                    };
                    if start.is_none() {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn change_records(
        &self,
        zone_id: &str,
        upsert: &[RecordSet],
        delete: &[RecordSet],
    ) -> Result<(), CloudError> {
        if upsert.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let mut changes = Vec::new();
        for r in delete {
            changes.push(
                Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(to_rrset(r)?)
                    .build()
                    .map_err(bad)?,
            );
        }
        for r in upsert {
            changes.push(
                Change::builder()
                    .action(ChangeAction::Upsert)
                    .resource_record_set(to_rrset(r)?)
                    .build()
                    .map_err(bad)?,
            );
        }
        let batch = ChangeBatch::builder()
            .set_changes(Some(changes))
            .build()
            .map_err(bad)?;
        self.call("route53:ChangeResourceRecordSets", AfterCreate, || {
            self.r53
                .change_resource_record_sets()
                .hosted_zone_id(zone_id)
                .change_batch(batch.clone())
                .send()
        })
        .await
        .map(|_| ())
    }
}

impl Cloud {
    /// A VPC of this region, as Route 53 names it in a zone association.
    fn zone_vpc(&self, vpc_id: &str) -> Vpc {
        Vpc::builder()
            .vpc_id(vpc_id)
            .vpc_region(VpcRegion::from(self.region.as_str()))
            .build()
    }
}

impl HealthChecks for Cloud {
    async fn health_checks(&self) -> Result<Vec<HealthCheckInfo>, CloudError> {
        self.inventory
            .cached("r53:healthchecks", || async {
                let pages = self
                    .all_pages(
                        "route53:ListHealthChecks",
                        |marker| self.r53.list_health_checks().set_marker(marker).send(),
                        |r| r.is_truncated().then(|| r.next_marker()).flatten(),
                    )
                    .await?;
                let mut all = Vec::new();
                for r in &pages {
                    for h in r.health_checks() {
                        let Some(c) = h.health_check_config() else {
                            continue;
                        };
                        all.push(HealthCheckInfo {
                            id: h.id().to_string(),
                            ref_hash: owned_hash(&self.env, h.caller_reference()),
                            spec: HealthCheckSpec {
                                kind: c.r#type().as_str().to_string(),
                                fqdn: c
                                    .fully_qualified_domain_name()
                                    .map(|s| s.trim_end_matches('.').to_ascii_lowercase()),
                                ip: c.ip_address().map(String::from),
                                port: c.port().unwrap_or_default(),
                                path: c.resource_path().map(String::from),
                                interval: c.request_interval().unwrap_or(30),
                                failure_threshold: c.failure_threshold().unwrap_or(3),
                            },
                            tags: BTreeMap::new(),
                        });
                    }
                }
                for chunk in all.chunks_mut(10) {
                    let ids: Vec<String> = chunk.iter().map(|h| h.id.clone()).collect();
                    let r = self
                        .call("route53:ListTagsForResources", Strong, || {
                            self.r53
                                .list_tags_for_resources()
                                .resource_type(TagResourceType::Healthcheck)
                                .set_resource_ids(Some(ids.clone()))
                                .send()
                        })
                        .await?;
                    for ts in r.resource_tag_sets() {
                        let id = ts.resource_id().unwrap_or_default();
                        if let Some(h) = chunk.iter_mut().find(|h| h.id == id) {
                            h.tags = tag_map(ts.tags().iter().map(|t| (t.key(), t.value())));
                        }
                    }
                }
                all.retain(|h| h.tags.get(TAG_ENV) == Some(&self.env) || h.ref_hash.is_some());
                Ok(all)
            })
            .await
    }

    async fn create_health_check(
        &self,
        logical: &str,
        spec: &HealthCheckSpec,
    ) -> Result<String, CloudError> {
        use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::from(spec.kind.as_str()))
            .set_fully_qualified_domain_name(spec.fqdn.clone())
            .set_ip_address(spec.ip.clone())
            .port(spec.port)
            .set_resource_path(spec.path.clone())
            .request_interval(spec.interval)
            .failure_threshold(spec.failure_threshold)
            .build()
            .map_err(bad)?;
        let caller_ref = caller_ref(&self.env, logical);
        let r = self
            .call("route53:CreateHealthCheck", Strong, || {
                self.r53
                    .create_health_check()
                    .caller_reference(&caller_ref)
                    .health_check_config(config.clone())
                    .send()
            })
            .await?;
        let id = r
            .health_check()
            .map(|h| h.id().to_string())
            .unwrap_or_default();
        self.tag_route53(Route53Kind::HealthCheck, &id, logical)
            .await?;
        Ok(id)
    }

    async fn update_health_check(
        &self,
        id: &str,
        spec: &HealthCheckSpec,
    ) -> Result<(), CloudError> {
        self.call("route53:UpdateHealthCheck", Strong, || {
            self.r53
                .update_health_check()
                .health_check_id(id)
                .set_fully_qualified_domain_name(spec.fqdn.clone())
                .set_ip_address(spec.ip.clone())
                .port(spec.port)
                .set_resource_path(spec.path.clone())
                .failure_threshold(spec.failure_threshold)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), CloudError> {
        self.call("route53:DeleteHealthCheck", Strong, || {
            self.r53.delete_health_check().health_check_id(id).send()
        })
        .await
        .map(|_| ())
    }
}

/// Taggable Route 53 objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route53Kind {
    Zone,
    HealthCheck,
}

/// Managed settings of a Route 53 health check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthCheckSpec {
    /// `HTTP`, `HTTPS`, `TCP`.
    pub kind: String,
    pub fqdn: Option<String>,
    pub ip: Option<String>,
    pub port: i32,
    pub path: Option<String>,
    pub interval: i32,
    pub failure_threshold: i32,
}

#[derive(Debug, Clone)]
pub struct HealthCheckInfo {
    pub id: String,
    pub ref_hash: Option<String>,
    pub spec: HealthCheckSpec,
    pub tags: BTreeMap<String, String>,
}

/// Route 53's own records of a zone: its SOA, and the NS at its apex (the SOA's name,
/// listed first). A delegation (NS below the apex) is a record like any other: `down`
/// deletes it, or AWS refuses to delete the zone.
fn is_route53s_own(rtype: &str, name: &str, apex: Option<&str>) -> bool {
    rtype == "SOA" || (rtype == "NS" && apex.is_none_or(|a| a == name))
}

/// Route 53 lists names with `\ddd` octal escapes for anything but letters, digits, `-`
/// and `.` (`*.example.com` reads back as `\052.example.com`).
fn unescape_name(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u16, |acc, c| acc * 8 + u16::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_soa_and_the_apex_ns_are_route53s() {
        let apex = Some("z.example");
        assert!(is_route53s_own("SOA", "z.example", apex));
        assert!(is_route53s_own("NS", "z.example", apex));
        assert!(!is_route53s_own("NS", "sub.z.example", apex));
        assert!(!is_route53s_own("A", "z.example", apex));
    }

    #[test]
    fn listed_names_are_unescaped() {
        assert_eq!(unescape_name("\\052.dev.example.com"), "*.dev.example.com");
        assert_eq!(unescape_name("a\\100b.example"), "a@b.example");
        assert_eq!(unescape_name("plain-name.example"), "plain-name.example");
        // Not an escape: left as it is.
        assert_eq!(unescape_name("x\\9y"), "x\\9y");
    }

    #[test]
    fn caller_references_carry_ownership_within_64_chars() {
        let env = "a-thirty-two-character-env-name0";
        assert_eq!(env.len(), 32);
        let r = caller_ref(env, "some.very.long.record.name.example.com-A-primary");
        assert!(r.len() <= 64, "{r}");
        assert_eq!(
            owned_hash(env, &r).as_deref(),
            Some(logical_hash("some.very.long.record.name.example.com-A-primary").as_str())
        );
        assert_eq!(owned_hash("other", &r), None);
        assert_eq!(owned_hash(env, "terraform-123"), None);
        assert_eq!(logical_hash("x"), logical_hash("x"));
        assert_ne!(logical_hash("x"), logical_hash("y"));
    }
}
