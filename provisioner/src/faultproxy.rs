//! A fault-injecting HTTP proxy between the AWS SDK and an emulator.
//!
//! moto answers every call instantly and consistently; real AWS throttles,
//! fails transiently, forgets what it just created for a moment and takes
//! minutes to make NAT gateways and load balancers available. This proxy
//! adds those behaviours so tests can show that `up` and `down` converge
//! anyway. Faults, each chosen by a seeded RNG (reproducible):
//!
//! - **throttling**: a share of calls is answered, without forwarding, with
//!   the throttling error of the call's protocol — EC2 query
//!   (`RequestLimitExceeded`, HTTP 503), awsQuery for Auto Scaling / ELBv2 /
//!   IAM / STS and restXml for Route 53 (`Throttling`, HTTP 400), awsJson for
//!   SSM (`ThrottlingException`);
//! - **server errors**: a share answered 500 `InternalError` / 503
//!   `ServiceUnavailable` (not forwarded);
//! - **eventual consistency**: for a while after an EC2 create, any call
//!   naming the new id gets `InvalidXxx.NotFound` (`InvalidVpcID.NotFound`,
//!   `InvalidSubnetID.NotFound`, …), as AWS does;
//! - **lost responses** (off by default, [`FaultProxy::set_lost_responses`]):
//!   the call is forwarded and done, but the client gets a 500/503 — the
//!   case where a blind retry of a create makes a duplicate;
//! - **refused credentials** (off by default, [`FaultProxy::refuse_credentials`]):
//!   calls to the chosen services are answered, without forwarding, as AWS answers
//!   an unknown key, an expired session token or a missing permission, in each
//!   protocol's own code ([`CredentialsFault`]);
//! - **network latency** (off by default, [`FaultProxy::set_latency`]): every
//!   call waits this long before it is forwarded, as a call to a distant region
//!   does; with it the emulator's own time per call no longer dominates, which
//!   is how `BENCHMARKS.md` measures the engine's schedule against its critical
//!   path;
//! - **slow resources**: NAT gateways read `pending` and load balancers
//!   `provisioning` for a while after their creation, and NAT gateways
//!   `deleting` for a while after their deletion (responses rewritten); each
//!   such state lasts until a describe has shown it at least once, however
//!   long throttling kept the client from asking.
//!
//! Calls to moto's own API (`/moto-api/…`) pass untouched. Used by the e2e
//! tests and by the hidden `provisioner fault-proxy` subcommand.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::oneshot;

/// What to inject.
#[derive(Debug, Clone)]
pub struct FaultConfig {
    pub seed: u64,
    /// Share of calls answered with a throttling error, `0.0..=1.0`.
    pub throttle: f64,
    /// Share of calls answered 500/503.
    pub server_error: f64,
    /// After an EC2 create, calls naming the new id read NotFound this long.
    pub not_found_for: Duration,
    /// NAT gateways / load balancers read pending this long after creation.
    pub pending_for: Duration,
    /// NAT gateways read `deleting` this long after their deletion.
    pub deleting_for: Duration,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            throttle: 0.15,
            server_error: 0.05,
            not_found_for: Duration::from_millis(800),
            pending_for: Duration::from_secs(2),
            deleting_for: Duration::from_secs(2),
        }
    }
}

/// Counters of what was injected.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FaultStats {
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub not_found: u64,
    pub pending_rewrites: u64,
    pub deleting_rewrites: u64,
    /// Calls done upstream whose answer was replaced by a 5xx.
    pub lost_responses: u64,
    /// Calls answered with a credentials error ([`FaultProxy::refuse_credentials`]).
    pub credentials_refused: u64,
    /// `"<fault> <service>:<action>"` → count.
    pub by_call: BTreeMap<String, u64>,
}

impl FaultStats {
    pub fn injected(&self) -> u64 {
        self.throttled
            + self.server_errors
            + self.not_found
            + self.pending_rewrites
            + self.deleting_rewrites
            + self.lost_responses
            + self.credentials_refused
    }
}

/// The running proxy; stops on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<oneshot::Sender<()>>,
}

