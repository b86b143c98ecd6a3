//! A STATEFUL MOCK Kubernetes API server. No real API server can run on these machines (no
//! k3s, no kind, no container runtime), so the node twin and the end-to-end tests talk to this
//! one instead. It is a mock, named as such: it keeps objects in memory and imitates the parts
//! of the API the provisioner and the stand-in `k3s` use, closely enough that the
//! provisioner's real kube-rs code runs against it unchanged. Unlike the scripted mock of
//! `provisioner/tests/k8s/mock_api.rs`, it asserts no request list: it holds state and
//! answers whatever is asked, as a cluster would.
//!
//! Served over HTTPS (rustls) on 127.0.0.1, with a certificate from the twin CA ([`Pki`]):
//!
//! - **The twin protocol** (stand-in `k3s` ⇄ this server, not a Kubernetes API):
//!   `POST /twin/v1/cluster-init` `{"token", "agent_token", "node"}` records the cluster's
//!   server token (and agent token) and answers `{"admin_token"}`; a later cluster-init with a
//!   different token is a 409 (a second cluster was initialised: the election failed), with the
//!   same token it answers the same admin token again (a restarted first server).
//!   `POST /twin/v1/join` `{"token", "role": "server"|"agent", "node"}`: 503 before any
//!   cluster-init, else 200 if the token is valid for the role (servers: the server token only;
//!   agents: the agent token, or the server token when the cluster has no agent token, as k3s
//!   does), 401 otherwise. A server that joins also gets `admin_token` (every k3s server holds
//!   the admin credentials); an agent does not.
//! - `GET /cacerts` (the CA PEM), `GET /readyz` and `/livez` (`ok`) once a cluster-init
//!   happened, else 503 (behind the NLB no server answers before one initialised), `GET /version` — all without credentials.
//! - **The Kubernetes API**: every `/api` and `/apis` request needs `Authorization: Bearer
//!   <admin token>` (401 otherwise); `POST /api/v1/nodes` (node registration) also accepts a
//!   join token. Discovery (`/api`, `/api/v1`, `/apis`, `/apis/<group>`,
//!   `/apis/<group>/<version>`) lists the kinds of [`RESOURCES`]. Objects: server-side apply
//!   (`PATCH` with `application/apply-patch+yaml`, `fieldManager` required), JSON merge patch,
//!   create, update, get, list (label selectors with `=`, `==`, `!=`, `in`, `notin`, exists,
//!   `!`exists; field selectors on any dotted path such as `metadata.name` or
//!   `involvedObject.name`), delete (with `preconditions`), pod logs. Errors are `Status`
//!   objects as the real API sends them (404 NotFound, 409 Conflict/AlreadyExists,
//!   422 Invalid on an immutable field, 403 Forbidden).
//!
//! What a server-side apply does here: the applied body *replaces* the object's fields (the
//! real server merges fields by owner; with the provisioner as the only field manager the
//! result is the same), while `metadata.uid`, `creationTimestamp`, `generation` and the
//! status are kept; `resourceVersion` (one counter for the whole store, as etcd's) changes
//! only when the object did — an apply of the same body is a no-op, as on a real server.
//! `generation` counts changes outside `metadata` and `status`. A Secret's `stringData` is
//! folded into `data` (base64), as the real API does. An apply by another manager than the
//! object's without `force` is a 409 conflict.
//!
//! **Stand-in controllers** (named as such; nothing schedules or runs containers here):
//! Deployments, StatefulSets and Jobs get Pods (owned by them, labelled from the template,
//! spread over the registered Nodes), StatefulSets get their PersistentVolumeClaims (Bound),
//! and each gets the `status` the real controllers would write. How they progress is set per
//! test with [`MockKubeApi::set_rollout_behaviour`] ([`RolloutBehaviour`]): ready at once (the
//! default), ready after some reads, never ready (Pending pods with a FailedScheduling event),
//! failing (ProgressDeadlineExceeded / BackoffLimitExceeded), or reads answered 403/404. Pods
//! stay Pending while no Ready Node is registered. A registered Node without a Ready condition
//! is marked Ready (a stand-in kubelet). Deletion cascades to owned objects; how long a deleted
//! object lingers with a `deletionTimestamp` is set with [`MockKubeApi::set_deletion_mode`].
//!
//! Not implemented (answered with an explicit error, never silently): watches, strategic
//! merge and JSON patches, `dryRun`, delete-collection.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use rand::Rng as _;
use serde_json::{json, Map, Value};

use super::pki::Pki;

