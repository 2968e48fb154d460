#!/bin/sh
# Make the node homes of a testnet whose validators run on separate hosts, with the
# same commands an operator runs (README.md, "Validators on separate hosts").
#
#   deploy/make-testnet.sh OUT [HOST ...]
#
# OUT/validatorN is the home of the validator on the N-th HOST (default: validator0
# validator1 validator2 validator3, the services of deploy/compose.yaml). Each node
# listens for peers on 0.0.0.0:26656, announces HOST:26656, dials the others at
# their HOST:26656, and serves JSON-RPC on $RPC_LISTEN (default 0.0.0.0:26657).
# validator0's home also holds the funded passphrase-free dev keys (keys/dev.json,
# dev-merchant, dev-arbiter). Chain id: $CHAIN_ID (default agora-testnet).
# $AGORA is the agora command (default: agora).
# Homes this script has made are left as they are (so it can run at every start).
set -eu

if [ "$#" -lt 1 ]; then
    echo "usage: $0 OUT [HOST ...]" >&2
    exit 2
fi
out=$1
shift
[ "$#" -gt 0 ] || set -- validator0 validator1 validator2 validator3
agora=${AGORA:-agora}
chain_id=${CHAIN_ID:-agora-testnet}
rpc_listen=${RPC_LISTEN:-0.0.0.0:26657}

# Already made (every config names its peers): nothing to do.
made=0
i=0
while [ "$i" -lt "$#" ]; do
    config="$out/validator$i/config.toml"
    if [ -e "$config" ] && ! grep -q '^persistent_peers = \[\]$' "$config"; then
        made=$((made + 1))
    fi
    i=$((i + 1))
done
if [ "$made" -eq "$#" ]; then
    echo "$out already holds the testnet's homes: left as they are"
    exit 0
fi
for home in "$out"/validator*; do
    if [ -e "$home/config.toml" ] || [ -e "$home/keys" ]; then
        echo "$home is partly made (or not one of this testnet's): remove $out/validator*" \
            "and run $0 again" >&2
        exit 1
    fi
done

# 1. On each host: a home with its own node key and validator key (validator0's
#    also with the dev keys, funded in its genesis). Note each node id and public key.
i=0
peers=""
pubkeys=""
for host in "$@"; do
    home="$out/validator$i"
    dev=""
    [ "$i" -eq 0 ] && dev="--dev"
    said=$($agora init --home "$home" --validator --chain-id "$chain_id" $dev)
    echo "$said"
    node_id=$(echo "$said" | sed -n 's/^node id \([0-9a-f]\{40\}\) .*/\1/p')
    pubkey=$(sed -n 's/.*"public_key": "\([0-9a-f]\{64\}\)".*/\1/p' "$home/keys/validator_key.json")
    [ -n "$node_id" ] && [ -n "$pubkey" ] || { echo "no node id or public key for $home" >&2; exit 1; }
    peers="$peers $node_id@$host:26656"
    pubkeys="$pubkeys $pubkey"
    i=$((i + 1))
done

# 2. One genesis for all: validator0's, with every validator's public key in it,
#    copied to every home.
# shellcheck disable=SC2086  # one argument per key
$agora genesis set-validators "$out/validator0/genesis.json" $pubkeys
i=1
while [ "$i" -lt "$#" ]; do
    cp "$out/validator0/genesis.json" "$out/validator$i/genesis.json"
    i=$((i + 1))
done

# 3. Each config: listen on every interface, announce its host, dial the others.
i=0
for host in "$@"; do
    others=""
    for peer in $peers; do
        case "$peer" in
            *"@$host:26656") ;;
            *) others="$others${others:+, }\"$peer\"" ;;
        esac
    done
    sed -i \
        -e "s|^moniker = \"\"\$|moniker = \"validator$i\"|" \
        -e 's|^listen = "127.0.0.1:26656"$|listen = "0.0.0.0:26656"|' \
        -e "s|^external_address = \"\"\$|external_address = \"$host:26656\"|" \
        -e "s|^persistent_peers = \[\]\$|persistent_peers = [$others]|" \
        -e "s|^listen = \"127.0.0.1:26657\"\$|listen = \"$rpc_listen\"|" \
        "$out/validator$i/config.toml"
    echo "validator$i: home $out/validator$i, p2p $host:26656, rpc $rpc_listen"
    i=$((i + 1))
done
