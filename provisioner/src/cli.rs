//! Command line: raw flags ([`Cli`], "lowargs") resolved once into a
//! [`Config`] ("hiargs") that every subcommand reads.
//!
//! Resolution loads and validates the template (every problem printed with
//! file, key path and reason, before any AWS call), applies `--region`,
//! starts the bundled emulator for `--local` and picks the output style.
//!
//! Exit codes: 0 success; 1 error; `plan`: 2 when there are changes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::emulator::Emulator;
use crate::template::{self, LoadOptions, Name, Region, Template};

/// Reconciles an AWS environment from a declarative template, then stands up
/// k3s and the workload on it.
#[derive(Debug, Parser)]
#[command(name = "provisioner", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,

    /// Start the bundled moto emulator for this command and use it.
    #[arg(long, global = true, conflicts_with = "endpoint_url")]
    pub local: bool,

    /// AWS endpoint (an emulator such as moto or LocalStack). Without it,
    /// `AWS_ENDPOINT_URL` is honoured by the SDK itself.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Named profile from ~/.aws/config (else `AWS_PROFILE` / the default chain).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Use this region instead of the template's.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,

    /// More log output (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How many resources `plan`, `up` and `down` work on at once (1 = one after the other).
    #[arg(long, global = true, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Show what `up` would change, and why (exit 0: nothing, 2: changes, 1: error).
    Plan {
        #[command(flatten)]
        template: TemplateArg,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Converge the environment to the template, then bring up k3s and the workload.
    Up {
        #[command(flatten)]
        template: TemplateArg,
        /// Do not ask for confirmation (always implied on an emulator).
        #[arg(long)]
        yes: bool,
        /// Where to write the cluster's kubeconfig.
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// proximity-service image (overrides `cluster.service_image`).
        #[arg(long, value_name = "IMAGE", value_parser = image_reference)]
        image: Option<String>,
        /// Also write the rendered Kubernetes manifests here.
        #[arg(long, value_name = "DIR")]
        manifests_out: Option<PathBuf>,
    },
    /// Delete everything the environment owns (found by tag); exit 1 if anything is left.
    Down {
        #[command(flatten)]
        target: TargetArg,
        /// Do not ask for confirmation (always implied on an emulator).
        #[arg(long)]
        yes: bool,
        /// Give up retrying dependency violations after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 900)]
        deadline: u64,
    },
    /// What exists and its health.
    Status {
        #[command(flatten)]
        target: TargetArg,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// The dependency graph of the plan, as Graphviz DOT or Mermaid.
    Graph {
        #[command(flatten)]
        template: TemplateArg,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Render the Kubernetes manifests and node user data for the template.
    Render {
        #[command(flatten)]
        template: TemplateArg,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// (Testing) a fault-injecting proxy in front of an AWS emulator.
    #[command(hide = true)]
    FaultProxy(FaultProxyArgs),
    /// Check a template without calling AWS.
    Validate {
        #[command(flatten)]
        template: TemplateArg,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

#[derive(Debug, Clone, Args)]
pub struct FaultProxyArgs {
    /// The emulator to forward to, e.g. http://127.0.0.1:5000.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of calls answered with a throttling error.
    #[arg(long, default_value_t = 0.15)]
    pub throttle: f64,
    /// Share of calls answered 500/503.
    #[arg(long, default_value_t = 0.05)]
    pub server_errors: f64,
    /// Milliseconds during which a new EC2 id reads as NotFound.
    #[arg(long, default_value_t = 800)]
    pub not_found_ms: u64,
    /// Milliseconds NAT gateways / load balancers stay pending.
    #[arg(long, default_value_t = 2000)]
    pub pending_ms: u64,
    /// Share of calls done upstream but answered 500/503 (a lost response).
    #[arg(long, default_value_t = 0.0)]
    pub lost_responses: f64,
    /// Milliseconds every call waits before it is forwarded (network latency).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct TemplateArg {
    /// The environment template (YAML), e.g. vpc-templates/dev.yaml.
    #[arg(short = 'f', long = "file", value_name = "TEMPLATE")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct TargetArg {
    /// The environment template (YAML).
    #[arg(short = 'f', long = "file", value_name = "TEMPLATE")]
    pub file: Option<PathBuf>,
    /// The environment's name, when the template is not at hand.
    #[arg(long = "env", value_name = "NAME")]
    pub env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// Which subcommand runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Up,
    Down,
    Status,
    Graph,
    Render,
    Validate,
}

/// Where AWS calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Real AWS, or whatever `AWS_ENDPOINT_URL` says (the SDK reads it).
    Default,
    /// `--endpoint-url`.
    Url(String),
    /// `--local`: the emulator this process started.
    Local(String),
}

/// Everything a subcommand needs, resolved once from the command line.
#[derive(Debug)]
pub struct Config {
    pub mode: Mode,
    /// The validated template (`None` only for `down`/`status --env`).
    pub template: Option<Template>,
    /// The environment's name (from the template or `--env`).
    pub env_name: Name,
    /// Region: `--region`, else the template's; `None` for `--env` without
    /// `--region` (the SDK's chain decides: `AWS_REGION`, profile …).
    pub region: Option<Region>,
    pub endpoint: Endpoint,
    pub profile: Option<String>,
    pub verbose: u8,
    /// `--parallelism`: resources worked on at once.
    pub parallelism: usize,
    pub output: OutputFormat,
    pub graph_format: GraphFormat,
    /// `--yes`, or implied on an emulator.
    pub yes: bool,
    pub kubeconfig: Option<PathBuf>,
    /// `--image`, else `cluster.service_image`.
    pub image: Option<String>,
    pub manifests_out: Option<PathBuf>,
    /// `render --out`.
    pub out_dir: Option<PathBuf>,
    /// `down --deadline`.
    pub deadline: Duration,
    /// stdout is a terminal: progress display instead of plain lines.
    pub interactive: bool,
    /// Keeps the `--local` emulator alive for the whole command.
    emulator: Option<Emulator>,
}

impl Config {
    /// `--endpoint-url` or the `--local` emulator; `None`: the SDK default
    /// (which honours `AWS_ENDPOINT_URL`).
    pub fn endpoint_url(&self) -> Option<&str> {
        match &self.endpoint {
            Endpoint::Default => None,
            Endpoint::Url(u) | Endpoint::Local(u) => Some(u),
        }
    }

    /// True when talking to an emulator rather than real AWS (`--local`,
    /// `--endpoint-url` or `AWS_ENDPOINT_URL`).
    pub fn is_emulator(&self) -> bool {
        self.endpoint != Endpoint::Default
            || std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty())
    }

    /// The validated environment; an error for `--env` runs.
    pub fn environment(&self) -> Result<&template::Environment> {
        match &self.template {
            Some(t) => Ok(&t.env),
            None => bail!("this command needs a template (-f TEMPLATE)"),
        }
    }

    /// Resolves the raw flags: loads the template (printing warnings to
    /// stderr), starts the emulator for `--local`.
    pub async fn resolve(cli: Cli) -> Result<Self> {
        let region_override = match &cli.region {
            Some(r) => Some(Region::parse(r).map_err(|e| anyhow::anyhow!("--region: {e}"))?),
            None => None,
        };
        let opts = LoadOptions {
            region_override: region_override.map(|r| r.as_str().to_owned()),
        };
        let load = |path: &PathBuf| -> Result<Template> {
            let t = template::load_with(path, &opts)?;
            for w in &t.warnings {
                eprintln!("{w}");
            }
            Ok(t)
        };
        let mut cfg = Config {
            mode: Mode::Validate,
            template: None,
            env_name: Name::parse("x").expect("valid"),
            region: region_override,
            endpoint: match cli.endpoint_url {
                Some(u) => Endpoint::Url(u),
                None => Endpoint::Default,
            },
            profile: cli.profile,
            verbose: cli.verbose,
            parallelism: usize::from(cli.parallelism),
            output: OutputFormat::Text,
            graph_format: GraphFormat::Dot,
            yes: false,
            kubeconfig: None,
            image: None,
            manifests_out: None,
            out_dir: None,
            deadline: Duration::from_secs(900),
            interactive: std::io::stdout().is_terminal(),
            emulator: None,
        };
        let target = |t: &TargetArg| -> Result<(Option<Template>, Option<Name>)> {
            match (&t.file, &t.env) {
                (Some(f), _) => Ok((Some(load(f)?), None)),
                (None, Some(n)) => {
                    let name = Name::parse(n).map_err(|e| anyhow::anyhow!("--env: {e}"))?;
                    Ok((None, Some(name)))
                }
                (None, None) => bail!("give -f TEMPLATE or --env NAME"),
            }
        };
        let mut env_name = None;
        match cli.command {
            CliCommand::Plan { template, output } => {
                cfg.mode = Mode::Plan;
                cfg.template = Some(load(&template.file)?);
                cfg.output = output;
            }
            CliCommand::Up {
                template,
                yes,
                kubeconfig,
                image,
                manifests_out,
            } => {
                cfg.mode = Mode::Up;
                cfg.template = Some(load(&template.file)?);
                cfg.yes = yes;
                cfg.kubeconfig = kubeconfig;
                cfg.image = image;
                cfg.manifests_out = manifests_out;
            }
            CliCommand::Down {
                target: t,
                yes,
                deadline,
            } => {
                cfg.mode = Mode::Down;
                (cfg.template, env_name) = target(&t)?;
                cfg.yes = yes;
                cfg.deadline = Duration::from_secs(deadline);
            }
            CliCommand::Status { target: t, output } => {
                cfg.mode = Mode::Status;
                (cfg.template, env_name) = target(&t)?;
                cfg.output = output;
            }
            CliCommand::Graph { template, format } => {
                cfg.mode = Mode::Graph;
                cfg.template = Some(load(&template.file)?);
                cfg.graph_format = format;
            }
            CliCommand::Render { template, out } => {
                cfg.mode = Mode::Render;
                cfg.template = Some(load(&template.file)?);
                cfg.out_dir = Some(out);
            }
            CliCommand::FaultProxy(_) => bail!("fault-proxy is handled before resolution"),
            CliCommand::Validate { template, output } => {
                cfg.mode = Mode::Validate;
                cfg.output = output;
                // Validation errors are this command's output, not a failure
                // to resolve: keep them for `run`.
                match template::load_with(&template.file, &opts) {
                    Ok(t) => cfg.template = Some(t),
                    Err(e) => return Err(ValidateFailed(e).into()),
                }
            }
        }
        if let Some(t) = &cfg.template {
            cfg.env_name = t.env.name.clone();
            cfg.region = Some(t.env.region);
            if cfg.image.is_none() && cfg.mode == Mode::Up {
                cfg.image = Some(t.env.cluster.service_image.clone());
            }
        } else if let Some(n) = env_name {
            cfg.env_name = n;
        }
        let needs_aws = matches!(cfg.mode, Mode::Plan | Mode::Up | Mode::Down | Mode::Status);
        if cli.local && needs_aws {
            let emu = Emulator::start().await?;
            eprintln!("emulator: moto on {}", emu.endpoint());
            eprintln!("{}", crate::emulator::NO_BOOT_NOTICE);
            cfg.endpoint = Endpoint::Local(emu.endpoint().to_owned());
            cfg.emulator = Some(emu);
        }
        if cfg.is_emulator() {
            cfg.yes = true;
        }
        Ok(cfg)
    }
}

/// `validate` found problems (printed by [`run`] in the chosen format).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ValidateFailed(pub template::TemplateErrors);

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
        0 => "warn",
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

/// `--image`: a container image reference, refused before anything is created.
fn image_reference(s: &str) -> Result<String, String> {
    crate::template::check_image_reference(s).map(|()| s.to_string())
}

#[cfg(test)]
mod tests {
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