mod catalogue;
mod controllers;
mod objects;
mod selectors;

use catalogue::*;
pub use catalogue::{ResourceDef, RESOURCES};
use controllers::*;
use objects::*;
use selectors::*;

/// How the stand-in controllers roll out a Deployment, StatefulSet or Job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutBehaviour {
    /// Ready (a Job: Complete) as soon as it is applied and a Ready Node exists. The default.
    Ready,
    /// Ready only once the object itself has been read this many times since this was set
    /// (a rollout that takes a few polls); Pending pods until then.
    ReadyAfterReads(u32),
    /// Never ready: its Pods stay Pending, each with a `FailedScheduling` event.
    NeverReady,
    /// Fails: a Deployment's `Progressing` condition says `ProgressDeadlineExceeded`, a Job
    /// is `Failed` (`BackoffLimitExceeded`), a StatefulSet's pods crash-loop (a StatefulSet
    /// has no failed state). Its Pods carry a `BackOff` event.
    Fail,
    /// Reads of the object answer 403 Forbidden (its rollout cannot be observed).
    Forbidden,
    /// Reads of the object answer 404 NotFound (gone behind the reader's back).
    NotFound,
}

/// What a DELETE does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionMode {
    /// The object is gone at once (the answer is a `Status` of Success). The default.
    Immediate,
    /// The object stays, with `metadata.deletionTimestamp`, until
    /// [`MockKubeApi::finish_deletions`] (the answer is the object).
    Linger,
    /// As [`DeletionMode::Linger`], gone by itself after this long.
    LingerFor(Duration),
}

/// One request the mock answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
    pub status: u16,
}

/// A cluster-init call and whether it was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInitRecord {
    pub node: String,
    pub accepted: bool,
}

/// A join call and whether it was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinRecord {
    pub node: String,
    pub role: String,
    pub accepted: bool,
}

/// Who changed an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    Created,
    Updated,
    Deleted,
}

/// A change to the store, by a client (its field manager, or `unknown`) or by a stand-in
/// controller (`controller`). An apply that changes nothing records none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub op: ChangeOp,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key {
    group: &'static str,
    plural: &'static str,
    namespace: Option<String>,
    name: String,
}

impl Key {
    fn new(d: &'static ResourceDef, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: d.group,
            plural: d.plural,
            namespace: if d.namespaced {
                namespace.map(str::to_owned)
            } else {
                None
            },
            name: name.to_owned(),
        }
    }

    fn def(&self) -> &'static ResourceDef {
        RESOURCES
            .iter()
            .find(|d| d.group == self.group && d.plural == self.plural)
            .expect("keys are made from RESOURCES")
    }
}

struct Cluster {
    token: String,
    agent_token: Option<String>,
    admin_token: String,
}

struct State {
    ca_pem: String,
    addr: SocketAddr,
    cluster: Option<Cluster>,
    inits: Vec<ClusterInitRecord>,
    joins: Vec<JoinRecord>,
    objects: BTreeMap<Key, Value>,
    revision: u64,
    requests: Vec<RequestRecord>,
    applies: BTreeMap<String, usize>,
    changes: Vec<Change>,
    behaviours: HashMap<(String, Option<String>), RolloutBehaviour>,
    reads: HashMap<Key, u32>,
    deletion: DeletionMode,
    /// When a lingering object goes by itself.
    lingering: HashMap<Key, Option<Instant>>,
}

