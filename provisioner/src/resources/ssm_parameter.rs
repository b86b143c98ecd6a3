//! The k3s join token as an SSM SecureString (`/provisioner/<env>/k3s/token`): generated once
//! by `up`, never regenerated while it exists, never read back and never logged (only its
//! existence is checked, through DescribeParameters metadata).

use futures::future::BoxFuture;
use serde::Serialize;

use super::out_id;
use crate::aws::api::Parameters;
use crate::bootstrap::JoinToken;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub struct SecureParameter {
    /// Logical name (`k3s-token`).
    pub name: String,
    /// Parameter name (path).
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParamState {}

impl<C: Parameters> Resource<C> for SecureParameter {
    type State = ParamState;
    fn absent_reason(&self) -> String {
        format!("no parameter at {}", self.path)
    }
    fn key(&self) -> TaskKey {
        TaskKey::new("ssm-parameter", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![]
    }
    fn desired(&self, _: &Outputs) -> Result<ParamState, TaskError> {
        Ok(ParamState {})
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a ParamState,
    ) -> BoxFuture<'a, Result<Option<Found<ParamState>>, TaskError>> {
        Box::pin(async move {
            Ok(cx.ssm_parameter_exists(&self.path).await?.then(|| Found {
                state: ParamState {},
                outputs: out_id(&self.path),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        _: &'a ParamState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            let token = JoinToken::generate();
            cx.ssm_put_secure(&self.name, &self.path, token.expose_secret())
                .await?;
            Ok(out_id(&self.path))
        })
    }
    fn update<'a>(
        &'a self,
        _: &'a C,
        _: &'a Found<ParamState>,
        _: &'a ParamState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move { Ok(OutputMap::new()) })
    }
}