struct Inner {
    upstream: String,
    cfg: FaultConfig,
    client: reqwest::Client,
    rng: Mutex<StdRng>,
    state: Mutex<Tracked>,
    stats: Mutex<FaultStats>,
    /// Share of calls whose response is lost (see [`FaultProxy::set_lost_responses`]).
    lost: Mutex<f64>,
    /// Added before each call is forwarded (see [`FaultProxy::set_latency`]).
    latency: Mutex<Duration>,
    /// Credentials refused to these services (signing names; empty: all), see
    /// [`FaultProxy::refuse_credentials`].
    refuse: Mutex<Option<(CredentialsFault, Vec<String>)>>,
}

/// How AWS refuses a call for its credentials, answered in the code each protocol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsFault {
    /// An access key AWS does not know: EC2 `AuthFailure` (401), the awsQuery and REST-XML
    /// services `InvalidClientTokenId` (403), the JSON ones `UnrecognizedClientException` (400).
    UnknownKey,
    /// An expired session token: EC2 `RequestExpired` (400), awsQuery and REST-XML
    /// `ExpiredToken` (403), JSON `ExpiredTokenException` (400).
    Expired,
    /// Valid credentials without the permission: EC2 `UnauthorizedOperation` (403), awsQuery
    /// and REST-XML `AccessDenied` (403), JSON `AccessDeniedException` (400).
    AccessDenied,
}

