//! The HTTP/1.1 accept loop, bounding what a client can hold of the process.
//!
//! - Every connection is served by hyper's connection builder with a timer, so one that does
//!   not finish a request head within `header_read_timeout` is closed. hyper starts that timer
//!   whenever it waits for a head, so it also closes keep-alive connections idle that long.
//! - At most `max_connections` are open. One accepted beyond the cap closes a connection with
//!   no request in progress: the oldest that never sent a whole request (a stalled one, what an
//!   attacker opens cheaply), else the oldest idle keep-alive one; so a real client gets in.
//!   When every connection is busy, accepting pauses until one ends. File descriptors stay
//!   bounded whatever clients do.
//! - A failed `accept` (e.g. out of file descriptors) is logged and retried after a pause
//!   instead of spinning.
//! - On shutdown, accepting stops and every connection is closed once its current request is
//!   answered; those still busy after `shutdown_deadline` are closed regardless.
//!
//! Requests in flight and their duration are bounded in the router (see `startup::router`).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use crate::configuration::ServerSettings;

/// Pause after a failed `accept` (out of file descriptors, …).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests being answered on it (0 or 1 for HTTP/1.1), and how many it has sent.
    in_flight: Arc<Requests>,
    /// Closes it.
    close: Arc<Notify>,
}

/// The open connections, oldest first.
#[derive(Default)]
struct Connections {
    open: Mutex<BTreeMap<u64, Conn>>,
    /// Signalled whenever a connection ends.
    ended: Notify,
}

impl Connections {
    fn len(&self) -> usize {
        self.open.lock().expect("connections lock").len()
    }

    /// Below `cap`, or closes a connection with no request in progress to get there: the
    /// oldest that has never sent a whole request (stalled), else the oldest idle one; `false`
    /// when every connection is busy.
    fn make_room(&self, cap: usize) -> bool {
        let mut open = self.open.lock().expect("connections lock");
        if open.len() < cap {
            return true;
        }
        let idle = |c: &Conn| c.in_flight.now.load(Ordering::Acquire) == 0;
        let stalled = open
            .iter()
            .find(|(_, c)| idle(c) && c.in_flight.total.load(Ordering::Acquire) == 0);
        let victim = stalled
            .or_else(|| open.iter().find(|(_, c)| idle(c)))
            .map(|(id, _)| *id);
        match victim.and_then(|id| open.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Waits until a connection may be added (see [`Connections::make_room`]).
    async fn wait_for_room(&self, cap: usize) {
        loop {
            let ended = self.ended.notified();
            if self.make_room(cap) {
                return;
            }
            ended.await;
        }
    }

    fn add(&self, id: u64, conn: Conn) {
        self.open.lock().expect("connections lock").insert(id, conn);
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("connections lock").remove(&id);
        self.ended.notify_waiters();
    }

    /// Closes every open connection.
    fn close_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().expect("connections lock"));
        for conn in open.values() {
            conn.close.notify_one();
        }
    }

    async fn wait_until_empty(&self) {
        loop {
            let ended = self.ended.notified();
            if self.len() == 0 {
                return;
            }
            ended.await;
        }
    }
}

/// The requests of one connection.
#[derive(Default)]
struct Requests {
    /// In progress.
    now: AtomicUsize,
    /// Ever started.
    total: AtomicUsize,
}

/// Counts a request as in progress on its connection while it lives.
struct InFlight(Arc<Requests>);

impl InFlight {
    fn enter(requests: &Arc<Requests>) -> InFlight {
        requests.now.fetch_add(1, Ordering::AcqRel);
        requests.total.fetch_add(1, Ordering::AcqRel);
        InFlight(requests.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `signal` completes, then stops accepting and waits for
/// the open connections to finish their current request, at most `shutdown_deadline`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &ServerSettings,
    signal: impl Future<Output = ()> + Send + 'static,
) {
    let connections = Arc::new(Connections::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(signal);
    let mut next_id = 0u64;
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        tokio::select! {
            () = connections.wait_for_room(settings.max_connections) => {}
            () = &mut signal => break,
        }
        next_id += 1;
        let conn = Conn {
            in_flight: Arc::new(Requests::default()),
            close: Arc::new(Notify::new()),
        };
        let task = ConnTask {
            id: next_id,
            in_flight: conn.in_flight.clone(),
            close: conn.close.clone(),
            connections: connections.clone(),
            stop: stop_rx.clone(),
            header_read_timeout: settings.header_read_timeout(),
        };
        connections.add(next_id, conn);
        tokio::spawn(task.run(stream, addr, app.clone()));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let deadline = settings.shutdown_deadline();
    if tokio::time::timeout(deadline, connections.wait_until_empty())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            ?deadline,
            "closing the connections still busy at the shutdown deadline"
        );
        connections.close_all();
    }
}

/// Serves one connection.
struct ConnTask {
    id: u64,
    in_flight: Arc<Requests>,
    close: Arc<Notify>,
    connections: Arc<Connections>,
    stop: watch::Receiver<bool>,
    header_read_timeout: Duration,
}

impl ConnTask {
    async fn run(mut self, stream: TcpStream, addr: SocketAddr, app: Router) {
        let in_flight = self.in_flight.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            let guard = InFlight::enter(&in_flight);
            req.extensions_mut().insert(ConnectInfo(addr));
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(axum::body::Body::new)).await;
                drop(guard);
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, %addr, "connection ended");
                }
            }
            () = self.close.notified() => {
                tracing::debug!(%addr, "closed an idle connection to stay within max_connections");
            }
            () = async { drop(self.stop.wait_for(|stop| *stop).await) } => {
                conn.as_mut().graceful_shutdown();
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = self.close.notified() => {}
                }
            }
        }
        self.connections.remove(self.id);
    }
}
