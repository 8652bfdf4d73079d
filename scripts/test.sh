#!/usr/bin/env bash
# The whole test suite: unit, property, integration and CLI tests of every
# crate (interop tests against real routers included), then a short run of
# every fuzz target from its seed corpus. Installs what it needs (routers,
# cargo-fuzz) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lb-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Interop tests run real routers (BIRD 2, FRR, GoBGP, ExaBGP) and ARP/NDP
# clients (arping, ndisc6) in network namespaces: install them where we can
# (root with apt), else those tests skip and say why.
need=()
command -v bird >/dev/null || need+=(bird2)
command -v gobgpd >/dev/null || need+=(gobgpd)
command -v exabgp >/dev/null || need+=(exabgp)
[ -x /usr/lib/frr/bgpd ] || need+=(frr)
command -v ip >/dev/null || need+=(iproute2)
# Layer 2 tests ask with the real tools.
command -v arping >/dev/null || need+=(arping)
command -v ndisc6 >/dev/null || need+=(ndisc6)
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
# sanitizer flags it needs), every target for a short run from the
# minimised corpus kept in fuzz/corpus/<target> (read only: what a run
# finds goes to a scratch directory beside the build). The sanitizer build
# gets its own target directory next to the caller's, so it never
# invalidates the normal one. All targets are built first, with cargo's
# progress on screen: the first build takes minutes.
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
fuzz_seconds="${FUZZ_SECONDS:-30}"
fuzz_target_dir="${CARGO_TARGET_DIR}-fuzz"
# ASan's fake stacks (detect_stack_use_after_return) cost a third of a
# structured target's time and look for a bug safe Rust cannot have: the
# borrow checker rules out references that outlive their frame.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_stack_use_after_return=0}"
echo "building fuzz targets in $fuzz_target_dir"
CARGO_TARGET_DIR="$fuzz_target_dir" RUSTC_BOOTSTRAP=1 cargo fuzz build
for target in $(cd fuzz && ls fuzz_targets | sed 's/\.rs$//'); do
  # Structured targets need a hundred bytes or so; raw YAML costs about a
  # millisecond per input whatever its length, so it gets short inputs and
  # shares the configuration's time with the structured config_parse.
  seconds="$fuzz_seconds" max_len=8192
  case "$target" in
    config_parse) seconds=$(((fuzz_seconds + 1) / 2)) max_len=128 ;;
    config_text) seconds=$(((fuzz_seconds + 1) / 2)) max_len=256 ;;
    plan) max_len=512 ;;
    # An Ethernet frame is at most 1,514 bytes without its FCS.
    l2_frame) seconds=$(((fuzz_seconds + 1) / 2)) max_len=1514 ;;
    # The responder shares the frame parser's time.
    l2_responder) seconds=$(((fuzz_seconds + 1) / 2)) max_len=1515 ;;
    # A gossip datagram is at most 1,400 bytes.
    gossip) max_len=1400 ;;
  esac
  scratch="$fuzz_target_dir/corpus/$target"
  mkdir -p "$scratch" "fuzz/corpus/$target"
  log="$fuzz_target_dir/$target.log"
  echo "fuzzing $target for ${seconds}s"
  if CARGO_TARGET_DIR="$fuzz_target_dir" RUSTC_BOOTSTRAP=1 \
    cargo fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb))' "$log"
  else
    tail -n 60 "$log"
    echo "fuzz target $target failed; its input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done

skipped=$(wc -l < "$LBT_SKIP_LOG")
if [ "$skipped" -gt 0 ]; then
  echo "summary: $skipped interop test(s) skipped:"
  sed 's/^/  /' "$LBT_SKIP_LOG"
else
  echo "summary: every interop test ran (0 skipped)"
fi
