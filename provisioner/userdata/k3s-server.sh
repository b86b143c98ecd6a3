#!/bin/sh
# shellcheck source-path=SCRIPTDIR
# k3s SERVER bootstrap (EC2 user-data). Rendered by the provisioner (`bootstrap::user_data`)
# with the environment's values; `provisioner render` writes the rendered copy.
#
# HA with embedded etcd: the server that wins the init election (an atomic create of an SSM
# parameter holding its instance id) starts with `cluster-init`; every other server joins
# through the NLB on 6443. If the winner never brings the API up (it died first), the others
# open a new election round after INIT_LEASE_SECONDS (`cluster.init_lease_secs`). The first
# server publishes the admin kubeconfig (server URL rewritten to the Route 53 API name) as a
# SecureString only the provisioner can read.
set -eu

ROLE=server
ENV_NAME='@@ENV_NAME@@'
POOL_NAME='@@POOL_NAME@@'
K3S_VERSION='@@K3S_VERSION@@'
NLB_DNS='@@NLB_DNS@@'
API_NAME='@@API_NAME@@'
TOKEN_PARAM='@@TOKEN_PARAM@@'
AGENT_TOKEN_PARAM='@@AGENT_TOKEN_PARAM@@'
K3S_MIRROR='@@K3S_MIRROR@@'
K3S_AIRGAP_IMAGES='@@K3S_AIRGAP_IMAGES@@'
KUBECONFIG_PARAM='@@KUBECONFIG_PARAM@@'
INIT_LOCK_PARAM='@@INIT_LOCK_PARAM@@'
INIT_LEASE_SECONDS='@@INIT_LEASE_SECONDS@@'
NODE_LABELS='@@NODE_LABELS@@'

# The renderer inlines k3s-common.sh in place of the next two lines.
# shellcheck source=k3s-common.sh
. "$(dirname "$0")/k3s-common.sh" # @@INCLUDE k3s-common.sh@@

# The init lock of election round $1: INIT_LOCK_PARAM, then INIT_LOCK_PARAM-2, -3 ...
lock_name() {
    if [ "$1" = 1 ]; then printf '%s' "$INIT_LOCK_PARAM"; else printf '%s-%s' "$INIT_LOCK_PARAM" "$1"; fi
}

# Sets FIRST_SERVER=1 when this instance holds the init lock of the latest round (it created
# it now, or on an earlier boot), FIRST_SERVER=0 when another instance does; ELECTION is that
# round. PutParameter without Overwrite is atomic: exactly one server wins a round. A round
# is only opened (by `take_over`) when its holder did not bring the API up within the lease.
elect_init_server() {
    ELECTION=${ELECTION:-1}
    elect_body=$(mktemp)
    elect_answer=$(mktemp)
    elect_n=0
    FIRST_SERVER=
    while [ -z "$FIRST_SERVER" ]; do
        elect_lock=$(lock_name "$ELECTION")
        printf '{"Name":"%s","Type":"String","Value":"%s","Tags":[{"Key":"provisioner:env","Value":"%s"}]}' \
            "$elect_lock" "$INSTANCE_ID" "$ENV_NAME" >"$elect_body"
        elect_status=$(ssm_call PutParameter "$elect_body" "$elect_answer")
        if [ "$elect_status" = 200 ]; then
            FIRST_SERVER=1
        elif grep -q ParameterAlreadyExists "$elect_answer" &&
            get_parameter "$elect_lock" "$elect_answer.holder"; then
            ELECTION_HOLDER=$(cat "$elect_answer.holder")
            if [ "$ELECTION_HOLDER" = "$INSTANCE_ID" ]; then
                FIRST_SERVER=1
            elif get_parameter "$(lock_name $((ELECTION + 1)))" "$elect_answer.next" 2>/dev/null; then
                # A later round exists: that one counts.
                ELECTION=$((ELECTION + 1))
            else
                FIRST_SERVER=0
            fi
        else
            elect_n=$((elect_n + 1))
            [ "$elect_n" -lt 30 ] || die "init election through $elect_lock failed (HTTP $elect_status)"
            sleep 10
        fi
    done
    rm -f "$elect_body" "$elect_answer" "$elect_answer.holder" "$elect_answer.next"
    if [ "$FIRST_SERVER" = 1 ]; then
        log "this server initialises the cluster (holds $elect_lock)"
    else
        log "joining the cluster through https://$NLB_DNS:6443 ($ELECTION_HOLDER holds $elect_lock)"
    fi
}

