//! The provisioner's real k3s user-data, rendered for `vpc-templates/dev.yaml` and booted by
//! the twin on two servers and an agent: the election, the tokens read through each role, the
//! k3s download (GitHub for the servers; `cluster.k3s_mirror` with the air-gap images for the
//! agent) checked against its checksum file, the stand-in install, the joins through the NLB
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
const AGENT_TOKEN: &str = "K10twin-real-userdata-agent-token";
const MIRROR_HOST: &str = "k3s-mirror.twin.internal";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_boots_the_real_user_data_one_server_initialises_the_others_join() -> Result<()> {
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
    // The agents fetch k3s, and the air-gap images, from a mirror.
    let mut mirrored = env.clone();
    mirrored.cluster.k3s_mirror = Some(format!("https://{MIRROR_HOST}/k3s/"));
    mirrored.cluster.k3s_airgap_images = true;
    let agent_pool = mirrored
        .node_pools
        .iter()
        .find(|p| p.role == NodeRole::K3sAgent)
        .context("dev.yaml has an agent pool")?;
    let agent_script = user_data(&mirrored, agent_pool, &endpoints)?;
    let names = ParameterNames::new(&env.name);
    let scope = PolicyScope::new("us-east-1", "123456789012");
    for (name, role, script) in [
        ("twin-dev-server", NodeRole::K3sServer, &script),
        ("twin-dev-agent", NodeRole::K3sAgent, &agent_script),
    ] {
        let policy = instance_role_policy(&env, role, &scope);
        let role = aws.role_with_policy(name, &policy).await?;
        aws.instance_profile(name, &role.name).await?;
        aws.launch_template(name, &image, script, Some(name))
            .await?;
    }
    aws.put_secure(&names.token(), SERVER_TOKEN).await?;
    aws.put_secure(&names.agent_token(), AGENT_TOKEN).await?;

    let pki = Pki::new()?;
    let (api, seen) = protocol_double_with(&pki, SERVER_TOKEN, AGENT_TOKEN).await?;
    let mut config = TwinConfig::new(&emu.endpoint, &env_name, super::standin());
    config.kube_api = Some(api.addr());
    config.mirror_hosts = vec![(MIRROR_HOST.to_owned(), 443)];
    config.pki = Some(pki);
    let twin = NodeTwin::start(config).await?;
    let started = Instant::now();
    aws.group("twin-dev-servers", "twin-dev-server", &subnet, &env_name, 2)
        .await?;
    aws.group("twin-dev-agents", "twin-dev-agent", &subnet, &env_name, 1)
        .await?;
    twin.wait_for_instances(3, Duration::from_secs(30)).await?;
    let done = twin.wait_all_finished(Duration::from_secs(180)).await?;
    eprintln!("two servers and an agent booted in {:?}", started.elapsed());
    assert_eq!(done.len(), 3);
    for inst in &done {
        assert!(inst.status.succeeded(), "{}", twin.summary());
        let log = inst.log_text();
        for token in [SERVER_TOKEN, AGENT_TOKEN] {
            assert!(!log.contains(token), "a token leaked:\n{log}");
        }
    }
    let (servers, agents): (Vec<_>, Vec<_>) =
        done.iter().partition(|i| i.group == "twin-dev-servers");
    let agent = agents[0];
    let agent_log = agent.log_text();
    assert!(
        agent_log.contains(&format!("from https://{MIRROR_HOST}/k3s/v1.34.1%2Bk3s1")),
        "{agent_log}"
    );
    assert!(
        agent
            .root
            .join("var/lib/rancher/k3s/agent/images/k3s-airgap-images-amd64.tar.zst")
            .exists(),
        "{agent_log}"
    );
    assert!(
        std::fs::read_to_string(agent.root.join("etc/rancher/k3s/token"))?.trim() == AGENT_TOKEN,
        "the agent holds the agent token"
    );
    let initialiser: Vec<_> = servers
        .iter()
        .filter(|i| i.log_text().contains("this server initialises the cluster"))
        .collect();
    assert_eq!(initialiser.len(), 1, "{}", twin.summary());
    let joiner = servers.iter().find(|i| i.id != initialiser[0].id).unwrap();
    assert!(
        joiner
            .log_text()
            .contains(&format!("joining the cluster through https://{nlb}:6443")),
        "{}",
        twin.summary()
    );

    // An agent's unit is `Type=exec`: its user-data ends once k3s is started, and the node
    // registers a moment later (what `up`'s Ready-nodes wait is for).
    let registered = Instant::now();
    let node_count = || {
        let seen = seen.lock().unwrap();
        seen.iter().filter(|(p, _, _)| p == "/api/v1/nodes").count()
    };
    while node_count() < 3 {
        assert!(
            registered.elapsed() < Duration::from_secs(20),
            "{}\nagent k3s log:\n{}",
            twin.summary(),
            std::fs::read_to_string(&agent.k3s_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
        2,
        "{paths:?}"
    );
    let nodes: Vec<_> = seen
        .iter()
        .filter(|(p, _, _)| p == "/api/v1/nodes")
        .collect();
    assert_eq!(nodes.len(), 3, "{paths:?}");
    let agent_node = format!("ip-{}", agent.private_ip.replace('.', "-"));
    let registered = nodes
        .iter()
        .find(|(_, _, body)| body["metadata"]["name"] == agent_node.as_str())
        .context("the agent's node")?;
    assert_eq!(registered.1.as_deref(), Some(AGENT_TOKEN));

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

/// A node whose instance profile has no role (or none attached) gets no credentials from its
/// metadata: its real user-data says so in one line, reads nothing, and never joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_a_node_without_role_credentials_says_so_and_never_joins() -> Result<()> {
    let emu = harness::emulator().await?;
    let aws = Aws::new(&emu.endpoint).await;
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vpc-templates/dev.yaml");
    let env = provisioner::template::load(&template)
        .map_err(|e| anyhow!("{e}"))?
        .env;
    let agent_pool = env
        .node_pools
        .iter()
        .find(|p| p.role == NodeRole::K3sAgent)
        .context("dev.yaml has an agent pool")?;
    let subnet = aws.subnet().await?;
    let image = aws.image().await?;
    let nlb = aws.nlb("twin-k8s-api", &subnet).await?;
    let script = user_data(&env, agent_pool, &Endpoints::for_env(&env, &nlb))?;
    aws.put_secure(&ParameterNames::new(&env.name).agent_token(), AGENT_TOKEN)
        .await?;
    // No instance profile on the launch template.
    aws.launch_template("twin-no-role", &image, &script, None)
        .await?;
    let pki = Pki::new()?;
    let (api, seen) = protocol_double_with(&pki, SERVER_TOKEN, AGENT_TOKEN).await?;
    let mut config = TwinConfig::new(&emu.endpoint, env.name.as_str(), super::standin());
    config.kube_api = Some(api.addr());
    config.pki = Some(pki);
    let twin = NodeTwin::start(config).await?;
    aws.group(
        "twin-no-role-agents",
        "twin-no-role",
        &subnet,
        env.name.as_str(),
        1,
    )
    .await?;
    let booted = twin.wait_for_instances(1, Duration::from_secs(30)).await?;
    let id = booted[0].id.clone();
    twin.wait_for_log(
        &id,
        "no instance role credentials in the metadata (iam/security-credentials/): is the instance profile attached?",
        Duration::from_secs(60),
    )
    .await?;
    // Its next retry (10 s on) fails the same way, silently.
    let deadline = Instant::now() + Duration::from_secs(40);
    let log = loop {
        let log = twin.instance(&id).context("the instance")?.log_text();
        if log.matches("GetParameter").count() >= 2 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(log.matches("GetParameter").count() >= 2, "{log}");
    assert_eq!(
        log.matches("no instance role credentials").count(),
        1,
        "said once, not on every retry:\n{log}"
    );
    assert!(!log.contains("join token read"), "{log}");
    assert!(!log.contains(AGENT_TOKEN), "{log}");
    assert!(
        twin.ssm_decisions().is_empty(),
        "nothing reached SSM: {:?}",
        twin.ssm_decisions()
    );
    drop(seen);
    Ok(())
}
