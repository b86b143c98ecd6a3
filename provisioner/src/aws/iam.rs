//! IAM: the node role and instance profile, under the path `/provisioner/<region>/<env>/` so that they
//! are found with one list call each (IAM has no tag filter), and tagged as well.

use aws_sdk_iam::types::Tag;
use std::future::Future;

use super::Cloud;
use crate::engine::retry::Consistency::{self, AfterCreate, Strong};
use crate::engine::{CloudError, ErrorKind};

#[derive(Debug, Clone)]
pub struct RoleInfo {
    pub name: String,
    pub arn: String,
}

/// The node pools' IAM roles, inline policies and instance profiles (under the environment's path).
pub trait NodeRoles: Send + Sync {
    fn iam_roles(&self) -> impl Future<Output = Result<Vec<RoleInfo>, CloudError>> + Send;
    fn iam_instance_profiles(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, Vec<String>)>, CloudError>> + Send;
    fn iam_role_policy(
        &self,
        role: &str,
        policy: &str,
    ) -> impl Future<Output = Result<Option<String>, CloudError>> + Send;
    /// Role + inline policy + instance profile holding the role.
    fn create_node_role(
        &self,
        logical: &str,
        name: &str,
        assume_policy: &str,
        policy_name: &str,
        policy: &str,
    ) -> impl Future<Output = Result<String, CloudError>> + Send;
    fn put_role_policy(
        &self,
        role: &str,
        policy_name: &str,
        policy: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// An instance profile of this environment (its roles removed first). One under
    /// another path is refused, not touched.
    fn delete_instance_profile(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
    /// A role of this environment: its inline policies, then the role. `DeleteConflict`
    /// (still in an instance profile) reads as a dependency violation.
    fn delete_node_role(&self, name: &str) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// The caller's account (STS), for ARNs in node policies.
pub trait Account: Send + Sync {
    /// Account id (for ARNs in policies).
    fn account_id(&self) -> impl Future<Output = Result<String, CloudError>> + Send;
}

impl NodeRoles for Cloud {
    async fn iam_roles(&self) -> Result<Vec<RoleInfo>, CloudError> {
        self.inventory
            .cached("iam:roles", || async {
                let r = self
                    .call("iam:ListRoles", Strong, || {
                        self.iam.list_roles().path_prefix(self.iam_path()).send()
                    })
                    .await?;
                // The prefix also matches deeper paths: only this very path is ours.
                Ok(r.roles()
                    .iter()
                    .filter(|x| x.path() == self.iam_path())
                    .map(|x| RoleInfo {
                        name: x.role_name().to_string(),
                        arn: x.arn().to_string(),
                    })
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn iam_instance_profiles(&self) -> Result<Vec<(String, Vec<String>)>, CloudError> {
        self.inventory
            .cached("iam:profiles", || async {
                let r = self
                    .call("iam:ListInstanceProfiles", Strong, || {
                        self.iam
                            .list_instance_profiles()
                            .path_prefix(self.iam_path())
                            .send()
                    })
                    .await?;
                Ok(r.instance_profiles()
                    .iter()
                    .filter(|p| p.path() == self.iam_path())
                    .map(|p| {
                        (
                            p.instance_profile_name().to_string(),
                            p.roles()
                                .iter()
                                .map(|r| r.role_name().to_string())
                                .collect(),
                        )
                    })
                    .collect::<Vec<_>>())
            })
            .await
    }

    async fn iam_role_policy(
        &self,
        role: &str,
        policy: &str,
    ) -> Result<Option<String>, CloudError> {
        match self
            .call("iam:GetRolePolicy", Strong, || {
                self.iam
                    .get_role_policy()
                    .role_name(role)
                    .policy_name(policy)
                    .send()
            })
            .await
        {
            Ok(r) => Ok(Some(r.policy_document().to_string())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_node_role(
        &self,
        logical: &str,
        name: &str,
        assume_policy: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<String, CloudError> {
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
        // Each step adopts what an earlier attempt did (a lost response, a crash between
        // steps), but only under this environment's path: never someone else's role.
        // Two rounds: the role and the profile are independent, then the policy and the
        // membership both need the role.
        let role = async {
            match self
                .call("iam:CreateRole", Strong, || {
                    self.iam
                        .create_role()
                        .role_name(name)
                        .path(self.iam_path())
                        .assume_role_policy_document(assume_policy)
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await
            {
                Ok(r) => Ok(r.role().map(|x| x.arn().to_string()).unwrap_or_default()),
                Err(e) if e.kind == ErrorKind::AlreadyExists => {
                    let r = self
                        .call("iam:GetRole", AfterCreate, || {
                            self.iam.get_role().role_name(name).send()
                        })
                        .await?;
                    let role = r.role();
                    let path = role.map(|x| x.path()).unwrap_or_default();
                    self.check_owned_path("role", name, path, e)?;
                    Ok(role.map(|x| x.arn().to_string()).unwrap_or_default())
                }
                Err(e) => Err(e),
            }
        };
        let profile = async {
            match self
                .call("iam:CreateInstanceProfile", Strong, || {
                    self.iam
                        .create_instance_profile()
                        .instance_profile_name(name)
                        .path(self.iam_path())
                        .set_tags(Some(tags.clone()))
                        .send()
                })
                .await
            {
                Ok(_) => Ok(false),
                Err(e) if e.kind == ErrorKind::AlreadyExists => {
                    let (path, roles) = self.instance_profile(name, AfterCreate).await?;
                    self.check_owned_path("instance profile", name, &path, e)?;
                    Ok(roles.iter().any(|r| r == name))
                }
                Err(e) => Err(e),
            }
        };
        let (arn, has_role) = futures::try_join!(role, profile)?;
        let add_role = async {
            if has_role {
                return Ok(());
            }
            let added = self
                .call("iam:AddRoleToInstanceProfile", AfterCreate, || {
                    self.iam
                        .add_role_to_instance_profile()
                        .instance_profile_name(name)
                        .role_name(name)
                        .send()
                })
                .await;
            if let Err(e) = added {
                // A retry after a lost response finds the role already in the profile.
                let (_, roles) = self.instance_profile(name, AfterCreate).await?;
                if !roles.iter().any(|r| r == name) {
                    return Err(e);
                }
            }
            Ok(())
        };
        futures::try_join!(self.put_role_policy(name, policy_name, policy), add_role)?;
        Ok(arn)
    }

    async fn put_role_policy(
        &self,
        role: &str,
        policy_name: &str,
        policy: &str,
    ) -> Result<(), CloudError> {
        self.call("iam:PutRolePolicy", AfterCreate, || {
            self.iam
                .put_role_policy()
                .role_name(role)
                .policy_name(policy_name)
                .policy_document(policy)
                .send()
        })
        .await
        .map(|_| ())
    }

    async fn delete_instance_profile(&self, name: &str) -> Result<(), CloudError> {
        let (path, roles) = match self.instance_profile(name, Strong).await {
            Err(e) if e.is_not_found() => return Ok(()),
            r => r?,
        };
        if path != self.iam_path() {
            return Err(CloudError::new(
                ErrorKind::Other,
                "iam:DeleteInstanceProfile",
                "NotOwned",
                format!(
                    "instance profile {name} has path {path:?}, not {:?}: not deleted",
                    self.iam_path()
                ),
            ));
        }
        for role in &roles {
            ignore_not_found(
                self.call("iam:RemoveRoleFromInstanceProfile", Strong, || {
                    self.iam
                        .remove_role_from_instance_profile()
                        .instance_profile_name(name)
                        .role_name(role)
                        .send()
                })
                .await
                .map(|_| ()),
            )?;
        }
        ignore_not_found(
            self.call("iam:DeleteInstanceProfile", Strong, || {
                self.iam
                    .delete_instance_profile()
                    .instance_profile_name(name)
                    .send()
            })
            .await
            .map(|_| ()),
        )
    }

    async fn delete_node_role(&self, name: &str) -> Result<(), CloudError> {
        let pols = match self
            .call("iam:ListRolePolicies", Strong, || {
                self.iam.list_role_policies().role_name(name).send()
            })
            .await
        {
            Ok(r) => r.policy_names().to_vec(),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        for p in pols {
            ignore_not_found(
                self.call("iam:DeleteRolePolicy", Strong, || {
                    self.iam
                        .delete_role_policy()
                        .role_name(name)
                        .policy_name(&p)
                        .send()
                })
                .await
                .map(|_| ()),
            )?;
        }
        self.call("iam:DeleteRole", Strong, || {
            self.iam.delete_role().role_name(name).send()
        })
        .await
        .map(|_| ())
    }
}

fn ignore_not_found(r: Result<(), CloudError>) -> Result<(), CloudError> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        r => r,
    }
}

impl Account for Cloud {
    async fn account_id(&self) -> Result<String, CloudError> {
        self.inventory
            .cached("sts:account", || async {
                let r = self
                    .call("sts:GetCallerIdentity", Strong, || {
                        self.sts.get_caller_identity().send()
                    })
                    .await?;
                Ok(r.account().unwrap_or_default().to_string())
            })
            .await
    }
}

impl Cloud {
    /// The IAM path of this environment's roles and instance profiles. IAM is global and
    /// regions are not: the same environment name in two regions gets two paths (and its
    /// role names carry the region, see `model::security`), so neither `up` nor `down` in one
    /// region touches the other's.
    pub fn iam_path(&self) -> String {
        format!("/provisioner/{}/{}/", self.region, self.env)
    }

    /// Path and role names of one instance profile.
    async fn instance_profile(
        &self,
        name: &str,
        consistency: Consistency,
    ) -> Result<(String, Vec<String>), CloudError> {
        let r = self
            .call("iam:GetInstanceProfile", consistency, || {
                self.iam
                    .get_instance_profile()
                    .instance_profile_name(name)
                    .send()
            })
            .await?;
        Ok(r.instance_profile()
            .map(|p| {
                (
                    p.path().to_string(),
                    p.roles()
                        .iter()
                        .map(|r| r.role_name().to_string())
                        .collect(),
                )
            })
            .unwrap_or_default())
    }

    /// An IAM entity that already exists is adopted only if it is under this environment's
    /// path; otherwise the original "already exists" error stands, naming whose it is not.
    fn check_owned_path(
        &self,
        what: &str,
        name: &str,
        path: &str,
        err: CloudError,
    ) -> Result<(), CloudError> {
        if path == self.iam_path() {
            return Ok(());
        }
        Err(CloudError {
            message: format!(
                "{}; the existing {what} {name} has path {path:?}, not {:?}: not owned by environment {}, so it is not adopted",
                err.message,
                self.iam_path(),
                self.env
            ),
            ..err
        })
    }
}
