//! `provisioner plan -f TEMPLATE`: the converge run against the dry-run target — the same
//! find/diff/check_changes code as `up`, with rendering recorded instead of done — so plan
//! and apply cannot disagree. Prints each change with its reason (drift included).
//! Exit 0: no changes; 2: changes; 1: error.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::{Config, PlanFormat};
use crate::plan_document::PlanDocument;
// The plan as data and as text, for callers that knew them here.
use crate::session::connect;
pub use crate::session::{plan, render_text, services, PlanReport};
use crate::template::Environment;

pub async fn run(cfg: &Config, env: &Environment) -> Result<ExitCode> {
    let cloud = connect(cfg).await?;
    crate::aws::preflight(&cloud, &services(env)).await?;
    let p = plan(&cloud, env).await?;
    match cfg.plan_format {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&PlanDocument::new(&p))?),
        PlanFormat::Markdown => print!("{}", PlanDocument::new(&p).markdown()),
        PlanFormat::Text => print!("{}", render_text(&p)),
    }
    Ok(if !p.errors.is_empty() {
        ExitCode::from(1)
    } else if p.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
