#!/usr/bin/env bash
# Run every fuzz target (or the ones named after SECONDS) for SECONDS each, one after the
# other, one libFuzzer process each (the machine is shared: -jobs=1 equivalent), and print
# executions and crashes per target. Logs: fuzz/$FUZZ_LOGS/<target>.log (FUZZ_LOGS defaults
# to logs); crashing inputs: fuzz/artifacts/<target>/. Seeds: run scripts/fuzz-seeds.sh
# first (an empty corpus works too, just slower to get anywhere).
#
#   scripts/fuzz.sh 300                 # every target, 5 minutes each
#   scripts/fuzz.sh 1800 sip_parse      # one target, 30 minutes
#
# Targets are built without a sanitizer (-s none): the crate forbids unsafe code, so
# AddressSanitizer finds nothing the Rust checks do not, at several times the cost; debug
# assertions (overflow checks) stay on, as cargo-fuzz does by default.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${1:?usage: fuzz.sh SECONDS [TARGET...]}
shift
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi
cargo +nightly fuzz build -s none >&2 || exit 1
LOGS=${FUZZ_LOGS:-logs}
mkdir -p "$LOGS"
printf '%-16s %8s %14s %10s %8s %s\n' target seconds executions exec/s crashes artifacts
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  start=$(date +%s)
  cargo +nightly fuzz run -s none "$t" "corpus/$t" -- \
    -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$LOGS/$t.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$LOGS/$t.log" | grep -o '[0-9]*$' | tail -1)
  if [ -z "$execs" ]; then
    # Killed by a crash before the final stats: take the last progress line.
    execs=$(grep -oE '^#[0-9]+' "$LOGS/$t.log" | tail -1 | tr -d '#')
  fi
  after=$(ls "artifacts/$t" | wc -l)
  crashes=$((after - before))
  rate=$(( ${execs:-0} / (took > 0 ? took : 1) ))
  printf '%-16s %8s %14s %10s %8s %s\n' "$t" "$took" "${execs:-?}" "$rate" "$crashes" \
    "$( [ "$crashes" -gt 0 ] && ls -t "artifacts/$t" | head -3 | tr '\n' ' ')$( [ $rc -ne 0 ] && echo "(exit $rc)")"
done
