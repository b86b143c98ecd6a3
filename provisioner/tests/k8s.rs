//! Tests of the k3s bootstrap and the Kubernetes workload (one test binary).
//!
//! **No Kubernetes API server can run on these machines** (no k3s, no kind, no container
//! runtime), so nothing here talks to a real cluster except [`e2e`], which runs only when
//! `E2E_KUBECONFIG` names a cluster. Instead:
//! - [`validate`]: every rendered manifest is validated offline against the upstream
//!   Kubernetes JSON schemas of the pinned version (v1.34), strict mode, with PyPI
//!   `kubernetes-validate`;
//! - [`userdata`]: the rendered user-data scripts pass `shellcheck` and are executed in a
//!   temporary root against stub `curl` (IMDSv2, SSM, GitHub downloads) and `sleep`
//!   commands placed first on PATH; the tests assert the files and requests they produce;
//! - [`apply`]: apply, prune and rollout waits run against a MOCK Kubernetes API server
//!   ([`mock_api`]) that asserts every request's method, path, query and body in order.
//!
//! External tools (`kubernetes-validate`, `shellcheck`) are installed by `scripts/setup`.
//! A test that needs one skips with a printed reason only when the tool is missing and `CI`
//! is unset; under CI it fails instead.

#[path = "k8s/common.rs"]
mod common;
#[path = "k8s/mock_api.rs"]
mod mock_api;

#[path = "k8s/apply.rs"]
mod apply;
#[path = "k8s/deploy.rs"]
mod deploy;
#[path = "k8s/e2e.rs"]
mod e2e;
#[path = "k8s/userdata.rs"]
mod userdata;
#[path = "k8s/validate.rs"]
mod validate;
