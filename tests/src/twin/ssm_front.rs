//! The HTTPS front for `ssm.<region>.amazonaws.com` (twin CA): it checks each request as SSM
//! would before anything reaches the emulator, then forwards it to moto over HTTP.
//!
//! 1. Authentication: a SigV4 `Authorization` header (else 400
//!    `MissingAuthenticationTokenException`) scoped to `<region>/ssm` (else
//!    `InvalidSignatureException`), by an access key the twin's metadata services issued with
//!    the matching `X-Amz-Security-Token` (else `UnrecognizedClientException`), not expired
//!    (`ExpiredTokenException`), and whose signature verifies with that key's secret at a
//!    `X-Amz-Date` within 15 minutes (else `InvalidSignatureException`).
//! 2. Authorization: the instance role's identity policies (inline and attached, read from the
//!    emulator's IAM on every request, so a test may change them) evaluated for
//!    `ssm:<Action>` (`X-Amz-Target: AmazonSSM.<Action>`) on
//!    `arn:<partition>:ssm:<region>:<account>:parameter<name>` for each parameter the request
//!    names (`Name`, `Names`); a `PutParameter` with `Tags` also needs
//!    `ssm:AddTagsToResource`, as on AWS. A denial is 400 `AccessDeniedException` in AWS's
//!    JSON shape.
//! 3. Allowed requests go to the emulator; its JSON answer is sent back compact, as AWS
//!    sends it (moto puts a space after every `:`, which AWS never does).
//! 4. Every decision is logged (access key id, role, instance, action, resource, outcome,
//!    reason — never a parameter value or a secret) to the twin's `ssm-front.log` and kept for
//!    tests ([`SsmFront::decisions`]).

use super::imds::CredentialRegistry;
use super::policy::{self, NamedPolicy, Verdict};
use super::server::{self, Reply, Request, Server};
use super::sigv4::{self, Authorization};
use anyhow::{Context, Result};
use http::StatusCode;
use serde_json::{json, Value};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// One authentication or authorization decision of the front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub access_key_id: Option<String>,
    pub role: Option<String>,
    pub instance_id: Option<String>,
    /// `ssm:GetParameter`, or the request's target when it is not an SSM action.
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// The error code sent, or the statement that allowed it.
    pub reason: String,
}

/// Where the front runs and what it checks against.
#[derive(Clone, Debug)]
pub struct SsmFrontConfig {
    /// The emulator's HTTP endpoint requests are forwarded to.
    pub emulator_endpoint: String,
    pub region: String,
    /// The account parameters live in (the emulator's: 123456789012 for moto).
    pub account_id: String,
    pub log_path: PathBuf,
}

/// A running SSM front.
#[derive(Debug)]
pub struct SsmFront {
    server: Server,
    decisions: Arc<Mutex<Vec<Decision>>>,
}

impl SsmFront {
    /// Starts the front on a free 127.0.0.1 port, serving TLS under `pki`.
    pub async fn start(
        config: SsmFrontConfig,
        pki: &super::Pki,
        iam: aws_sdk_iam::Client,
        registry: CredentialRegistry,
    ) -> Result<SsmFront> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.log_path)
            .with_context(|| format!("opening {}", config.log_path.display()))?;
        let decisions = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            config,
            iam,
            registry,
            http: reqwest::Client::new(),
            log: Mutex::new(log),
            decisions: decisions.clone(),
        });
        let listener = server::bind_loopback().await?;
        let server = server::serve(listener, Some(pki.server_config()), move |req, _peer| {
            let state = state.clone();
            async move { Reply::Answer(state.handle(req).await) }
        })?;
        Ok(SsmFront { server, decisions })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Every decision so far, oldest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.lock().expect("decisions").clone()
    }
}

struct State {
    config: SsmFrontConfig,
    iam: aws_sdk_iam::Client,
    registry: CredentialRegistry,
    http: reqwest::Client,
    log: Mutex<std::fs::File>,
    decisions: Arc<Mutex<Vec<Decision>>>,
}

const JSON_11: &str = "application/x-amz-json-1.1";

fn aws_error(code: &str, message: &str) -> server::Response {
    server::json(
        StatusCode::BAD_REQUEST,
        JSON_11,
        &json!({"__type": code, "message": message}),
    )
}

/// A refusal: the error code and AWS's message for it.
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

