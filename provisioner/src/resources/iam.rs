//! Node role + instance profile of a pool (`instance-profile/<pool>`), with one inline policy
//! (least privilege on the environment's SSM parameters, from `crate::bootstrap` when
//! available). Found by IAM path `/provisioner/<env>/` (IAM lists have no tag filter).

use futures::future::BoxFuture;
use serde::Serialize;

use crate::aws::api::NodeRoles;
use crate::engine::{FieldChange, Found, OutputMap, Outputs, Resource, TaskError, TaskKey};

pub const POLICY_NAME: &str = "provisioner-node";

pub struct InstanceProfile {
    pub name: String,
    /// Role and instance profile name.
    pub role_name: String,
    pub assume_policy: String,
    /// The inline policy document (JSON).
    pub policy: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileState {
    pub policy: serde_json::Value,
}

/// IAM returns policy documents URL-encoded; parse either form.
fn parse_policy(doc: &str) -> serde_json::Value {
    if let Ok(v) = serde_json::from_str(doc) {
        return v;
    }
    let mut out = Vec::with_capacity(doc.len());
    let b = doc.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(h) = u8::from_str_radix(&doc[i + 1..i + 3], 16) {
                out.push(h);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    serde_json::from_slice(&out).unwrap_or(serde_json::Value::String(doc.to_string()))
}

impl<C: NodeRoles> Resource<C> for InstanceProfile {
    type State = ProfileState;
    fn key(&self) -> TaskKey {
        TaskKey::new("instance-profile", &self.name)
    }
    fn deps(&self) -> Vec<TaskKey> {
        vec![]
    }
    fn output_names(&self) -> &'static [&'static str] {
        &["id", "name"]
    }
    fn desired(&self, _: &Outputs) -> Result<ProfileState, TaskError> {
        Ok(ProfileState {
            policy: parse_policy(&self.policy),
        })
    }
    fn find<'a>(
        &'a self,
        cx: &'a C,
        _: &'a ProfileState,
    ) -> BoxFuture<'a, Result<Option<Found<ProfileState>>, TaskError>> {
        Box::pin(async move {
            let profiles = cx.iam_instance_profiles().await?;
            if !profiles
                .iter()
                .any(|(n, roles)| n == &self.role_name && roles.contains(&self.role_name))
            {
                return Ok(None);
            }
            let policy = cx
                .iam_role_policy(&self.role_name, POLICY_NAME)
                .await?
                .map(|d| parse_policy(&d))
                .unwrap_or(serde_json::Value::Null);
            Ok(Some(Found {
                state: ProfileState { policy },
                outputs: [
                    ("id".to_string(), self.role_name.clone()),
                    ("name".to_string(), self.role_name.clone()),
                ]
                .into(),
            }))
        })
    }
    fn create<'a>(
        &'a self,
        cx: &'a C,
        _: &'a ProfileState,
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.create_node_role(
                &self.name,
                &self.role_name,
                &self.assume_policy,
                POLICY_NAME,
                &self.policy,
            )
            .await?;
            Ok([
                ("id".to_string(), self.role_name.clone()),
                ("name".to_string(), self.role_name.clone()),
            ]
            .into())
        })
    }
    fn update<'a>(
        &'a self,
        cx: &'a C,
        _: &'a Found<ProfileState>,
        _: &'a ProfileState,
        _: &'a [FieldChange],
    ) -> BoxFuture<'a, Result<OutputMap, TaskError>> {
        Box::pin(async move {
            cx.put_role_policy(&self.role_name, POLICY_NAME, &self.policy)
                .await?;
            Ok(OutputMap::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_policy;

    #[test]
    fn policy_documents_compare_whether_url_encoded_or_not() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetParameter"],"Resource":["arn:aws:ssm:us-east-1:1:parameter/provisioner/dev/k3s/token"]}]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22ssm%3AGetParameter%22%5D%2C%22Resource%22%3A%5B%22arn%3Aaws%3Assm%3Aus-east-1%3A1%3Aparameter%2Fprovisioner%2Fdev%2Fk3s%2Ftoken%22%5D%7D%5D%7D";
        assert_eq!(parse_policy(plain), parse_policy(encoded));
        assert!(parse_policy(plain).is_object());
    }
}
