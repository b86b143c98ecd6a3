//! The provisioner's real k3s server user-data, rendered for `vpc-templates/dev.yaml` and
//! booted by the twin on two instances: the election, the token read through the role, the k3s
//! download checked against its checksum file, the stand-in install, the join through the NLB
//! name, and the kubeconfig published to SSM.

use super::aws_world::Aws;
use super::standin::protocol_double_with;
use anyhow::{anyhow, Context, Result};
use harness::twin::{NodeTwin, Pki, TwinConfig};
use provisioner::bootstrap::{
    instance_role_policy, user_data, Endpoints, ParameterNames, PolicyScope,
};
use provisioner::template::NodeRole;
use std::path::Path;
use std::time::{Duration, Instant};

const SERVER_TOKEN: &str = "K10twin-real-userdata-server-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_boots_the_real_server_user_data_one_initialises_one_joins() -> Result<()> {
    let emu = harness::emulator().await?;
    let aws = Aws::new(&emu.endpoint).await;
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates/dev.yaml");
    let env = provisioner::template::load(&template)
        .map_err(|e| anyhow!("{e}"))?
        .env;
    let env_name = env.name.to_string();
    let pool = env
        .node_pools
        .iter()
        .find(|p| p.role == NodeRole::K3sServer)
        .context("dev.yaml has a server pool")?;
    let subnet = aws.subnet().await?;
    let image = aws.image().await?;
    let nlb = aws.nlb("twin-k8s-api", &subnet).await?;
    let endpoints = Endpoints::for_env(&env, &nlb);
    let script = user_data(&env, pool, &endpoints)?;
    let names = ParameterNames::new(&env.name);
    let policy = instance_role_policy(
        &env,
        NodeRole::K3sServer,
        &PolicyScope::new("us-east-1", "123456789012"),
    );
    let role = aws.role_with_policy("twin-dev-server", &policy).await?;
    aws.instance_profile("twin-dev-server", &role.name).await?;
    aws.put_secure(&names.token(), SERVER_TOKEN).await?;
    aws.launch_template("twin-dev-server", &image, &script, Some("twin-dev-server"))
        .await?;

    let pki = Pki::new()?;
    let (api, seen) = protocol_double_with(&pki, SERVER_TOKEN).await?;
    let mut config = TwinConfig::new(&emu.endpoint, &env_name, super::standin());
    config.kube_api = Some(api.addr());
    config.pki = Some(pki);
    let twin = NodeTwin::start(config).await?;
    let started = Instant::now();
    aws.group("twin-dev-servers", "twin-dev-server", &subnet, &env_name, 2)
        .await?;
    let done = twin.wait_all_finished(Duration::from_secs(180)).await?;
    eprintln!("two servers booted in {:?}", started.elapsed());
    assert_eq!(done.len(), 2);
    for inst in &done {
        assert!(inst.status.succeeded(), "{}", twin.summary());
        let log = inst.log_text();
        assert!(!log.contains(SERVER_TOKEN), "the token leaked:\n{log}");
        assert!(log.contains("checksum of k3s verified"), "{log}");
    }
    let initialiser: Vec<_> = done
        .iter()
        .filter(|i| i.log_text().contains("this server initialises the cluster"))
        .collect();
    assert_eq!(initialiser.len(), 1, "{}", twin.summary());
    let joiner = done.iter().find(|i| i.id != initialiser[0].id).unwrap();
    assert!(
        joiner
            .log_text()
            .contains(&format!("joining the cluster through https://{nlb}:6443")),
        "{}",
        twin.summary()
    );

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        paths
            .iter()
            .filter(|p| **p == "/twin/v1/cluster-init")
            .count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| **p == "/twin/v1/join").count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| **p == "/api/v1/nodes").count(),
        2,
        "{paths:?}"
    );

    let lock = aws
        .ssm
        .get_parameter()
        .name(names.init_lock())
        .send()
        .await?;
    assert_eq!(
        lock.parameter().and_then(|p| p.value()),
        Some(initialiser[0].id.as_str())
    );
    let kubeconfig = aws
        .ssm
        .get_parameter()
        .name(names.kubeconfig())
        .with_decryption(true)
        .send()
        .await?;
    let kubeconfig = kubeconfig
        .parameter()
        .and_then(|p| p.value())
        .context("no kubeconfig published")?;
    assert!(
        kubeconfig.contains(&format!("server: https://{}:6443", endpoints.api_name)),
        "{kubeconfig}"
    );
    assert!(kubeconfig.contains("token: admin-123"), "{kubeconfig}");
    Ok(())
}
