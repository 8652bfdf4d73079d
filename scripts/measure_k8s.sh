#!/usr/bin/env bash
# Kubernetes role figures for the README: `lb controller` and `lb speaker`
# against the in-process fake API server, on loopback only (no cluster, no
# root, nothing touches the host's network), release build.
#   scripts/measure_k8s.sh                every measurement
#   SERVICES=10000 scripts/measure_k8s.sh
#   scripts/measure_k8s.sh controller     one or more of: controller controller_memory latency latency_existing speaker_memory
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lb-target}"
declare -A tests=(
  [controller]=controller_start_and_restart
  [controller_memory]=controller_memory
  [latency]=service_created_to_status_written
  [latency_existing]=service_created_to_status_written
  [speaker_memory]=speaker_memory
)
which=("${@:-controller controller_memory latency latency_existing speaker_memory}")
for name in ${which[*]}; do
  test="${tests[$name]:?unknown measurement $name}"
  echo "== $name"
  existing="${EXISTING:-0}"
  # The same latency, with the controller already holding SERVICES Services.
  [ "$name" = latency_existing ] && existing="${SERVICES:-10000}"
  EXISTING="$existing" cargo test --release -q -p lb-examples --test measure_k8s "$test" -- --exact --ignored --nocapture --test-threads 1 \
    | grep -Ev '^(running|test result|$|\.)'
done
