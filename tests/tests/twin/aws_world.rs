//! An environment made through the SDK against the emulator (role, instance profile, SSM
//! parameters, VPC, launch template, Auto Scaling group), and the runner booting its instances'
//! real user-data.

use anyhow::{Context, Result};
use harness::twin::{InstanceRole, InstanceStatus, NodeTwin, TwinConfig};
use std::time::Duration;

/// SDK clients on the emulator, with the harness's credentials.
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub iam: aws_sdk_iam::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
}

impl Aws {
    pub async fn new(endpoint: &str) -> Self {
        use aws_smithy_http_client::tls;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "twin-tests",
            ))
            .load()
            .await;
        Self {
            ec2: aws_sdk_ec2::Client::new(&conf),
            autoscaling: aws_sdk_autoscaling::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            ssm: aws_sdk_ssm::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
        }
    }

    /// A role EC2 may assume, with one inline policy.
    pub async fn role_with_policy(
        &self,
        name: &str,
        policy: &serde_json::Value,
    ) -> Result<InstanceRole> {
        let trust = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                           "Action": "sts:AssumeRole"}],
        });
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await?;
        self.iam
            .put_role_policy()
            .role_name(name)
            .policy_name("node")
            .policy_document(policy.to_string())
            .send()
            .await?;
        let role = role.role().context("CreateRole returned no role")?;
        Ok(InstanceRole {
            name: role.role_name().to_owned(),
            arn: role.arn().to_owned(),
        })
    }

    /// An instance profile holding `role`.
    pub async fn instance_profile(&self, name: &str, role: &str) -> Result<()> {
        self.iam
            .create_instance_profile()
            .instance_profile_name(name)
            .send()
            .await?;
        self.iam
            .add_role_to_instance_profile()
            .instance_profile_name(name)
            .role_name(role)
            .send()
            .await?;
        Ok(())
    }

    pub async fn put_secure(&self, name: &str, value: &str) -> Result<()> {
        self.ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await?;
        Ok(())
    }

    /// A VPC with one subnet in us-east-1a; the subnet's id.
    pub async fn subnet(&self) -> Result<String> {
        let vpc = self
            .ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await?;
        let vpc_id = vpc.vpc().and_then(|v| v.vpc_id()).context("vpc id")?;
        let subnet = self
            .ec2
            .create_subnet()
            .vpc_id(vpc_id)
            .cidr_block("10.0.1.0/24")
            .availability_zone("us-east-1a")
            .send()
            .await?;
        Ok(subnet
            .subnet()
            .and_then(|s| s.subnet_id())
            .context("subnet id")?
            .to_owned())
    }

    /// An internal network load balancer in `subnet`; its DNS name.
    pub async fn nlb(&self, name: &str, subnet: &str) -> Result<String> {
        let lb = self
            .elb
            .create_load_balancer()
            .name(name)
            .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
            .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
            .subnets(subnet)
            .send()
            .await?;
        Ok(lb
            .load_balancers()
            .first()
            .and_then(|l| l.dns_name())
            .context("the NLB has no DNS name")?
            .to_owned())
    }

    /// Any image the emulator knows.
    pub async fn image(&self) -> Result<String> {
        let images = self.ec2.describe_images().owners("amazon").send().await?;
        Ok(images
            .images()
            .iter()
            .find_map(|i| i.image_id())
            .context("the emulator lists no image")?
            .to_owned())
    }

    /// A launch template whose `UserData` is `script`, gzipped then base64 like cloud-init
    /// accepts, requiring IMDSv2 with hop limit 1, and with `profile` when given.
    pub async fn launch_template(
        &self,
        name: &str,
        image: &str,
        script: &str,
        profile: Option<&str>,
    ) -> Result<()> {
        use aws_sdk_ec2::types::{
            LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
            LaunchTemplateInstanceMetadataOptionsRequest, RequestLaunchTemplateData,
        };
        use base64::Engine;
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(script.as_bytes())?;
        let user_data = base64::engine::general_purpose::STANDARD.encode(gz.finish()?);
        let mut data = RequestLaunchTemplateData::builder()
            .image_id(image)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Medium)
            .user_data(user_data)
            .metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .http_tokens(LaunchTemplateHttpTokensState::Required)
                    .http_put_response_hop_limit(1)
                    .build(),
            );
        if let Some(profile) = profile {
            data = data.iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .name(profile)
                    .build(),
            );
        }
        self.ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(data.build())
            .send()
            .await?;
        Ok(())
    }

    /// A group of `size` instances from the template's `$Latest`, tagged for `env`.
    pub async fn group(
        &self,
        name: &str,
        template: &str,
        subnet: &str,
        env: &str,
        size: i32,
    ) -> Result<()> {
        use aws_sdk_autoscaling::types::{LaunchTemplateSpecification, Tag};
        self.autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(name)
            .launch_template(
                LaunchTemplateSpecification::builder()
                    .launch_template_name(template)
                    .version("$Latest")
                    .build(),
            )
            .min_size(size)
            .max_size(size)
            .desired_capacity(size)
            .vpc_zone_identifier(subnet)
            .tags(
                Tag::builder()
                    .key("provisioner:env")
                    .value(env)
                    .propagate_at_launch(true)
                    .build(),
            )
            .send()
            .await?;
        Ok(())
    }
}

