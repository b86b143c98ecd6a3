//! `provisioner render -f TEMPLATE --out DIR`: everything the environment would run, written
//! out to be read and checked without a cluster or an AWS account:
//!
//! - `DIR/manifests/*.yaml` — the workload (Secret values replaced by `REDACTED`: credentials
//!   are generated only by a deploy, in memory, and never written to disk);
//! - `DIR/userdata/<pool>.sh` — each node pool's user-data script. The NLB's DNS name is only
//!   known once the NLB exists, so these carry `nlb.<env>.render.invalid` in its place;
//! - `DIR/iam/<role>-policy.json` — the instance-profile policy of each node role (account
//!   id `*`; `up` scopes it to the real account).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::bootstrap::{self, Endpoints, PolicyScope};
use crate::cli::Config;
use crate::k8s::deploy::write_manifests;
use crate::k8s::render::{Workload, WorkloadOptions};
use crate::template::model::{Environment, NodeRole};

pub async fn run(cfg: &Config, env: &Environment) -> Result<ExitCode> {
    let out = cfg
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("rendered").join(env.name.as_str()));
    let opts = WorkloadOptions {
        image: cfg.image.clone(),
        ..WorkloadOptions::default()
    };
    let Rendered { files, problems } = render_all(env, &opts, &out)?;
    for f in &files {
        println!("{}", f.display());
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    eprintln!(
        "wrote {} files to {}; Secret values are REDACTED (a deploy generates them and never writes them to disk); \
         user-data carries a placeholder NLB name",
        files.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
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
