# shellcheck shell=sh
# --- k3s-common.sh: shared by k3s-server.sh and k3s-agent.sh (inlined at render time) ---
# Never print the join token: it is only ever written to a 0600 file and read by k3s
# through `token-file`. No `set -x` anywhere in these scripts.
umask 077
# A path prefix for every file the script writes. Empty on a real instance; the provisioner's
# tests run the script in a temporary root with stub commands first on PATH.
ROOT="${K3S_BOOTSTRAP_ROOT:-}"
IMDS_ENDPOINT="http://169.254.169.254"
K3S_CONFIG_DIR="/etc/rancher/k3s"
# Every curl is bounded: a connection that never opens, or a transfer that stalls, fails and is
# retried by `retry` instead of hanging the boot. Downloads of the k3s binary get longer.
CURL_BOUNDS="--connect-timeout 5 --max-time 30"
CURL_DOWNLOAD_BOUNDS="--connect-timeout 10 --max-time 600"

log() {
    printf '%s k3s-bootstrap[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$ROLE" "$*" >&2
}

die() {
    log "FATAL: $*"
    exit 1
}

# retry ATTEMPTS DELAY_SECONDS COMMAND [ARGS...]
retry() {
    retry_attempts=$1
    retry_delay=$2
    shift 2
    retry_n=1
    until "$@"; do
        if [ "$retry_n" -ge "$retry_attempts" ]; then
            return 1
        fi
        retry_n=$((retry_n + 1))
        sleep "$retry_delay"
    done
}

# IMDSv2 only: a session token first, then every metadata read carries it.
imds_session_token() {
    # shellcheck disable=SC2086
    curl $CURL_BOUNDS -fsS -X PUT "$IMDS_ENDPOINT/latest/api/token" \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600'
}

imds() {
    # shellcheck disable=SC2086
    curl $CURL_BOUNDS -fsS -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS_ENDPOINT/latest/meta-data/$1"
}

read_metadata() {
    IMDS_TOKEN=$(retry 30 2 imds_session_token) || die "IMDSv2 session token unavailable"
    REGION=$(retry 5 2 imds placement/region) || die "metadata placement/region unavailable"
    ZONE=$(retry 5 2 imds placement/availability-zone) || die "metadata placement/availability-zone unavailable"
    INSTANCE_ID=$(retry 5 2 imds instance-id) || die "metadata instance-id unavailable"
    INSTANCE_TYPE=$(retry 5 2 imds instance-type) || die "metadata instance-type unavailable"
    PRIVATE_IP=$(retry 5 2 imds local-ipv4) || die "metadata local-ipv4 unavailable"
    AWS_DOMAIN=$(retry 5 2 imds services/domain) || AWS_DOMAIN=amazonaws.com
    log "instance $INSTANCE_ID ($INSTANCE_TYPE) in $ZONE, $PRIVATE_IP"
}

# Prints one string field of a JSON document ($2) — enough for IMDS credentials and SSM
# answers, whose values we read never contain quotes.
json_field() {
    printf '%s' "$2" | tr -d '\n' | sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"
}

# The instance role's temporary credentials, from IMDSv2. Kept in shell variables only.
aws_credentials() {
    creds_role=$(imds iam/security-credentials/) || return 1
    creds_json=$(imds "iam/security-credentials/$creds_role") || return 1
    AWS_KEY_ID=$(json_field AccessKeyId "$creds_json")
    AWS_SECRET=$(json_field SecretAccessKey "$creds_json")
    AWS_SESSION=$(json_field Token "$creds_json")
    [ -n "$AWS_KEY_ID" ] && [ -n "$AWS_SECRET" ] && [ -n "$AWS_SESSION" ]
}