/// The tiny user-data: IMDSv2, the role's credentials, SSM through `curl --aws-sigv4` (one
/// parameter its role may read, one it may not), the mirror through github.com, and proof that
/// an unmapped name does not leave the machine.
const BOOT_SCRIPT: &str = r##"#!/bin/sh
set -eu
IMDS=http://169.254.169.254
TOKEN=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$IMDS/latest/api/token")
md() { curl -fsS -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/$1"; }
REGION=$(md placement/region)
DOMAIN=$(md services/domain)
echo "instance $(md instance-id) ($(md instance-type)) in $(md placement/availability-zone) at $(md local-ipv4)"
ROLE=$(md iam/security-credentials/)
CREDS=$(md "iam/security-credentials/$ROLE")
field() { printf '%s' "$CREDS" | tr -d '\n' | sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }
get() {
    printf 'user = "%s:%s"\nheader = "X-Amz-Security-Token: %s"\n' \
        "$(field AccessKeyId)" "$(field SecretAccessKey)" "$(field Token)" |
        curl -sS -K - --aws-sigv4 "aws:amz:$REGION:ssm" \
            -H 'X-Amz-Target: AmazonSSM.GetParameter' \
            -H 'Content-Type: application/x-amz-json-1.1' \
            --data-binary "{\"Name\":\"$1\",\"WithDecryption\":true}" \
            "https://ssm.$REGION.$DOMAIN/"
}
answer=$(get /twin/boot/token)
case "$answer" in
*'"Value":"boot-secret"'*) echo "role $ROLE read the token" ;;
*) echo "token read FAILED: $(printf '%s' "$answer" | sed -n 's/.*"__type":"\([^"]*\)".*/\1/p')"; exit 1 ;;
esac
case "$(get /twin/other/x)" in
*AccessDeniedException*) echo "another parameter: AccessDeniedException" ;;
*) echo "another parameter was NOT denied"; exit 1 ;;
esac
curl -fsS -o "$TMPDIR/sums" "https://github.com/k3s-io/k3s/releases/download/v1.34.1%2Bk3s1/sha256sum-amd64.txt"
echo "checksums: $(cat "$TMPDIR/sums")"
if curl -sS --max-time 5 -o /dev/null https://example.com/ 2>/dev/null; then
    echo "an unmapped name was reached"; exit 1
fi
echo "root $K3S_BOOTSTRAP_ROOT, done"
"##;

