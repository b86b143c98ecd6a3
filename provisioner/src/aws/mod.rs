//! Everything that talks to AWS. The only module that imports aws-sdk crates.
//!
//! - [`Cloud`]: SDK clients built from one [`aws_config::SdkConfig`] (explicit rustls+ring
//!   HTTPS client; `AWS_ENDPOINT_URL`, `--endpoint-url`, `--profile`, region and the usual
//!   credential chain), the SDK's own retries disabled so that the ONE policy in
//!   [`crate::engine::retry`] governs (and counts) every call.
//! - [`errors`]: the one mapping of AWS error codes to [`crate::engine::ErrorKind`].
//! - [`api`]: the narrow traits, one per resource family, defined per service (`ec2`, `elb`,
//!   `asg`, `route53`, `iam`, `ssm`) and implemented for [`Cloud`], returning our own structs.
//!   Resources and commands reach AWS only through them. Finds are batched: one describe per
//!   resource type (filtered by the `provisioner:env` tag where the service can, and always
//!   re-checked client side; ELBv2 and Route 53 list, then read tags in batches), plus a few
//!   reads per parent (a zone's records, a load balancer's listeners, a VPC's DNS attributes).
//!   They are cached for the run in [`Inventory`], which also knows the children of a parent
//!   created in this run to be none.
//! - [`credentials`]: where the credentials come from (`--profile`, the environment,
//!   `AWS_PROFILE`, the default chain; SSO, `credential_process`, roles, keys), got once at
//!   [`Cloud::connect`]; its errors say which source failed and what to do.
//! - [`preflight`]: probes each service a template needs; names the missing one and the
//!   endpoint, or the credentials when AWS refused them.

pub mod asg;
pub mod credentials;
pub mod ec2;
pub mod elb;
pub mod errors;
pub mod iam;
pub mod route53;
pub mod ssm;
pub mod ssm_secrets;
pub mod tags;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::sync::OnceCell;

use self::api::*;
use crate::engine::retry::{with_retry_call, CallStats, Consistency, RetryPolicy};
use crate::engine::CloudError;

pub use credentials::CredentialSource;
pub use errors::{auth_problem, classify, map_sdk_error, AuthProblem};

/// The narrow traits everything else reaches AWS through: one per resource family, each
/// with its batched describe, its creates, modifies and deletes, and its waiter. [`Cloud`]
/// implements them all; a resource names only the ones it uses
/// (`impl<C: Subnets> Resource<C> for Subnet`).
pub mod api {
    pub use super::asg::AutoScalingGroups;
    pub use super::ec2::{
        ElasticIps, InternetGateways, LaunchTemplates, Leftovers, NatGateways, Peerings,
        RouteTables, SecurityGroups, Subnets, Vpcs,
    };
    pub use super::elb::{Listeners, LoadBalancers, TargetGroups};
    pub use super::iam::{Account, NodeRoles};
    pub use super::route53::{HealthChecks, HostedZones, Records};
    pub use super::ssm::Parameters;
    pub use super::ssm_secrets::SecureParameters;
    pub use super::tags::Retag;
    pub use super::Owner;
}

/// Whose resources these are: the environment name tagged on everything created.
pub trait Owner: Send + Sync {
    fn env_name(&self) -> &str;
}

impl Owner for Cloud {
    fn env_name(&self) -> &str {
        &self.env
    }
}

/// Tag keys of ownership.
pub const TAG_ENV: &str = "provisioner:env";
pub const TAG_NAME: &str = "provisioner:name";
/// On instances: a hash of the launch template configuration they were launched from, so a
/// pool's instances on an older configuration are found (and replaced) the same way on AWS
/// and on an emulator.
pub const TAG_CONFIG: &str = "provisioner:config";
/// The keys of the template's extra `tags` a resource was given (comma-separated), so a key
/// later removed from the template is removed from the resource — and only such a key: a
/// tag someone else added is never touched.
pub const TAG_EXTRA_KEYS: &str = "provisioner:tag-keys";

/// The [`TAG_EXTRA_KEYS`] value for these extra keys; `None` when there are none.
pub fn managed_keys_tag<'a>(keys: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    (!keys.is_empty()).then(|| keys.join(","))
}

