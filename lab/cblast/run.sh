#!/usr/bin/env bash
# Runs blast.c between two throwaway network namespaces joined by a veth pair
# (MTU 9000, nothing listening on the far end), pinned to CPU 0 like the Go
# benchmark's sender, at the frame sizes given, Ethernet header included
# (default 1500 and 9000: the frames AFPacketLink sends at MTU 1500 and 9000,
# a 14-byte header and a MaxPDU-byte PDU). Needs root, gcc and iproute2.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
a=cblast-a-$$ b=cblast-b-$$
trap 'ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -rf "$out"' EXIT
gcc -O2 -Wall -o "$out/blast" blast.c
ip netns add "$a"
ip netns add "$b"
ip link add cb0 netns "$a" mtu 9000 type veth peer name cb0 netns "$b" mtu 9000
ip -n "$a" link set cb0 up
ip -n "$b" link set cb0 up
sleep 1
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(1500 9000)
for size in "${sizes[@]}"; do
	taskset -c 0 ip netns exec "$a" "$out/blast" cb0 "$size"
done
