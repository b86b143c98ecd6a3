//! A MOCK Kubernetes API server (the kube-rs controller-rs `fixtures.rs` pattern): an axum
//! server on 127.0.0.1:0 that answers a scripted list of expected requests, asserting each
//! one's method, path, query (decoded pairs, order-insensitive) and JSON body. A request that
//! does not match the next expectation fails the scenario (and gets a 500 naming the
//! mismatch); `verify` fails if any expectation was left unconsumed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

/// One expected request and the answer to it.
#[derive(Clone, Debug)]
pub struct Expect {
    pub method: Method,
    pub path: String,
    /// Expected query pairs (decoded); compared as a sorted list.
    pub query: Vec<(String, String)>,
    /// Expected JSON body (`None`: no body check).
    pub body: Option<Value>,
    /// Expected Content-Type, when set.
    pub content_type: Option<&'static str>,
    /// Answer.
    pub status: StatusCode,
    pub response: Value,
    /// Plain-text answer instead of JSON (pod logs).
    pub text: Option<String>,
    /// Matches any number (>= 1) of consecutive identical requests.
    pub repeat: bool,
}

impl Expect {
    pub fn new(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            query: Vec::new(),
            body: None,
            content_type: None,
            status: StatusCode::OK,
            response: json!({}),
            text: None,
            repeat: false,
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new(Method::GET, path)
    }
    /// A server-side apply: PATCH with `fieldManager=provisioner&force=true` and the apply
    /// content type; answers the body back.
    pub fn apply(path: &str, body: Value) -> Self {
        let mut e = Self::new(Method::PATCH, path);
        e.query = vec![
            ("fieldManager".into(), "provisioner".into()),
            ("force".into(), "true".into()),
        ];
        e.content_type = Some("application/apply-patch+yaml");
        e.response = body.clone();
        e.body = Some(body);
        e
    }
    pub fn delete(path: &str, body: Value) -> Self {
        let mut e = Self::new(Method::DELETE, path);
        e.body = Some(body);
        e.response = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
        e
    }
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        self
    }
    pub fn respond(mut self, status: StatusCode, body: Value) -> Self {
        self.status = status;
        self.response = body;
        self
    }
    pub fn respond_text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }
    pub fn repeated(mut self) -> Self {
        self.repeat = true;
        self
    }
    /// A 404 as the API server sends it.
    pub fn not_found(self, kind: &str, name: &str) -> Self {
        self.respond(
            StatusCode::NOT_FOUND,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound",
                "details": {"name": name, "kind": kind}, "code": 404
            }),
        )
    }
}

struct Script {
    expected: VecDeque<Expect>,
    /// The repeating expectation currently matching, if any.
    current_repeat: Option<Expect>,
    failures: Vec<String>,
    seen: Vec<String>,
}

/// The running mock; dropped with the test.
pub struct MockApiServer {
    pub url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockApiServer {
    pub async fn start(expected: Vec<Expect>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            expected: expected.into(),
            current_repeat: None,
            failures: Vec::new(),
            seen: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("mock API server");
        });
        Self {
            url: format!("http://{addr}"),
            script,
            task,
        }
    }

    /// A kube client pointed at the mock.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("mock URL"));
        kube::Client::try_from(config).expect("kube client")
    }

    /// Asserts that every request matched and every expectation was consumed.
    pub fn verify(&self) {
        let s = self.script.lock().unwrap();
        assert!(
            s.failures.is_empty(),
            "mock API server: unexpected requests:\n{}\nrequests seen:\n{}",
            s.failures.join("\n"),
            s.seen.join("\n")
        );
        let left: Vec<String> = s
            .expected
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert!(
            left.is_empty(),
            "mock API server: expected requests never made:\n{}\nrequests seen:\n{}",
            left.join("\n"),
            s.seen.join("\n")
        );
    }
}

impl Drop for MockApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn decoded_query(uri: &Uri) -> Vec<(String, String)> {
    let mut q: Vec<(String, String)> = uri.query().map(url_pairs).unwrap_or_default();
    q.sort();
    q
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn matches(
    e: &Expect,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Option<Value>,
) -> Result<(), String> {
    if e.method != *method || e.path != uri.path() {
        return Err(format!("expected {} {}", e.method, e.path));
    }
    let mut want = e.query.clone();
    want.sort();
    let got = decoded_query(uri);
    if want != got {
        return Err(format!("query: expected {want:?}, got {got:?}"));
    }
    if let Some(ct) = e.content_type {
        let got = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got != ct {
            return Err(format!("content-type: expected {ct}, got {got}"));
        }
    }
    if let Some(want) = &e.body {
        if body.as_ref() != Some(want) {
            return Err(format!(
                "body: expected\n{}\ngot\n{}",
                serde_json::to_string_pretty(want).unwrap(),
                body.as_ref()
                    .map(|b| serde_json::to_string_pretty(b).unwrap())
                    .unwrap_or_else(|| "(none)".into())
            ));
        }
    }
    Ok(())
}

fn answer(e: &Expect) -> Response {
    match &e.text {
        Some(t) => (e.status, t.clone()).into_response(),
        None => (
            e.status,
            [("content-type", "application/json")],
            e.response.to_string(),
        )
            .into_response(),
    }
}

async fn handle(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    };
    let mut s = script.lock().unwrap();
    s.seen.push(format!("{method} {uri}"));
    // A repeating expectation keeps matching until a request does not.
    if let Some(rep) = s.current_repeat.clone() {
        if matches(&rep, &method, &uri, &headers, &body).is_ok() {
            return answer(&rep);
        }
        s.current_repeat = None;
    }
    let Some(next) = s.expected.pop_front() else {
        s.failures
            .push(format!("{method} {uri}: no more requests expected"));
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock: unexpected request",
        )
            .into_response();
    };
    match matches(&next, &method, &uri, &headers, &body) {
        Ok(()) => {
            if next.repeat {
                s.current_repeat = Some(next.clone());
            }
            answer(&next)
        }
        Err(why) => {
            s.failures.push(format!("{method} {uri}: {why}"));
            (StatusCode::INTERNAL_SERVER_ERROR, format!("mock: {why}")).into_response()
        }
    }
}
