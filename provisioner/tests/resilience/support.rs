//! Shared helpers: run the built `provisioner` binary against an endpoint,
//! and count what an environment owns through the emulator's own APIs
//! (independently of the provisioner's code).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_ec2::types::Filter;

pub const TAG_ENV: &str = "provisioner:env";
pub const TAG_NAME: &str = "provisioner:name";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_provisioner")
}

pub fn template(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vpc-templates")
        .join(file)
}

/// How long one provisioner run may take before the test gives up on it.
pub const LIMIT: Duration = Duration::from_secs(300);

/// The dev template against a fresh emulator, with somewhere to render the
/// manifests to: what the tests here start from.
pub struct Dev {
    pub emu: harness::EmulatorGuard,
    pub aws: Aws,
    template: String,
    manifests: String,
    _out: tempfile::TempDir,
}

impl Dev {
    pub async fn start() -> Result<Self> {
        let emu = harness::emulator().await?;
        let aws = Aws::new(&emu.endpoint).await;
        let out = tempfile::tempdir()?;
        let manifests = out.path().join("manifests").display().to_string();
        Ok(Self {
            emu,
            aws,
            template: template("dev.yaml").display().to_string(),
            manifests,
            _out: out,
        })
    }

    /// The path of `dev.yaml`, for `-f`.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Converged exactly once: `plan` has nothing to do (`when` says after what) and nothing
    /// is duplicated; then `down` exits 0 and leaves nothing of the environment.
    pub async fn assert_converged_then_down(&self, when: &str) -> Result<()> {
        let endpoint = &self.emu.endpoint;
        provisioner(endpoint, &["plan", "-f", &self.template], LIMIT)
            .await?
            .expect_code(0, &format!("plan after {when}"));
        let inv = self.aws.inventory("dev").await?;
        assert!(
            inv.duplicates().is_empty(),
            "duplicates after {when}: {:?}",
            inv.duplicates()
        );
        provisioner(endpoint, &["down", "-f", &self.template, "--yes"], LIMIT)
            .await?
            .expect_code(0, "down");
        assert_nothing_left(&self.aws, "dev").await
    }

    /// `up -f dev.yaml --yes --manifests-out DIR`.
    pub fn up_args(&self) -> [&str; 6] {
        [
            "up",
            "-f",
            &self.template,
            "--yes",
            "--manifests-out",
            &self.manifests,
        ]
    }
}

/// The outcome of one provisioner run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A command for the provisioner binary pointed at `endpoint`, with the
/// emulator's test credentials and no inherited AWS settings.
pub fn command(endpoint: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args)
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // A bare moto boots no instance: `up` looks once for a node's sign of life.
        .env("PROVISIONER_BOOT_TIMEOUT", "0")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs the provisioner to completion (bounded by `timeout`).