/// How to reach AWS (resolved from the CLI by `crate::commands`).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: String,
    /// `--endpoint-url` / `--local`; `AWS_ENDPOINT_URL` is read by the SDK itself.
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

impl AwsSettings {
    /// The endpoint in use, from the flag or `AWS_ENDPOINT_URL`; `None` means real AWS.
    pub fn effective_endpoint(&self) -> Option<String> {
        self.endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|s| !s.is_empty())
    }
}

/// A per-run cache of batched describes, keyed by a string (`ec2:vpcs`, `r53:records:Z123` …).
type Cell = Arc<OnceCell<Arc<dyn Any + Send + Sync>>>;

#[derive(Default)]
pub struct Inventory {
    cells: Mutex<HashMap<String, Cell>>,
}

impl Inventory {
    pub async fn cached<T, F, Fut>(&self, key: &str, load: F) -> Result<T, CloudError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let cell = {
            let mut m = self.cells.lock().expect("inventory lock");
            m.entry(key.to_string()).or_default().clone()
        };
        let v = cell
            .get_or_try_init(|| async {
                load()
                    .await
                    .map(|v| Arc::new(v) as Arc<dyn Any + Send + Sync>)
            })
            .await?;
        Ok(v.downcast_ref::<T>()
            .expect("inventory key used with two types")
            .clone())
    }
    /// Record what a describe would return without calling it (a resource just created, whose
    /// children are known to be none). A value already there is kept.
    pub fn seed<T: Send + Sync + 'static>(&self, key: &str, value: T) {
        let cell = {
            let mut m = self.cells.lock().expect("inventory lock");
            m.entry(key.to_string()).or_default().clone()
        };
        let _ = cell.set(Arc::new(value));
    }
    /// Forget one entry (after a change that must be re-read).
    pub fn invalidate(&self, key: &str) {
        self.cells.lock().expect("inventory lock").remove(key);
    }
    pub fn clear(&self) {
        self.cells.lock().expect("inventory lock").clear();
    }
}

/// Clients, ownership tags, the retry policy and the call counters of one run.
pub struct Cloud {
    pub env: String,
    pub region: String,
    pub endpoint: Option<String>,
    /// Where the credentials come from (named in credentials errors).
    pub credentials: CredentialSource,
    /// Extra tags (from the template) put on every resource.
    extra_tags: std::sync::RwLock<BTreeMap<String, String>>,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) asg: aws_sdk_autoscaling::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) r53: aws_sdk_route53::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) ssm: aws_sdk_ssm::Client,
    pub(crate) sts: aws_sdk_sts::Client,
    pub policy: RetryPolicy,
    pub stats: Arc<CallStats>,
    pub inventory: Inventory,
    /// How long waiters (NAT available, LB active, instances running) wait.
    pub wait_timeout: Duration,
    /// How many tasks the engine runs at once (`--parallelism`).
    pub parallelism: usize,
    /// `--refresh-ami`: pools on an SSM AMI parameter take its current value instead of the
    /// AMI their launch template already has.
    pub refresh_ami: bool,
}

