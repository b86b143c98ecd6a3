//! The node pools' AMIs, resolved from SSM public parameters before any task is built.

use std::collections::HashMap;

use anyhow::Context;

use crate::aws::api::*;
use crate::aws::Cloud;
use crate::template::{Ami, Environment};

/// The emulator has no Ubuntu public parameter; this one it has.
const EMULATOR_AMI_PARAMETER: &str =
    "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// Resolve every pool's AMI from SSM public parameters, all at once (one `GetParameters` for
/// the plain names, on an emulator with the fallback among them; one `GetParameter` for a name
/// with a `:version` or `:label` selector).
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
    if !params.is_empty() && cloud.is_emulator() {
        params.push(EMULATOR_AMI_PARAMETER.to_string());
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
    let mut out = HashMap::new();
    let mut warned = std::collections::HashSet::new();
    for p in &env.node_pools {
        let ami = match &p.ami {
            Ami::Id(id) => id.clone(),
            Ami::Ssm(param) => match values.get(param) {
                Some(v) => v.clone(),
                None if cloud.is_emulator() && values.contains_key(EMULATOR_AMI_PARAMETER) => {
                    if warned.insert(param.clone()) {
                        tracing::warn!(
                            "SSM parameter {param} is not on the emulator; using {EMULATOR_AMI_PARAMETER}"
                        );
                    }
                    values[EMULATOR_AMI_PARAMETER].clone()
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
    Ok(out)
}