/// A user-data that never ends on its own: a child sleeping, its pid written down.
const SLEEPER_SCRIPT: &str = r##"#!/bin/sh
sleep 600 &
echo "$!" >"$K3S_BOOTSTRAP_ROOT/run/sleeper.pid"
echo "sleeping"
wait
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_runner_boots_the_real_user_data_of_each_in_service_instance() -> Result<()> {
    let emu = harness::emulator().await?;
    let aws = Aws::new(&emu.endpoint).await;
    let role = aws
        .role_with_policy(
            "twin-boot-node",
            &serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["ssm:GetParameter"],
                               "Resource": "arn:aws:ssm:*:*:parameter/twin/boot/*"}],
            }),
        )
        .await?;
    aws.instance_profile("twin-boot-profile", &role.name)
        .await?;
    aws.put_secure("/twin/boot/token", "boot-secret").await?;
    aws.put_secure("/twin/other/x", "not-for-nodes").await?;
    let subnet = aws.subnet().await?;
    let image = aws.image().await?;
    aws.launch_template("twin-boot", &image, BOOT_SCRIPT, Some("twin-boot-profile"))
        .await?;
    aws.launch_template("twin-sleeper", &image, SLEEPER_SCRIPT, None)
        .await?;
    aws.group("twin-boot-asg", "twin-boot", &subnet, "twintest", 1)
        .await?;
    aws.group("twin-sleeper-asg", "twin-sleeper", &subnet, "twintest", 1)
        .await?;
    aws.group("someone-else", "twin-boot", &subnet, "another-env", 1)
        .await?;

    let twin =
        NodeTwin::start(TwinConfig::new(&emu.endpoint, "twintest", super::standin())).await?;
    let seen = twin.wait_for_instances(2, Duration::from_secs(30)).await?;
    let boot = seen.iter().find(|i| i.group == "twin-boot-asg").unwrap();
    let sleeper = seen.iter().find(|i| i.group == "twin-sleeper-asg").unwrap();
    let done = twin
        .wait_finished(&boot.id, Duration::from_secs(60))
        .await?;
    let log = done.log_text();
    assert!(done.status.succeeded(), "{:?}\n{log}", done.status);
    assert!(
        log.contains(&format!(
            "instance {} (t3.medium) in us-east-1a at 10.0.1.",
            boot.id
        )),
        "{log}"
    );
    assert!(log.contains("role twin-boot-node read the token"), "{log}");
    assert!(
        log.contains("another parameter: AccessDeniedException"),
        "{log}"
    );
    assert!(
        log.contains(&format!("checksums: {}  k3s", twin.k3s_sha256())),
        "{log}"
    );
    assert!(
        log.contains(&format!("root {}, done", boot.root.display())),
        "{log}"
    );
    assert!(!log.contains("boot-secret"));
    let decisions = twin.ssm_decisions();
    assert_eq!(
        decisions.iter().map(|d| d.allowed).collect::<Vec<_>>(),
        [true, false],
        "{decisions:?}"
    );
    assert_eq!(decisions[0].instance_id.as_deref(), Some(boot.id.as_str()));

    // The sleeper runs until killed, and its whole process tree dies with it.
    twin.wait_for_log(&sleeper.id, "sleeping", Duration::from_secs(30))
        .await?;
    let pid = std::fs::read_to_string(sleeper.root.join("run/sleeper.pid"))?;
    // Alive: it exists and is not a zombie waiting for init to reap it.
    let alive = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
            stat.rsplit(") ")
                .next()
                .is_some_and(|s| !s.starts_with('Z'))
        })
    };
    assert!(alive(&pid));
    assert_eq!(
        twin.instance(&sleeper.id).unwrap().status,
        InstanceStatus::Running
    );
    twin.kill_instance(&sleeper.id)?;
    let start = std::time::Instant::now();
    while alive(&pid) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the sleeper's child survived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        twin.instance(&sleeper.id).unwrap().status,
        InstanceStatus::Killed
    );
    // Only this environment's groups are booted.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(twin.instances().len(), 2, "{}", twin.summary());

    // An instance whose group is deleted is terminated: the twin stops it too.
    aws.autoscaling
        .delete_auto_scaling_group()
        .auto_scaling_group_name("twin-boot-asg")
        .force_delete(true)
        .send()
        .await?;
    let start = std::time::Instant::now();
    while !twin.instance(&boot.id).unwrap().terminated {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            twin.summary()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
