//! Subcommand bodies. Each exposes
//! `pub async fn run(cfg: &crate::config::Config, env: &crate::template::Environment)
//! -> anyhow::Result<std::process::ExitCode>`, dispatched by [`crate::cli`].
//! (Owners add their own `pub mod` line here.)

pub mod down;
pub mod graph;
pub mod plan;
pub mod render;
pub mod status;
pub mod up;
pub mod validate;