# A joining server waits for the API up to the lease; when the holder of the round never
# brought it up (it died before k3s answered), the next round is opened and elected.
join_or_take_over() {
    while [ "$FIRST_SERVER" = 0 ]; do
        log "waiting up to ${INIT_LEASE_SECONDS}s for the k3s API at https://$NLB_DNS:6443"
        # shellcheck disable=SC2086
        if retry $((INIT_LEASE_SECONDS / 5 + 1)) 5 curl $CURL_BOUNDS -ksf -o /dev/null "https://$NLB_DNS:6443/cacerts"; then
            return 0
        fi
        log "the API did not answer within ${INIT_LEASE_SECONDS}s of $ELECTION_HOLDER's election: opening round $((ELECTION + 1))"
        ELECTION=$((ELECTION + 1))
        elect_init_server
    done
}

write_server_config() {
    config="$ROOT$K3S_CONFIG_DIR/config.yaml"
    {
        printf '# written by the provisioner user-data for %s/%s\n' "$ENV_NAME" "$POOL_NAME"
        printf 'token-file: "%s/token"\n' "$K3S_CONFIG_DIR"
        printf 'agent-token-file: "%s/agent-token"\n' "$K3S_CONFIG_DIR"
        if [ "$FIRST_SERVER" = 1 ]; then
            printf 'cluster-init: true\n'
        else
            printf 'server: "https://%s:6443"\n' "$NLB_DNS"
        fi
        printf 'node-ip: "%s"\n' "$PRIVATE_IP"
        printf 'tls-san:\n'
        printf '  - "%s"\n' "$NLB_DNS"
        printf '  - "%s"\n' "$API_NAME"
        write_node_labels
        printf 'disable:\n  - traefik\n  - servicelb\n'
        # Only control-plane pods (and what tolerates it) run on the servers.
        printf 'node-taint:\n  - "CriticalAddonsOnly=true:NoExecute"\n'
        printf 'write-kubeconfig-mode: "0600"\n'
    } >"$config.tmp"
    mv "$config.tmp" "$config"
}

# The admin kubeconfig, server URL rewritten to the API name, as a SecureString. The
# instance role may put this parameter but not read it back; only the provisioner can.
publish_kubeconfig() {
    admin="$ROOT$K3S_CONFIG_DIR/k3s.yaml"
    retry 120 5 test -s "$admin" || die "k3s did not write $admin"
    pub_value=$(mktemp)
    sed "s#https://127.0.0.1:6443#https://$API_NAME:6443#" "$admin" |
        sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | awk '{ printf "%s\\n", $0 }' >"$pub_value"
    pub_create=$(mktemp)
    pub_overwrite=$(mktemp)
    pub_answer=$(mktemp)
    {
        printf '{"Name":"%s","Type":"SecureString","Tier":"Intelligent-Tiering",' "$KUBECONFIG_PARAM"
        printf '"Tags":[{"Key":"provisioner:env","Value":"%s"}],"Value":"' "$ENV_NAME"
        cat "$pub_value"
        printf '"}'
    } >"$pub_create"
    {
        printf '{"Name":"%s","Type":"SecureString","Tier":"Intelligent-Tiering",' "$KUBECONFIG_PARAM"
        printf '"Overwrite":true,"Value":"'
        cat "$pub_value"
        printf '"}'
    } >"$pub_overwrite"
    pub_n=0
    while :; do
        pub_status=$(ssm_call PutParameter "$pub_create" "$pub_answer")
        if [ "$pub_status" != 200 ] && grep -q ParameterAlreadyExists "$pub_answer"; then
            pub_status=$(ssm_call PutParameter "$pub_overwrite" "$pub_answer")
        fi
        [ "$pub_status" = 200 ] && break
        pub_n=$((pub_n + 1))
        if [ "$pub_n" -ge 30 ]; then
            rm -f "$pub_value" "$pub_create" "$pub_overwrite" "$pub_answer"
            die "could not publish the kubeconfig to $KUBECONFIG_PARAM (HTTP $pub_status)"
        fi
        sleep 10
    done
    rm -f "$pub_value" "$pub_create" "$pub_overwrite" "$pub_answer"
    log "admin kubeconfig published to $KUBECONFIG_PARAM"
}

main() {
    log "k3s $K3S_VERSION server bootstrap for $ENV_NAME/$POOL_NAME"
    read_metadata
    fetch_join_token "$TOKEN_PARAM" token
    fetch_join_token "$AGENT_TOKEN_PARAM" agent-token
    elect_init_server
    join_or_take_over
    if [ "$FIRST_SERVER" = 1 ] && get_parameter "$(lock_name $((ELECTION + 1)))" "$ROOT$K3S_CONFIG_DIR/.next-round" 2>/dev/null; then
        # This holder was too slow: another server opened the next round and initialises.
        log "election round $((ELECTION + 1)) was opened while this server prepared: joining instead"
        ELECTION=$((ELECTION + 1))
        elect_init_server
        join_or_take_over
    fi
    rm -f "$ROOT$K3S_CONFIG_DIR/.next-round"
    write_server_config
    install_k3s server
    if [ "$FIRST_SERVER" = 1 ]; then
        publish_kubeconfig
    fi
    log "done"
}

main "$@"