/// The running mock; stops serving when dropped.
pub struct MockKubeApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Drop for MockKubeApi {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl MockKubeApi {
    /// Serves HTTPS on 127.0.0.1 (a free port) with a certificate of `pki`'s CA, for any
    /// name the client asks for.
    pub async fn start(pki: &Pki) -> anyhow::Result<MockKubeApi> {
        let mut tls = (*pki.server_config()).clone();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the mock Kubernetes API server")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            ca_pem: pki.ca_pem().to_string(),
            addr,
            cluster: None,
            inits: Vec::new(),
            joins: Vec::new(),
            objects: BTreeMap::new(),
            revision: 1,
            requests: Vec::new(),
            applies: BTreeMap::new(),
            changes: Vec::new(),
            behaviours: HashMap::new(),
            reads: HashMap::new(),
            deletion: DeletionMode::Immediate,
            lingering: HashMap::new(),
        }));
        // A real API server starts with its system namespaces.
        {
            let mut st = lock(&state);
            let ns_def = def_of_kind("Namespace").expect("Namespace is served");
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                st.put_owned(
                    &Key::new(ns_def, None, ns),
                    json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns}, "status": {"phase": "Active"}}),
                );
            }
        }
        let app = Router::new().fallback(handle).with_state(state.clone());
        let (shutdown, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(serve(listener, acceptor, app, stop));
        Ok(MockKubeApi {
            addr,
            state,
            shutdown,
        })
    }

    /// The address it listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The admin token, once a cluster-init happened.
    pub fn admin_token(&self) -> Option<String> {
        lock(&self.state)
            .cluster
            .as_ref()
            .map(|c| c.admin_token.clone())
    }

    /// A kubeconfig for `server` (e.g. [`MockKubeApi::url`], or a name a resolve override
    /// maps here) trusting the twin CA, with `token` (no credentials when `None`).
    pub fn kubeconfig(&self, server: &str, token: Option<&str>) -> String {
        let ca =
            base64::engine::general_purpose::STANDARD.encode(lock(&self.state).ca_pem.as_bytes());
        let user = match token {
            Some(t) => json!({"token": t}),
            None => json!({}),
        };
        let kc = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "twin", "cluster": {"server": server, "certificate-authority-data": ca}}],
            "users": [{"name": "twin", "user": user}],
            "contexts": [{"name": "twin", "context": {"cluster": "twin", "user": "twin"}}],
            "current-context": "twin",
        });
        serde_json::to_string_pretty(&kc).expect("a kubeconfig serialises")
    }

    /// Every stored object, ordered by group, resource, namespace and name.
    pub fn objects(&self) -> Vec<Value> {
        let mut st = lock(&self.state);
        st.expire_lingering();
        st.objects.values().cloned().collect()
    }

    /// One object by kind, namespace (ignored for cluster-scoped kinds) and name.
    pub fn object(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let d = def_of_kind(kind)?;
        let mut st = lock(&self.state);
        st.expire_lingering();
        st.objects.get(&Key::new(d, namespace, name)).cloned()
    }

    /// The stored objects of one kind.
    pub fn objects_of(&self, kind: &str) -> Vec<Value> {
        let Some(d) = def_of_kind(kind) else {
            return Vec::new();
        };
        let mut st = lock(&self.state);
        st.expire_lingering();
        st.objects
            .iter()
            .filter(|(k, _)| k.group == d.group && k.plural == d.plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The registered Nodes.
    pub fn nodes(&self) -> Vec<Value> {
        self.objects_of("Node")
    }

    /// Server-side apply requests received for `kind` (whether or not they changed it).
    pub fn applied_count(&self, kind: &str) -> usize {
        lock(&self.state).applies.get(kind).copied().unwrap_or(0)
    }

    /// Every request answered, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.state).requests.clone()
    }

    /// Requests answered with this method (`GET`, `PATCH` …).
    pub fn request_count(&self, method: &str) -> usize {
        lock(&self.state)
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method))
            .count()
    }

    /// Every change to the store, in order.
    pub fn changes(&self) -> Vec<Change> {
        lock(&self.state).changes.clone()
    }

    /// The store's resourceVersion counter: unchanged means nothing changed.
    pub fn revision(&self) -> u64 {
        lock(&self.state).revision
    }

    /// The cluster-init calls, accepted or not.
    pub fn cluster_inits(&self) -> Vec<ClusterInitRecord> {
        lock(&self.state).inits.clone()
    }

    /// The join calls, accepted or not.
    pub fn joins(&self) -> Vec<JoinRecord> {
        lock(&self.state).joins.clone()
    }

    /// How the stand-in controllers roll out `kind` (Deployment, StatefulSet or Job): every
    /// object of it (`name: None`) or one. A named setting wins over a kind-wide one. Objects
    /// already applied follow it from their next read.
    pub fn set_rollout_behaviour(&self, kind: &str, name: Option<&str>, b: RolloutBehaviour) {
        let mut st = lock(&self.state);
        st.behaviours
            .insert((kind.to_owned(), name.map(str::to_owned)), b);
        // Reads count from now on.
        st.reads
            .retain(|k, _| !(k.def().kind == kind && name.is_none_or(|n| n == k.name)));
        st.reconcile_all();
    }

    /// What a DELETE does from now on.
    pub fn set_deletion_mode(&self, mode: DeletionMode) {
        lock(&self.state).deletion = mode;
    }

    /// Removes every lingering (deleted) object now.
    pub fn finish_deletions(&self) {
        let mut st = lock(&self.state);
        let keys: Vec<Key> = st.lingering.keys().cloned().collect();
        for k in keys {
            st.remove(&k, "controller");
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("mock Kubernetes API server: accept: {e}");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!("mock Kubernetes API server: TLS handshake: {e}");
                        return;
                    }
                    Err(_) => return,
                };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    tracing::debug!("mock Kubernetes API server: connection: {e}");
                },
                _ = stop.changed() => {}
            }
        });
    }
}

