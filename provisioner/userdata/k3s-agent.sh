#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# k3s AGENT bootstrap (EC2 user-data). Rendered by the provisioner (`bootstrap::user_data`)
# with the environment's values; `provisioner render` writes the rendered copy.
#
# Agents join the HA control plane through the NLB on 6443 with the agent token read at boot
# from SSM Parameter Store; an agent's role cannot read the server token.
set -eu

ROLE=agent
ENV_NAME='@@ENV_NAME@@'
POOL_NAME='@@POOL_NAME@@'
K3S_VERSION='@@K3S_VERSION@@'
NLB_DNS='@@NLB_DNS@@'
AGENT_TOKEN_PARAM='@@AGENT_TOKEN_PARAM@@'
K3S_MIRROR='@@K3S_MIRROR@@'
K3S_AIRGAP_IMAGES='@@K3S_AIRGAP_IMAGES@@'
NODE_LABELS='@@NODE_LABELS@@'
NODE_TAINTS='@@NODE_TAINTS@@'

# The renderer inlines k3s-common.sh in place of the next two lines.
# shellcheck source=k3s-common.sh
. "$(dirname "$0")/k3s-common.sh" # @@INCLUDE k3s-common.sh@@

write_agent_config() {
    config="$ROOT$K3S_CONFIG_DIR/config.yaml"
    {
        printf '# written by the provisioner user-data for %s/%s\n' "$ENV_NAME" "$POOL_NAME"
        printf 'server: "https://%s:6443"\n' "$NLB_DNS"
        printf 'token-file: "%s/token"\n' "$K3S_CONFIG_DIR"
        printf 'node-ip: "%s"\n' "$PRIVATE_IP"
        write_node_labels
        write_node_taints
    } >"$config.tmp"
    mv "$config.tmp" "$config"
}

main() {
    log "k3s $K3S_VERSION agent bootstrap for $ENV_NAME/$POOL_NAME"
    read_metadata
    fetch_join_token "$AGENT_TOKEN_PARAM" token
    wait_for_api
    write_agent_config
    install_k3s agent
    log "done"
}

main "$@"
