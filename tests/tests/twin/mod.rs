//! The node twin's own checks: each stand-in behaves as the AWS (or GitHub, or k3s) part it
//! stands in for, reached the way the nodes reach it — through curl.

mod aws_world;
mod real_userdata;
mod standin;

use anyhow::{Context, Result};
use harness::twin::{
    CredentialRegistry, Imds, ImdsConfig, InstanceRole, Mirror, Pki, SsmFront, SsmFrontConfig,
};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The k3s stand-in built with this test binary.
pub fn standin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_k3s-standin"))
}

/// Runs curl with `args`, `stdin` on its standard input.
pub fn curl(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("curl output")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn connect(host_port: &str, addr: SocketAddr) -> String {
    format!("{host_port}:{}:{}", addr.ip(), addr.port())
}

fn imds_config(tokens_required: bool, hop_limit: u8, role: Option<InstanceRole>) -> ImdsConfig {
    ImdsConfig {
        instance_id: "i-0123456789abcdef0".into(),
        instance_type: "t3.medium".into(),
        image_id: "ami-12345678".into(),
        local_ipv4: "10.0.1.23".into(),
        region: "us-east-1".into(),
        availability_zone: "us-east-1a".into(),
        domain: "amazonaws.com".into(),
        tokens_required,
        hop_limit,
        role,
        user_data: None,
    }
}

/// An STS client for stubs that never call it (no role).
async fn unused_sts() -> aws_sdk_sts::Client {
    aws_world::Aws::new("http://127.0.0.1:9").await.sts
}

/// `PUT /latest/api/token` from `source` (127.0.0.1: the instance, 127.0.0.2: a pod).
fn imds_token(imds: SocketAddr, source: &str) -> Output {
    curl(
        &[
            "--interface",
            source,
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            "--connect-to",
            &connect("169.254.169.254:80", imds),
            "http://169.254.169.254/latest/api/token",
        ],
        "",
    )
}

fn imds_get(imds: SocketAddr, path: &str, token: Option<&str>) -> (String, String) {
    let header = format!("X-aws-ec2-metadata-token: {}", token.unwrap_or(""));
    let mut args = vec!["-o", "-", "-w", "\n%{http_code}", "--connect-to"];
    let target = connect("169.254.169.254:80", imds);
    args.push(&target);
    if token.is_some() {
        args.extend(["-H", &header]);
    }
    let url = format!("http://169.254.169.254/latest/meta-data/{path}");
    args.push(&url);
    let out = stdout(&curl(&args, ""));
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
    (code.to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_imds_requires_the_token_when_the_template_says_so() -> Result<()> {
    let imds = Imds::start(
        imds_config(true, 1, None),
        unused_sts().await,
        CredentialRegistry::default(),
    )
    .await?;
    let addr = imds.addr();
    assert_eq!(imds_get(addr, "instance-id", None).0, "401");
    assert_eq!(imds_get(addr, "instance-id", Some("forged")).0, "401");
    let put = imds_token(addr, "127.0.0.1");
    assert!(put.status.success(), "{put:?}");
    let token = stdout(&put);
    assert_eq!(
        imds_get(addr, "instance-id", Some(&token)),
        ("200".to_owned(), "i-0123456789abcdef0".to_owned())
    );
    assert_eq!(
        imds_get(addr, "placement/region", Some(&token)).1,
        "us-east-1"
    );
    assert_eq!(imds_get(addr, "local-ipv4", Some(&token)).1, "10.0.1.23");
    assert_eq!(
        imds_get(addr, "services/domain", Some(&token)).1,
        "amazonaws.com"
    );
    // No role: nothing under security-credentials.
    assert_eq!(
        imds_get(addr, "iam/security-credentials/", Some(&token)).0,
        "404"
    );
    // A PUT without a TTL is refused.
    let no_ttl = curl(
        &[
            "-X",
            "PUT",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--connect-to",
            &connect("169.254.169.254:80", addr),
            "http://169.254.169.254/latest/api/token",
        ],
        "",
    );
    assert_eq!(stdout(&no_ttl), "400");

    let optional = Imds::start(
        imds_config(false, 1, None),
        unused_sts().await,
        CredentialRegistry::default(),
    )
    .await?;
    assert_eq!(
        imds_get(optional.addr(), "instance-type", None),
        ("200".to_owned(), "t3.medium".to_owned())
    );
    assert_eq!(
        imds_get(optional.addr(), "instance-type", Some("forged")).0,
        "401",
        "an invalid token is refused even when tokens are optional"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_imds_hop_limit_keeps_the_token_from_a_pod() -> Result<()> {
    let one_hop = Imds::start(
        imds_config(true, 1, None),
        unused_sts().await,
        CredentialRegistry::default(),
    )
    .await?;
    let from_pod = imds_token(one_hop.addr(), "127.0.0.2");
    assert!(
        !from_pod.status.success() && stdout(&from_pod).is_empty(),
        "a pod one hop further away must get no token with hop limit 1: {from_pod:?}"
    );
    assert!(imds_token(one_hop.addr(), "127.0.0.1").status.success());

    let two_hops = Imds::start(
        imds_config(true, 2, None),
        unused_sts().await,
        CredentialRegistry::default(),
    )
    .await?;
    let from_pod = imds_token(two_hops.addr(), "127.0.0.2");
    assert!(from_pod.status.success(), "{from_pod:?}");
    assert!(!stdout(&from_pod).is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_mirror_checksum_file_matches_the_served_binary() -> Result<()> {
    let pki = Pki::new()?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    pki.write_ca_pem(&ca)?;
    let mirror = Mirror::start(&pki, standin()).await?;
    let ca = ca.to_str().unwrap();
    let fetch = |host: &str, path: &str, out: &Path| {
        let o = curl(
            &[
                "-fL",
                "--cacert",
                ca,
                "--connect-to",
                &connect(&format!("{host}:443"), mirror.addr()),
                "-o",
                out.to_str().unwrap(),
                &format!("https://{host}{path}"),
            ],
            "",
        );
        assert!(o.status.success(), "GET https://{host}{path}: {o:?}");
    };
    let release = "/k3s-io/k3s/releases/download/v1.34.1%2Bk3s1";
    fetch(
        "github.com",
        &format!("{release}/k3s"),
        &dir.path().join("k3s"),
    );
    fetch(
        "github.com",
        &format!("{release}/sha256sum-amd64.txt"),
        &dir.path().join("sums"),
    );
    fetch(
        "raw.githubusercontent.com",
        "/k3s-io/k3s/v1.34.1%2Bk3s1/install.sh",
        &dir.path().join("install.sh"),
    );
    // The product's mirror layout: <base>/<version, URL-encoded>/<asset>.
    fetch(
        "k3s-mirror.example.internal",
        "/v1.34.1%2Bk3s1/k3s",
        &dir.path().join("k3s.mirror"),
    );
    fetch(
        "k3s-mirror.example.internal",
        "/v1.34.1%2Bk3s1/sha256sum-amd64.txt",
        &dir.path().join("sums.mirror"),
    );

    // The check the user-data makes, with the same tools.
    let check = Command::new("sh")
        .arg("-c")
        .arg(
            r#"set -e; cd "$1"
expected=$(awk -v asset=k3s '$2 == asset { print $1 }' sums)
actual=$(sha256sum k3s | awk '{ print $1 }')
[ -n "$expected" ] && [ "$expected" = "$actual" ]
cmp k3s k3s.mirror; cmp sums sums.mirror
echo "$actual""#,
        )
        .arg("check")
        .arg(dir.path())
        .output()?;
    assert!(check.status.success(), "{check:?}");
    assert_eq!(stdout(&check).trim(), mirror.k3s_sha256());
    let served = std::fs::read(dir.path().join("k3s"))?;
    assert_eq!(
        served,
        std::fs::read(standin())?,
        "the stand-in's real bytes"
    );
    let sums = std::fs::read_to_string(dir.path().join("sums"))?;
    assert!(
        sums.lines()
            .all(|l| l.len() > 66 && l.as_bytes()[64..66] == *b"  "),
        "`<sha256>  <asset>` lines: {sums:?}"
    );
    let install = std::fs::read_to_string(dir.path().join("install.sh"))?;
    assert!(install.contains("STAND-IN"), "{install}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_ssm_front_checks_signature_token_and_policy() -> Result<()> {
    let emu = harness::emulator().await?;
    let aws = aws_world::Aws::new(&emu.endpoint).await;
    let allowed = "/twin/test/allowed";
    let denied = "/twin/test/denied";
    let role = aws
        .role_with_policy(
            "twin-test-node",
            &serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Action": "ssm:GetParameter",
                    "Resource": "arn:aws:ssm:us-east-1:*:parameter/twin/test/allow*",
                }],
            }),
        )
        .await?;
    aws.put_secure(allowed, "allowed-value").await?;
    aws.put_secure(denied, "denied-value").await?;

    let pki = Pki::new()?;
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    pki.write_ca_pem(&ca)?;
    let registry = CredentialRegistry::default();
    let log = dir.path().join("ssm-front.log");
    let front = SsmFront::start(
        SsmFrontConfig {
            emulator_endpoint: emu.endpoint.clone(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            log_path: log.clone(),
        },
        &pki,
        aws.iam.clone(),
        registry.clone(),
    )
    .await?;
    let imds = Imds::start(
        imds_config(true, 1, Some(role.clone())),
        aws.sts.clone(),
        registry.clone(),
    )
    .await?;
    let token = stdout(&imds_token(imds.addr(), "127.0.0.1"));
    let (code, role_name) = imds_get(imds.addr(), "iam/security-credentials/", Some(&token));
    assert_eq!(
        (code.as_str(), role_name.as_str()),
        ("200", role.name.as_str())
    );
    let (code, creds) = imds_get(
        imds.addr(),
        &format!("iam/security-credentials/{}", role.name),
        Some(&token),
    );
    assert_eq!(code, "200", "{creds}");
    let creds: serde_json::Value = serde_json::from_str(&creds)?;
    let key = creds["AccessKeyId"].as_str().context("AccessKeyId")?;
    let secret = creds["SecretAccessKey"].as_str().context("secret")?;
    let session = creds["Token"].as_str().context("Token")?;
    assert!(key.starts_with("ASIA"), "temporary credentials: {key}");

    let ca = ca.to_str().unwrap();
    let ssm_host = "ssm.us-east-1.amazonaws.com:443";
    let call = |name: &str, user: &str, session: &str, signed: bool| -> (String, String) {
        let body = format!(r#"{{"Name":"{name}","WithDecryption":true}}"#);
        let mut args = vec![
            "--cacert",
            ca,
            "-w",
            "\n%{http_code}",
            "-H",
            "X-Amz-Target: AmazonSSM.GetParameter",
            "-H",
            "Content-Type: application/x-amz-json-1.1",
            "--data-binary",
            &body,
        ];
        let target = connect(ssm_host, front.addr());
        args.extend(["--connect-to", &target]);
        if signed {
            args.extend(["-K", "-", "--aws-sigv4", "aws:amz:us-east-1:ssm"]);
        }
        args.push("https://ssm.us-east-1.amazonaws.com/");
        let config = format!("user = \"{user}\"\nheader = \"X-Amz-Security-Token: {session}\"\n");
        let out = stdout(&curl(&args, &config));
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        (code.to_owned(), body.to_owned())
    };
    let user = format!("{key}:{secret}");

    let (code, body) = call(allowed, &user, session, true);
    assert_eq!(code, "200", "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(answer["Parameter"]["Value"], "allowed-value");

    let (code, body) = call(denied, &user, session, true);
    assert_eq!(code, "400");
    assert!(
        body.contains(r#""__type":"AccessDeniedException""#) && body.contains(denied),
        "{body}"
    );
    let (code, body) = call(allowed, &user, session, false);
    assert_eq!(code, "400");
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
    let (code, body) = call(allowed, &format!("{key}:wrong-secret"), session, true);
    assert_eq!(code, "400");
    assert!(body.contains("InvalidSignatureException"), "{body}");
    let (code, body) = call(allowed, &user, "not-the-session-token", true);
    assert_eq!(code, "400");
    assert!(body.contains("UnrecognizedClientException"), "{body}");
    // Keys the twin never issued (the harness's own) are not a node's.
    let (code, body) = call(allowed, "testing:testing", session, true);
    assert_eq!(code, "400");
    assert!(body.contains("UnrecognizedClientException"), "{body}");

    let decisions = front.decisions();
    let outcome: Vec<(bool, &str)> = decisions
        .iter()
        .map(|d| (d.allowed, d.resource.as_str()))
        .collect();
    let allowed_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/twin/test/allowed";
    let denied_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/twin/test/denied";
    assert_eq!(outcome[0], (true, allowed_arn));
    assert_eq!(outcome[1], (false, denied_arn));
    assert!(
        decisions[1].reason.contains("ImplicitDeny"),
        "{decisions:?}"
    );
    assert_eq!(decisions[1].role.as_deref(), Some(role.name.as_str()));
    assert_eq!(decisions.len(), 6);
    let logged = std::fs::read_to_string(&log)?;
    assert_eq!(logged.lines().count(), 6, "{logged}");
    for secret_text in ["allowed-value", "denied-value", secret, session] {
        assert!(
            !logged.contains(secret_text),
            "the log shows a secret:\n{logged}"
        );
    }
    Ok(())
}
