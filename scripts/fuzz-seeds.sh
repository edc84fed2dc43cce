#!/usr/bin/env bash
# Build the seed corpora of the fuzz targets (fuzz/corpus/<target>/, not committed) from
# the committed fixtures/ and, when present, the shared capture corpus ../shared/pcaps.
#
#   capture_reader, pipeline  whole capture files (and their first 4 KiB, cut mid-record)
#   decode_frame              single frames, prefixed by the link-type selector byte
#   reassembler               runs of raw IP packets in the target's length-prefixed form
#   sip_parse, sip_stream     SIP payloads (UDP and TCP), stream seeds are concatenations
#   sdp_parse                 SIP bodies
#   rtp_rtcp                  RTP and RTCP payloads
#
# Needs python3; tshark and editcap (Wireshark) for the payload/frame seeds (without them
# only the whole-file seeds are built). Usage: scripts/fuzz-seeds.sh [MAX_FILE_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_FILE=${1:-262144}
OUT=fuzz/corpus
mkdir -p "$OUT"
SRCS=(fixtures)
if [ -d ../shared/pcaps ]; then SRCS+=(../shared/pcaps); else echo "note: ../shared/pcaps absent, fixtures only" >&2; fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

find "${SRCS[@]}" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' -o -name '*.pcap.gz' -o -name '*.pcapng.gz' \) | sort > "$TMP/files"
echo "$(wc -l < "$TMP/files") capture files" >&2

# Per file: a classic-pcap copy (editcap handles pcapng and gzip) for frame extraction,
# and one tshark pass for the UDP/TCP payloads of SIP, RTP and RTCP frames.
n=0
while read -r f; do
  n=$((n + 1))
  if command -v editcap > /dev/null; then
    editcap -F pcap "$f" "$TMP/$n.pcap" 2> /dev/null || rm -f "$TMP/$n.pcap"
  fi
  if command -v tshark > /dev/null; then
    timeout 60 tshark -n -r "$f" -o rtp.heuristic_rtp:TRUE -o rtcp.heuristic_rtcp:TRUE \
      -Y 'sip or rtp or rtcp' -T fields -E separator=/t \
      -e frame.protocols -e udp.payload -e tcp.payload 2> /dev/null > "$TMP/$n.tsv" || true
  fi
done < "$TMP/files"

python3 - "$TMP" "$OUT" "$MAX_FILE" <<'PY'
import hashlib, os, struct, sys
tmp, out, max_file = sys.argv[1], sys.argv[2], int(sys.argv[3])
LIMIT = 3000          # seeds per target: enough variety, short merge times
count = {}
def put(target, data):
    if not data or count.get(target, 0) >= LIMIT:
        return
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(p):
        with open(p, 'wb') as fh:
            fh.write(data)
        count[target] = count.get(target, 0) + 1

files = [l.rstrip('\n') for l in open(os.path.join(tmp, 'files'))]
for f in files:
    data = open(f, 'rb').read()
    if f.endswith('.gz'):
        put('capture_reader', data[:max_file])   # gzip path: whole or cut
    elif len(data) <= max_file:
        put('capture_reader', data)
        put('pipeline', data)
    put('capture_reader', data[:4096])
    put('pipeline', data[:4096])

# decode_frame selector index of each link type (see fuzz_targets/decode_frame.rs).
SEL = {0: 0, 1: 1, 9: 2, 101: 3, 108: 4, 113: 5, 228: 6, 229: 7, 276: 8, 12: 9, 14: 10, 51: 11}
def strip_link(link, fr):
    """Raw IP of a frame, for the reassembler seeds (Ethernet/VLAN, SLL, raw only)."""
    if link == 1:
        off, et = 12, None
        while off + 2 <= len(fr):
            et = struct.unpack('>H', fr[off:off+2])[0]
            if et in (0x8100, 0x88a8):
                off += 4
                continue
            break
        return fr[off+2:] if et in (0x0800, 0x86dd) else None
    if link == 113:
        return fr[16:]
    if link in (101, 12, 14, 228, 229):
        return fr
    return None

for i in range(1, len(files) + 1):
    p = os.path.join(tmp, f'{i}.pcap')
    if os.path.exists(p):
        b = open(p, 'rb').read()
        if len(b) >= 24:
            magic = b[:4]
            e = '<' if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else '>'
            link = struct.unpack(e + 'I', b[20:24])[0] & 0x0FFFFFFF
            off, run, k = 24, b'', 0
            while off + 16 <= len(b) and k < 400:
                incl = struct.unpack(e + 'I', b[off+8:off+12])[0]
                fr = b[off+16:off+16+incl]
                off += 16 + incl
                k += 1
                if link in SEL:
                    put('decode_frame', bytes([SEL[link]]) + fr)
                ip = strip_link(link, fr)
                if ip is not None and len(ip) < 2048:
                    run += struct.pack('>H', len(ip)) + b'\x00' + ip
                    if k % 32 == 0:
                        put('reassembler', run)
                        run = b''
            put('reassembler', run)
    t = os.path.join(tmp, f'{i}.tsv')
    if not os.path.exists(t):
        continue
    stream = b''
    for line in open(t, errors='replace'):
        cols = line.rstrip('\n').split('\t')
        if len(cols) < 3:
            continue
        protos, udp, tcp = cols[0], cols[1], cols[2]
        hexs = (udp or tcp).split(',')[0]
        try:
            pl = bytes.fromhex(hexs)
        except ValueError:
            continue
        if ':sip' in protos:
            put('sip_parse', pl)
            if tcp:
                put('sip_stream', pl)
            stream += pl
            if len(stream) > 6000:
                put('sip_stream', stream)
                stream = b''
            for sep in (b'\r\n\r\n', b'\n\n'):
                k = pl.find(sep)
                if k >= 0 and len(pl) > k + len(sep):
                    put('sdp_parse', pl[k+len(sep):])
                    break
        elif ':rtcp' in protos or ':rtp' in protos:
            put('rtp_rtcp', pl)
    put('sip_stream', stream)
for k in sorted(count):
    print(f'{k}: {count[k]} new seeds', file=sys.stderr)
PY
for d in "$OUT"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) seeds"; done
