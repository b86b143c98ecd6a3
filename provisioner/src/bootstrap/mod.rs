//! k3s cluster bootstrap: the EC2 user-data of each node pool, the join token, the SSM
//! parameter names and the instance-profile policy that lets nodes read exactly what they
//! need.
//!
//! How a cluster comes up (no SSH anywhere):
//! 1. `up` generates a [`JoinToken`] and stores it as a SecureString at
//!    [`ParameterNames::token`] (the engine's `ssm_parameter` resource; created once, never
//!    regenerated while it exists).
//! 2. Every instance boots the script from [`user_data`]: IMDSv2 metadata, the token read from
//!    SSM through its instance role ([`instance_role_policy`]), the pinned k3s binary
//!    downloaded with the release's `sha256sum` file and verified, then the install script of
//!    the same tag with `INSTALL_K3S_SKIP_DOWNLOAD=true`.
//! 3. Servers elect the `cluster-init` server by an atomic create of
//!    [`ParameterNames::init_lock`]; the others and all agents join through the NLB on 6443.
//! 4. The first server publishes the admin kubeconfig (server URL rewritten to the API name)
//!    at [`ParameterNames::kubeconfig`]; only the provisioner's credentials can read it back
//!    (`crate::k8s::kubeconfig`).
//!
//! The scripts are files in the repository (`provisioner/userdata/*.sh`), included with
//! `include_str!` and rendered by substituting validated values only.

mod params;
mod policy;
mod token;
mod userdata;

pub use params::ParameterNames;
pub use policy::{instance_assume_role_policy, instance_role_policy, PolicyScope};
pub use token::JoinToken;
pub use userdata::{
    api_record_name, dedicated_workload, public_record_name, user_data, validate_k3s_version,
    Endpoints, K3S_VERSION, WORKLOAD_LABEL,
};

/// Why a bootstrap artefact could not be rendered. Each variant names the offending value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootstrapError {
    /// A value that would be substituted into a shell script is not in its safe alphabet.
    #[error("{field}: `{value}` is not allowed in user-data ({reason})")]
    UnsafeValue {
        field: &'static str,
        value: String,
        reason: String,
    },
    /// `cluster.k3s_version` is not a k3s release on the supported Kubernetes line.
    #[error(
        "cluster.k3s_version: `{0}` is not a k3s release on the v1.34 line (e.g. {K3S_VERSION})"
    )]
    K3sVersion(String),
}
