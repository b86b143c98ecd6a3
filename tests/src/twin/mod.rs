//! The node twin: what stands in, on this machine, for the parts of a real `up` that cannot
//! run here. [`pki`] is the twin's certificate authority; [`kube_api`] is a STATEFUL MOCK
//! Kubernetes API server (no real API server can run here) that the stand-in `k3s` talks to
//! and that the provisioner applies its workload to.

pub mod kube_api;
pub mod pki;

pub use kube_api::{DeletionMode, MockKubeApi, RolloutBehaviour};
pub use pki::Pki;