# ssm_call ACTION BODY_FILE OUT_FILE: one SSM API call signed by curl (--aws-sigv4, curl >=
# 7.75), so no AWS CLI is needed on the image. The credentials reach curl on stdin (`-K -`),
# never on its command line. Prints the HTTP status; the answer is in OUT_FILE. Without role
# credentials in the metadata it says so once and prints 000.
ssm_call() {
    aws_credentials || {
        # Said once per boot (this runs in a subshell: a file, not a variable, remembers).
        no_creds_said="${TMPDIR:-/tmp}/k3s-bootstrap-no-credentials.$$"
        if [ ! -e "$no_creds_said" ]; then
            log "no instance role credentials in the metadata (iam/security-credentials/): is the instance profile attached?"
            : >"$no_creds_said"
        fi
        printf '000'
        return 0
    }
    # shellcheck disable=SC2086
    printf 'user = "%s:%s"\nheader = "X-Amz-Security-Token: %s"\n' \
        "$AWS_KEY_ID" "$AWS_SECRET" "$AWS_SESSION" |
        curl $CURL_BOUNDS -sS -K - -o "$3" -w '%{http_code}' \
            --aws-sigv4 "aws:amz:$REGION:ssm" \
            -H "X-Amz-Target: AmazonSSM.$1" \
            -H 'Content-Type: application/x-amz-json-1.1' \
            --data-binary "@$2" \
            "https://ssm.$REGION.$AWS_DOMAIN/" || printf '000'
}

# get_parameter NAME OUT_FILE [decrypt]: writes the parameter's value to OUT_FILE.
get_parameter() {
    gp_body=$(mktemp)
    gp_answer=$(mktemp)
    printf '{"Name":"%s","WithDecryption":%s}' "$1" "${3:-false}" >"$gp_body"
    gp_status=$(ssm_call GetParameter "$gp_body" "$gp_answer")
    rm -f "$gp_body"
    if [ "$gp_status" != 200 ]; then
        log "GetParameter $1: HTTP $gp_status $(sed -n 's/.*"__type":"\([^"]*\)".*/\1/p' "$gp_answer")"
        rm -f "$gp_answer"
        return 1
    fi
    tr -d '\n' <"$gp_answer" | sed -n 's/.*"Value":"\([^"]*\)".*/\1/p' >"$2"
    rm -f "$gp_answer"
    [ -s "$2" ]
}

# fetch_join_token PARAM FILE: a join token, a SecureString in SSM Parameter Store readable
# only through this instance's role (ssm:GetParameter on exactly that parameter). Written to
# the 0600 file FILE under the k3s config directory; never echoed, never passed on a command
# line or in the environment of k3s.
fetch_join_token() {
    case $- in
    *x*) fetch_had_xtrace=1 ;;
    *) fetch_had_xtrace=0 ;;
    esac
    set +x
    mkdir -p "$ROOT$K3S_CONFIG_DIR"
    fetch_tmp="$ROOT$K3S_CONFIG_DIR/.$2.tmp"
    if ! retry 30 10 get_parameter "$1" "$fetch_tmp" true; then
        rm -f "$fetch_tmp"
        die "could not read the join token parameter $1"
    fi
    chmod 0600 "$fetch_tmp"
    mv "$fetch_tmp" "$ROOT$K3S_CONFIG_DIR/$2"
    if [ "$fetch_had_xtrace" = 1 ]; then set -x; fi
    log "join token read from $1"
}

# Labels every node of this pool carries, plus the topology labels from the metadata
# (k3s runs without a cloud provider, so nothing else sets them).
write_node_labels() {
    printf 'node-label:\n'
    printf '  - "provisioner.env=%s"\n' "$ENV_NAME"
    printf '  - "provisioner.pool=%s"\n' "$POOL_NAME"
    printf '  - "topology.kubernetes.io/region=%s"\n' "$REGION"
    printf '  - "topology.kubernetes.io/zone=%s"\n' "$ZONE"
    printf '  - "node.kubernetes.io/instance-type=%s"\n' "$INSTANCE_TYPE"
    for label in $NODE_LABELS; do
        printf '  - "%s"\n' "$label"
    done
}

# Taints of a pool dedicated to one workload (none for a general pool).
write_node_taints() {
    [ -n "$NODE_TAINTS" ] || return 0
    printf 'node-taint:\n'
    for taint in $NODE_TAINTS; do
        printf '  - "%s"\n' "$taint"
    done
}

