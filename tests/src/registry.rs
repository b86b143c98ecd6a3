//! A real container registry (Debian's `docker-registry`, the CNCF distribution registry v2)
//! on a free loopback port, with filesystem storage in a scratch directory, and a small
//! pusher speaking its HTTP API (blob upload, manifest put) — what `docker push` does.

use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process::{free_port, wait_for_port, Scratch};

/// A running registry; killed with its scratch directory when the test process ends.
#[derive(Debug)]
pub struct Registry {
    scratch: Scratch,
    port: u16,
    _child: Child,
}

impl Registry {
    pub async fn start() -> Result<Self> {
        let scratch = Scratch::new("registry-")?;
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            scratch.path().join("data").display()
        );
        let path = scratch.path().join("config.yml");
        std::fs::write(&path, config)?;
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve").arg(&path);
        let child = scratch
            .spawn(cmd, "registry.log")
            .context("docker-registry is not installed? run scripts/setup")?;
        wait_for_port(port, Duration::from_secs(15))
            .await
            .with_context(|| format!("registry log:\n{}", scratch.log_tail("registry.log")))?;
        Ok(Self {
            scratch,
            port,
            _child: child,
        })
    }

    /// `localhost:<port>`: the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    pub fn log(&self) -> String {
        self.scratch.log_tail("registry.log")
    }

    /// Pushes a minimal image (an empty config and one small layer) as `repository:tag`;
    /// returns the manifest's digest.
    pub async fn push(&self, repository: &str, tag: &str) -> Result<String> {
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{}", self.port);
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = b"proximity-service test layer";
        let config_digest = self.upload(&http, &base, repository, config).await?;
        let layer_digest = self.upload(&http, &base, repository, layer).await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": layer.len()}]
        });
        let body = serde_json::to_vec(&manifest)?;
        let resp = http
            .put(format!("{base}/v2/{repository}/manifests/{tag}"))
            .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            .body(body.clone())
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("manifest put: {} {}", resp.status(), resp.text().await?);
        }
        Ok(sha256(&body))
    }

    async fn upload(
        &self,
        http: &reqwest::Client,
        base: &str,
        repository: &str,
        blob: &[u8],
    ) -> Result<String> {
        let digest = sha256(blob);
        let start = http
            .post(format!("{base}/v2/{repository}/blobs/uploads/"))
            .send()
            .await?;
        if start.status().as_u16() != 202 {
            bail!("blob upload start: {}", start.status());
        }
        let location = start
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("no Location for the upload")?
            .to_string();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        let done = http
            .put(format!("{url}{sep}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .body(blob.to_vec())
            .send()
            .await?;
        if done.status().as_u16() != 201 {
            bail!("blob upload: {} {}", done.status(), done.text().await?);
        }
        Ok(digest)
    }
}

fn sha256(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
