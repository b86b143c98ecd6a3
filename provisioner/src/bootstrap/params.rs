//! Names of the SSM parameters the bootstrap uses, all under `/provisioner/<env>/k3s/`.

use crate::template::model::Name;

/// The SSM parameters of one environment's cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParameterNames {
    prefix: String,
}

impl ParameterNames {
    pub fn new(env: &Name) -> Self {
        Self {
            prefix: format!("/provisioner/{env}/k3s"),
        }
    }

    /// `/provisioner/<env>/k3s` — every parameter below is under it (for `down`, which deletes
    /// the whole path).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// SecureString: the server join token (k3s `token`). Created by the provisioner; read
    /// by the servers only: whoever holds it can join as a server (etcd, the cluster CA).
    pub fn token(&self) -> String {
        format!("{}/token", self.prefix)
    }

    /// SecureString: the agent join token (k3s `agent-token`). Created by the provisioner;
    /// read by every node (servers configure it, agents join with it).
    pub fn agent_token(&self) -> String {
        format!("{}/agent-token", self.prefix)
    }

    /// SecureString: the admin kubeconfig. Written by the first server; read only by the
    /// provisioner.
    pub fn kubeconfig(&self) -> String {
        format!("{}/kubeconfig", self.prefix)
    }

    /// String: the instance id of the server that ran `cluster-init`. Created atomically by
    /// the servers (the election); tagged `provisioner:env`.
    pub fn init_lock(&self) -> String {
        format!("{}/init-server", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let p = ParameterNames::new(&Name::parse("dev").unwrap());
        assert_eq!(p.token(), "/provisioner/dev/k3s/token");
        assert_eq!(p.agent_token(), "/provisioner/dev/k3s/agent-token");
        assert_eq!(p.kubeconfig(), "/provisioner/dev/k3s/kubeconfig");
        assert_eq!(p.init_lock(), "/provisioner/dev/k3s/init-server");
        assert_eq!(p.prefix(), "/provisioner/dev/k3s");
    }
}
