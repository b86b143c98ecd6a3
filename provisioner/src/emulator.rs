//! `--local`: start the bundled AWS emulator (moto server) for one command.
//!
//! The server comes from the suite's virtualenv, installed by `scripts/setup`
//! (`$PROXIMITY_SUITE_CACHE`, else `$XDG_CACHE_HOME/proximity-suite`, else
//! `~/.cache/proximity-suite`; `venv/bin/moto_server`, or `moto-venv/…`).
//! It listens on a free 127.0.0.1 port and is health-checked through
//! `GET /moto-api/data.json`.
//!
//! It never outlives the provisioner: moto runs under a tiny `sh` watchdog
//! that reads the provisioner's end of a pipe and kills moto when that pipe
//! closes — on a normal exit, a panic, Ctrl-C or even `kill -9`.
//!
//! On the emulator, EC2 instances are records, not machines: they never boot
//! and never run user data, so k3s cannot come up there.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Said whenever `--local` is used.
pub const NO_BOOT_NOTICE: &str = "note: on the emulator, instances are records that never boot: \
the AWS side converges, but k3s and the workload cannot come up there";

/// A running moto server, stopped on drop.
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Where the moto server binary is looked for, first existing wins.
    pub fn candidates() -> Vec<PathBuf> {
        let cache = std::env::var_os("PROXIMITY_SUITE_CACHE")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|x| PathBuf::from(x).join("proximity-suite"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/proximity-suite"))
            })
            .unwrap_or_else(|| PathBuf::from(".cache/proximity-suite"));
        vec![
            cache.join("venv/bin/moto_server"),
            cache.join("moto-venv/bin/moto_server"),
        ]
    }

    /// Starts moto and waits (up to 30 s) until it answers.
    pub async fn start() -> Result<Self> {
        let candidates = Self::candidates();
        let Some(server) = candidates.iter().find(|p| p.exists()) else {
            bail!(
                "--local needs the bundled moto server, which is not installed (looked for {}); \
                 run scripts/setup (or localstack/install-moto)",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let port = free_port()?;
        let dir = tempfile::Builder::new()
            .prefix("provisioner-moto-")
            .tempdir()
            .context("creating a directory for the emulator log")?;
        let log = dir.path().join("moto.log");
        let child = spawn_watched(server, port, &log)?;
        let mut emu = Emulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            log,
            _dir: dir,
        };
        emu.wait_healthy(Duration::from_secs(30)).await?;
        Ok(emu)
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building an HTTP client")?;
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let start = Instant::now();
        loop {
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    bail!(
                        "the emulator exited ({status}) before becoming healthy; its log:\n{}",
                        self.log_tail()
                    );
                }
            }
            if start.elapsed() > timeout {
                bail!(
                    "the emulator did not answer {url} within {}s; its log:\n{}",
                    timeout.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the pipe makes the watchdog kill moto and exit.
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// `sh` runs moto in the background and waits for EOF on stdin (our pipe);
/// then it kills moto (TERM, KILL after 3 s) and reaps it, so no zombie is
/// left for init.
fn spawn_watched(server: &Path, port: u16, log: &Path) -> Result<Child> {
    const WATCHDOG: &str = r#"
"$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 </dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' TERM INT HUP
cat >/dev/null
kill $pid 2>/dev/null
( sleep 3; kill -9 $pid 2>/dev/null ) &
killer=$!
wait $pid
kill $killer 2>/dev/null
wait $killer 2>/dev/null
"#;
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg(server)
        .arg(port.to_string())
        .arg(log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", server.display()))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}
