//! The k3s download, served over HTTPS (twin CA) in two layouts:
//!
//! - as GitHub serves it, for `github.com` and `raw.githubusercontent.com`:
//!   `/k3s-io/k3s/releases/download/<ver>/<asset>` and `/k3s-io/k3s/<ver>/install.sh`;
//! - as the product's `cluster.k3s_mirror` lays it out: `<base path>/<ver>/<asset>` and
//!   `<base path>/<ver>/install.sh`, under any base path (the version URL-encoded in the
//!   request: `v1.34.1%2Bk3s1`).
//!
//! Any `v…` version is served. The assets: `k3s`, the stand-in binary (`k3s-standin`, its real
//! bytes); `k3s-airgap-images-amd64.tar.zst`, [`AIRGAP_IMAGES`] (a stand-in: the k3s stand-in
//! imports no images); `sha256sum-amd64.txt` in the release's format — `<sha256>  <asset>`
//! lines — with the real sha256 of the bytes served for each. `install.sh` is [`INSTALL_SH`],
//! a stand-in for k3s's installer.

use super::server::{self, Reply, Request, Server};
use anyhow::{Context, Result};
use bytes::Bytes;
use http::StatusCode;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// STAND-IN for k3s's `install.sh` (get.k3s.io), which installs systemd units; the twin has no
/// systemd. It supports what the user-data uses — `INSTALL_K3S_SKIP_DOWNLOAD=true`,
/// `INSTALL_K3S_BIN_DIR`, `INSTALL_K3S_EXEC` — and starts `$BIN_DIR/k3s $INSTALL_K3S_EXEC` in
/// the background as systemd would (log: `$K3S_BOOTSTRAP_ROOT/var/log/k3s.log`, pid:
/// `$K3S_BOOTSTRAP_ROOT/run/k3s/k3s.pid`). Like `systemctl start` of k3s's units, it returns
/// for a server once k3s reports ready (`Type=notify`: the stand-in writes
/// `$K3S_BOOTSTRAP_ROOT/run/k3s/ready`) and fails if k3s exits first; for an agent
/// (`Type=exec`) it returns once k3s is started.
pub const INSTALL_SH: &str = r#"#!/bin/sh
# STAND-IN for k3s's install.sh, served by the proximity test harness's node twin (the real
# script installs systemd units; the twin has none). Supports INSTALL_K3S_SKIP_DOWNLOAD=true,
# INSTALL_K3S_BIN_DIR and INSTALL_K3S_EXEC, and starts k3s in the background as systemd would.
set -eu
info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }

ROOT="${K3S_BOOTSTRAP_ROOT:-}"
BIN_DIR="${INSTALL_K3S_BIN_DIR:-/usr/local/bin}"
EXEC="${INSTALL_K3S_EXEC:-}"
if [ -z "$EXEC" ]; then
    if [ -n "${K3S_URL:-}" ]; then EXEC=agent; else EXEC=server; fi
fi
case "$EXEC" in
server*) UNIT=k3s; TYPE=notify ;;
agent*) UNIT=k3s-agent; TYPE=exec ;;
*) fatal "stand-in install.sh: INSTALL_K3S_EXEC must start with server or agent (got '$EXEC')" ;;
esac
[ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ] ||
    fatal "stand-in install.sh: only INSTALL_K3S_SKIP_DOWNLOAD=true is supported (the twin serves the binary separately)"
