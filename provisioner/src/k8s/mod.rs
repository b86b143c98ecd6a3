//! The workload on the cluster: rendering of `manifests/` ([`render`]), server-side apply
//! with prune and rollout waits ([`apply`]), kubeconfig retrieval ([`kubeconfig`]) and the
//! `up` integration ([`deploy`]), with the removal of Nodes whose instance is gone
//! ([`nodes`]).

pub mod apply;
pub mod deploy;
pub mod kubeconfig;
pub mod nodes;
pub mod render;
