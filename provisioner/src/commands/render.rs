//! `provisioner render -f TEMPLATE --out DIR`: everything the environment would run, written
//! out to be read and checked without a cluster or an AWS account:
//!
//! - `DIR/manifests/*.yaml` — the workload (Secret values replaced by `REDACTED`: credentials
//!   are generated only by a deploy, in memory, and never written to disk);
//! - `DIR/userdata/<pool>.sh` — each node pool's user-data script. The NLB's DNS name is only
//!   known once the NLB exists, so these carry `nlb.<env>.render.invalid` in its place;
//! - `DIR/iam/<role>-policy.json` — the instance-profile policy of each node role (account
//!   id `*`; `up` scopes it to the real account).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

pub use crate::artifacts::{placeholder_nlb, render_all, Rendered};
use crate::config::Config;
use crate::k8s::render::WorkloadOptions;
use crate::template::model::Environment;

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