info "Skipping k3s download and verify"
[ -x "$BIN_DIR/k3s" ] || fatal "$BIN_DIR/k3s is not an executable"
mkdir -p "$ROOT/var/log" "$ROOT/run/k3s"
rm -f "$ROOT/run/k3s/ready"
info "systemd (stand-in): Starting $UNIT ($BIN_DIR/k3s $EXEC, Type=$TYPE)"
# shellcheck disable=SC2086 # INSTALL_K3S_EXEC is a word list, as in the real script
K3S_STANDIN_READY_FILE="$ROOT/run/k3s/ready" nohup "$BIN_DIR/k3s" $EXEC >>"$ROOT/var/log/k3s.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$ROOT/run/k3s/k3s.pid"
if [ "$TYPE" = notify ]; then
    n=0
    while [ ! -e "$ROOT/run/k3s/ready" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 5 "$ROOT/var/log/k3s.log" >&2 || true
            fatal "Job for $UNIT.service failed because the control process exited with error code."
        fi
        n=$((n + 1))
        [ "$n" -lt 1200 ] || fatal "Job for $UNIT.service timed out (not ready after 600 s)."
        sleep 0.5
    done
fi
info "systemd (stand-in): $UNIT started (pid $pid)"
"#;

/// STAND-IN for the release's air-gap image tarball (`k3s-airgap-images-amd64.tar.zst`):
/// the k3s stand-in imports no images, so these bytes only have to arrive intact.
pub const AIRGAP_IMAGES: &[u8] =
    b"STAND-IN for k3s-airgap-images-amd64.tar.zst, served by the node twin's mirror\n";

/// A running mirror.
#[derive(Debug)]
pub struct Mirror {
    server: Server,
    sha256: String,
}

struct Assets {
    k3s: Bytes,
    sums: Bytes,
}

const AIRGAP_ASSET: &str = "k3s-airgap-images-amd64.tar.zst";

impl Mirror {
    /// Serves `k3s_binary` (the stand-in) on a free 127.0.0.1 port under `pki`.
    pub async fn start(pki: &super::Pki, k3s_binary: &Path) -> Result<Mirror> {
        let k3s = std::fs::read(k3s_binary)
            .with_context(|| format!("reading the k3s stand-in {}", k3s_binary.display()))?;
        let sha256 = hex::encode(ring::digest::digest(&ring::digest::SHA256, &k3s));
        let assets = Arc::new(Assets {
            sums: Bytes::from(checksum_file(&sha256)),
            k3s: Bytes::from(k3s),
        });
        let listener = server::bind_loopback().await?;
        let server = server::serve(listener, Some(pki.server_config()), move |req, _| {
            let assets = assets.clone();
            async move { Reply::Answer(assets.answer(&req)) }
        })?;
        Ok(Mirror { server, sha256 })
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The sha256 of the served `k3s`.
    pub fn k3s_sha256(&self) -> &str {
        &self.sha256
    }
}

/// `sha256sum-amd64.txt` as a k3s release has it: `<sha256>  <asset>` per line.
fn checksum_file(k3s_sha256: &str) -> String {
    let airgap = hex::encode(ring::digest::digest(&ring::digest::SHA256, AIRGAP_IMAGES));
    format!("{k3s_sha256}  k3s\n{airgap}  {AIRGAP_ASSET}\n")
}

impl Assets {
    fn answer(&self, req: &Request) -> server::Response {
        if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
            return server::text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        let path = server::decoded_path(req);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // GitHub's layouts and a mirror's (`<base path>/<ver>/<asset>`) all end in the
        // version and the asset.
        let (version, asset) = match segs.as_slice() {
            [.., v, a] => (*v, *a),
            _ => return server::text(StatusCode::NOT_FOUND, "Not Found\n"),
        };
        if !version.starts_with('v') {
            return server::text(StatusCode::NOT_FOUND, "Not Found\n");
        }
        let octets = "application/octet-stream";
        match asset {
            "k3s" => server::bytes(StatusCode::OK, octets, self.k3s.clone()),
            "sha256sum-amd64.txt" => server::bytes(StatusCode::OK, octets, self.sums.clone()),
            AIRGAP_ASSET => {
                server::bytes(StatusCode::OK, octets, Bytes::from_static(AIRGAP_IMAGES))
            }
            "install.sh" => server::bytes(
                StatusCode::OK,
                "text/plain",
                Bytes::from_static(INSTALL_SH.as_bytes()),
            ),
            _ => server::text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    }
}
