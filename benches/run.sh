#!/usr/bin/env bash
# Whole-run benchmark: generate realistic captures with the project's own generator,
# time sipscope (default threads and --threads 1) and tshark on them, and write the
# results to docs/performance.md. Medians of RUNS runs; peak RSS from /usr/bin/time -v.
#
#   benches/run.sh            # full run (1, 2, 5, 10 M packets, 1 M in 4 KiB pages; tshark on each)
#   QUICK=1 benches/run.sh    # 1 and 2 M packets only
#   SMOKE=1 benches/run.sh    # a few thousand packets, one run, table to a scratch folder (CI)
#
# Needs: a Rust toolchain, /usr/bin/time (package `time`), tshark (package `tshark`).
# Optional: sip-doctor (PyPI; `python3 -m venv v && v/bin/pip install sip-doctor`), found on
# PATH or given as SIPDOCTOR=/path/to/sip-doctor; measured on the same files as tshark.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SMOKE:-}" ]; then
  # Its numbers mean nothing: one round, in a scratch folder, never over the docs' table.
  RUNS=${RUNS:-1}
  DATA=${DATA:-$(mktemp -d)}
  OUT=${OUT:-$DATA/performance.md}
fi
RUNS=${RUNS:-5}
DATA=${DATA:-bench-data}
OUT=${OUT:-docs/performance.md}
mkdir -p "$DATA"
cargo build --release --quiet
BIN=target/release/sipscope

# name calls concurrency duration(s) [phones]: ~100 packets/s per call (G.711 20 ms both
# ways). Without phones every call comes from a new phone (new addresses); the -p300
# captures draw their calls from 300 phones, as a gateway serves a fixed population.
# NAME-w8k is the NAME capture copied in 8 KiB writes before every round (see settle).
SIZES=("1M 200 100 50" "1M-w8k 200 100 50" "2M 400 100 50" "5M 1000 100 50" "10M 2000 100 50" "10M-c500 2000 500 50" "5M-p300 1000 100 50 300" "10M-p300 2000 100 50 300")
[ -n "${QUICK:-}" ] && SIZES=("1M 200 100 50" "1M-w8k 200 100 50" "2M 400 100 50")
# tshark on 1, 2, 5 and 10 M packets (about 1 min a run on 10 M); sip-doctor, twice as slow, on 1 and 2 M.
TSHARK_ON="1M 1M-w8k 2M 5M 10M"
SD_ON="1M 2M"
# The smoke run (.ci/run): every step of the script on two small captures and their
# doubling, so a change that breaks the script fails CI instead of the next benchmark.
if [ -n "${SMOKE:-}" ]; then
  SIZES=("s 10 5 20" "s-w8k 10 5 20" "s2 20 5 20")
  TSHARK_ON="s s-w8k s2"
  SD_ON="s"
fi

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


# Put a capture into a known page-cache state before timing it. How the kernel holds a
# cached file decides what reading it costs: read back from disk (readahead) or written in
# large pieces, it sits in large folios and `read` copies the 206 MB 1M file in ~0.01 s of
# system time; written in small pieces, or partly reclaimed and faulted back in over
# hours (DAMON's proactive reclaim runs on this VM), in 4 KiB pages, and the same copy
# takes 0.04-0.05 s. That is a quarter of sipscope's CPU time, so an unsettled file makes
# the same binary slower from one hour to the next (8 % in wall time on the 1M file, in
# interleaved runs), and tshark, whose reading is 1 % of its time, not at all. Every capture is therefore synced, dropped
# from the cache and read once, as a first read from disk leaves it; 1M-w8k is instead
# rewritten in 8 KiB pieces, as `tcpdump -w` writes through stdio, and timed while cached
# that way: the costly case, measured rather than avoided.
settle() { # name file
  if [[ "$1" == *-w8k ]]; then
    dd if="$DATA/bench-${1%-w8k}.pcap" of="$2" bs=8k status=none
  else
    sync "$2"
    dd if="$2" iflag=nocache count=0 status=none
    cat "$2" >/dev/null
  fi
}

results=$(mktemp) # one line per run: tool name packets bytes calls concurrency wall rss
declare -A META
for s in "${SIZES[@]}"; do
  read -r name calls conc dur phones <<<"$s"
  f="$DATA/bench-$name.pcap"
  [[ "$name" == *-w8k ]] && settle "$name" "$f"
  [ -f "$f" ] || "$BIN" synth bench -o "$f" --calls "$calls" --concurrency "$conc" --duration "$dur" --callers "${phones:-0}" --seed 1 2>/dev/null
  pkts=$(capinfos -c -M "$f" 2>/dev/null | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}' || true)
  [ -n "$pkts" ] || pkts=$("$BIN" analyze -q --format json "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["frames"])')
  META[$name]="$pkts $(stat -c %s "$f") $calls $conc"
  "$BIN" analyze -q --format json -o /dev/null "$f" # warm the page cache
done
# Runs are interleaved (round r measures every file in every mode, and tshark and
# sip-doctor right after sipscope on the same file) so that a burst of load on a shared
# machine spreads over all rows instead of spoiling one, and a ratio compares runs made
# minutes apart, not a quarter of an hour.
SD=${SIPDOCTOR:-$(command -v sip-doctor || true)}
for _ in $(seq "$RUNS"); do
  for s in "${SIZES[@]}"; do
    read -r name _ <<<"$s"
    f="$DATA/bench-$name.pcap"
    # Settled just before timing it: the targets are for a warm page cache, and the
    # reclaimer evicts a capture that sat idle for a few minutes.
    settle "$name" "$f"
    for mode in default 1; do
      args=(analyze -q --format json -o /dev/null "$f"); [ "$mode" = 1 ] && args+=(--threads 1)
      read -r w r < <(measure "$BIN" "${args[@]}")
      echo "sipscope-$mode $name ${META[$name]} $w $r" >>"$results"
    done
    case " $TSHARK_ON " in *" $name "*) ;; *) continue ;; esac
    if command -v tshark >/dev/null; then
      read -r w r < <(measure tshark -n -q -r "$f" -o rtp.heuristic_rtp:TRUE -z rtp,streams)
      echo "tshark $name ${META[$name]} $w $r" >>"$results"
    fi
    if [ -n "$SD" ] && [[ " $SD_ON " == *" $name "* ]]; then
      read -r w r < <(measure "$SD" read --json --no-flow "$f")
      echo "sip-doctor $name ${META[$name]} $w $r" >>"$results"
    fi
  done
