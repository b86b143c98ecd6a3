//! The AWS emulator: moto in server mode from the suite's virtualenv (installed by
//! `scripts/setup`), or the endpoint in `AWS_ENDPOINT_URL`.
//!
//! moto's state is global to the server, so tests that use it hold an [`EmulatorGuard`]: one
//! test at a time per test binary, each starting from a reset emulator.

use crate::process::{free_port, wait_for_port, Scratch};
use anyhow::{bail, Context, Result};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell, OwnedMutexGuard};

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    pub endpoint: String,
    _scratch: Option<Scratch>,
}

impl Emulator {
    /// Starts a moto server of its own on a free port (not shared, not locked).
    pub async fn start() -> Result<Self> {
        let moto = crate::suite_venv().join("bin/moto_server");
        if !moto.exists() {
            bail!(
                "{} is missing: run scripts/setup to install the emulator",
                moto.display()
            );
        }
        let scratch = Scratch::new("moto-")?;
        let port = free_port();
        let mut cmd = Command::new(moto);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        scratch.spawn(cmd, "moto.log")?;
        wait_for_port(port, Duration::from_secs(30))
            .await
            .with_context(|| format!("moto log:\n{}", scratch.log_tail("moto.log")))?;
        let emulator = Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            _scratch: Some(scratch),
        };
        emulator.wait_healthy().await?;
        Ok(emulator)
    }

    async fn wait_healthy(&self) -> Result<()> {
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let start = Instant::now();
        loop {
            match reqwest::get(&url).await {
                Ok(r) if r.status().is_success() => return Ok(()),
                _ if start.elapsed() > Duration::from_secs(30) => {
                    bail!("emulator at {} is not healthy after 30 s", self.endpoint)
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Forgets every resource in the emulator (moto's `POST /moto-api/reset`).
    pub async fn reset(&self) -> Result<()> {
        let resp = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .context("resetting the emulator")?;
        if !resp.status().is_success() {
            bail!("emulator reset answered {}", resp.status());
        }
        Ok(())
    }
}

/// Exclusive use of the shared emulator for one test; it was reset when acquired.
#[derive(Debug)]
pub struct EmulatorGuard {
    pub endpoint: String,
    _lock: OwnedMutexGuard<()>,
}

impl EmulatorGuard {
    /// Environment variables that point an AWS SDK or the provisioner binary at the emulator.
    pub fn sdk_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            // A bare moto boots no instance: `up` looks once for a node's sign of life.
            ("PROVISIONER_BOOT_TIMEOUT", "0".into()),
        ]
    }
}

static SHARED: OnceCell<(Emulator, Arc<Mutex<()>>)> = OnceCell::const_new();

/// The shared emulator (started once per test binary), reset and locked for this test.
pub async fn emulator() -> Result<EmulatorGuard> {
    let (emulator, lock) = SHARED
        .get_or_try_init(|| async {
            let emulator = match std::env::var("AWS_ENDPOINT_URL") {
                Ok(endpoint) => Emulator {
                    endpoint,
                    _scratch: None,
                },
                Err(_) => Emulator::start().await?,
            };
            Ok::<_, anyhow::Error>((emulator, Arc::new(Mutex::new(()))))
        })
        .await?;
    let guard = lock.clone().lock_owned().await;
    emulator.reset().await?;
    Ok(EmulatorGuard {
        endpoint: emulator.endpoint.clone(),
        _lock: guard,
    })
}