impl State {
    async fn handle(&self, req: Request) -> server::Response {
        let target = header(&req, "x-amz-target").unwrap_or_default();
        let action = match target.strip_prefix("AmazonSSM.") {
            Some(op) => format!("ssm:{op}"),
            None => target.clone(),
        };
        let mut decision = Decision {
            access_key_id: None,
            role: None,
            instance_id: None,
            action: action.clone(),
            resource: String::new(),
            allowed: false,
            reason: String::new(),
        };
        match self.check(&req, &action, &mut decision).await {
            Ok(()) => {
                decision.allowed = true;
                self.record(decision);
                self.forward(req).await
            }
            Err(refusal) => {
                decision.reason = if decision.reason.is_empty() {
                    refusal.code.to_owned()
                } else {
                    format!("{}: {}", refusal.code, decision.reason)
                };
                self.record(decision);
                aws_error(refusal.code, &refusal.message)
            }
        }
    }

    async fn check(
        &self,
        req: &Request,
        action: &str,
        decision: &mut Decision,
    ) -> Result<(), Refusal> {
        let auth = header(req, "authorization").ok_or_else(|| {
            refuse(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
        })?;
        let auth = Authorization::parse(&auth).ok_or_else(|| {
            refuse(
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
            )
        })?;
        decision.access_key_id = Some(auth.access_key_id.clone());
        if auth.region != self.config.region
            || auth.service != "ssm"
            || auth.terminator != "aws4_request"
        {
            return Err(refuse(
                "InvalidSignatureException",
                format!(
                    "Credential should be scoped to a valid region and to service 'ssm' \
                     (got {}/{}).",
                    auth.region, auth.service
                ),
            ));
        }
        let creds = self.registry.get(&auth.access_key_id).ok_or_else(|| {
            refuse(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        })?;
        decision.role = Some(creds.role_name.clone());
        decision.instance_id = Some(creds.instance_id.clone());
        if header(req, "x-amz-security-token").as_deref() != Some(creds.session_token.as_str()) {
            return Err(refuse(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        if creds.expiration < SystemTime::now() {
            return Err(refuse(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ));
        }
        let fresh = header(req, "x-amz-date")
            .and_then(|d| parse_amz_date(&d))
            .is_some_and(|t| within(t, Duration::from_secs(15 * 60)));
        if !fresh || !header(req, "x-amz-date").is_some_and(|d| d.starts_with(&auth.date)) {
            return Err(refuse(
                "InvalidSignatureException",
                "Signature expired or X-Amz-Date missing or not in the credential's date.",
            ));
        }
        if !auth.signed_headers.iter().any(|h| h == "host") {
            return Err(refuse(
                "InvalidSignatureException",
                "'Host' must be a signed header.",
            ));
        }
        let expected = sigv4::expected_signature(req, &auth, &creds.secret_access_key);
        if expected.as_deref() != Some(auth.signature.as_str()) {
            return Err(refuse(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you \
                 provided. Check your AWS Secret Access Key and signing method.",
            ));
        }
        // Authorized as the role? Each action on each parameter the request names.
        let body: Value = serde_json::from_slice(req.body()).unwrap_or(Value::Null);
        let resources = self.resources(&body);
        decision.resource = resources.join(",");
        let mut needed = vec![action.to_owned()];
        if action == "ssm:PutParameter"
            && body
                .get("Tags")
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty())
        {
            needed.push("ssm:AddTagsToResource".to_owned());
        }
        let policies = self.role_policies(&creds.role_name).await.map_err(|e| {
            refuse(
                "InternalServerError",
                format!("the twin could not read the role's policies: {e:#}"),
            )
        })?;
        let mut granted = Vec::new();
        for act in &needed {
            for resource in &resources {
                match policy::evaluate(&policies, act, resource) {
                    Verdict::Allowed(by) => granted.push(by),
                    denial => {
                        let principal = format!(
                            "arn:{}:sts::{}:assumed-role/{}/{}",
                            super::aws::partition(&self.config.region),
                            self.config.account_id,
                            creds.role_name,
                            creds.instance_id
                        );
                        let why = match &denial {
                            Verdict::ExplicitDeny(_) => {
                                "with an explicit deny in an identity-based policy"
                            }
                            _ => "because no identity-based policy allows the action",
                        };
                        decision.reason = format!("{denial:?}");
                        return Err(refuse(
                            "AccessDeniedException",
                            format!(
                                "User: {principal} is not authorized to perform: {act} on \
                                 resource: {resource} {why}"
                            ),
                        ));
                    }
                }
            }
        }
        decision.reason = format!("allowed by {}", granted.join(", "));
        Ok(())
    }

    /// The ARNs of the parameters the request names (`*` when it names none).
    fn resources(&self, body: &Value) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(n) = body.get("Name").and_then(Value::as_str) {
            names.push(n.to_owned());
        }
        if let Some(list) = body.get("Names").and_then(Value::as_array) {
            names.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        if names.is_empty() {
            return vec!["*".to_owned()];
        }
        names.iter().map(|n| self.parameter_arn(n)).collect()
    }

    /// `arn:aws:ssm:<region>:<account>:parameter<name>` (`parameter/<name>` for a name
    /// without a leading `/`); a name that is already an ARN stays as it is.
    fn parameter_arn(&self, name: &str) -> String {
        if name.starts_with("arn:") {
            return name.to_owned();
        }
        let name = name.split(':').next().unwrap_or(name); // a `name:version` selector
        let sep = if name.starts_with('/') { "" } else { "/" };
        format!(
            "arn:{}:ssm:{}:{}:parameter{sep}{name}",
            super::aws::partition(&self.config.region),
            self.config.region,
            self.config.account_id
        )
    }

    async fn role_policies(&self, role: &str) -> Result<Vec<NamedPolicy>> {
        let mut out = Vec::new();
        let inline = self
            .iam
            .list_role_policies()
            .role_name(role)
            .send()
            .await
            .map_err(super::aws::sdk_error)?;
        for name in inline.policy_names() {
            let got = self
                .iam
                .get_role_policy()
                .role_name(role)
                .policy_name(name)
                .send()
                .await
                .map_err(super::aws::sdk_error)?;
            out.push(NamedPolicy {
                name: format!("inline:{name}"),
                document: policy::parse_document(got.policy_document())?,
            });
        }
        let attached = self
            .iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .map_err(super::aws::sdk_error)?;
        for p in attached.attached_policies() {
            let Some(arn) = p.policy_arn() else { continue };
            let meta = self
                .iam
                .get_policy()
                .policy_arn(arn)
                .send()
                .await
                .map_err(super::aws::sdk_error)?;
            let version = meta
                .policy()
                .and_then(|p| p.default_version_id())
                .unwrap_or("v1");
            let got = self
                .iam
                .get_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await
                .map_err(super::aws::sdk_error)?;
            let doc = got
                .policy_version()
                .and_then(|v| v.document())
                .context("a policy version without a document")?;
            out.push(NamedPolicy {
                name: format!("attached:{}", p.policy_name().unwrap_or(arn)),
                document: policy::parse_document(doc)?,
            });
        }
        Ok(out)
    }

    async fn forward(&self, req: Request) -> server::Response {
        let url = format!("{}/", self.config.emulator_endpoint.trim_end_matches('/'));
        let mut fwd = self.http.post(url).body(req.body().clone());
        for name in [
            "authorization",
            "x-amz-target",
            "x-amz-date",
            "x-amz-security-token",
            "content-type",
        ] {
            if let Some(v) = req.headers().get(name) {
                fwd = fwd.header(name, v.clone());
            }
        }
        match fwd.send().await {
            Ok(resp) => {
                let status = resp.status();
                let ctype = resp
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(JSON_11)
                    .to_owned();
                let body = resp.bytes().await.unwrap_or_default();
                // AWS answers compact JSON (`"Value":"…"`), moto pretty-prints
                // (`"Value": "…"`); the nodes' scripts read AWS's form.
                let body = match serde_json::from_slice::<Value>(&body) {
                    Ok(v) => bytes::Bytes::from(v.to_string()),
                    Err(_) => body,
                };
                let status = StatusCode::from_u16(status.as_u16())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                server::bytes(status, &ctype, body)
            }
            Err(e) => server::json(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON_11,
                &json!({"__type": "ServiceUnavailable", "message": format!("the emulator did not answer: {e}")}),
            ),
        }
    }

    fn record(&self, d: Decision) {
        let line = format!(
            "{} {} {} on {} key={} role={} instance={}: {}\n",
            super::imds::iso8601(SystemTime::now()),
            if d.allowed { "ALLOW" } else { "DENY" },
            d.action,
            if d.resource.is_empty() {
                "-"
            } else {
                &d.resource
            },
            d.access_key_id.as_deref().unwrap_or("-"),
            d.role.as_deref().unwrap_or("-"),
            d.instance_id.as_deref().unwrap_or("-"),
            d.reason
        );
        if let Ok(mut log) = self.log.lock() {
            let _ = log.write_all(line.as_bytes());
        }
        self.decisions.lock().expect("decisions").push(d);
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `20240501T120000Z` → the time it names.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let t = aws_smithy_types::DateTime::from_str(
        &format!(
            "{}-{}-{}T{}:{}:{}Z",
            s.get(0..4)?,
            s.get(4..6)?,
            s.get(6..8)?,
            s.get(9..11)?,
            s.get(11..13)?,
            s.get(13..15)?
        ),
        aws_smithy_types::date_time::Format::DateTime,
    )
    .ok()?;
    SystemTime::try_from(t).ok()
}

fn within(t: SystemTime, skew: Duration) -> bool {
    let now = SystemTime::now();
    match now.duration_since(t) {
        Ok(age) => age <= skew,
        Err(ahead) => ahead.duration() <= skew,
    }
}
