//! Command line: parses the raw flags ([`Cli`], in [`crate::args`]), resolves them once into
//! a [`Config`] ([`crate::config`]) and dispatches to the subcommand. The only module that
//! knows every command.
//!
//! Exit codes: 0 success; 1 error; `plan`: 2 when there are changes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

pub use crate::args::{Cli, CliCommand, FaultProxyArgs, GraphFormat, OutputFormat};
pub use crate::config::{Config, Endpoint, Mode, ValidateFailed};
use crate::template;

/// Parses nothing: resolves `cli` and runs the subcommand; the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    if let CliCommand::FaultProxy(args) = &cli.command {
        return match fault_proxy(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => report_error(&e, false),
        };
    }
    let json = matches!(
        &cli.command,
        CliCommand::Validate {
            output: OutputFormat::Json,
            ..
        }
    );
    let cfg = match Config::resolve(cli).await {
        Ok(cfg) => cfg,
        Err(e) => return report_error(&e, json),
    };
    match dispatch(&cfg).await {
        Ok(code) => code,
        Err(e) => report_error(
            &e,
            cfg.output == OutputFormat::Json && cfg.mode == Mode::Validate,
        ),
    }
}

fn report_error(e: &anyhow::Error, json: bool) -> ExitCode {
    if let Some(ValidateFailed(errs)) = e.downcast_ref::<ValidateFailed>() {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "valid": false,
                    "errors": errs.errors,
                    "warnings": errs.warnings,
                }))
                .unwrap_or_default()
            );
        } else {
            eprint!("{errs}");
        }
        return ExitCode::from(1);
    }
    if let Some(errs) = e.downcast_ref::<template::TemplateErrors>() {
        eprint!("{errs}");
        return ExitCode::from(1);
    }
    eprintln!("error: {e:#}");
    ExitCode::from(1)
}

async fn dispatch(cfg: &Config) -> Result<ExitCode> {
    use crate::commands;
    match cfg.mode {
        Mode::Validate => commands::validate::run(cfg, cfg.environment()?).await,
        Mode::Graph => commands::graph::run(cfg, cfg.environment()?).await,
        Mode::Render => commands::render::run(cfg, cfg.environment()?).await,
        Mode::Plan => commands::plan::run(cfg, cfg.environment()?).await,
        Mode::Up => commands::up::run(cfg, cfg.environment()?).await,
        // By tag: a template is optional (`--env NAME`).
        Mode::Down => commands::down::run(cfg).await,
        Mode::Status => commands::status::run(cfg).await,
    }
}

/// Logs to stderr: `RUST_LOG` if set, else by `-v` count.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // The SDK warns of a failing credentials provider before we report it in one line.
        0 => "warn,aws_config::profile::credentials=error,aws_config::meta::credentials=error",
        1 => "info,provisioner=info",
        2 => "info,provisioner=debug",
        _ => "debug,provisioner=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// For `--local`: moto accepts any credentials but the SDK insists on some;
/// set test ones unless the caller has their own. Call before any thread
/// starts (it writes the process environment).
pub fn default_emulator_credentials() {
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ] {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

/// `provisioner fault-proxy`: runs until Ctrl-C, then prints what it injected.
async fn fault_proxy(args: &FaultProxyArgs) -> Result<()> {
    use crate::faultproxy::{FaultConfig, FaultProxy};
    let cfg = FaultConfig {
        seed: args.seed,
        throttle: args.throttle,
        server_error: args.server_errors,
        not_found_for: Duration::from_millis(args.not_found_ms),
        pending_for: Duration::from_millis(args.pending_ms),
        deleting_for: Duration::from_millis(args.pending_ms),
    };
    let proxy = FaultProxy::start(&args.upstream, args.listen, cfg).await?;
    proxy.set_lost_responses(args.lost_responses);
    proxy.set_latency(Duration::from_millis(args.latency_ms));
    println!("fault proxy on {} -> {}", proxy.endpoint(), args.upstream);
    tokio::signal::ctrl_c().await?;
    println!("{}", serde_json::to_string_pretty(&proxy.stats())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn dev() -> String {
        format!("{}/../vpc-templates/dev.yaml", env!("CARGO_MANIFEST_DIR"))
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("provisioner").chain(args.iter().copied()))
    }

    async fn resolve(args: &[&str]) -> Result<Config> {
        Config::resolve(parse(args).map_err(anyhow::Error::from)?).await
    }

    #[test]
    fn flags_parse_per_subcommand() {
        assert!(parse(&["plan", "-f", "x.yaml", "--output", "json"]).is_ok());
        assert!(parse(&["plan", "-f", "x.yaml", "--output", "yaml"]).is_err());
        assert!(
            parse(&["down", "--yes"]).is_err(),
            "-f or --env is required"
        );
        assert!(
            parse(&["down", "-f", "x.yaml", "--env", "dev"]).is_err(),
            "not both"
        );
        assert!(parse(&["--local", "--endpoint-url", "http://x", "plan", "-f", "x"]).is_err());
        assert!(parse(&["graph", "-f", "x", "--format", "mermaid"]).is_ok());
        // Global flags go after the subcommand too.
        let cli = parse(&["status", "--env", "dev", "-vv", "--region", "eu-west-1"]).unwrap();
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.region.as_deref(), Some("eu-west-1"));
    }

    #[tokio::test]
    async fn resolution_loads_the_template_once_with_overrides() {
        let d = dev();
        let cfg = resolve(&[
            "up",
            "-f",
            &d,
            "--yes",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ])
        .await
        .unwrap();
        assert_eq!(cfg.mode, Mode::Up);
        assert_eq!(cfg.env_name.as_str(), "dev");
        assert_eq!(cfg.region.map(|r| r.as_str()), Some("us-east-1"));
        assert_eq!(cfg.endpoint_url(), Some("http://127.0.0.1:9"));
        assert!(cfg.yes && cfg.is_emulator());
        assert_eq!(
            cfg.image.as_deref(),
            Some("ghcr.io/proximity/proximity-service:0.1.0"),
            "the template's image unless --image"
        );
        let cfg = resolve(&["up", "-f", &d, "--image", "x/y:z", "--region", "eu-west-1"])
            .await
            .unwrap();
        assert_eq!(cfg.image.as_deref(), Some("x/y:z"));
        assert_eq!(cfg.region.map(|r| r.as_str()), Some("eu-west-1"));
        assert_eq!(cfg.environment().unwrap().region.as_str(), "eu-west-1");

        let cfg = resolve(&["down", "--env", "staging", "--deadline", "30"])
            .await
            .unwrap();
        assert!(cfg.template.is_none());
        assert_eq!(cfg.env_name.as_str(), "staging");
        assert_eq!(cfg.region, None);
        assert_eq!(cfg.deadline, Duration::from_secs(30));
        assert!(cfg.environment().is_err());

        let err = resolve(&["plan", "-f", &d, "--region", "mars-1"])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--region"), "{err}");
        let err = resolve(&["validate", "-f", "/nonexistent.yaml"])
            .await
            .unwrap_err();
        assert!(err.downcast_ref::<ValidateFailed>().is_some(), "{err}");
    }
}
