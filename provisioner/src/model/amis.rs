//! The node pools' AMIs, resolved from SSM public parameters before any task is built.
//!
//! **Pinned.** An SSM parameter such as `…/stable/current/…` moves with every Ubuntu release;
//! following it would make every `plan` after a release want to replace every launch template
//! (and a pool would run mixed AMIs). So a pool whose launch template exists stays on the AMI
//! that template has, as long as the AMI's source — the template's `ami` (kept as the version's
//! description, `ami: ssm:<parameter>`) — is unchanged. `--refresh-ami` moves such pools to
//! the parameter's current value; writing an `ami` id, or another parameter, moves the pool
//! too. A pinned pool whose parameter has moved on is reported.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;

use crate::aws::api::*;
use crate::aws::Cloud;
use crate::template::{Ami, Environment};

/// Where an endpoint publishes no Ubuntu catalogue (moto has none), this AMI parameter, which
/// it does have, stands in.
const FALLBACK_AMI_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// A Canonical parameter every AWS region publishes: its absence means the endpoint has no
/// Ubuntu catalogue at all (detected, not assumed from an endpoint being set).
const CANONICAL_PROBE: &str =
    "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id";

/// Resolve every pool's AMI from SSM public parameters, all at once (one `GetParameters` for
/// the plain names, the probe and the fallback among them; one `GetParameter` for a name with
/// a `:version` or `:label` selector). A missing parameter is an error naming the pool, unless
/// the endpoint publishes no Canonical parameter at all: then the fallback AMI is used, with a
/// warning.
pub async fn resolve_amis(
    cloud: &Cloud,
    env: &Environment,
) -> anyhow::Result<HashMap<String, String>> {
    let mut params: Vec<String> = env
        .node_pools
        .iter()
        .filter_map(|p| match &p.ami {
            Ami::Ssm(param) => Some(param.clone()),
            Ami::Id(_) => None,
        })
        .collect();
    if !params.is_empty() {
        params.extend([FALLBACK_AMI_PARAMETER, CANONICAL_PROBE].map(String::from));
    }
    params.sort();
    params.dedup();
    let values = if params.is_empty() {
        Default::default()
    } else {
        cloud
            .ssm_parameter_values(&params)
            .await
            .context("resolving the node pools' AMI parameters")?
    };
    let fallback = fallback_ami(&values);
    let mut out = HashMap::new();
    let mut warned = std::collections::HashSet::new();
    for p in &env.node_pools {
        let ami = match &p.ami {
            Ami::Id(id) => id.clone(),
            Ami::Ssm(param) => match values.get(param) {
                Some(v) => v.clone(),
                None if fallback.is_some() => {
                    if warned.insert(param.clone()) {
                        tracing::warn!(
                            "SSM parameter {param} is not at this endpoint, which publishes no \
                             Canonical parameter at all (an emulator); using {FALLBACK_AMI_PARAMETER}"
                        );
                    }
                    fallback.cloned().unwrap_or_default()
                }
                None => anyhow::bail!(
                    "node_pools.{}.ami: the SSM public parameter {param} does not exist in {}",
                    p.name,
                    cloud.region
                ),
            },
        };
        out.insert(p.name.to_string(), ami);
    }
    if !cloud.refresh_ami {
        pin(cloud, env, &mut out).await?;
    }
    Ok(out)
}

/// The description a launch template version carries for the pool's `ami`.
pub fn source_of(ami: &Ami) -> String {
    match ami {
        Ami::Ssm(param) => format!("ami: ssm:{param}"),
        Ami::Id(id) => format!("ami: {id}"),
    }
}

/// Keeps every pool on an SSM parameter on the AMI its launch template has (see the module
/// docs), where the template's latest version came from the same source. A version without a
/// description (written before pinning) pins too.
async fn pin(
    cloud: &Cloud,
    env: &Environment,
    amis: &mut HashMap<String, String>,
) -> anyhow::Result<()> {
    let followed: Vec<_> = env
        .node_pools
        .iter()
        .filter(|p| matches!(p.ami, Ami::Ssm(_)))
        .collect();
    if followed.is_empty() {
        return Ok(());
    }
    let templates = cloud
        .launch_templates()
        .await
        .context("reading the launch templates the pools' AMIs are pinned to")?;
    for p in followed {
        let Some(t) = templates.iter().find(|t| {
            t.tags.get(crate::aws::TAG_NAME).map(String::as_str) == Some(p.name.as_str())
        }) else {
            continue;
        };
        let Some(data) = cloud.launch_template_data(&t.id).await? else {
            continue;
        };
        if let Some(pinned) = pinned_ami(
            &source_of(&p.ami),
            &data.version_description,
            &data.image_id,
        ) {
            let current = amis.insert(p.name.to_string(), pinned.clone());
            if let (Some(current), Ami::Ssm(param)) = (current, &p.ami) {
                if current != pinned {
                    eprintln!(
                        "node_pools.{}: staying on {pinned}, the AMI its launch template has; \
                         {param} now says {current} (`--refresh-ami` moves the pool, and its \
                         instances are replaced)",
                        p.name
                    );
                }
            }
        }
    }
    Ok(())
}

/// The AMI a pool stays on: the launch template's, when its version came from `source` (or
/// says nothing of its source).
fn pinned_ami(source: &str, description: &str, image_id: &str) -> Option<String> {
    let same_source = description.is_empty() || description == source;
    (same_source && !image_id.is_empty()).then(|| image_id.to_string())
}

/// The fallback AMI, when the endpoint resolved no Canonical parameter (neither a pool's nor
/// the probe) but has the fallback one; `None` wherever Ubuntu's catalogue exists, so a missing
/// parameter there stays an error naming the pool.
fn fallback_ami(values: &BTreeMap<String, String>) -> Option<&String> {
    let catalogue = values
        .keys()
        .any(|k| k.starts_with("/aws/service/canonical/"));
    values.get(FALLBACK_AMI_PARAMETER).filter(|_| !catalogue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_stays_on_its_ami_until_its_source_changes() {
        let source = source_of(&Ami::Ssm("/aws/service/canonical/x".into()));
        assert_eq!(
            pinned_ami(&source, &source, "ami-0000000a").as_deref(),
            Some("ami-0000000a")
        );
        // Written before pinning: pinned too.
        assert_eq!(
            pinned_ami(&source, "", "ami-0000000a").as_deref(),
            Some("ami-0000000a")
        );
        // Another parameter in the template: follow it.
        assert_eq!(
            pinned_ami(&source, "ami: ssm:/aws/service/other", "ami-0000000a"),
            None
        );
        assert_eq!(
            pinned_ami(&source, "ami: ami-0000000b", "ami-0000000b"),
            None
        );
    }

    #[test]
    fn the_fallback_ami_serves_only_where_no_canonical_parameter_exists() {
        let mut values: BTreeMap<String, String> =
            [(FALLBACK_AMI_PARAMETER.to_string(), "ami-al2023".to_string())].into();
        // moto: no Canonical parameter at all.
        assert_eq!(
            fallback_ami(&values).map(String::as_str),
            Some("ami-al2023")
        );
        // AWS: the probe resolves, so a pool's missing (mistyped) parameter is an error.
        values.insert(CANONICAL_PROBE.to_string(), "ami-ubuntu".to_string());
        assert_eq!(fallback_ami(&values), None);
        // An endpoint without the fallback either: nothing to fall back to.
        assert_eq!(fallback_ami(&BTreeMap::new()), None);
    }
}
