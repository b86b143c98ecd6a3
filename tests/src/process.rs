//! Starting server processes that cannot outlive the test process.

use anyhow::{bail, Context, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A temporary directory whose processes are killed, and which is removed, when the test
/// process dies, by a detached reaper that polls for the test process.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new(prefix: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temporary directory")?
            .keep();
        let reaper = r#"
parent=$1; dir=$2
while kill -0 "$parent" 2>/dev/null; do sleep 0.3; done
if [ -f "$dir/.pids" ]; then
  while read -r pid; do kill -INT "$pid" 2>/dev/null; done < "$dir/.pids"
  sleep 1
  while read -r pid; do kill -KILL "$pid" 2>/dev/null; done < "$dir/.pids"
fi
rm -rf "$dir"
"#;
        Command::new("setsid")
            .args(["sh", "-c", reaper, "reaper"])
            .arg(std::process::id().to_string())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the reaper (setsid sh)")?;
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Spawns `cmd` with its output going to `log_name` in this directory, and records its pid
    /// for the reaper.
    pub fn spawn(&self, mut cmd: Command, log_name: &str) -> Result<Child> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(log_name))
            .with_context(|| format!("opening {log_name}"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let mut pids = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(".pids"))?;
        writeln!(pids, "{}", child.id())?;
        Ok(child)
    }

    /// Records a process group (`-pgid`) for the reaper, whose `kill` then signals the whole
    /// group.
    pub fn record_group(&self, pgid: u32) -> Result<()> {
        let mut pids = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(".pids"))?;
        writeln!(pids, "-{pgid}")?;
        Ok(())
    }

    /// The last lines of a log file in this directory, for error messages.
    pub fn log_tail(&self, log_name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(log_name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Runs a command to completion, failing with its output when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a signal to a process by pid (through kill(1): the workspace forbids unsafe code).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Sends a signal to every process of a process group.
pub fn signal_group(pgid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(std::process::Stdio::null())
        .status();
}

/// True when the tests run as root (Postgres refuses to run as root).
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
