//! The node twin: the instances of an environment's Auto Scaling groups, booted on this
//! machine by running their **real user-data** (moto never runs it), with stand-ins for what an
//! EC2 instance reaches. What is real and what stands in:
//!
//! | on AWS | in the twin |
//! | --- | --- |
//! | EC2 boots the instance, cloud-init runs `UserData` | [`nodes::NodeTwin`] polls the emulator for in-service instances of groups tagged `provisioner:env=<env>`, reads the launch template version's `UserData` through the EC2 API, decodes it as cloud-init does and runs the script with `/bin/sh`, one process group and root directory per instance |
//! | the instance metadata service (IMDSv2) | [`imds::Imds`], one per instance: token, hop limit and token requirement from the launch template's `MetadataOptions`, the instance profile role's credentials from the emulator's STS |
//! | SSM's HTTPS endpoint | [`ssm_front::SsmFront`]: SigV4 and the role's IAM policies checked, then forwarded to the emulator's SSM |
//! | GitHub (k3s release, install script) or a `cluster.k3s_mirror` | [`mirror::Mirror`], the release's checksum-file format |
//! | the public CAs | [`pki::Pki`], the twin CA every twin HTTPS server presents and the nodes trust |
//! | DNS | the nodes' `~/.curlrc` (`connect-to`): every name the scripts reach maps to a twin server; nothing unmapped leaves this machine |
//! | **k3s** (cannot run here) | **stand-in**: the `k3s-standin` binary (served as `k3s`) and a stand-in `install.sh`, speaking the protocol below to [`kube_api`] — the mock Kubernetes API server, the only mock |
//!
//! # Conventions
//! - **Hop distance**: a request reaching an IMDS stub from `127.0.0.N` comes from N hops
//!   away: `127.0.0.1` is the instance, `127.0.0.2` a pod on it (test with
//!   `curl --interface 127.0.0.2`). A token `PUT` from beyond `HttpPutResponseHopLimit` is
//!   closed unanswered.
//! - **Instance root**: every file an instance writes is under `K3S_BOOTSTRAP_ROOT` =
//!   `<twin scratch>/<instance-id>` (`etc/rancher/k3s/`, `usr/local/bin/k3s`,
//!   `var/log/cloud-init-output.log`, `var/log/k3s.log`, `run/k3s/{k3s.pid,ready}`).
//! - **Node name**: k3s names a node after the host, and EC2 names the host after the private
//!   address: `10.0.1.23` → `ip-10-0-1-23` ([`imds::host_name`]).
//!
//! # The k3s stand-in protocol (with the mock API server, [`kube_api`])
//! The stand-in reads `$K3S_BOOTSTRAP_ROOT/etc/rancher/k3s/config.yaml` (`token-file`,
//! `agent-token-file`, `cluster-init`, `server`, `node-ip`, `tls-san`, `node-label`,
//! `node-taint`, `write-kubeconfig-mode`; file paths in it are prefixed with the root). The API
//! base URL is `$K3S_STANDIN_API` (`https://127.0.0.1:PORT`); it trusts only the CA in the PEM
//! file `$K3S_STANDIN_CA` (the twin CA: the mock serves [`Pki::server_config`]). All bodies
//! are JSON.
//!
//! 1. `k3s server` with `cluster-init: true`:
//!    `POST /twin/v1/cluster-init` `{"token": <server token>, "agent_token": <agent token | null>,
//!    "node": <node name>}` → 200 `{"admin_token": "…"}`. The mock fixes the cluster's tokens
//!    with the first call; a second call with another token is 401.
//! 2. `k3s server` with `server: https://<nlb>:6443` (joining) or `k3s agent`:
//!    `POST /twin/v1/join` `{"token": …, "role": "server" | "agent", "node": <node name>}` →
//!    200 `{}` or, for servers, `{"admin_token": "…"}`. 401 when the token is wrong for the
//!    role (servers: the server token; agents: the agent token, or the server token when the
//!    cluster has no agent token, as k3s does); 503 before any cluster-init (the stand-in
//!    retries, as k3s does).
//! 3. A server that got an `admin_token` writes `$ROOT/etc/rancher/k3s/k3s.yaml`, k3s's own
//!    kubeconfig: cluster and context and user `default`, server `https://127.0.0.1:6443`,
//!    `certificate-authority-data` = base64 of the twin CA's PEM, user `token: <admin_token>`,
//!    mode `write-kubeconfig-mode` (default 0600).
//! 4. Then the Node: `POST /api/v1/nodes` with `Authorization: Bearer <the token it joined
//!    with>`, a `v1` `Node` named as above, labels from `node-label` plus `kubernetes.io/hostname`,
//!    `kubernetes.io/os`, `kubernetes.io/arch`, and for servers
//!    `node-role.kubernetes.io/control-plane=true` and `node-role.kubernetes.io/etcd=true`;
//!    `spec.taints` from `node-taint`; `status.conditions` `[{type: Ready, status: "True"}]`,
//!    `status.addresses` `[InternalIP = node-ip, Hostname = node name]`. 201, or 409 if it
//!    exists (a restart), are success.
//! 5. It writes `$K3S_STANDIN_READY_FILE` (systemd's `READY=1`; the stand-in install.sh waits
//!    for it for servers) and sleeps until killed. Every failure is one `level=fatal` line in
//!    `var/log/k3s.log` and exit 1 (a wrong token: "token rejected (401)").
//!
//! Transport errors and 5xx answers are retried every second for up to 5 minutes.

pub mod aws;
pub mod https;
pub mod imds;
pub mod kube_api;
pub mod mirror;
pub mod nodes;
pub mod pki;
mod policy;

pub mod server;
mod sigv4;
pub mod ssm_front;

pub use imds::{hops_from, host_name, CredentialRegistry, Imds, ImdsConfig, InstanceRole};
pub use kube_api::{DeletionMode, MockKubeApi, RolloutBehaviour};
pub use mirror::{Mirror, INSTALL_SH};
pub use nodes::{decode_user_data, InstanceInfo, InstanceStatus, NodeTwin, TwinConfig};
pub use pki::Pki;
pub use ssm_front::{Decision, SsmFront, SsmFrontConfig};