/// An answer: JSON, or plain text.
enum Reply {
    Json(StatusCode, Value),
    Text(StatusCode, String),
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Json(code, v) => (
                code,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_vec(&v).expect("JSON serialises"),
            )
                .into_response(),
            Reply::Text(code, t) => {
                (code, [(header::CONTENT_TYPE, "text/plain")], t).into_response()
            }
        }
    }
}

impl Reply {
    fn code(&self) -> u16 {
        match self {
            Reply::Json(c, _) | Reply::Text(c, _) => c.as_u16(),
        }
    }
}

/// A `Status` of failure, as the real API server sends it.
fn status(
    code: StatusCode,
    reason: &str,
    message: impl Into<String>,
    details: Option<Value>,
) -> Reply {
    let mut v = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.into(), "reason": reason, "code": code.as_u16(),
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    Reply::Json(code, v)
}

fn not_found(d: &ResourceDef, name: &str) -> Reply {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", d.qualified()),
        Some(json!({"name": name, "group": d.group, "kind": d.plural})),
    )
}

fn no_such_resource() -> Reply {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn bad_request(message: impl Into<String>) -> Reply {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

fn unimplemented(message: &str) -> Reply {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("the MOCK Kubernetes API server does not implement {message}"),
        None,
    )
}

fn invalid(d: &ResourceDef, name: &str, field: &str, message: String) -> Reply {
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!(
            "{} \"{name}\" is invalid: {field}: {message}",
            d.qualified_kind()
        ),
        Some(json!({
            "name": name, "group": d.group, "kind": d.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        })),
    )
}

async fn handle(
    AxumState(state): AxumState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut st = lock(&state);
    st.expire_lingering();
    let reply = st.dispatch(&method, &uri, &headers, &body);
    st.requests.push(RequestRecord {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        status: reply.code(),
    });
    reply
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn new_uid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// RFC 3339 UTC, whole seconds, as the API's `metav1.Time`.
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// FNV-1a, for stable generated names (pod-template hashes).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn short_hash(v: &Value) -> String {
    format!("{:010x}", fnv1a(v.to_string().as_bytes()) & 0xff_ffff_ffff)
}