done

python3 - "$results" "$OUT" "$RUNS" <<'PY'
import sys, platform, subprocess, datetime
import statistics
raw=[l.split() for l in open(sys.argv[1])]
# Median wall time and median peak RSS per (tool, capture), in first-seen order.
groups={}
for r in raw:
    groups.setdefault((r[0], r[1]), []).append(r)
rows=[]
for (tool, name), rs in groups.items():
    w=statistics.median(float(r[6]) for r in rs)
    rss=statistics.median(int(r[7]) for r in rs)
    rows.append([tool, name, *rs[0][2:6], str(w), str(int(rss))])
order={'sipscope-default':0,'sipscope-1':1,'tshark':2,'sip-doctor':3}
names=[]
for r in raw:
    if r[1] not in names: names.append(r[1])
rows.sort(key=lambda r: (names.index(r[1]), order[r[0]]))
out, runs = sys.argv[2], sys.argv[3]
def cpu():
    try:
        for l in open('/proc/cpuinfo'):
            if l.startswith('model name'): return l.split(':',1)[1].strip()
    except OSError: pass
    return platform.processor()
mem = subprocess.run(['free','-g'],capture_output=True,text=True).stdout.split('\n')[1].split()[1]
# Ratios are medians of the per-round ratios: tshark and sip-doctor run right after
# sipscope on the same file in each round, so a slow spell of the machine hits both
# sides of a pair instead of one side of a ratio of medians.
def paired(peer, tool, name):
    a=[float(r[6]) for r in groups.get((peer, name), [])]
    b=[float(r[6]) for r in groups.get((tool, name), [])]
    n=min(len(a), len(b))
    if not n: return None
    q=[a[i]/b[i] for i in range(n)]
    return statistics.median(q), min(q), max(q)
lines=[]
lines.append('| tool | capture | packets | calls (concurrent) | MB | wall s (median) | packets/s | MB/s | peak RSS MB | vs tshark (median of paired runs, range) | vs sip-doctor |')
lines.append('| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for tool,name,pkts,b,calls,conc,w,rss in rows:
    pkts=int(pkts); b=int(b); w=float(w); rss=int(rss)/1024
    mb=b/1e6
    mine = tool.startswith('sipscope')
    r1 = paired('tshark', tool, name) if mine else None
    r2 = paired('sip-doctor', tool, name) if mine else None
    # Median of the paired ratios, and their range over the runs.
    ratio = f"{r1[0]:.0f}× ({r1[1]:.0f}–{r1[2]:.0f})" if r1 else ''
    ratio2 = f"{r2[0]:.0f}× ({r2[1]:.0f}–{r2[2]:.0f})" if r2 else ''
    label={'sipscope-default':'sipscope (default threads)','sipscope-1':'sipscope --threads 1','tshark':'tshark -z rtp,streams','sip-doctor':'sip-doctor read --json --no-flow'}[tool]
    lines.append(f"| {label} | {name} | {pkts:,} | {calls} ({conc}) | {mb:.0f} | {w:.3f} | {pkts/w/1e6:.2f} M | {mb/w:.0f} | {rss:.1f} | {ratio} | {ratio2} |")
# Peak RSS when the capture doubles at the same concurrency (the flat-memory target).
rss_of = {(r[0], r[1]): int(r[7]) / 1024 for r in rows}
pairs = [(a, b) for a, b in (('5M', '10M'), ('5M-p300', '10M-p300'), ('s', 's2')) if a in names and b in names]
if pairs:
    lines.append('')
    lines.append('Doubling the capture at the same concurrency (peak RSS, medians):')
    lines.append('')
    lines.append('| captures | threads | peak RSS before | after | growth |')
    lines.append('| --- | --- | ---: | ---: | ---: |')
    for a, b in pairs:
        for tool, label in (('sipscope-default', 'default'), ('sipscope-1', '1')):
            if (tool, a) in rss_of and (tool, b) in rss_of:
                x, y = rss_of[(tool, a)], rss_of[(tool, b)]
                lines.append(f"| {a} → {b} | {label} | {x:.1f} MB | {y:.1f} MB | {100 * (y - x) / x:+.1f} % |")
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
echo "benches/run.sh: table written to $OUT" >&2
