//! An IMDSv2 stub for one instance, on 127.0.0.1 (the node's `.curlrc` maps
//! `169.254.169.254:80` to it).
//!
//! - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1..=21600) issues a
//!   session token; a missing or bad TTL is 400, a PUT carrying `X-Forwarded-For` is 403 (as
//!   AWS refuses tokens to requests that went through a proxy).
//! - With `HttpTokens=required`, every GET needs a valid `X-aws-ec2-metadata-token` (else 401);
//!   with `optional`, a GET without one is served and an invalid one is still 401.
//! - **Hop limit.** On EC2 the token's PUT response leaves with an IP TTL equal to
//!   `HttpPutResponseHopLimit`, so it dies before reaching a client further away (a pod behind
//!   the node's bridge). Twin convention: a request from `127.0.0.N` comes from N hops away —
//!   `127.0.0.1` is the instance itself, `127.0.0.2` a pod on it. A PUT from farther than the
//!   hop limit gets no answer: the connection is closed unanswered (curl: "Empty reply from
//!   server"), where on AWS it would time out.
//! - Metadata: `instance-id`, `instance-type`, `local-ipv4`, `local-hostname`, `hostname`,
//!   `placement/region`, `placement/availability-zone`, `services/domain`, `ami-id`,
//!   `iam/security-credentials/` (the role's name; 404 without a role) and
//!   `iam/security-credentials/<role>`: temporary credentials from the emulator's STS
//!   `AssumeRole` of the instance profile's role (ASIA… keys), refreshed before they expire,
//!   and recorded in the [`CredentialRegistry`] so the SSM front knows whose they are.
//!   `/latest/user-data` serves the decoded user-data.

use super::server::{self, Reply, Request, Server};
use anyhow::{Context, Result};
use http::StatusCode;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Temporary credentials the twin's metadata service handed to an instance.
#[derive(Clone)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: SystemTime,
    /// The role's name and ARN, and the instance the credentials were issued to.
    pub role_name: String,
    pub role_arn: String,
    pub instance_id: String,
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("role_name", &self.role_name)
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

/// Every credential the twin's metadata services issued, by access key id.
#[derive(Clone, Debug, Default)]
pub struct CredentialRegistry {
    inner: Arc<Mutex<HashMap<String, IssuedCredentials>>>,
}

impl CredentialRegistry {
    pub fn insert(&self, creds: IssuedCredentials) {
        self.inner
            .lock()
            .expect("registry")
            .insert(creds.access_key_id.clone(), creds);
    }

    pub fn get(&self, access_key_id: &str) -> Option<IssuedCredentials> {
        self.inner
            .lock()
            .expect("registry")
            .get(access_key_id)
            .cloned()
    }
}

/// The role behind an instance's instance profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRole {
    pub name: String,
    pub arn: String,
}

/// What the metadata service of one instance knows (from EC2 and the launch template).
#[derive(Clone, Debug)]
pub struct ImdsConfig {
    pub instance_id: String,
    pub instance_type: String,
    pub image_id: String,
    pub local_ipv4: String,
    pub region: String,
    pub availability_zone: String,
    /// `services/domain`: `amazonaws.com` (`amazonaws.com.cn` in China).
    pub domain: String,
    /// `MetadataOptions.HttpTokens == required`.
    pub tokens_required: bool,
    /// `MetadataOptions.HttpPutResponseHopLimit` (AWS's default is 1).
    pub hop_limit: u8,
    pub role: Option<InstanceRole>,
    pub user_data: Option<Vec<u8>>,
}

/// A running metadata service.
#[derive(Debug)]
pub struct Imds {
    server: Server,
}

impl Imds {
    /// Starts the stub on a free 127.0.0.1 port. `sts` assumes the instance's role.
    pub async fn start(
        config: ImdsConfig,
        sts: aws_sdk_sts::Client,
        registry: CredentialRegistry,
    ) -> Result<Imds> {
        let state = Arc::new(State {
            config,
            sts,
            registry,
            tokens: Mutex::new(HashMap::new()),
            creds: tokio::sync::Mutex::new(None),
        });
        let listener = server::bind_loopback().await?;
        let server = server::serve(listener, None, move |req, peer| {
            let state = state.clone();
            async move { state.handle(req, peer).await }
        })?;
        Ok(Imds { server })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

struct State {
    config: ImdsConfig,
    sts: aws_sdk_sts::Client,
    registry: CredentialRegistry,
    tokens: Mutex<HashMap<String, Instant>>,
    creds: tokio::sync::Mutex<Option<IssuedCredentials>>,
}

const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// How many hops away the peer is, by the twin's convention (`127.0.0.N` is N hops away).
pub fn hops_from(peer: SocketAddr) -> u8 {
    match peer.ip() {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] => v4.octets()[3].max(1),
        _ => u8::MAX,
    }
}

fn status(code: StatusCode) -> Reply {
    let reason = code.canonical_reason().unwrap_or("");
    Reply::Answer(server::text(
        code,
        format!("{} - {reason}\n", code.as_u16()),
    ))
}

fn ok(body: impl Into<String>) -> Reply {
    Reply::Answer(server::text(StatusCode::OK, body.into()))
}

impl State {
    async fn handle(&self, req: Request, peer: SocketAddr) -> Reply {
        let path = req.uri().path().to_owned();
        if path == "/latest/api/token" {
            if req.method() != http::Method::PUT {
                return status(StatusCode::METHOD_NOT_ALLOWED);
            }
            return self.issue_token(&req, peer);
        }
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        match req.headers().get(TOKEN_HEADER) {
            Some(token) if !self.token_valid(token.to_str().unwrap_or("")) => {
                return status(StatusCode::UNAUTHORIZED)
            }
            None if self.config.tokens_required => return status(StatusCode::UNAUTHORIZED),
            _ => {}
        }
        if path == "/latest/user-data" {
            return match &self.config.user_data {
                Some(data) => Reply::Answer(server::bytes(
                    StatusCode::OK,
                    "application/octet-stream",
                    data.clone().into(),
                )),
                None => status(StatusCode::NOT_FOUND),
            };
        }
        match path.strip_prefix("/latest/meta-data/") {
            Some(item) => self.meta_data(item).await,
            None => status(StatusCode::NOT_FOUND),
        }
    }

