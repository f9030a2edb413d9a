#!/bin/sh
# Start Janus for avatar rooms with this folder's config: the image's entrypoint, and how to run it by hand.
#   JANUS_API_SECRET  Janus's API secret, the avatar servers' MARIONETTE_SFU_SECRET (required)
#   JANUS_API_IP      the address the WebSocket API listens on (default: 127.0.0.1, as in
#                     janus.transport.websockets.jcfg; Kubernetes: the node's internal address, janus.yaml)
#   JANUS_CONFIG_DIR  the config to start from (default: /etc/janus/marionette, where the image puts it)
#   JANUS_RUN_DIR     where the running config goes, private to this user (default: /run/marionette-janus)
# Further arguments go to janus (e.g. --rtp-port-range 20000-20099).
# The secret goes into a file only this user can read (api_secret.jcfg, which janus.jcfg includes; without it
# Janus does not start): never on janus's command line (ps), and out of the environment janus is started with.
set -eu
config_dir=${JANUS_CONFIG_DIR:-/etc/janus/marionette}
run_dir=${JANUS_RUN_DIR:-/run/marionette-janus}
api_ip=${JANUS_API_IP:-}
secret=${JANUS_API_SECRET:-}
unset JANUS_API_SECRET

fail() {
    echo "janus start: $*" >&2
    exit 2
}

# The same refusals as the servers' (server/config.py, weak_secret_problem): Janus never runs on a guessable key.
[ -n "$secret" ] || fail "JANUS_API_SECRET is not set; make one with: openssl rand -hex 32 (and give the same value to the avatar servers as MARIONETTE_SFU_SECRET)"
[ "${#secret}" -ge 16 ] || fail "JANUS_API_SECRET is ${#secret} characters long: use at least 16 random ones (openssl rand -hex 32)"
lowered=$(printf '%s' "$secret" | tr -cd '[:alnum:]' | tr '[:upper:]' '[:lower:]')  # printf: a builtin, no argv
for word in changeme change replaceme placeholder janusrocks janusoverlord password secret example default dummy; do
    case $lowered in
        *"$word"*) fail "JANUS_API_SECRET looks like a placeholder (it contains '$word'): use a random value (openssl rand -hex 32)" ;;
    esac
done
case $secret in
    *'"'* | *'\'* | *'
'*) fail "JANUS_API_SECRET must not hold quotes, backslashes or line breaks (openssl rand -hex 32)" ;;
esac
case $api_ip in
    *[!0-9a-fA-F.:]*) fail "JANUS_API_IP=$api_ip: expected an IP address" ;;
esac
# Janus binds ws_ip through the interface holding it; for an address this host lacks it falls back to
# every interface, so refuse that here.
if [ -n "$api_ip" ] && [ "$api_ip" != 127.0.0.1 ]; then
    case " $(hostname -I) " in
        *" $api_ip "*) ;;
        *) fail "JANUS_API_IP=$api_ip is not an address of this host ($(hostname -I)); Janus would listen on every interface" ;;
    esac
fi

umask 077
mkdir -p "$run_dir"
chmod 700 "$run_dir"
cp "$config_dir"/*.jcfg "$run_dir"/
printf 'api_secret = "%s"\n' "$secret" >"$run_dir/api_secret.jcfg"
sed -i "s|^\([[:space:]]*@include \)\".*api_secret\.jcfg\"|\1\"$run_dir/api_secret.jcfg\"|" "$run_dir/janus.jcfg"
if [ -n "$api_ip" ]; then
    sed -i "s|^\([[:space:]]*ws_ip[[:space:]]*=[[:space:]]*\)\"[^\"]*\"|\1\"$api_ip\"|" "$run_dir/janus.transport.websockets.jcfg"
fi
exec janus --configs-folder "$run_dir" --config "$run_dir/janus.jcfg" --disable-colors "$@"
