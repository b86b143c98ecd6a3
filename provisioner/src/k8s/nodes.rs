//! Nodes whose instance is gone. An Auto Scaling group replaces an instance (a failed health
//! check, a roll onto a new launch template, a lost Spot/zone) but the old Node object stays,
//! NotReady, for ever — and for a k3s server its etcd member with it, counting against the
//! quorum. `up` removes such Nodes, without a controller: a Node is departed when it has been
//! NotReady for at least a grace period and its InternalIP is no running instance's private
//! address in this environment. Deleting a server's Node makes k3s remove its etcd member (k3s'
//! etcd member controller, `pkg/etcd`, acts on the Node's removal through its finalizer).

use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams};
use kube::Client;

/// How long a Node must have been NotReady before it can count as departed: a rebooting
/// instance or a kubelet restart comes back well within it.
pub const DEPARTED_AFTER: Duration = Duration::from_secs(10 * 60);

/// Why `node` counts as departed (its name and why), given the private addresses of the
/// environment's running instances; `None` to keep it.
pub fn departed(
    node: &Node,
    live_ips: &[String],
    now: Timestamp,
    grace: Duration,
) -> Option<String> {
    let name = node.metadata.name.clone()?;
    let status = node.status.as_ref()?;
    let ready = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if ready.status == "True" {
        return None;
    }
    let since = ready.last_transition_time.as_ref()?.0;
    let not_ready_for = now.duration_since(since);
    if not_ready_for.as_secs() < grace.as_secs() as i64 {
        return None;
    }
    let ip = status
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")?
        .address
        .clone();
    if live_ips.iter().any(|l| l == &ip) {
        return None;
    }
    Some(format!(
        "{name}: NotReady for {}s and {ip} is no running instance of the environment",
        not_ready_for.as_secs()
    ))
}

/// Deletes every departed Node (see the module docs) and says which. With no running
/// instance listed (the listing failed or is empty) nothing is deleted.
pub async fn remove_departed_nodes(
    client: &Client,
    live_ips: &[String],
    grace: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
) -> anyhow::Result<Vec<String>> {
    if live_ips.is_empty() {
        return Ok(Vec::new());
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default())
        .await
        .context("listing the cluster's Nodes")?;
    let now = Timestamp::now();
    let mut removed = Vec::new();
    for n in &list.items {
        let Some(why) = departed(n, live_ips, now, grace) else {
            continue;
        };
        let name = n.metadata.name.clone().unwrap_or_default();
        progress(&format!("removing Node {why}"));
        nodes
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting Node {name}"))?;
        removed.push(name);
    }
    Ok(removed)
}
