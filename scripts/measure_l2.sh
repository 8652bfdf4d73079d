#!/usr/bin/env bash
# Layer 2 figures for the README: three `lb standalone` nodes and a client
# on a bridge, in network namespaces this script's tests create and remove
# (documentation ranges only; nothing leaves them). Needs root, arping,
# ndisc6 and nftables.
#   scripts/measure_l2.sh                 every measurement, release build
#   RUNS=20 MINUTES=10 scripts/measure_l2.sh
#   scripts/measure_l2.sh failover        one of: failover handover takeover responder false_takeovers
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lb-target}"
if [ "$(id -u)" != 0 ]; then
  echo "measure_l2.sh: needs root (network namespaces)" >&2
  exit 1
fi
for tool in arping ndisc6 nft; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq arping ndisc6 nftables >/dev/null; break; }
done
declare -A tests=(
  [failover]=failover_after_sigkill
  [handover]=handover_after_sigterm
  [takeover]=takeover_of_1000_ips
  [responder]=responder_against_the_kernel
  [false_takeovers]=false_takeovers_under_loss_and_load
)
which=("${@:-failover handover takeover responder false_takeovers}")
for name in ${which[*]}; do
  test="${tests[$name]:?unknown measurement $name}"
  echo "== $name"
  cargo test --release -q -p lb-examples --test measure_l2 "$test" -- --ignored --nocapture --test-threads 1 \
    | grep -Ev '^(running|test result|$|\.)'
done
