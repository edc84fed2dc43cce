#!/usr/bin/env bash
# Whole-run benchmark: generate realistic captures with the project's own generator,
# time sipscope (default threads and --threads 1) and tshark on them, and write the
# results to docs/performance.md. Medians of RUNS runs; peak RSS from /usr/bin/time -v.
#
#   benches/run.sh            # full run (1, 2, 5, 10 M packets; tshark on 1 and 2 M)
#   QUICK=1 benches/run.sh    # 1 and 2 M packets only
#
# Needs: a Rust toolchain, /usr/bin/time (package `time`), tshark (package `tshark`).
# Optional: sip-doctor (PyPI; `python3 -m venv v && v/bin/pip install sip-doctor`), found on
# PATH or given as SIPDOCTOR=/path/to/sip-doctor; measured on the same files as tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DATA=${DATA:-bench-data}
OUT=${OUT:-docs/performance.md}
mkdir -p "$DATA"
cargo build --release --quiet
BIN=target/release/sipscope

# name calls concurrency duration(s): ~100 packets/s per call (G.711 20 ms both ways)
SIZES=("1M 200 100 50" "2M 400 100 50" "5M 1000 100 50" "10M 2000 100 50" "10M-c500 2000 500 50")
[ -n "${QUICK:-}" ] && SIZES=("1M 200 100 50" "2M 400 100 50")
TSHARK_ON="1M 2M"

measure() { # cmd... → prints "wall_s rss_kb"
  # Wall time from the shell's microsecond clock (time -v prints only 10 ms steps, too
  # coarse for 0.1 s runs); peak RSS from /usr/bin/time -v.
  local tf; tf=$(mktemp)
  local t0=$EPOCHREALTIME
  /usr/bin/time -v -o "$tf" "$@" >/dev/null 2>&1
  local t1=$EPOCHREALTIME
  local rss
  rss=$(grep "Maximum resident set size" "$tf" | awk '{print $NF}')
  rm -f "$tf"
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $rss"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

results=$(mktemp)
for s in "${SIZES[@]}"; do
  read -r name calls conc dur <<<"$s"
  f="$DATA/bench-$name.pcap"
  [ -f "$f" ] || "$BIN" synth bench -o "$f" --calls "$calls" --concurrency "$conc" --duration "$dur" --seed 1 2>/dev/null
  pkts=$(capinfos -c -M "$f" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}' || true)
  [ -n "$pkts" ] || pkts=$("$BIN" analyze -q --format json "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["frames"])')
  bytes=$(stat -c %s "$f")
  for mode in default 1; do
    args=(analyze -q --format json -o /dev/null "$f"); [ "$mode" = 1 ] && args+=(--threads 1)
    "$BIN" "${args[@]}" # warm the page cache
    walls=(); rsss=()
    for _ in $(seq "$RUNS"); do read -r w r < <(measure "$BIN" "${args[@]}"); walls+=("$w"); rsss+=("$r"); done
    w=$(printf '%s\n' "${walls[@]}" | median); r=$(printf '%s\n' "${rsss[@]}" | median)
    echo "sipscope-$mode $name $pkts $bytes $calls $conc $w $r" >>"$results"
  done
  if [[ " $TSHARK_ON " == *" $name "* ]] && command -v tshark >/dev/null; then
    walls=(); rsss=()
    for _ in $(seq "$RUNS"); do read -r w r < <(measure tshark -n -q -r "$f" -o rtp.heuristic_rtp:TRUE -z rtp,streams); walls+=("$w"); rsss+=("$r"); done
    w=$(printf '%s\n' "${walls[@]}" | median); r=$(printf '%s\n' "${rsss[@]}" | median)
    echo "tshark $name $pkts $bytes $calls $conc $w $r" >>"$results"
  fi
  SD=${SIPDOCTOR:-$(command -v sip-doctor || true)}
  if [[ " $TSHARK_ON " == *" $name "* ]] && [ -n "$SD" ]; then
    walls=(); rsss=()
    for _ in $(seq "$RUNS"); do read -r w r < <(measure "$SD" read --json --no-flow "$f"); walls+=("$w"); rsss+=("$r"); done
    w=$(printf '%s\n' "${walls[@]}" | median); r=$(printf '%s\n' "${rsss[@]}" | median)
    echo "sip-doctor $name $pkts $bytes $calls $conc $w $r" >>"$results"
  fi
done

python3 - "$results" "$OUT" "$RUNS" <<'PY'
import sys, platform, subprocess, datetime
rows=[l.split() for l in open(sys.argv[1])]
out, runs = sys.argv[2], sys.argv[3]
def cpu():
    try:
        for l in open('/proc/cpuinfo'):
            if l.startswith('model name'): return l.split(':',1)[1].strip()
    except OSError: pass
    return platform.processor()
mem = subprocess.run(['free','-g'],capture_output=True,text=True).stdout.split('\n')[1].split()[1]
ts = {r[1]: float(r[6]) for r in rows if r[0]=='tshark'}
sd = {r[1]: float(r[6]) for r in rows if r[0]=='sip-doctor'}
lines=[]
lines.append('| tool | capture | packets | calls (concurrent) | MB | wall s (median) | packets/s | MB/s | peak RSS MB | vs tshark | vs sip-doctor |')
lines.append('| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for tool,name,pkts,b,calls,conc,w,rss in rows:
    pkts=int(pkts); b=int(b); w=float(w); rss=int(rss)/1024
    mb=b/1e6
    mine = tool.startswith('sipscope')
    ratio = f"{ts[name]/w:.0f}×" if name in ts and mine else ''
    ratio2 = f"{sd[name]/w:.0f}×" if name in sd and mine else ''
    label={'sipscope-default':'sipscope (default threads)','sipscope-1':'sipscope --threads 1','tshark':'tshark -z rtp,streams','sip-doctor':'sip-doctor read --json --no-flow'}[tool]
    lines.append(f"| {label} | {name} | {pkts:,} | {calls} ({conc}) | {mb:.0f} | {w:.3f} | {pkts/w/1e6:.2f} M | {mb/w:.0f} | {rss:.0f} | {ratio} | {ratio2} |")
text=open(out).read() if __import__('os').path.exists(out) else ''
start='<!-- bench:start -->'; end='<!-- bench:end -->'
block=f"{start}\n_Generated by `benches/run.sh` on {datetime.date.today()} — {cpu()}, {__import__('os').cpu_count()} cores, {mem} GiB; medians of {runs} runs, warm page cache._\n\n"+'\n'.join(lines)+f"\n{end}"
if start in text and end in text:
    text=text[:text.index(start)]+block+text[text.index(end)+len(end):]
else:
    text=text+"\n"+block+"\n"
open(out,'w').write(text)
print('\n'.join(lines))
PY
rm -f "$results"
