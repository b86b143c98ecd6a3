//! Everything an environment would run, written out to be read and checked without a cluster
//! or an AWS account (`provisioner render`, and `up` where no instance boots):
//! `manifests/*.yaml` (Secret values REDACTED), `userdata/<pool>.sh`, `iam/<role>-policy.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::bootstrap::{self, Endpoints, PolicyScope};
use crate::k8s::render::{self, SecretValues, Workload, WorkloadOptions};
use crate::template::model::{Environment, NodeRole};

/// Writes every manifest, secrets REDACTED, into `dir`.
pub fn write_manifests(workload: &Workload, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = Vec::new();
    for m in render::render_manifests(workload, SecretValues::Redacted)? {
        let path = dir.join(m.file_name);
        std::fs::write(&path, &m.yaml).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    Ok(files)
}

/// The placeholder NLB DNS name of rendered user-data.
pub fn placeholder_nlb(env: &Environment) -> String {
    format!("nlb.{}.render.invalid", env.name)
}

/// What [`render_all`] wrote, and the user-data it could not render.
#[derive(Debug, Default)]
pub struct Rendered {
    pub files: Vec<PathBuf>,
    /// One line per pool whose user-data was refused (e.g. `cluster.k3s_version` off the
    /// supported line); nothing was written for those pools.
    pub problems: Vec<String>,
}

/// Writes manifests, user-data and policies under `out` (`manifests/`, `userdata/`, `iam/`).
pub fn render_all(env: &Environment, opts: &WorkloadOptions, out: &Path) -> Result<Rendered> {
    let workload = Workload::from_env(env, opts)?;
    let mut files = write_manifests(&workload, &out.join("manifests"))?;
    let mut problems = Vec::new();
    let endpoints = Endpoints::for_env(env, &placeholder_nlb(env));
    let userdata = out.join("userdata");
    std::fs::create_dir_all(&userdata)
        .with_context(|| format!("creating {}", userdata.display()))?;
    for pool in &env.node_pools {
        match bootstrap::user_data(env, pool, &endpoints) {
            Ok(script) => {
                let path = userdata.join(format!("{}.sh", pool.name));
                write_file(&path, &script)?;
                files.push(path);
            }
            Err(e) => problems.push(format!("user-data of pool {}: {e}", pool.name)),
        }
    }
    let iam = out.join("iam");
    std::fs::create_dir_all(&iam).with_context(|| format!("creating {}", iam.display()))?;
    let scope = PolicyScope::new(env.region.as_str(), "*");
    for role in [NodeRole::K3sServer, NodeRole::K3sAgent] {
        let path = iam.join(format!("{role}-policy.json"));
        let doc = bootstrap::instance_role_policy(env, role, &scope);
        write_file(&path, &serde_json::to_string_pretty(&doc)?)?;
        files.push(path);
    }
    Ok(Rendered { files, problems })
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
