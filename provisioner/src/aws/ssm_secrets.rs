//! Reading back a SecureString the provisioner owns: the admin kubeconfig the first k3s
//! server publishes (`bootstrap::ParameterNames::kubeconfig`). The value is returned to the
//! caller and never logged.

use super::Cloud;
use crate::engine::retry::Consistency::Strong;
use crate::engine::CloudError;
use crate::k8s::deploy::PublishedKubeconfig;
use std::future::Future;

/// Reading a SecureString back (the kubeconfig published by the first server).
pub trait SecureParameters: Send + Sync {
    /// The decrypted value of SecureString `name`; `None` while it does not exist.
    fn ssm_secure_string(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, CloudError>> + Send;
}

impl SecureParameters for Cloud {
    async fn ssm_secure_string(&self, name: &str) -> Result<Option<String>, CloudError> {
        match self
            .call("ssm:GetParameter", Strong, || {
                self.ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
            })
            .await
        {
            Ok(r) => Ok(r.parameter().and_then(|p| p.value()).map(String::from)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl PublishedKubeconfig for Cloud {
    async fn fetch(&self, parameter: &str) -> anyhow::Result<Option<String>> {
        Ok(self.ssm_secure_string(parameter).await?)
    }
}
