//! Redis: a shared server per test binary (each test gets its own key prefix), or a dedicated
//! one that a test may stop, or the server named by `TEST_REDIS_URL`.

use crate::process::{free_port, signal, wait_for_port, Scratch};
use anyhow::{bail, Context, Result};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::OnceCell;

/// One test's slice of the shared Redis: keys it writes should start with `prefix`.
#[derive(Debug, Clone)]
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

enum Shared {
    Local(RedisServer),
    External(String),
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// The shared Redis with a key prefix unique to this call.
pub async fn redis() -> Result<TestRedis> {
    let shared = SHARED
        .get_or_try_init(|| async {
            match std::env::var("TEST_REDIS_URL") {
                Ok(url) => Ok::<_, anyhow::Error>(Shared::External(url)),
                Err(_) => Ok(Shared::Local(RedisServer::start().await?)),
            }
        })
        .await?;
    let url = match shared {
        Shared::Local(server) => server.url(),
        Shared::External(url) => url.clone(),
    };
    Ok(TestRedis {
        url,
        prefix: format!("{}:", crate::unique_name("t")),
    })
}

/// A Redis server on a free port, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    scratch: Scratch,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    pub async fn start() -> Result<Self> {
        let server = Self {
            scratch: Scratch::new("redis-")?,
            port: free_port(),
            child: Mutex::new(None),
        };
        server.restart().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server again on the same port after [`RedisServer::stop`].
    pub async fn restart(&self) -> Result<()> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.scratch.path());
        let child = self
            .scratch
            .spawn(cmd, "redis.log")
            .context("redis-server is not installed? run scripts/setup")?;
        *self.child.lock().unwrap() = Some(child);
        wait_for_port(self.port, Duration::from_secs(10))
            .await
            .with_context(|| format!("redis log:\n{}", self.scratch.log_tail("redis.log")))
    }

    /// Stops the server and waits for it to exit.
    pub async fn stop(&self) -> Result<()> {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            bail!("redis is not running")
        };
        signal(child.id(), "TERM");
        tokio::task::spawn_blocking(move || child.wait()).await??;
        Ok(())
    }
}
