//! The raw command line ("lowargs"): the clap definitions of every subcommand and flag,
//! resolved once into a [`crate::config::Config`] by [`crate::config::Config::resolve`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
        /// `json`: the stable plan document (schema `provisioner.plan/v1`, README.md);
        /// `markdown`: the same as a table, for a pull-request comment.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        output: PlanFormat,
        /// Move pools that follow an SSM AMI parameter to its current value (else they stay
        /// on the AMI their launch template has).
        #[arg(long)]
        refresh_ami: bool,
    },
    /// Converge the environment to the template, then bring up k3s and the workload.
    Up {
        #[command(flatten)]
        template: TemplateArg,
        /// Do not ask for confirmation (always implied on an emulator).
        #[arg(long)]
        yes: bool,
        /// Move pools that follow an SSM AMI parameter to its current value (else they stay
        /// on the AMI their launch template has); their instances are then replaced.
        #[arg(long)]
        refresh_ami: bool,
        /// Where to write the cluster's kubeconfig.
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// proximity-service image (overrides `cluster.service_image`).
        #[arg(long, value_name = "IMAGE", value_parser = image_reference)]
        image: Option<String>,
        /// Where the rendered workload goes when no instance boots (default
        /// `rendered/<env>`).
        #[arg(long, value_name = "DIR")]
        manifests_out: Option<PathBuf>,
        /// Connect to HOST:PORT at ADDR instead (curl's `--resolve`; ADDR may carry its own
        /// port: `HOST:PORT:IP[:PORT]`), for every connection to the cluster and the service.
        /// Repeatable; `PROVISIONER_RESOLVE` adds more.
        #[arg(long = "resolve", value_name = "HOST:PORT:ADDR")]
        resolve: Vec<String>,
        /// How long to wait for the first sign that an instance ran its user-data (0: look
        /// once; the default with `--local`, whose emulator boots nothing).
        #[arg(long, value_name = "SECS", env = "PROVISIONER_BOOT_TIMEOUT")]
        boot_timeout: Option<u64>,
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
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
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

/// `--image`: a container image reference, refused before anything is created.
pub(crate) fn image_reference(s: &str) -> Result<String, String> {
    crate::template::check_image_reference(s).map(|()| s.to_string())
}