pub async fn provisioner(endpoint: &str, args: &[&str], timeout: Duration) -> Result<Run> {
    let child = command(endpoint, args)
        .spawn()
        .with_context(|| format!("spawning {} {args:?}", bin()))?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("provisioner {args:?} did not finish within {timeout:?}"))??;
    Ok(Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// SDK clients straight to the emulator (never through the fault proxy).
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub asg: aws_sdk_autoscaling::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub r53: aws_sdk_route53::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Aws {
    pub async fn new(endpoint: &str) -> Self {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&conf),
            asg: aws_sdk_autoscaling::Client::new(&conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            r53: aws_sdk_route53::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
        }
    }

    /// Everything tagged for `env` (or, for IAM, under its path), as
    /// kind → list of (logical name, id). Deleted/terminated objects that
    /// AWS still lists for a while are left out.
    pub async fn inventory(&self, env: &str) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let f = || {
            Filter::builder()
                .name(format!("tag:{TAG_ENV}"))
                .values(env)
                .build()
        };
        let name_of = |tags: &[aws_sdk_ec2::types::Tag]| {
            tags.iter()
                .find(|t| t.key() == Some(TAG_NAME))
                .and_then(|t| t.value())
                .unwrap_or("?")
                .to_owned()
        };
        let ec2 = &self.ec2;
        for v in ec2.describe_vpcs().filters(f()).send().await?.vpcs() {
            inv.add("vpc", name_of(v.tags()), v.vpc_id().unwrap_or("?"));
        }
        for s in ec2.describe_subnets().filters(f()).send().await?.subnets() {
            inv.add("subnet", name_of(s.tags()), s.subnet_id().unwrap_or("?"));
        }
        for g in ec2
            .describe_internet_gateways()
            .filters(f())
            .send()
            .await?
            .internet_gateways()
        {
            inv.add(
                "igw",
                name_of(g.tags()),
                g.internet_gateway_id().unwrap_or("?"),
            );
        }
        for n in ec2
            .describe_nat_gateways()
            .filter(f())
            .send()
            .await?
            .nat_gateways()
        {
            let state = n.state().map(|s| s.as_str()).unwrap_or("");
            if state != "deleted" && state != "failed" {
                inv.add("nat", name_of(n.tags()), n.nat_gateway_id().unwrap_or("?"));
            }
        }
        for r in ec2
            .describe_route_tables()
            .filters(f())
            .send()
            .await?
            .route_tables()
        {
            inv.add(
                "route-table",
                name_of(r.tags()),
                r.route_table_id().unwrap_or("?"),
            );
        }
        for g in ec2
            .describe_security_groups()
            .filters(f())
            .send()
            .await?
            .security_groups()
        {
            inv.add("sg", name_of(g.tags()), g.group_id().unwrap_or("?"));
        }
        for a in ec2
            .describe_addresses()
            .filters(f())
            .send()
            .await?
            .addresses()
        {
            inv.add("eip", name_of(a.tags()), a.allocation_id().unwrap_or("?"));
        }
        for p in ec2
            .describe_vpc_peering_connections()
            .filters(f())
            .send()
            .await?
            .vpc_peering_connections()
        {
            let code = p
                .status()
                .and_then(|s| s.code())
                .map(|c| c.as_str())
                .unwrap_or("");
            if !matches!(code, "deleted" | "rejected" | "failed" | "expired") {
                inv.add(
                    "peering",
                    name_of(p.tags()),
                    p.vpc_peering_connection_id().unwrap_or("?"),
                );
            }
        }
        for t in ec2
            .describe_launch_templates()
            .filters(f())
            .send()
            .await?
            .launch_templates()
        {
            inv.add(
                "launch-template",
                name_of(t.tags()),
                t.launch_template_id().unwrap_or("?"),
            );
        }
        for r in ec2
            .describe_instances()
            .filters(f())
            .send()
            .await?
            .reservations()
        {
            for i in r.instances() {
                let state = i
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str())
                    .unwrap_or("");
                if state != "terminated" && state != "shutting-down" {
                    inv.add(
                        "instance",
                        name_of(i.tags()),
                        i.instance_id().unwrap_or("?"),
                    );
                }
            }
        }
        for g in self
            .asg
            .describe_auto_scaling_groups()
            .send()
            .await?
            .auto_scaling_groups()
        {
            let tag = |k: &str| {
                g.tags()
                    .iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
                    .map(str::to_owned)
            };
            if tag(TAG_ENV).as_deref() == Some(env) {
                inv.add(
                    "asg",
                    tag(TAG_NAME).unwrap_or_else(|| "?".into()),
                    g.auto_scaling_group_name().unwrap_or("?"),
                );
            }
        }
        let lbs = self.elb.describe_load_balancers().send().await?;
        let tgs = self.elb.describe_target_groups().send().await?;
        let mut arns: Vec<(&str, String)> = Vec::new();
        for lb in lbs.load_balancers() {
            arns.push(("lb", lb.load_balancer_arn().unwrap_or("?").to_owned()));
        }
        for tg in tgs.target_groups() {
            arns.push((
                "target-group",
                tg.target_group_arn().unwrap_or("?").to_owned(),
            ));
        }
        for chunk in arns.chunks(20) {
            let out = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.iter().map(|(_, a)| a.clone()).collect()))
                .send()
                .await?;
            for d in out.tag_descriptions() {
                let tag = |k: &str| {
                    d.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                        .map(str::to_owned)
                };
                if tag(TAG_ENV).as_deref() == Some(env) {
                    let arn = d.resource_arn().unwrap_or("?");
                    let kind = chunk
                        .iter()
                        .find(|(_, a)| a == arn)
                        .map(|(k, _)| *k)
                        .unwrap_or("elb");
                    inv.add(kind, tag(TAG_NAME).unwrap_or_else(|| "?".into()), arn);
                }
            }
        }
        for z in self.r53.list_hosted_zones().send().await?.hosted_zones() {
            let id = z.id().trim_start_matches("/hostedzone/").to_owned();
            let tags = self
                .r53
                .list_tags_for_resource()
                .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
                .resource_id(&id)
                .send()
                .await?;
            let tags = tags
                .resource_tag_set()
                .map(|s| s.tags())
                .unwrap_or_default();
            let tag = |k: &str| {
                tags.iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
                    .map(str::to_owned)
            };
            if tag(TAG_ENV).as_deref() == Some(env) {
                inv.add(
                    "zone",
                    tag(TAG_NAME).unwrap_or_else(|| z.name().to_owned()),
                    &id,
                );
            }
        }
        for h in self.r53.list_health_checks().send().await?.health_checks() {
            let tags = self
                .r53
                .list_tags_for_resource()
                .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
                .resource_id(h.id())
                .send()
                .await?;
            let tags = tags
                .resource_tag_set()
                .map(|s| s.tags())
                .unwrap_or_default();
            let tag = |k: &str| {
                tags.iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
                    .map(str::to_owned)
            };
            if tag(TAG_ENV).as_deref() == Some(env) {
                inv.add(
                    "health-check",
                    tag(TAG_NAME).unwrap_or_else(|| "?".into()),
                    h.id(),
                );
            }
        }
        let path = format!("/provisioner/us-east-1/{env}/");
        for r in self
            .iam
            .list_roles()
            .path_prefix(&path)
            .send()
            .await?
            .roles()
            .iter()
            // moto ignores the prefix; AWS matches deeper paths too: only this one is the env's.
            .filter(|r| r.path() == path)
        {
            inv.add("iam-role", r.role_name().to_owned(), r.role_name());
        }
        for p in self
            .iam
            .list_instance_profiles()
            .path_prefix(&path)
            .send()
            .await?
            .instance_profiles()
            .iter()
            .filter(|p| p.path() == path)
        {
            inv.add(
                "instance-profile",
                p.instance_profile_name().to_owned(),
                p.instance_profile_name(),
            );
        }
        Ok(inv)
    }
}

