#!/usr/bin/env bash
# How long `lb standalone` takes to stop on SIGTERM while it is re-reading
# a large services file (160,000 Services). Loopback only, no peers.
#   scripts/measure_sigterm.sh [path/to/lb]   (default: the release build)
set -euo pipefail
lb="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/lb-target}/release/lb}"
n="${SERVICES:-160000}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cat > "$dir/config.yaml" <<YAML
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool}
spec: {addresses: ["2001:db8::/104"]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2}
# An interface that does not exist: nothing is answered on this host's network.
spec: {interfaces: [lb-none0]}
YAML
python3 - "$dir/services.yaml" "$n" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write(f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, ipFamilies: [IPv6]}}\n")
PY
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$lb" standalone --node n1 --listen "127.0.0.1:$port" --config "$dir/config.yaml" --services "$dir/services.yaml" > "$dir/lb.log" 2>&1 &
pid=$!
start=$(date +%s.%N)
until grep -q configLoaded "$dir/lb.log"; do sleep 0.05; done
loaded=$(date +%s.%N)
# Rewrite the file unchanged: a reload of every Service begins.
cp "$dir/services.yaml" "$dir/services.tmp" && mv "$dir/services.tmp" "$dir/services.yaml"
sleep 0.5
t0=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid" || true
t1=$(date +%s.%N)
python3 -c "print(f'$n Services: first load {$loaded-$start:.2f} s; SIGTERM 0.5 s into a reload -> exit after {$t1-$t0:.2f} s')"
