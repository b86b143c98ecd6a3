//! Credentials that AWS refuses are reported as such: the preflight's calls answered, through
//! the fault proxy, as AWS answers an unknown key, an expired session token or a missing
//! permission (each protocol with its own code) make `plan` fail once, naming the
//! credentials, where they came from, the code, and what to do — not a service "not available".

use provisioner::faultproxy::{CredentialsFault, FaultConfig, FaultProxy};

use crate::support::{provisioner, Dev, LIMIT};

struct Case {
    fault: CredentialsFault,
    /// Signing names of the services refused (empty: all).
    services: &'static [&'static str],
    /// What the error line must say.
    says: &'static [&'static str],
}

#[tokio::test]
async fn refused_credentials_are_named_not_taken_for_a_missing_service() -> anyhow::Result<()> {
    let fixture = Dev::start().await?;
    let cases = [
        Case {
            fault: CredentialsFault::UnknownKey,
            services: &["ssm"],
            says: &[
                "UnrecognizedClientException from ssm:DescribeParameters",
                "AWS does not accept them",
                "check that AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            ],
        },
        Case {
            fault: CredentialsFault::Expired,
            services: &[],
            says: &[
                "RequestExpired from ec2:DescribeAvailabilityZones",
                "ExpiredToken from autoscaling:DescribeAutoScalingGroups, iam:ListRoles",
                "ExpiredTokenException from ssm:DescribeParameters",
                "they have expired",
                "AWS_SESSION_TOKEN and its keys have expired",
            ],
        },
        Case {
            fault: CredentialsFault::AccessDenied,
            services: &["elasticloadbalancing"],
            says: &[
                "AccessDenied from elbv2:DescribeLoadBalancers",
                "not allowed to make these calls",
                "needs those permissions",
            ],
        },
    ];
    for case in cases {
        let proxy = FaultProxy::start(
            &fixture.emu.endpoint,
            "127.0.0.1:0".parse()?,
            FaultConfig {
                throttle: 0.0,
                server_error: 0.0,
                ..FaultConfig::default()
            },
        )
        .await?;
        proxy.refuse_credentials(Some(case.fault), case.services);
        let run = provisioner(
            &proxy.endpoint(),
            &["plan", "-f", fixture.template()],
            LIMIT,
        )
        .await?;
        run.expect_code(1, &format!("plan with {:?} credentials", case.fault));
        let errors: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "one error line:\n{}", run.stderr);
        let line = errors[0];
        println!("{:?}: {line}", case.fault);
        assert!(
            line.starts_with(
                "error: credentials from the environment (AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN): "
            ),
            "names where the credentials came from: {line}"
        );
        for s in case.says {
            assert!(line.contains(s), "{:?}: says {s:?}: {line}", case.fault);
        }
        assert!(
            !run.stderr.contains("not available") && !run.stderr.contains("LocalStack"),
            "{:?} taken for a missing service:\n{}",
            case.fault,
            run.stderr
        );
        // Refused credentials are not retried: each refused service was asked once.
        let stats = proxy.stats();
        assert!(stats.credentials_refused > 0, "{stats:?}");
        for (call, n) in &stats.by_call {
            assert_eq!(*n, 1, "{call} asked {n} times: {stats:#?}");
        }
    }
    Ok(())
}