# Waits until the API behind the NLB answers (k3s serves /cacerts without credentials).
wait_for_api() {
    log "waiting for the k3s API at https://$NLB_DNS:6443"
    # shellcheck disable=SC2086
    retry 180 10 curl $CURL_BOUNDS -ksf -o /dev/null "https://$NLB_DNS:6443/cacerts" ||
        die "the k3s API at https://$NLB_DNS:6443 did not answer within 30 minutes"
}

# download URL FILE: one bounded, retried download.
download() {
    # shellcheck disable=SC2086
    retry 10 6 curl $CURL_DOWNLOAD_BOUNDS -fsSL -o "$2" "$1" || die "download of $1 failed"
}

# verify ASSET DIR SUMS: the asset's sha256 against its line in the release's sha256sum file.
verify() {
    expected=$(awk -v asset="$1" '$2 == asset { print $1 }' "$2/$3")
    [ -n "$expected" ] || die "$3 has no checksum for $1"
    actual=$(sha256sum "$2/$1" | awk '{ print $1 }')
    if [ "$expected" != "$actual" ]; then
        rm -rf "$2"
        die "checksum mismatch for $1: expected $expected, got $actual"
    fi
    log "checksum of $1 verified ($actual)"
}

# The pinned install k3s documents: the release's binary and its sha256sum file for this
# exact version, the checksum verified before anything is installed, then the install
# script of the same tag with INSTALL_K3S_SKIP_DOWNLOAD=true. From GitHub, or from
# K3S_MIRROR (`cluster.k3s_mirror`: <mirror>/<version>/<asset>, install.sh beside them) for
# nodes that cannot reach GitHub; with K3S_AIRGAP_IMAGES=1 also the release's air-gap image
# tarball (checked against the same sha256sum file), so no image is pulled from a registry.
install_k3s() {
    install_exec=$1
    case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 k3s_asset=k3s ;;
    aarch64 | arm64) arch=arm64 k3s_asset=k3s-arm64 ;;
    *) die "unsupported architecture $(uname -m)" ;;
    esac
    sums_asset="sha256sum-$arch.txt"
    version_in_url=$(printf '%s' "$K3S_VERSION" | sed 's/+/%2B/g')
    if [ -n "$K3S_MIRROR" ]; then
        release_url="${K3S_MIRROR%/}/$version_in_url"
        install_url="$release_url/install.sh"
    else
        release_url="https://github.com/k3s-io/k3s/releases/download/$version_in_url"
        install_url="https://raw.githubusercontent.com/k3s-io/k3s/$version_in_url/install.sh"
    fi
    work=$(mktemp -d)
    log "downloading k3s $K3S_VERSION ($k3s_asset) from $release_url"
    download "$release_url/$k3s_asset" "$work/$k3s_asset"
    download "$release_url/$sums_asset" "$work/$sums_asset"
    verify "$k3s_asset" "$work" "$sums_asset"
    if [ "$K3S_AIRGAP_IMAGES" = 1 ]; then
        images_asset="k3s-airgap-images-$arch.tar.zst"
        download "$release_url/$images_asset" "$work/$images_asset"
        verify "$images_asset" "$work" "$sums_asset"
        mkdir -p "$ROOT/var/lib/rancher/k3s/agent/images"
        mv "$work/$images_asset" "$ROOT/var/lib/rancher/k3s/agent/images/$images_asset"
    fi
    mkdir -p "$ROOT/usr/local/bin"
    cp "$work/$k3s_asset" "$ROOT/usr/local/bin/k3s"
    chmod 0755 "$ROOT/usr/local/bin/k3s"
    download "$install_url" "$work/install.sh"
    INSTALL_K3S_SKIP_DOWNLOAD=true \
        INSTALL_K3S_VERSION="$K3S_VERSION" \
        INSTALL_K3S_BIN_DIR="$ROOT/usr/local/bin" \
        INSTALL_K3S_EXEC="$install_exec" \
        sh "$work/install.sh" || die "the k3s install script failed"
    rm -rf "$work"
    log "k3s $K3S_VERSION installed as $install_exec"
}
# --- end of k3s-common.sh ---