impl Cloud {
    /// Build the SDK configuration and clients.
    pub async fn connect(settings: &AwsSettings, env: &str) -> anyhow::Result<Self> {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let credentials = CredentialSource::detect(settings.profile.as_deref()).await;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone());
        if !settings.region.is_empty() {
            loader = loader.region(Region::new(settings.region.clone()));
        }
        if let Some(p) = &settings.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &settings.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        let conf = loader.load().await;
        let region = conf
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| settings.region.clone());
        // A named profile's own provider (its SSO, OIDC and STS clients on the same rustls+ring
        // HTTP client), else the default chain; asked once now, so that missing or expired
        // credentials fail here, in one line saying what to do.
        let provider_conf = aws_config::provider_config::ProviderConfig::without_region()
            .with_http_client(http)
            .with_region(conf.region().cloned())
            .with_timeout_config(timeouts);
        let provider = credentials::profile_provider(&credentials, provider_conf)
            .or_else(|| conf.credentials_provider())
            .ok_or_else(|| anyhow::anyhow!("no credentials provider is configured"))?;
        let provider = credentials::prime(provider)
            .await
            .map_err(|e| anyhow::anyhow!(credentials.not_loaded(&e)))?;
        let conf = conf.into_builder().credentials_provider(provider).build();
        let ec2 = aws_sdk_ec2::Client::new(&conf);
        let asg = aws_sdk_autoscaling::Client::new(&conf);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&conf);
        // Route 53 and IAM are global; real AWS wants us-east-1 for their signing.
        let r53 = aws_sdk_route53::Client::new(&conf);
        let iam = aws_sdk_iam::Client::new(&conf);
        let ssm = aws_sdk_ssm::Client::new(&conf);
        let sts = aws_sdk_sts::Client::new(&conf);
        Ok(Self {
            env: env.to_string(),
            region,
            endpoint: settings.effective_endpoint(),
            credentials,
            extra_tags: Default::default(),
            ec2,
            asg,
            elb,
            r53,
            iam,
            ssm,
            sts,
            policy: RetryPolicy::default(),
            stats: Arc::new(CallStats::default()),
            inventory: Inventory::default(),
            wait_timeout: Duration::from_secs(900),
            parallelism: 32,
            refresh_ami: false,
        })
    }

    /// Run every batched describe at once (one per resource type), so that no task waits for
    /// its type's describe on the critical path. Errors are left for the tasks to report.
    pub async fn prefetch(&self, services: &[Service]) {
        use futures::future::BoxFuture;
        fn go<'a, T: Send + 'a>(
            f: impl Future<Output = Result<T, CloudError>> + Send + 'a,
        ) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                let _ = f.await;
            })
        }
        let has = |s: Service| services.contains(&s);
        let mut all: Vec<BoxFuture<'_, ()>> = vec![
            go(self.vpcs()),
            go(self.subnets()),
            go(self.internet_gateways()),
            go(self.elastic_ips()),
            go(self.nat_gateways()),
            go(self.route_tables()),
            go(self.security_groups()),
            go(self.peerings()),
        ];
        if has(Service::AutoScaling) {
            all.extend([
                go(self.launch_templates()),
                go(self.auto_scaling_groups()),
                go(self.iam_instance_profiles()),
                go(self.account_id()),
            ]);
        }
        if has(Service::ElasticLoadBalancingV2) {
            all.extend([go(self.load_balancers()), go(self.target_groups())]);
        }
        if has(Service::Route53) {
            all.extend([go(self.hosted_zones()), go(self.health_checks())]);
        }
        futures::future::join_all(all).await;
    }

    /// Is this an emulator / custom endpoint rather than real AWS?
    pub fn is_emulator(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Extra tags (the template's `tags`) put on everything created from now on.
    pub fn set_extra_tags(&self, tags: &BTreeMap<String, String>) {
        if let Ok(mut m) = self.extra_tags.write() {
            *m = tags.clone();
        }
    }

    /// The ownership tags (plus the template's extra tags) for logical name `name`.
    pub fn tags_for(&self, name: &str) -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = self
            .extra_tags
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if let Some(keys) = managed_keys_tag(t.iter().map(|(k, _)| k.as_str())) {
            t.push((TAG_EXTRA_KEYS.to_string(), keys));
        }
        t.push((TAG_ENV.to_string(), self.env.clone()));
        t.push((TAG_NAME.to_string(), name.to_string()));
        t
    }

    /// The template's extra tags as set now.
    pub fn extra_tags(&self) -> BTreeMap<String, String> {
        self.extra_tags
            .read()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Does this tag set say "owned by this environment"?
    pub fn owns<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        tags.into_iter().any(|(k, v)| k == TAG_ENV && v == self.env)
    }

    /// One SDK call under the shared retry policy, counted in `stats`.
    pub async fn call<T, E, F, Fut>(
        &self,
        op: &str,
        consistency: Consistency,
        mut f: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let idempotent = !creates_new_resource(op);
        with_retry_call(&self.policy, &self.stats, consistency, idempotent, || {
            let fut = f();
            async move { fut.await.map_err(|e| map_sdk_error(op, e)) }
        })
        .await
    }

    /// Every page of a describe: `page(token)` sends one request (the first with `None`),
    /// `next(&output)` reads the token of the next page; each page is one call under the retry
    /// policy. AWS may page a describe even without `MaxResults`, and an item on a page left
    /// unread would look absent: created again, or left behind by `down`.
    pub async fn all_pages<O, E, F, Fut, N>(
        &self,
        op: &str,
        mut page: F,
        next: N,
    ) -> Result<Vec<O>, CloudError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<O, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        N: Fn(&O) -> Option<&str>,
    {
        let mut tokens = PageTokens::default();
        let mut pages = Vec::new();
        loop {
            let token = tokens.current();
            let out = self
                .call(op, Consistency::Strong, || page(token.clone()))
                .await?;
            let more = tokens.advance(next(&out))?;
            pages.push(out);
            if !more {
                return Ok(pages);
            }
        }
    }

    /// Poll `probe` until it returns `Some`, up to `wait_timeout` (waiters for NAT gateways,
    /// load balancers and instances: real AWS has pending states, moto does not).
    pub async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, CloudError>>,
    {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(500);
        loop {
            if let Some(v) = probe().await? {
                return Ok(v);
            }
            if start.elapsed() > self.wait_timeout {
                return Err(CloudError::new(
                    crate::engine::ErrorKind::Other,
                    what,
                    "WaiterTimeout",
                    format!("still not ready after {}s", self.wait_timeout.as_secs()),
                ));
            }
            tracing::info!("waiting for {what}");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(15));
        }
    }
}

