//! The one small HTTP/1.1 server the twin's stand-ins share: plain or TLS (twin CA), a handler
//! that sees the whole request and the peer's address, and may drop the connection without an
//! answer (what the IMDS hop limit does to a response).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The largest request body a twin server reads (the user-data's SSM calls are a few KiB).
const MAX_BODY: usize = 1 << 20;

/// A request as the handlers see it: head and the whole body.
pub type Request = http::Request<Bytes>;
/// What a handler answers.
pub type Response = http::Response<Full<Bytes>>;

/// A handler's outcome: an answer, or nothing at all (the connection is closed unanswered).
pub enum Reply {
    Answer(Response),
    Drop,
}

type BoxFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;
type Handler = Arc<dyn Fn(Request, SocketAddr) -> BoxFuture + Send + Sync>;

/// A running server; dropping it stops accepting and aborts its open connections.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handler` on `listener`, over TLS when `tls` is given.
pub fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: F,
) -> std::io::Result<Server>
where
    F: Fn(Request, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let addr = listener.local_addr()?;
    let handler: Handler = Arc::new(move |req, peer| Box::pin(handler(req, peer)));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => continue,
            };
            while connections.try_join_next().is_some() {}
            let handler = handler.clone();
            let acceptor = acceptor.clone();
            connections.spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            serve_connection(TokioIo::new(tls), peer, handler).await;
                        }
                    }
                    None => serve_connection(TokioIo::new(stream), peer, handler).await,
                }
            });
        }
    });
    Ok(Server { addr, task })
}

/// Binds 127.0.0.1 on a free port.
pub async fn bind_loopback() -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", 0)).await
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped unanswered")
    }
}

impl std::error::Error for Dropped {}

async fn serve_connection<I>(io: I, peer: SocketAddr, handler: Handler)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let handler = handler.clone();
        async move {
            let (head, body) = req.into_parts();
            let body = match Limited::new(body, MAX_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Ok(text(
                        http::StatusCode::PAYLOAD_TOO_LARGE,
                        "request body too large\n",
                    ))
                }
            };
            match handler(http::Request::from_parts(head, body), peer).await {
                Reply::Answer(resp) => Ok(resp),
                Reply::Drop => Err(Dropped),
            }
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// A plain-text answer.
pub fn text(status: http::StatusCode, body: impl Into<Bytes>) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(Full::new(body.into()))
        .expect("a valid response")
}

/// A JSON answer with the given content type.
pub fn json(status: http::StatusCode, content_type: &str, body: &serde_json::Value) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// A binary answer.
pub fn bytes(status: http::StatusCode, content_type: &str, body: Bytes) -> Response {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .expect("a valid response")
}

/// The request path, percent-decoded (`/v1.34.1%2Bk3s1/k3s` → `/v1.34.1+k3s1/k3s`).
pub fn decoded_path(req: &Request) -> String {
    percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned()
}