#[derive(Default)]
struct Tracked {
    /// id → (NotFound code, until).
    fresh: HashMap<String, (&'static str, Instant)>,
    /// NAT gateway id or load balancer ARN → reads pending.
    pending: HashMap<String, Slow>,
    /// NAT gateway id → reads deleting.
    deleting: HashMap<String, Slow>,
}

/// A transitional state: it lasts its time *and* until a describe has shown
/// it once, so a client whose first describes were throttled or read NotFound
/// past the window still meets the state its waiter is there for (as it
/// would on AWS, where a NAT gateway stays pending for minutes).
struct Slow {
    until: Instant,
    shown: bool,
}

impl Slow {
    fn new(until: Instant) -> Self {
        Self {
            until,
            shown: false,
        }
    }
}

/// Drops the states that are over and returns the ids still in one.
fn still_slow(map: &mut HashMap<String, Slow>, now: Instant) -> Vec<String> {
    map.retain(|_, s| s.until > now || !s.shown);
    map.keys().cloned().collect()
}

/// Marks as shown the states a rewritten response carried.
fn mark_shown(map: &mut HashMap<String, Slow>, shown: &[String]) {
    for id in shown {
        if let Some(s) = map.get_mut(id) {
            s.shown = true;
        }
    }
}

impl FaultProxy {
    /// Listens on `listen` (port 0: a free one) and forwards to `upstream`.
    pub async fn start(upstream: &str, listen: SocketAddr, cfg: FaultConfig) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the fault proxy to {listen}"))?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed)),
            cfg,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .context("building the proxy's HTTP client")?,
            state: Mutex::new(Tracked::default()),
            stats: Mutex::new(FaultStats::default()),
            lost: Mutex::new(0.0),
            latency: Mutex::new(Duration::ZERO),
            refuse: Mutex::new(None),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            inner,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT` — give it to the SDK as the endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> FaultStats {
        self.inner.stats.lock().expect("stats lock").clone()
    }

    /// From now on, forward this share of calls but answer them with a
    /// 500/503 as if the response had been lost (`0.0` turns it off).
    pub fn set_lost_responses(&self, share: f64) {
        *self.inner.lost.lock().expect("lost lock") = share.clamp(0.0, 1.0);
    }

    /// From now on, answer every call to `services` (signing names such as `ec2`, `ssm`,
    /// `elasticloadbalancing`; empty: every service) with `fault`, without forwarding it
    /// (`None` turns it off).
    pub fn refuse_credentials(&self, fault: Option<CredentialsFault>, services: &[&str]) {
        *self.inner.refuse.lock().expect("refuse lock") =
            fault.map(|f| (f, services.iter().map(|s| (*s).to_owned()).collect()));
    }

    /// From now on, hold every call this long before forwarding it (`ZERO` turns it off).
    pub fn set_latency(&self, latency: Duration) {
        *self.inner.latency.lock().expect("latency lock") = latency;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The wire protocol of an AWS service, which decides the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Ec2Query,
    AwsQuery,
    RestXml,
    Json,
}

#[derive(Debug)]
struct Call {
    service: String,
    action: String,
    protocol: Protocol,
}

fn classify(method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> Call {
    // SigV4 scope: Credential=AKID/DATE/REGION/SERVICE/aws4_request
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned();
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    let protocol = match service.as_str() {
        "ec2" => Protocol::Ec2Query,
        "route53" => Protocol::RestXml,
        _ if target.is_some() => Protocol::Json,
        _ => Protocol::AwsQuery,
    };
    let action = match protocol {
        Protocol::Json => target
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_owned(),
        Protocol::RestXml => format!("{method} {path}"),
        Protocol::Ec2Query | Protocol::AwsQuery => {
            form_value(body, "Action").unwrap_or_else(|| "?".into())
        }
    };
    Call {
        service,
        action,
        protocol,
    }
}

/// A value of an `application/x-www-form-urlencoded` body (minimal decoding).
fn form_value(body: &[u8], key: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Throttle,
    ServerError { unavailable: bool },
    NotFound(&'static str),
    Credentials(CredentialsFault),
}

fn error_response(call: &Call, fault: Fault, request_id: &str) -> Response {
    let (status, code, message) = match (fault, call.protocol) {
        (Fault::Throttle, Protocol::Ec2Query) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        (Fault::Throttle, Protocol::Json) => (
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        (Fault::Throttle, _) => (StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
        (Fault::ServerError { unavailable: true }, Protocol::Json) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Service is unavailable",
        ),
        (Fault::ServerError { unavailable: true }, Protocol::Ec2Query) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The server is overloaded",
        ),
        (Fault::ServerError { unavailable: true }, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "Service is unavailable",
        ),
        (Fault::ServerError { unavailable: false }, Protocol::Json) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal error",
        ),
        (Fault::ServerError { unavailable: false }, Protocol::Ec2Query) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "An internal error has occurred",
        ),
        (Fault::ServerError { unavailable: false }, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "An internal error has occurred",
        ),
        (Fault::NotFound(code), _) => {
            (StatusCode::BAD_REQUEST, code, "The resource does not exist")
        }
        (Fault::Credentials(c), protocol) => credentials_error(c, protocol),
    };
    let sender = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let (content_type, body) = match call.protocol {
        Protocol::Ec2Query => (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        Protocol::AwsQuery => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{sender}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        Protocol::RestXml => (
            "text/xml",
            format!(
                "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>{sender}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        Protocol::Json => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if call.protocol == Protocol::Json {
        if let Ok(v) = HeaderValue::from_str(code) {
            h.insert("x-amzn-errortype", v);
        }
    }
    resp
}

/// Status, code and message of a credentials refusal in `protocol`.
fn credentials_error(
    fault: CredentialsFault,
    protocol: Protocol,
) -> (StatusCode, &'static str, &'static str) {
    use CredentialsFault::*;
    const INVALID: &str = "The security token included in the request is invalid.";
    const EXPIRED: &str = "The security token included in the request is expired";
    const DENIED: &str = "User is not authorized to perform this operation";
    match (fault, protocol) {
        (UnknownKey, Protocol::Ec2Query) => (
            StatusCode::UNAUTHORIZED,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ),
        (UnknownKey, Protocol::Json) => (
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            INVALID,
        ),
        (UnknownKey, _) => (StatusCode::FORBIDDEN, "InvalidClientTokenId", INVALID),
        (Expired, Protocol::Ec2Query) => (
            StatusCode::BAD_REQUEST,
            "RequestExpired",
            "Request has expired.",
        ),
        (Expired, Protocol::Json) => (StatusCode::BAD_REQUEST, "ExpiredTokenException", EXPIRED),
        (Expired, _) => (StatusCode::FORBIDDEN, "ExpiredToken", EXPIRED),
        (AccessDenied, Protocol::Ec2Query) => (
            StatusCode::FORBIDDEN,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ),
        (AccessDenied, Protocol::Json) => {
            (StatusCode::BAD_REQUEST, "AccessDeniedException", DENIED)
        }
        (AccessDenied, _) => (StatusCode::FORBIDDEN, "AccessDenied", DENIED),
    }
}

/// The id an EC2 create returns, and the NotFound code AWS uses for it.
fn created_id_tag(action: &str) -> Option<(&'static str, &'static str)> {
    Some(match action {
        "CreateVpc" => ("vpcId", "InvalidVpcID.NotFound"),
        "CreateSubnet" => ("subnetId", "InvalidSubnetID.NotFound"),
        "CreateInternetGateway" => ("internetGatewayId", "InvalidInternetGatewayID.NotFound"),
        "CreateSecurityGroup" => ("groupId", "InvalidGroup.NotFound"),
        "CreateRouteTable" => ("routeTableId", "InvalidRouteTableID.NotFound"),
        "CreateNatGateway" => ("natGatewayId", "NatGatewayNotFound"),
        "AllocateAddress" => ("allocationId", "InvalidAllocationID.NotFound"),
        "CreateVpcPeeringConnection" => (
            "vpcPeeringConnectionId",
            "InvalidVpcPeeringConnectionID.NotFound",
        ),
        "CreateLaunchTemplate" => ("launchTemplateId", "InvalidLaunchTemplateId.NotFound"),
        _ => return None,
    })
}

/// Text of the first `<tag>…</tag>`.
fn first_tag<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// Rewrites, inside each outermost `<item_tag>` element whose `<id_tag>` is
/// one of `ids`, the first `from` into `to`. Returns how many were rewritten.
fn rewrite_items(
    xml: &str,
    item_tag: &str,
    id_tag: &str,
    ids: &[String],
    from: &str,
    to: &str,
) -> (String, Vec<String>) {
    let open = format!("<{item_tag}>");
    let close = format!("</{item_tag}>");
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    let mut hits = Vec::new();
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start]);
        // Find the matching close, counting nested items.
        let mut depth = 0usize;
        let mut i = start;
        let mut end = None;
        while i < rest.len() {
            if rest[i..].starts_with(&open) {
                depth += 1;
                i += open.len();
            } else if rest[i..].starts_with(&close) {
                depth -= 1;
                i += close.len();
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            } else {
                i += rest[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
        let Some(end) = end else {
            out.push_str(&rest[start..]);
            return (out, hits);
        };
        let item = &rest[start..end];
        let hit = first_tag(item, id_tag).filter(|id| ids.iter().any(|x| x == id));
        if let Some(id) = hit.filter(|_| item.contains(from)) {
            out.push_str(&item.replacen(from, to, 1));
            hits.push(id.to_owned());
        } else {
            out.push_str(item);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, hits)
}

impl Inner {
    fn count(&self, kind: &str, call: &Call, f: impl FnOnce(&mut FaultStats)) {
        let mut s = self.stats.lock().expect("stats lock");
        f(&mut s);
        *s.by_call
            .entry(format!("{kind} {}:{}", call.service, call.action))
            .or_default() += 1;
    }

    /// Decides a fault to inject before forwarding, if any.
    fn pre_fault(&self, call: &Call, body: &[u8]) -> Option<Fault> {
        if let Some((fault, services)) = &*self.refuse.lock().expect("refuse lock") {
            if services.is_empty() || services.contains(&call.service) {
                return Some(Fault::Credentials(*fault));
            }
        }
        let now = Instant::now();
        if call.protocol == Protocol::Ec2Query {
            let text = String::from_utf8_lossy(body);
            let mut st = self.state.lock().expect("state lock");
            st.fresh.retain(|_, (_, until)| *until > now);
            // The create itself names no new id; any later call naming it does.
            if let Some((_, (code, _))) = st.fresh.iter().find(|(id, _)| text.contains(id.as_str()))
            {
                return Some(Fault::NotFound(code));
            }
        }
        let mut rng = self.rng.lock().expect("rng lock");
        let roll: f64 = rng.random();
        if roll < self.cfg.throttle {
            return Some(Fault::Throttle);
        }
        if roll < self.cfg.throttle + self.cfg.server_error {
            return Some(Fault::ServerError {
                unavailable: rng.random_bool(0.5),
            });
        }
        None
    }

    /// Records creations and rewrites states in a successful response.
    fn post_process(&self, call: &Call, req_body: &[u8], resp: String) -> String {
        let now = Instant::now();
        let mut st = self.state.lock().expect("state lock");
        match (call.protocol, call.action.as_str()) {
            (Protocol::Ec2Query, action) => {
                if let Some((tag, code)) = created_id_tag(action) {
                    if let Some(id) = first_tag(&resp, tag) {
                        if !self.cfg.not_found_for.is_zero() {
                            st.fresh
                                .insert(id.to_owned(), (code, now + self.cfg.not_found_for));
                        }
                        if action == "CreateNatGateway" && !self.cfg.pending_for.is_zero() {
                            st.pending
                                .insert(id.to_owned(), Slow::new(now + self.cfg.pending_for));
                            // AWS answers the create with `pending`, too.
                            drop(st);
                            self.count("pending", call, |s| s.pending_rewrites += 1);
                            return resp.replacen(
                                "<state>available</state>",
                                "<state>pending</state>",
                                1,
                            );
                        }
                    }
                }
                if action == "DeleteNatGateway" && !self.cfg.deleting_for.is_zero() {
                    if let Some(id) = form_value(req_body, "NatGatewayId") {
                        st.pending.remove(&id);
                        st.deleting
                            .insert(id, Slow::new(now + self.cfg.deleting_for));
                    }
                }
                if action == "DescribeNatGateways" {
                    let pending = still_slow(&mut st.pending, now);
                    let deleting = still_slow(&mut st.deleting, now);
                    let (resp, p) = rewrite_items(
                        &resp,
                        "item",
                        "natGatewayId",
                        &pending,
                        "<state>available</state>",
                        "<state>pending</state>",
                    );
                    let (resp, d) = rewrite_items(
                        &resp,
                        "item",
                        "natGatewayId",
                        &deleting,
                        "<state>deleted</state>",
                        "<state>deleting</state>",
                    );
                    mark_shown(&mut st.pending, &p);
                    mark_shown(&mut st.deleting, &d);
                    drop(st);
                    if !p.is_empty() {
                        self.count("pending", call, |s| s.pending_rewrites += p.len() as u64);
                    }
                    if !d.is_empty() {
                        self.count("deleting", call, |s| s.deleting_rewrites += d.len() as u64);
                    }
                    return resp;
                }
                resp
            }
            (Protocol::AwsQuery, "CreateLoadBalancer")
                if call.service == "elasticloadbalancing" =>
            {
                if let Some(arn) = first_tag(&resp, "LoadBalancerArn") {
                    if !self.cfg.pending_for.is_zero() {
                        st.pending
                            .insert(arn.to_owned(), Slow::new(now + self.cfg.pending_for));
                    }
                }
                resp
            }
            (Protocol::AwsQuery, "DescribeLoadBalancers")
                if call.service == "elasticloadbalancing" =>
            {
                let pending = still_slow(&mut st.pending, now);
                let (resp, p) = rewrite_items(
                    &resp,
                    "member",
                    "LoadBalancerArn",
                    &pending,
                    "<Code>active</Code>",
                    "<Code>provisioning</Code>",
                );
                mark_shown(&mut st.pending, &p);
                drop(st);
                if !p.is_empty() {
                    self.count("pending", call, |s| s.pending_rewrites += p.len() as u64);
                }
                resp
            }
            _ => resp,
        }
    }
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    match proxy(&inner, req).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = Response::new(Body::from(format!("fault proxy: {e:#}")));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        }
    }
}

async fn proxy(inner: &Inner, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 64 << 20)
        .await
        .context("reading the request body")?;
    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let is_moto_api = parts.uri.path().starts_with("/moto-api");
    let call = classify(
        parts.method.as_str(),
        parts.uri.path(),
        &parts.headers,
        &body,
    );
    if !is_moto_api {
        if let Some(fault) = inner.pre_fault(&call, &body) {
            let rid = format!("fault-{}", rand::random::<u32>());
            match fault {
                Fault::Throttle => inner.count("throttle", &call, |s| s.throttled += 1),
                Fault::ServerError { .. } => {
                    inner.count("server-error", &call, |s| s.server_errors += 1)
                }
                Fault::NotFound(_) => inner.count("not-found", &call, |s| s.not_found += 1),
                Fault::Credentials(_) => {
                    inner.count("credentials", &call, |s| s.credentials_refused += 1)
                }
            }
            return Ok(error_response(&call, fault, &rid));
        }
    }
    let latency = *inner.latency.lock().expect("latency lock");
    if !is_moto_api && !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut rb = inner
        .client
        .request(
            parts.method.clone(),
            format!("{}{}", inner.upstream, path_q),
        )
        .body(body.clone());
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            rb = rb.header(k, v);
        }
    }
    let lose = !is_moto_api && {
        let share = *inner.lost.lock().expect("lost lock");
        share > 0.0 && inner.rng.lock().expect("rng lock").random_bool(share)
    };
    let up = rb.send().await.context("forwarding to the emulator")?;
    let status = up.status();
    let headers = up.headers().clone();
    let bytes = up
        .bytes()
        .await
        .context("reading the emulator's response")?;
    inner.stats.lock().expect("stats lock").forwarded += 1;
    if lose {
        if status.is_success() {
            // Keep the bookkeeping (the resource does exist now).
            if let Ok(text) = String::from_utf8(bytes.to_vec()) {
                inner.post_process(&call, &body, text);
            }
        }
        inner.count("lost-response", &call, |s| s.lost_responses += 1);
        let rid = format!("fault-{}", rand::random::<u32>());
        let unavailable = inner.rng.lock().expect("rng lock").random_bool(0.5);
        return Ok(error_response(
            &call,
            Fault::ServerError { unavailable },
            &rid,
        ));
    }
    let out = if status.is_success() && !is_moto_api {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::from(inner.post_process(&call, &body, text)),
            Err(_) => Body::from(bytes),
        }
    } else {
        Body::from(bytes)
    };
    let mut resp = Response::new(out);
    *resp.status_mut() = status;
    for (k, v) in &headers {
        if !matches!(
            k.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            resp.headers_mut().append(k, v.clone());
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_named_outermost_items() {
        let xml = "<natGatewaySet><item><natGatewayId>nat-1</natGatewayId><natGatewayAddressSet><item><x/></item></natGatewayAddressSet><state>available</state></item><item><natGatewayId>nat-2</natGatewayId><state>available</state></item></natGatewaySet>";
        let (out, hits) = rewrite_items(
            xml,
            "item",
            "natGatewayId",
            &["nat-2".to_owned()],
            "<state>available</state>",
            "<state>pending</state>",
        );
        assert_eq!(hits, ["nat-2"]);
        assert!(out.contains("<natGatewayId>nat-1</natGatewayId><natGatewayAddressSet><item><x/></item></natGatewayAddressSet><state>available</state>"));
        assert!(out.contains("<natGatewayId>nat-2</natGatewayId><state>pending</state>"));
    }

    #[test]
    fn a_transitional_state_is_shown_once_even_after_its_time() {
        let now = Instant::now();
        let mut map = HashMap::new();
        map.insert("nat-1".to_owned(), Slow::new(now));
        map.insert("nat-2".to_owned(), Slow::new(now + Duration::from_secs(60)));
        // nat-1's time is over, but no describe has shown it yet.
        let mut ids = still_slow(&mut map, now);
        ids.sort();
        assert_eq!(ids, ["nat-1", "nat-2"]);
        mark_shown(&mut map, &["nat-1".to_owned(), "nat-2".to_owned()]);
        // Shown and over: gone. Shown but not over: still there.
        assert_eq!(still_slow(&mut map, now), ["nat-2"]);
    }

    #[test]
    fn classifies_by_signing_scope_and_protocol() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x"),
        );
        let c = classify(
            "POST",
            "/",
            &h,
            b"Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
        );
        assert_eq!(
            (c.service.as_str(), c.action.as_str(), c.protocol),
            ("ec2", "CreateVpc", Protocol::Ec2Query)
        );
        assert_eq!(
            form_value(b"Action=CreateVpc&CidrBlock=10.0.0.0%2F16", "CidrBlock").as_deref(),
            Some("10.0.0.0/16")
        );
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("AmazonSSM.GetParameter"),
        );
        h.insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=x"),
        );
        let c = classify("POST", "/", &h, b"{}");
        assert_eq!(
            (c.action.as_str(), c.protocol),
            ("GetParameter", Protocol::Json)
        );
    }

    #[test]
    fn error_bodies_follow_the_protocol() {
        let call = Call {
            service: "ec2".into(),
            action: "CreateVpc".into(),
            protocol: Protocol::Ec2Query,
        };
        let r = error_response(&call, Fault::Throttle, "r1");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let call = Call {
            service: "route53".into(),
            action: "POST /2013-04-01/hostedzone".into(),
            protocol: Protocol::RestXml,
        };
        assert_eq!(
            error_response(&call, Fault::Throttle, "r2").status(),
            StatusCode::BAD_REQUEST
        );
    }

    async fn ec2_via(endpoint: &str) -> aws_sdk_ec2::Client {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        aws_sdk_ec2::Client::new(&conf)
    }

    fn code<E, R>(
        r: &Result<
            R,
            aws_smithy_runtime_api::client::result::SdkError<
                E,
                aws_smithy_runtime_api::http::Response,
            >,
        >,
    ) -> Option<String>
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        match r {
            Ok(_) => None,
            Err(e) => e.code().map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn injects_faults_in_front_of_moto() {
        let emu = harness::emulator().await.unwrap();
        // Everything throttled: EC2 says RequestLimitExceeded.
        let cfg = FaultConfig {
            throttle: 1.0,
            server_error: 0.0,
            ..FaultConfig::default()
        };
        let proxy = FaultProxy::start(&emu.endpoint, "127.0.0.1:0".parse().unwrap(), cfg)
            .await
            .unwrap();
        let ec2 = ec2_via(&proxy.endpoint()).await;
        let r = ec2.create_vpc().cidr_block("10.0.0.0/16").send().await;
        assert_eq!(code(&r).as_deref(), Some("RequestLimitExceeded"));
        assert_eq!(proxy.stats().throttled, 1);
        drop(proxy);

        // No random faults: a new VPC reads NotFound for a moment; a new NAT
        // gateway reads pending, then available.
        let cfg = FaultConfig {
            throttle: 0.0,
            server_error: 0.0,
            not_found_for: Duration::from_millis(400),
            pending_for: Duration::from_millis(700),
            ..FaultConfig::default()
        };
        let proxy = FaultProxy::start(&emu.endpoint, "127.0.0.1:0".parse().unwrap(), cfg)
            .await
            .unwrap();
        let ec2 = ec2_via(&proxy.endpoint()).await;
        let vpc = ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_owned();
        let r = ec2.describe_vpcs().vpc_ids(&vpc_id).send().await;
        assert_eq!(code(&r).as_deref(), Some("InvalidVpcID.NotFound"));
        tokio::time::sleep(Duration::from_millis(450)).await;
        ec2.describe_vpcs().vpc_ids(&vpc_id).send().await.unwrap();

        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block("10.0.0.0/24")
            .send()
            .await
            .unwrap();
        let subnet_id = subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .unwrap()
            .to_owned();
        tokio::time::sleep(Duration::from_millis(450)).await;
        let eip = ec2.allocate_address().send().await.unwrap();
        tokio::time::sleep(Duration::from_millis(450)).await;
        let nat = ec2
            .create_nat_gateway()
            .subnet_id(&subnet_id)
            .allocation_id(eip.allocation_id().unwrap())
            .send()
            .await
            .unwrap();
        let nat_id = nat
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .unwrap()
            .to_owned();
        // Describe all NAT gateways (no id in the request, so no NotFound).
        let all = ec2.describe_nat_gateways().send().await.unwrap();
        let st = all
            .nat_gateways()
            .iter()
            .find(|n| n.nat_gateway_id() == Some(nat_id.as_str()))
            .and_then(|n| n.state())
            .map(|s| s.as_str().to_owned());
        assert_eq!(st.as_deref(), Some("pending"));
        tokio::time::sleep(Duration::from_millis(750)).await;
        let all = ec2.describe_nat_gateways().send().await.unwrap();
        let st = all
            .nat_gateways()
            .iter()
            .find(|n| n.nat_gateway_id() == Some(nat_id.as_str()))
            .and_then(|n| n.state())
            .map(|s| s.as_str().to_owned());
        assert_eq!(st.as_deref(), Some("available"));
        let stats = proxy.stats();
        assert_eq!(stats.not_found, 1, "{stats:?}");
        assert!(stats.pending_rewrites >= 1, "{stats:?}");
    }

    #[tokio::test]
    async fn latency_holds_each_call_before_forwarding_it() {
        let emu = harness::emulator().await.unwrap();
        let cfg = FaultConfig {
            throttle: 0.0,
            server_error: 0.0,
            ..FaultConfig::default()
        };
        let proxy = FaultProxy::start(&emu.endpoint, "127.0.0.1:0".parse().unwrap(), cfg)
            .await
            .unwrap();
        proxy.set_latency(Duration::from_millis(150));
        let ec2 = ec2_via(&proxy.endpoint()).await;
        let start = Instant::now();
        ec2.describe_vpcs().send().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert_eq!(proxy.stats().forwarded, 1);
        assert_eq!(proxy.stats().injected(), 0, "latency is not a fault");
    }
}