    fn issue_token(&self, req: &Request, peer: SocketAddr) -> Reply {
        if req.headers().contains_key("x-forwarded-for") {
            return status(StatusCode::FORBIDDEN);
        }
        let ttl = req
            .headers()
            .get(TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let Some(ttl) = ttl.filter(|t| (1..=21600).contains(t)) else {
            return status(StatusCode::BAD_REQUEST);
        };
        if hops_from(peer) > self.config.hop_limit {
            // The answer's TTL would run out on the way: the client never hears back.
            return Reply::Drop;
        }
        let token = random_token();
        let mut tokens = self.tokens.lock().expect("tokens");
        let now = Instant::now();
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(token.clone(), now + Duration::from_secs(ttl));
        let mut resp = server::text(StatusCode::OK, token);
        resp.headers_mut().insert(
            TTL_HEADER,
            http::HeaderValue::from_str(&ttl.to_string()).expect("digits"),
        );
        Reply::Answer(resp)
    }

    fn token_valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().expect("tokens");
        tokens
            .get(token)
            .is_some_and(|expires| *expires > Instant::now())
    }

    async fn meta_data(&self, item: &str) -> Reply {
        let c = &self.config;
        let hostname = format!(
            "{}.{}",
            host_name(&c.local_ipv4),
            internal_domain(&c.region)
        );
        match item {
            "" => ok([
                "ami-id",
                "hostname",
                "iam/",
                "instance-id",
                "instance-type",
                "local-hostname",
                "local-ipv4",
                "placement/",
                "services/",
            ]
            .join("\n")),
            "instance-id" => ok(c.instance_id.clone()),
            "instance-type" => ok(c.instance_type.clone()),
            "ami-id" => ok(c.image_id.clone()),
            "local-ipv4" => ok(c.local_ipv4.clone()),
            "hostname" | "local-hostname" => ok(hostname),
            "placement/" => ok("availability-zone\nregion"),
            "placement/region" => ok(c.region.clone()),
            "placement/availability-zone" => ok(c.availability_zone.clone()),
            "services/" => ok("domain"),
            "services/domain" => ok(c.domain.clone()),
            "iam/" | "iam" => match &c.role {
                Some(_) => ok("info\nsecurity-credentials/"),
                None => status(StatusCode::NOT_FOUND),
            },
            "iam/security-credentials/" | "iam/security-credentials" => match &c.role {
                Some(role) => ok(role.name.clone()),
                None => status(StatusCode::NOT_FOUND),
            },
            other => match (other.strip_prefix("iam/security-credentials/"), &c.role) {
                (Some(name), Some(role)) if name.trim_end_matches('/') == role.name => {
                    self.credentials(role).await
                }
                _ => status(StatusCode::NOT_FOUND),
            },
        }
    }

    async fn credentials(&self, role: &InstanceRole) -> Reply {
        match self.current_credentials(role).await {
            Ok(creds) => {
                let body = serde_json::json!({
                    "Code": "Success",
                    "LastUpdated": iso8601(SystemTime::now()),
                    "Type": "AWS-HMAC",
                    "AccessKeyId": creds.access_key_id,
                    "SecretAccessKey": creds.secret_access_key,
                    "Token": creds.session_token,
                    "Expiration": iso8601(creds.expiration),
                });
                Reply::Answer(server::text(
                    StatusCode::OK,
                    serde_json::to_string_pretty(&body).expect("json"),
                ))
            }
            Err(e) => {
                eprintln!(
                    "twin imds {}: AssumeRole {} failed: {e:#}",
                    self.config.instance_id, role.arn
                );
                status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    async fn current_credentials(&self, role: &InstanceRole) -> Result<IssuedCredentials> {
        let mut cached = self.creds.lock().await;
        if let Some(creds) = cached.as_ref() {
            let fresh = creds
                .expiration
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > Duration::from_secs(300));
            if fresh {
                return Ok(creds.clone());
            }
        }
        let out = self
            .sts
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(&self.config.instance_id)
            .send()
            .await
            .map_err(super::aws::sdk_error)
            .with_context(|| format!("sts:AssumeRole {}", role.arn))?;
        let c = out
            .credentials()
            .context("AssumeRole returned no credentials")?;
        let expiration = SystemTime::try_from(*c.expiration())
            .unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(3600));
        let creds = IssuedCredentials {
            access_key_id: c.access_key_id().to_owned(),
            secret_access_key: c.secret_access_key().to_owned(),
            session_token: c.session_token().to_owned(),
            expiration,
            role_name: role.name.clone(),
            role_arn: role.arn.clone(),
            instance_id: self.config.instance_id.clone(),
        };
        self.registry.insert(creds.clone());
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

/// The EC2 host name of a private address: `10.0.1.23` → `ip-10-0-1-23`.
pub fn host_name(ipv4: &str) -> String {
    format!("ip-{}", ipv4.replace('.', "-"))
}

fn internal_domain(region: &str) -> String {
    if region == "us-east-1" {
        "ec2.internal".to_owned()
    } else {
        format!("{region}.compute.internal")
    }
}

fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 42];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("system randomness");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `2024-05-01T12:00:00Z`.
pub fn iso8601(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
