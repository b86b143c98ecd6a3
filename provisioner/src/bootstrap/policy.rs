//! IAM documents for the nodes' instance profile: least privilege on the SSM parameters of
//! [`ParameterNames`], nothing else.
//!
//! - every node (`k3s-server`, `k3s-agent`): `ssm:GetParameter` on the agent join token;
//! - servers additionally: `ssm:GetParameter` on the server join token (an agent, or a pod
//!   that reached its node's role, cannot become a server), `ssm:PutParameter` + `ssm:AddTagsToResource` on the kubeconfig and
//!   the init-election parameters, `ssm:GetParameter` on the init-election parameter (to
//!   learn who won). No server can read the kubeconfig back: only the provisioner can.
//!
//! - servers also carry the AWS EBS CSI driver's statements (its controller runs there).
//!
//! SecureStrings use the AWS-managed key `alias/aws/ssm`, whose key policy already allows
//! use through SSM by the account's principals, so no `kms:` statement is needed.

use serde_json::{json, Value};

use super::ParameterNames;
use crate::template::model::{Environment, NodeRole};

/// Where the parameter ARNs live: partition (derived from the region), region, account id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyScope {
    pub partition: String,
    pub region: String,
    /// The 12-digit account id (from STS `GetCallerIdentity`), or `*` when unknown.
    pub account_id: String,
}

impl PolicyScope {
    pub fn new(region: &str, account_id: &str) -> Self {
        let partition = if region.starts_with("cn-") {
            "aws-cn"
        } else if region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        }
    }

    /// ARN of a parameter named with a leading `/` (`/provisioner/dev/k3s/token`).
    pub fn parameter_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:ssm:{}:{}:parameter/{}",
            self.partition,
            self.region,
            self.account_id,
            name.trim_start_matches('/')
        )
    }
}

/// The inline policy of the role behind the instance profile of pools with `role`.
pub fn instance_role_policy(env: &Environment, role: NodeRole, scope: &PolicyScope) -> Value {
    let names = ParameterNames::new(&env.name);
    let mut statements = vec![json!({
        "Sid": "ReadK3sAgentToken",
        "Effect": "Allow",
        "Action": ["ssm:GetParameter"],
        "Resource": [scope.parameter_arn(&names.agent_token())],
    })];
    if role == NodeRole::K3sServer {
        statements.push(json!({
            "Sid": "ReadK3sServerToken",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": [scope.parameter_arn(&names.token())],
        }));
        // The election's rounds: `init-server`, then `init-server-2`, `-3` … (a new round
        // when the holder never brought the API up).
        let rounds = format!("{}-*", names.init_lock());
        statements.push(json!({
            "Sid": "ReadInitElection",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter"],
            "Resource": [
                scope.parameter_arn(&names.init_lock()),
                scope.parameter_arn(&rounds),
            ],
        }));
        statements.push(json!({
            "Sid": "PublishKubeconfigAndElect",
            "Effect": "Allow",
            "Action": ["ssm:PutParameter", "ssm:AddTagsToResource"],
            "Resource": [
                scope.parameter_arn(&names.kubeconfig()),
                scope.parameter_arn(&names.init_lock()),
                scope.parameter_arn(&rounds),
            ],
        }));
        // The EBS CSI controller runs on the servers (host network: the node role through
        // IMDS with hop limit 1) and manages the Postgres volumes.
        statements.extend(ebs_csi_statements(scope));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The AWS EBS CSI driver's policy (its `docs/example-iam-policy.json`): describes on `*`,
/// creates and deletes only of volumes and snapshots tagged as the driver's, in this region and
/// account.
fn ebs_csi_statements(scope: &PolicyScope) -> Vec<Value> {
    let text = include_str!("ebs_csi_policy.json")
        .replace("arn:aws:", &format!("arn:{}:", scope.partition))
        .replace(":REGION:", &format!(":{}:", scope.region))
        .replace(":ACCOUNT:", &format!(":{}:", scope.account_id));
    serde_json::from_str(&text).expect("ebs_csi_policy.json is a JSON array of statements")
}

/// Trust policy of the node role: only EC2 may assume it.
pub fn instance_assume_role_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "ec2.amazonaws.com" },
            "Action": "sts:AssumeRole",
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_drop_the_leading_slash_and_follow_the_partition() {
        let s = PolicyScope::new("us-east-1", "123456789012");
        assert_eq!(
            s.parameter_arn("/provisioner/dev/k3s/token"),
            "arn:aws:ssm:us-east-1:123456789012:parameter/provisioner/dev/k3s/token"
        );
        assert_eq!(PolicyScope::new("cn-north-1", "*").partition, "aws-cn");
        assert_eq!(
            PolicyScope::new("us-gov-west-1", "*").partition,
            "aws-us-gov"
        );
    }

    /// The EBS CSI statements go to the servers only (where the controller runs), scoped to
    /// this region and account, and the role's inline policy stays under IAM's 10,240
    /// characters.
    #[test]
    fn only_servers_may_manage_ebs_volumes_in_their_region_and_account() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates/dev.yaml");
        let env = crate::template::load(&path).unwrap().env;
        let scope = PolicyScope::new("eu-west-1", "123456789012");
        let server = instance_role_policy(&env, NodeRole::K3sServer, &scope).to_string();
        let agent = instance_role_policy(&env, NodeRole::K3sAgent, &scope).to_string();
        assert!(server.contains("ec2:CreateVolume") && server.contains("ec2:AttachVolume"));
        assert!(server.contains("arn:aws:ec2:eu-west-1:123456789012:volume/*"));
        assert!(!server.contains("REGION") && !server.contains("ACCOUNT"));
        assert!(!agent.contains("ec2:"), "{agent}");
        assert!(server.len() < 10_240, "{} characters", server.len());
        let cn = instance_role_policy(
            &env,
            NodeRole::K3sServer,
            &PolicyScope::new("cn-north-1", "1"),
        )
        .to_string();
        assert!(cn.contains("arn:aws-cn:ec2:cn-north-1:1:volume/*") && !cn.contains("arn:aws:"));
    }
}
