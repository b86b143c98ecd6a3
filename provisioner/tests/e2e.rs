//! End-to-end tests of the reconcile engine against the real moto emulator (through
//! `harness::emulator()`): up → plan (no changes) → down (nothing tagged left), per-resource
//! idempotency, drift, ownership, `down --env`.

mod e2e {
    pub mod architecture;
    pub mod boot;
    pub mod ci_examples;
    pub mod cli_output;
    pub mod counts;
    pub mod credentials;
    pub mod drift;
    pub mod idempotency;
    pub mod lifecycle;
    pub mod ownership;
    pub mod preflight;
}

use std::path::PathBuf;

use provisioner::aws::{AwsSettings, Cloud};
use provisioner::template::{self, Environment};

/// Point the SDK's credential chain at test credentials (moto accepts any).
pub fn sdk_env(guard: &harness::EmulatorGuard) {
    for (k, v) in guard.sdk_env() {
        if k != "AWS_ENDPOINT_URL" {
            std::env::set_var(k, v);
        }
    }
}

pub async fn cloud(guard: &harness::EmulatorGuard, env: &str) -> Cloud {
    sdk_env(guard);
    let mut c = Cloud::connect(
        &AwsSettings {
            region: "us-east-1".into(),
            endpoint_url: Some(guard.endpoint.clone()),
            profile: None,
        },
        env,
    )
    .await
    .expect("connect");
    c.wait_timeout = std::time::Duration::from_secs(60);
    c
}

pub fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates")
}

/// A template of vpc-templates/, with `cluster.k3s_version` pinned to the release the
/// bootstrap supports (`provisioner::bootstrap::K3S_VERSION`).
pub fn load(name: &str) -> Environment {
    parse(&load_source(name))
}

pub fn load_source(name: &str) -> String {
    let src = std::fs::read_to_string(templates_dir().join(name)).unwrap();
    src.lines()
        .map(|l| {
            if l.trim_start().starts_with("k3s_version:") {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!(
                    "{indent}k3s_version: {}\n",
                    provisioner::bootstrap::K3S_VERSION
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

pub fn parse(yaml: &str) -> Environment {
    template::parse_str(yaml, std::path::Path::new("inline.yaml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .env
}

/// SDK config for plain clients pointed at the emulator (to act "behind the provisioner's back").
pub async fn raw_conf(guard: &harness::EmulatorGuard) -> aws_config::SdkConfig {
    sdk_env(guard);
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&guard.endpoint)
        .load()
        .await
}

pub fn no_progress() -> impl Fn(String) + Sync {
    |_line: String| {}
}

/// A VPC made by hand, tagged for no environment (someone else's); its id.
pub async fn untagged_vpc(ec2: &aws_sdk_ec2::Client, cidr: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string()
}