impl crate::engine::Rescan for Cloud {
    fn rescan(&self) {
        self.inventory.clear();
    }
}

/// The next-page tokens of one paged describe: the token to send, and whether there is a
/// next page (an empty token counts as none; a token seen twice is an error rather than a
/// loop that reads forever).
#[derive(Debug, Default)]
pub(crate) struct PageTokens {
    next: Option<String>,
    seen: std::collections::HashSet<String>,
}

impl PageTokens {
    /// The token to send with the next request (`None` for the first page).
    pub(crate) fn current(&self) -> Option<String> {
        self.next.clone()
    }
    /// Take the token a response returned; `Ok(true)` if there is another page to read.
    pub(crate) fn advance(&mut self, returned: Option<&str>) -> Result<bool, CloudError> {
        self.next = returned.filter(|t| !t.is_empty()).map(String::from);
        match &self.next {
            None => Ok(false),
            Some(t) if !self.seen.insert(t.clone()) => Err(CloudError::new(
                crate::engine::ErrorKind::Other,
                "pagination",
                "RepeatedNextToken",
                format!("the service returned the next-page token {t:?} twice"),
            )),
            Some(_) => Ok(true),
        }
    }
}

/// Creates that make a new resource (or fail with "already exists") each time they are sent.
/// After a 5xx or a transport error such a call may have been done with only its response lost,
/// so the retry policy does not re-send it; `ResourceTask` re-finds by tag (the resource was
/// tagged at creation) and adopts what exists before creating again.
pub fn creates_new_resource(op: &str) -> bool {
    matches!(
        op,
        "ec2:CreateVpc"
            | "ec2:CreateSubnet"
            | "ec2:CreateInternetGateway"
            | "ec2:AllocateAddress"
            | "ec2:CreateNatGateway"
            | "ec2:CreateRouteTable"
            | "ec2:CreateSecurityGroup"
            | "ec2:CreateLaunchTemplate"
            | "ec2:CreateVpcPeeringConnection"
            | "autoscaling:CreateAutoScalingGroup"
            | "iam:CreateRole"
            | "iam:CreateInstanceProfile"
            // Idempotent on AWS (same name and settings, or the same CallerReference), but
            // moto makes a second one; found again by tag (or caller reference).
            | "elbv2:CreateLoadBalancer"
            | "route53:CreateHostedZone"
            | "route53:CreateHealthCheck"
    )
}

/// Services a template may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Ec2,
    AutoScaling,
    ElasticLoadBalancingV2,
    Route53,
    Iam,
    Ssm,
}

