//! SSM Parameter Store: public AMI parameters, and the environment's SecureStrings (values are
//! never logged: they only travel in request bodies).

use aws_sdk_ssm::types::{ParameterType, Tag};
use std::future::Future;

use super::Cloud;
use crate::engine::retry::Consistency::Strong;
use crate::engine::CloudError;

/// SSM parameters: public AMI parameters, and the environment's SecureStrings.
pub trait Parameters: Send + Sync {
    /// Values of several (public) parameters: one call per ten plain names, one per name with
    /// a `:version` or `:label` selector; keyed by the name as asked. A name the service does
    /// not know is absent from the map.
    fn ssm_parameter_values(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, String>, CloudError>> + Send;
    /// Does an (owned) parameter exist? Only its metadata is read, never its value.
    fn ssm_parameter_exists(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<bool, CloudError>> + Send;
    /// Create a SecureString (fails if it exists: never overwritten).
    fn ssm_put_secure(
        &self,
        logical: &str,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// Names of parameters under `/provisioner/<env>/`.
    fn ssm_env_parameters(&self) -> impl Future<Output = Result<Vec<String>, CloudError>> + Send;
    fn ssm_delete(&self, name: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

impl Parameters for Cloud {
    async fn ssm_parameter_values(
        &self,
        names: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, CloudError> {
        // A name with a version or label (`/path:3`) is asked on its own: GetParameters
        // answers with the bare name, which would not say which selector a value is for when
        // a template names one parameter twice. The rest go ten at a time.
        let (selected, bare): (Vec<&String>, Vec<&String>) = names
            .iter()
            .partition(|n| n.rsplit('/').next().is_some_and(|last| last.contains(':')));
        let bare: Vec<String> = bare.into_iter().cloned().collect();
        let batches = bare.chunks(10).map(|batch| async move {
            let r = self
                .call("ssm:GetParameters", Strong, || {
                    self.ssm
                        .get_parameters()
                        .set_names(Some(batch.to_vec()))
                        .send()
                })
                .await?;
            Ok::<_, CloudError>(
                r.parameters()
                    .iter()
                    .filter_map(|p| Some((p.name()?.to_string(), p.value()?.to_string())))
                    .collect::<Vec<_>>(),
            )
        });
        let singles = selected.into_iter().map(|name| async move {
            let r = self
                .call("ssm:GetParameter", Strong, || {
                    self.ssm.get_parameter().name(name).send()
                })
                .await;
            match r {
                Ok(r) => Ok(r
                    .parameter()
                    .and_then(|p| p.value())
                    .map(|v| vec![(name.clone(), v.to_string())])
                    .unwrap_or_default()),
                Err(e) if e.is_not_found() => Ok(vec![]),
                Err(e) => Err(e),
            }
        });
        let (batches, singles) = futures::try_join!(
            futures::future::try_join_all(batches),
            futures::future::try_join_all(singles)
        )?;
        let out = batches.into_iter().chain(singles).flatten().collect();
        Ok(out)
    }

    async fn ssm_parameter_exists(&self, name: &str) -> Result<bool, CloudError> {
        let r = self
            .call("ssm:DescribeParameters", Strong, || {
                self.ssm
                    .describe_parameters()
                    .parameter_filters(
                        aws_sdk_ssm::types::ParameterStringFilter::builder()
                            .key("Name")
                            .option("Equals")
                            .values(name)
                            .build()
                            .expect("key set"),
                    )
                    .send()
            })
            .await?;
        Ok(!r.parameters().is_empty())
    }

    async fn ssm_put_secure(
        &self,
        logical: &str,
        name: &str,
        value: &str,
    ) -> Result<(), CloudError> {
        let tags: Vec<Tag> = self
            .tags_for(logical)
            .into_iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value")
            })
            .collect();
        self.call("ssm:PutParameter", Strong, || {
            self.ssm
                .put_parameter()
                .name(name)
                .value(value)
                .r#type(ParameterType::SecureString)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn ssm_env_parameters(&self) -> Result<Vec<String>, CloudError> {
        let path = format!("/provisioner/{}/", self.env);
        let filter = aws_sdk_ssm::types::ParameterStringFilter::builder()
            .key("Name")
            .option("BeginsWith")
            .values(&path)
            .build()
            .expect("key set");
        let pages = self
            .all_pages(
                "ssm:DescribeParameters",
                |token| {
                    self.ssm
                        .describe_parameters()
                        .parameter_filters(filter.clone())
                        .set_next_token(token)
                        .send()
                },
                |r| r.next_token(),
            )
            .await?;
        let names = pages
            .iter()
            .flat_map(|r| r.parameters())
            .filter_map(|p| p.name().map(String::from))
            .collect();
        Ok(names)
    }

    async fn ssm_delete(&self, name: &str) -> Result<(), CloudError> {
        self.call("ssm:DeleteParameter", Strong, || {
            self.ssm.delete_parameter().name(name).send()
        })
        .await
        .map(|_| ())
    }
}