/// kind → [(logical name, id)].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inventory(pub BTreeMap<String, Vec<(String, String)>>);

impl Inventory {
    fn add(&mut self, kind: &str, name: String, id: &str) {
        self.0
            .entry(kind.to_owned())
            .or_default()
            .push((name, id.to_owned()));
    }

    pub fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    pub fn count(&self, kind: &str) -> usize {
        self.0.get(kind).map_or(0, Vec::len)
    }

    /// `(kind, logical name)` pairs owned more than once.
    pub fn duplicates(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, items) in &self.0 {
            let mut seen: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (name, id) in items {
                seen.entry(name).or_default().push(id);
            }
            for (name, ids) in seen {
                // Instances of a pool legitimately share the pool's name.
                if ids.len() > 1 && kind != "instance" {
                    out.push(format!("{kind}/{name}: {}", ids.join(", ")));
                }
            }
        }
        out
    }

    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| {
                let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
                format!("{k} x{}: {}", v.len(), names.join(", "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Fails unless the environment owns nothing any more.
pub async fn assert_nothing_left(aws: &Aws, env: &str) -> Result<()> {
    let inv = aws.inventory(env).await?;
    if inv.total() > 0 {
        bail!("environment {env} still owns:\n{}", inv.describe());
    }
    Ok(())
}
