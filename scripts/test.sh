#!/usr/bin/env bash
# The whole test suite: unit, property, integration and CLI tests of every
# crate (interop tests against real routers included), then a short run of
# every fuzz target from its seed corpus. Installs what it needs (routers,
# cargo-fuzz) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lb-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Interop tests run real routers (BIRD 2, FRR, GoBGP, ExaBGP) in network
# namespaces: install them where we can (root with apt), else those tests
# skip and say why.
need=()
command -v bird >/dev/null || need+=(bird2)
command -v gobgpd >/dev/null || need+=(gobgpd)
command -v exabgp >/dev/null || need+=(exabgp)
[ -x /usr/lib/frr/bgpd ] || need+=(frr)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: ${need[*]} missing and cannot be installed (not root); interop tests will skip"
  fi
fi

# Interop tests that cannot run here (not root) say so, one line each in
# this file, counted at the end: a skipped test is never reported as a pass.
export LBT_SKIP_LOG="${LBT_SKIP_LOG:-$(mktemp)}"
: > "$LBT_SKIP_LOG"

cargo test --workspace

# Fuzzing: cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP enables the
# sanitizer flags it needs). Its own target directory keeps the sanitizer
# build from invalidating the normal one.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz_seconds="${FUZZ_SECONDS:-30}"
for target in $(cd fuzz && ls fuzz_targets | sed 's/\.rs$//'); do
  mkdir -p "fuzz/corpus/$target"
  echo "fuzzing $target for ${fuzz_seconds}s"
  CARGO_TARGET_DIR="$HOME/.cache/lb-fuzz-target" RUSTC_BOOTSTRAP=1 \
    cargo fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$fuzz_seconds" -max_len=8192 -print_final_stats=1 2>&1 | tail -n 4
done

skipped=$(wc -l < "$LBT_SKIP_LOG")
if [ "$skipped" -gt 0 ]; then
  echo "summary: $skipped interop test(s) skipped:"
  sed 's/^/  /' "$LBT_SKIP_LOG"
else
  echo "summary: every interop test ran (0 skipped)"
fi