/// The value at a dotted path.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn str_at<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.get("metadata").is_some_and(Value::is_object) {
        v["metadata"] = json!({});
    }
    v["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// A parsed request target under `/api` or `/apis`.
enum Target {
    CoreVersions,
    Groups,
    Group(String),
    ResourceList(String, String),
    Collection(&'static ResourceDef, Option<String>),
    Object(&'static ResourceDef, Option<String>, String, Option<String>),
}

fn parse_target(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api"] => return Some(Target::CoreVersions),
        ["apis"] => return Some(Target::Groups),
        ["apis", g] => return Some(Target::Group((*g).to_owned())),
        ["api", v, rest @ ..] => ("", v, rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return None,
    };
    if !RESOURCES
        .iter()
        .any(|d| d.group == group && d.version == version)
    {
        return None;
    }
    let namespaced_plural = |p: &str| find_def(group, version, p).filter(|d| d.namespaced);
    Some(match rest {
        [] => Target::ResourceList(group.to_owned(), version.to_owned()),
        ["namespaces", ns, p, tail @ ..] if namespaced_plural(p).is_some() => {
            let d = namespaced_plural(p)?;
            let ns = Some((*ns).to_owned());
            match tail {
                [] => Target::Collection(d, ns),
                [name] => Target::Object(d, ns, (*name).to_owned(), None),
                [name, sub] => Target::Object(d, ns, (*name).to_owned(), Some((*sub).to_owned())),
                _ => return None,
            }
        }
        [p] => Target::Collection(find_def(group, version, p)?, None),
        [p, name] => {
            let d = find_def(group, version, p).filter(|d| !d.namespaced)?;
            Target::Object(d, None, (*name).to_owned(), None)
        }
        [p, name, sub] => {
            let d = find_def(group, version, p).filter(|d| !d.namespaced)?;
            Target::Object(d, None, (*name).to_owned(), Some((*sub).to_owned()))
        }
        _ => return None,
    })
}

impl State {
    fn next_revision(&mut self) -> String {
        self.revision += 1;
        self.revision.to_string()
    }

    fn behaviour(&self, kind: &str, name: &str) -> RolloutBehaviour {
        self.behaviours
            .get(&(kind.to_owned(), Some(name.to_owned())))
            .or_else(|| self.behaviours.get(&(kind.to_owned(), None)))
            .copied()
            .unwrap_or(RolloutBehaviour::Ready)
    }

    fn is_admin(&self, headers: &HeaderMap) -> bool {
        match (&self.cluster, bearer(headers)) {
            (Some(c), Some(t)) => t == c.admin_token,
            _ => false,
        }
    }

    /// A join token: the server token, or the agent token (node registration).
    fn is_join_token(&self, headers: &HeaderMap) -> bool {
        match (&self.cluster, bearer(headers)) {
            (Some(c), Some(t)) => t == c.token || c.agent_token.as_deref() == Some(t),
            _ => false,
        }
    }

    fn dispatch(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let path = uri.path();
        match (method, path) {
            (&Method::POST, "/twin/v1/cluster-init") => return self.cluster_init(body),
            (&Method::POST, "/twin/v1/join") => return self.join(body),
            // Behind the NLB, no server answers before one initialised the cluster (the
            // target group has no healthy target): joining servers must not mistake a dead
            // election winner for a live API.
            (&Method::GET, "/cacerts") => {
                return if self.cluster.is_some() {
                    Reply::Text(StatusCode::OK, self.ca_pem.clone())
                } else {
                    Reply::Text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no server initialised yet (mock API server)".into(),
                    )
                };
            }
            (&Method::GET, "/readyz" | "/livez" | "/healthz") => {
                return if self.cluster.is_some() {
                    Reply::Text(StatusCode::OK, "ok".into())
                } else {
                    Reply::Text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "[-]etcd failed: no server initialised yet (mock API server)".into(),
                    )
                };
            }
            (&Method::GET, "/version") => {
                return Reply::Json(
                    StatusCode::OK,
                    json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0+mock",
                           "platform": "linux/amd64", "goVersion": "none (mock API server)",
                           "compiler": "none", "buildDate": "", "gitCommit": "", "gitTreeState": ""}),
                );
            }
            _ => {}
        }
        let Some(target) = parse_target(path) else {
            return if path.starts_with("/api") {
                no_such_resource()
            } else {
                Reply::Text(StatusCode::NOT_FOUND, "404 page not found\n".into())
            };
        };
        let node_registration = *method == Method::POST
            && matches!(&target, Target::Collection(d, None) if d.kind == "Node");
        if !(self.is_admin(headers) || node_registration && self.is_join_token(headers)) {
            return status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized",
                None,
            );
        }
        let q = query_pairs(uri);
        if query(&q, "dryRun").is_some() {
            return unimplemented("dryRun");
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        match (method, target) {
            (&Method::GET, Target::CoreVersions) => Reply::Json(
                StatusCode::OK,
                json!({"kind": "APIVersions", "versions": ["v1"],
                       "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.addr.to_string()}]}),
            ),
            (&Method::GET, Target::Groups) => Reply::Json(
                StatusCode::OK,
                json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": api_groups()}),
            ),
            (&Method::GET, Target::Group(g)) => {
                match api_groups().into_iter().find(|x| x["name"] == g.as_str()) {
                    Some(mut group) => {
                        group["kind"] = json!("APIGroup");
                        group["apiVersion"] = json!("v1");
                        Reply::Json(StatusCode::OK, group)
                    }
                    None => no_such_resource(),
                }
            }
            (&Method::GET, Target::ResourceList(g, v)) => {
                Reply::Json(StatusCode::OK, resource_list(&g, &v))
            }
            (&Method::GET, Target::Collection(d, ns)) => {
                if query(&q, "watch").is_some_and(|w| w == "true" || w == "1") {
                    return unimplemented("watch");
                }
                self.list(d, ns.as_deref(), &q)
            }
            (&Method::POST, Target::Collection(d, ns)) => {
                let manager = query(&q, "fieldManager").unwrap_or("unknown").to_owned();
                match parse_body(body, &content_type) {
                    Ok(obj) => self.create(d, ns.as_deref(), obj, &manager),
                    Err(e) => bad_request(e),
                }
            }
            (&Method::GET, Target::Object(d, ns, name, None)) => self.read(d, ns.as_deref(), &name),
            (&Method::GET, Target::Object(d, ns, name, Some(sub))) if sub == "status" => {
                self.read(d, ns.as_deref(), &name)
            }
            (&Method::GET, Target::Object(d, ns, name, Some(sub)))
                if sub == "log" && d.kind == "Pod" =>
            {
                self.logs(d, ns.as_deref(), &name, &q)
            }
            (&Method::PATCH, Target::Object(d, ns, name, sub)) => {
                let obj = match parse_body(body, &content_type) {
                    Ok(obj) => obj,
                    Err(e) => return bad_request(e),
                };
                match (content_type.as_str(), sub.as_deref()) {
                    ("application/apply-patch+yaml", None) => {
                        self.apply(d, ns.as_deref(), &name, &q, obj)
                    }
                    ("application/merge-patch+json", None | Some("status")) => {
                        self.merge(d, ns.as_deref(), &name, &q, &obj, sub.is_some())
                    }
                    ("application/apply-patch+yaml" | "application/merge-patch+json", Some(s)) => {
                        unimplemented(&format!("patches of the {s} subresource"))
                    }
                    (other, _) => status(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "UnsupportedMediaType",
                        format!(
                            "the MOCK Kubernetes API server implements server-side apply and JSON merge patches only, not `{other}`"
                        ),
                        None,
                    ),
                }
            }
            (&Method::PUT, Target::Object(d, ns, name, None)) => {
                let manager = query(&q, "fieldManager").unwrap_or("unknown").to_owned();
                match parse_body(body, &content_type) {
                    Ok(obj) => self.update(d, ns.as_deref(), &name, obj, &manager),
                    Err(e) => bad_request(e),
                }
            }
            (&Method::DELETE, Target::Object(d, ns, name, None)) => {
                let opts = if body.is_empty() {
                    Value::Null
                } else {
                    match parse_body(body, &content_type) {
                        Ok(o) => o,
                        Err(e) => return bad_request(e),
                    }
                };
                self.delete(d, ns.as_deref(), &name, &opts)
            }
            (m, _) => unimplemented(&format!("{m} on {path}")),
        }
    }

    fn cluster_init(&mut self, body: &[u8]) -> Reply {
        let req: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("cluster-init body: {e}")),
        };
        let (Some(token), Some(node)) = (str_at(&req, "token"), str_at(&req, "node")) else {
            return bad_request("cluster-init needs `token` and `node`");
        };
        let agent_token = str_at(&req, "agent_token").map(str::to_owned);
        let reply = match &self.cluster {
            None => {
                let admin = random_hex(32);
                self.cluster = Some(Cluster {
                    token: token.to_owned(),
                    agent_token,
                    admin_token: admin.clone(),
                });
                Reply::Json(StatusCode::OK, json!({"admin_token": admin}))
            }
            Some(c) if c.token == token => {
                Reply::Json(StatusCode::OK, json!({"admin_token": c.admin_token}))
            }
            Some(_) => status(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "node {node}: a cluster was already initialised with another token: two servers ran cluster-init (the election failed)"
                ),
                None,
            ),
        };
        self.inits.push(ClusterInitRecord {
            node: node.to_owned(),
            accepted: reply.code() == 200,
        });
        reply
    }

    fn join(&mut self, body: &[u8]) -> Reply {
        let req: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad_request(format!("join body: {e}")),
        };
        let (Some(token), Some(role), Some(node)) = (
            str_at(&req, "token"),
            str_at(&req, "role"),
            str_at(&req, "node"),
        ) else {
            return bad_request("join needs `token`, `role` and `node`");
        };
        let reply = match &self.cluster {
            None => status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "no server initialised yet",
                None,
            ),
            Some(c) => {
                let valid = match role {
                    "server" => Some(token == c.token),
                    "agent" => Some(match &c.agent_token {
                        Some(a) => token == a,
                        None => token == c.token,
                    }),
                    _ => None,
                };
                match valid {
                    None => bad_request(format!("role `{role}`: expected server or agent")),
                    Some(false) => status(
                        StatusCode::UNAUTHORIZED,
                        "Unauthorized",
                        format!("node {node}: the token is not valid for a {role}"),
                        None,
                    ),
                    Some(true) if role == "server" => Reply::Json(
                        StatusCode::OK,
                        json!({"role": role, "node": node, "admin_token": c.admin_token}),
                    ),
                    Some(true) => Reply::Json(StatusCode::OK, json!({"role": role, "node": node})),
                }
            }
        };
        self.joins.push(JoinRecord {
            node: node.to_owned(),
            role: role.to_owned(),
            accepted: reply.code() == 200,
        });
        reply
    }
}
