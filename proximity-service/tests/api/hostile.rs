//! Hostile traffic against the real server (`startup::build` on a real port, embedded store):
//! connections that never finish their request head, more requests in flight than allowed, and
//! a shutdown with a request that never finishes.

use std::time::{Duration, Instant};

use proximity_service::configuration::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::helpers::{base_settings, business, spawn_with, TestApp, API_KEY};

/// Open connections the server may hold.
const CAP: usize = 32;
/// Stalled connections the attacker opens: far more than the cap.
const STALLED: usize = 400;
const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(1500);
/// Scheduling slack on top of a documented timeout.
const SLACK: Duration = Duration::from_millis(1000);

async fn start(dir: &std::path::Path, tune: impl FnOnce(&mut Settings)) -> (TestApp, String) {
    let mut settings = base_settings();
    settings.database.data_dir = Some(dir.to_path_buf());
    tune(&mut settings);
    let app = spawn_with(settings).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    (app, addr)
}

/// File descriptors this process has open (client and server ends are both ours here).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// A request head that never ends.
async fn stall(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /v1/search/nearby?lat=0&lng=0 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("write");
    s
}

/// Whether the server closed `s` (EOF or reset) before `deadline`.
async fn closed_before(s: &mut TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A server may answer before closing (e.g. 408); keep reading to the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn stalled_connections_are_closed_and_searches_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (app, addr) = start(dir.path(), |s| {
        s.server.max_connections = CAP;
        s.server.header_read_timeout_ms = HEADER_READ_TIMEOUT.as_millis() as u64;
    })
    .await;
    assert_eq!(app.create(&business("Kiosk", 0.0, 0.0)).await.status(), 201);
    let before = open_fds();

    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        stalled.push((stall(&addr).await, Instant::now()));
    }

    // While they are held, searches on fresh connections answer, without waiting for the
    // stalled connections to time out.
    for _ in 0..20 {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(HEADER_READ_TIMEOUT)
            .build()
            .unwrap();
        let r = client
            .get(app.url("/v1/search/nearby?lat=0&lng=0&radius=1000"))
            .send()
            .await
            .expect("a search answers while stalled connections are held");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["total"], 1);
    }

    // The server holds at most CAP of them: our STALLED client ends, plus at most CAP server
    // ends (and a few for the searches' connections being torn down).
    let held = open_fds().saturating_sub(before);
    assert!(
        held <= STALLED + CAP + 10,
        "{held} descriptors for {STALLED} stalled connections with max_connections = {CAP}"
    );

    // Every stalled connection is closed within the header-read timeout of being opened.
    let mut still_open = 0;
    for (s, opened) in &mut stalled {
        if !closed_before(s, *opened + HEADER_READ_TIMEOUT + SLACK).await {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open,
        0,
        "stalled connections still open {:?} after they were opened",
        HEADER_READ_TIMEOUT + SLACK
    );
    app.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_get_a_fast_503_and_slow_ones_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let request_timeout = Duration::from_millis(1500);
    let (app, addr) = start(dir.path(), |s| {
        s.server.max_in_flight = 1;
        s.server.request_timeout_ms = request_timeout.as_millis() as u64;
    })
    .await;

    // A write whose body never finishes holds the only permit (the handler is reading it).
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/businesses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let r = app
        .client
        .get(app.url("/v1/search/nearby?lat=0&lng=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "a request beyond max_in_flight is shed");
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");

    // The slow request is answered 503 once the request timeout passes.
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = sent + request_timeout + SLACK;
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline.into(), slow.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            other => panic!("no answer to the slow request by the request timeout: {other:?}"),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");

    // With the permit back, searches answer again.
    let r = app
        .client
        .get(app.url("/v1/search/nearby?lat=0&lng=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn on_sigterm_readiness_fails_at_once_serving_goes_on_then_stops_by_the_deadline() {
    use proximity_service::startup::{self, Stop};

    let dir = tempfile::tempdir().unwrap();
    let drain = Duration::from_millis(1500);
    let deadline = Duration::from_millis(1000);
    let mut settings = base_settings();
    settings.database.data_dir = Some(dir.path().to_path_buf());
    settings.server.shutdown_drain_ms = drain.as_millis() as u64;
    settings.server.shutdown_deadline_ms = deadline.as_millis() as u64;
    let app = startup::build(settings).await.expect("build app");
    let addr = format!("127.0.0.1:{}", app.port());
    let (term, termed) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stop(async move {
        let _ = termed.await;
        Stop::Drain
    }));
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let url = |path: &str| format!("http://{addr}{path}");
    assert_eq!(
        fresh().get(url("/readyz")).send().await.unwrap().status(),
        200
    );

    // A write whose body never finishes: a request in progress at the deadline.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/businesses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    slow.write_all(head.as_bytes()).await.unwrap();

    let signalled = Instant::now();
    term.send(()).unwrap();
    // Readiness fails at once…
    let r = fresh().get(url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "draining");
    // …while searches on new connections go on being answered during the drain.
    tokio::time::sleep(drain / 2).await;
    let r = fresh()
        .get(url("/v1/search/nearby?lat=0&lng=0"))
        .send()
        .await
        .expect("a search during the drain");
    assert_eq!(r.status(), 200);

    // The process stops once the drain and the deadline have passed, although the slow
    // request never finished, and it stopped accepting.
    let stopped = tokio::time::timeout_at((signalled + drain + deadline + SLACK).into(), server)
        .await
        .expect("stopped by drain + deadline");
    stopped.unwrap().unwrap();
    assert!(TcpStream::connect(&addr).await.is_err(), "still accepting");
    assert!(
        closed_before(&mut slow, Instant::now() + SLACK).await,
        "the slow request's connection was closed"
    );
}