impl Service {
    pub fn name(&self) -> &'static str {
        match self {
            Service::Ec2 => "EC2",
            Service::AutoScaling => "Auto Scaling",
            Service::ElasticLoadBalancingV2 => "Elastic Load Balancing v2 (ELBv2)",
            Service::Route53 => "Route 53",
            Service::Iam => "IAM",
            Service::Ssm => "SSM Parameter Store",
        }
    }
}

/// Probe each service; fail naming the missing service and the endpoint, or, when a call was
/// refused for its credentials (expired, unknown key, bad signature, access denied), naming the
/// credentials, where they came from and what to do instead.
pub async fn preflight(cloud: &Cloud, services: &[Service]) -> anyhow::Result<()> {
    use Consistency::Strong;
    let endpoint = cloud
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("AWS {}", cloud.region));
    let mut missing = Vec::new();
    let mut refused = Vec::new();
    for s in services {
        let r: Result<(), CloudError> = match s {
            Service::Ec2 => cloud
                .call("ec2:DescribeAvailabilityZones", Strong, || {
                    cloud.ec2.describe_availability_zones().send()
                })
                .await
                .map(|_| ()),
            Service::AutoScaling => cloud
                .call("autoscaling:DescribeAutoScalingGroups", Strong, || {
                    cloud
                        .asg
                        .describe_auto_scaling_groups()
                        .max_records(1)
                        .send()
                })
                .await
                .map(|_| ()),
            Service::ElasticLoadBalancingV2 => cloud
                .call("elbv2:DescribeLoadBalancers", Strong, || {
                    cloud.elb.describe_load_balancers().page_size(1).send()
                })
                .await
                .map(|_| ()),
            Service::Route53 => cloud
                .call("route53:ListHostedZones", Strong, || {
                    cloud.r53.list_hosted_zones().max_items(1).send()
                })
                .await
                .map(|_| ()),
            Service::Iam => cloud
                .call("iam:ListRoles", Strong, || {
                    cloud.iam.list_roles().max_items(1).send()
                })
                .await
                .map(|_| ()),
            Service::Ssm => cloud
                .call("ssm:DescribeParameters", Strong, || {
                    cloud.ssm.describe_parameters().max_results(1).send()
                })
                .await
                .map(|_| ()),
        };
        match r {
            Ok(()) => {}
            Err(e) => match auth_problem(&e) {
                Some(p) => refused.push((p, e)),
                None => missing.push(format!("{} is not available at {endpoint}: {e}", s.name())),
            },
        }
    }
    // Refused credentials are not a missing service, whatever else failed.
    if !refused.is_empty() {
        let refused: Vec<(AuthProblem, &CloudError)> =
            refused.iter().map(|(p, e)| (*p, e)).collect();
        anyhow::bail!("{}", cloud.credentials.refused(&refused, &endpoint));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "preflight failed:\n  {}\n(LocalStack's free edition has no ELBv2 and no Auto Scaling; use moto or real AWS)",
            missing.join("\n  ")
        )
    }
}

/// `key=value` pairs of a tag list as a map.
pub(crate) fn tag_map<'a>(
    tags: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|(k, v)| Some((k?.to_string(), v.unwrap_or_default().to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ebs_volumes_carry_the_ownership_tag() {
        assert_eq!(crate::k8s::render::EBS_VOLUME_ENV_TAG, TAG_ENV);
    }

    #[test]
    fn pages_are_followed_until_the_token_runs_out() {
        let mut t = PageTokens::default();
        assert_eq!(t.current(), None, "the first page has no token");
        assert!(t.advance(Some("a")).unwrap());
        assert_eq!(t.current().as_deref(), Some("a"));
        assert!(t.advance(Some("b")).unwrap());
        assert_eq!(t.current().as_deref(), Some("b"));
        assert!(
            !t.advance(None).unwrap(),
            "no token: that was the last page"
        );
    }

    #[test]
    fn an_empty_token_ends_and_a_repeated_one_is_an_error() {
        let mut t = PageTokens::default();
        assert!(!t.advance(Some("")).unwrap());
        let mut t = PageTokens::default();
        assert!(t.advance(Some("same")).unwrap());
        let e = t.advance(Some("same")).unwrap_err();
        assert!(e.message.contains("twice"), "{e}");
    }
}
