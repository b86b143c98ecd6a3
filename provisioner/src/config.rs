//! The resolved configuration ("hiargs") every subcommand reads: the raw flags of
//! [`crate::args::Cli`] resolved once — the template loaded and validated (every problem
//! printed with file, key path and reason, before any AWS call), `--region` applied, the
//! bundled emulator started for `--local`, the output style picked.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::args::{Cli, CliCommand, TargetArg};
pub use crate::args::{GraphFormat, OutputFormat, PlanFormat};
use crate::emulator::Emulator;
use crate::template::{self, LoadOptions, Name, Region, Template};

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
    /// `plan --output`.
    pub plan_format: PlanFormat,
    pub graph_format: GraphFormat,
    /// `--yes`, or implied on an emulator.
    pub yes: bool,
    /// `plan`/`up --refresh-ami`: pools on an SSM AMI parameter move to its current value.
    pub refresh_ami: bool,
    pub kubeconfig: Option<PathBuf>,
    /// `--image`, else `cluster.service_image`.
    pub image: Option<String>,
    pub manifests_out: Option<PathBuf>,
    /// `up --resolve` and `PROVISIONER_RESOLVE`.
    pub resolver: crate::resolve::Resolver,
    /// `up --boot-timeout`: how long to wait for a node's first sign of life.
    pub boot_timeout: Duration,
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
            plan_format: PlanFormat::Text,
            graph_format: GraphFormat::Dot,
            yes: false,
            refresh_ami: false,
            kubeconfig: None,
            image: None,
            manifests_out: None,
            resolver: crate::resolve::Resolver::default(),
            boot_timeout: Duration::from_secs(15 * 60),
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
            CliCommand::Plan {
                template,
                output,
                refresh_ami,
            } => {
                cfg.mode = Mode::Plan;
                cfg.refresh_ami = refresh_ami;
                cfg.template = Some(load(&template.file)?);
                cfg.plan_format = output;
            }
            CliCommand::Up {
                template,
                yes,
                refresh_ami,
                kubeconfig,
                image,
                manifests_out,
                resolve,
                boot_timeout,
            } => {
                cfg.mode = Mode::Up;
                cfg.template = Some(load(&template.file)?);
                cfg.yes = yes;
                cfg.refresh_ami = refresh_ami;
                cfg.kubeconfig = kubeconfig;
                cfg.image = image;
                cfg.manifests_out = manifests_out;
                cfg.resolver =
                    crate::resolve::Resolver::from_env(&resolve).map_err(anyhow::Error::msg)?;
                // `--local` starts a bare moto, which boots nothing: do not wait for it.
                let default = if cli.local { 0 } else { 15 * 60 };
                cfg.boot_timeout = Duration::from_secs(boot_timeout.unwrap_or(default));
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
