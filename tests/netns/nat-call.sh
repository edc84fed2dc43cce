#!/usr/bin/env bash
# A real NAT scenario: a SIPp caller behind a Linux NAT (iptables MASQUERADE) calls a SIPp
# callee on the "public" side; tcpdump captures on the callee's side. Everything runs in
# network namespaces this script creates (addresses 10.77.0.0/24 inside, 198.51.100.0/24
# outside, no route anywhere else) and removes again. Bounded: SIPp makes one call (-m 1)
# and every step has a timeout.
#
#   tests/netns/nat-call.sh OUT.pcap echo|silent
#     echo:   the callee echoes RTP back (symmetric RTP through the NAT: two-way audio)
#     silent: the callee sends no RTP at all (one-way audio)
# Needs root, ip (iproute2), iptables, sipp (sip-tester), tcpdump. Exit 77 = skipped.
set -euo pipefail
out=$1; mode=$2
here=$(cd "$(dirname "$0")" && pwd)
for t in ip iptables sipp tcpdump; do command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 77; }; done
[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }

sfx=$$
P=ssp$sfx; N=ssn$sfx; V=ssv$sfx
work=$(mktemp -d)
cleanup() {
  ip netns pids "$P" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$V" 2>/dev/null | xargs -r kill 2>/dev/null || true
  for n in "$P" "$N" "$V"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$P"; ip netns add "$N"; ip netns add "$V"
ip link add p0 netns "$P" type veth peer name n0 netns "$N"
ip link add n1 netns "$N" type veth peer name v1 netns "$V"
ip -n "$P" addr add 10.77.0.2/24 dev p0; ip -n "$P" link set p0 up; ip -n "$P" link set lo up
ip -n "$N" addr add 10.77.0.1/24 dev n0; ip -n "$N" link set n0 up
ip -n "$N" addr add 198.51.100.1/24 dev n1; ip -n "$N" link set n1 up
ip -n "$V" addr add 198.51.100.2/24 dev v1; ip -n "$V" link set v1 up; ip -n "$V" link set lo up
ip -n "$P" route add default via 10.77.0.1
ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$N" iptables -t nat -A POSTROUTING -o n1 -j MASQUERADE

mkdir -p "$work/pcap"
cp "$here/../../../shared/pcaps/SIPp__sipp/pcap__g711a.pcap" "$work/pcap/g711a.pcap" 2>/dev/null \
  || { echo "skip: ../shared/pcaps/SIPp__sipp/pcap__g711a.pcap missing"; exit 77; }
cp "$here/../../../shared/pcaps/SIPp__sipp/pcap__dtmf_2833_1.pcap" "$work/pcap/dtmf_2833_1.pcap" 2>/dev/null || true

ip netns exec "$V" timeout 40 tcpdump -i v1 -U -s 0 -w "$out" udp 2>/dev/null &
tcpdump_pid=$!
sleep 1
uas_opts=()
[ "$mode" = echo ] && uas_opts=(-rtp_echo)
(cd "$work" && ip netns exec "$V" timeout 35 sipp -sn uas -i 198.51.100.2 -p 5060 -m 1 "${uas_opts[@]}" -bg >/dev/null 2>&1) || true
sleep 0.5
(cd "$work" && ip netns exec "$P" timeout 30 sipp -sn uac_pcap 198.51.100.2:5060 -i 10.77.0.2 -p 5060 -m 1 -nostdin >/dev/null 2>&1) || true
sleep 1
kill "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true
[ -s "$out" ] || { echo "no capture written"; exit 1; }
echo "captured $(stat -c %s "$out") bytes"
