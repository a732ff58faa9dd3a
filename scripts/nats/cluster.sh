#!/usr/bin/env bash
# The replicated half of scripts/nats-side-by-side.sh (which prepares nats-server, the venv
# with nats-py and the bench binary): three nats-servers clustered on loopback, then
# `bench -- publish|mirror --replicas R` on three data nodes, then the ratios.
#
#   scripts/nats/cluster.sh MESSAGES PAYLOAD REPLICAS ROUNDS BENCH WORK
set -euo pipefail
N=$1 P=$2 R=$3 ROUNDS=$4 BENCH=$5 WORK=$6
HERE=$(cd "$(dirname "$0")" && pwd)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A CPORT RPORT
for n in n1 n2 n3; do CPORT[$n]=$(free_port); RPORT[$n]=$(free_port); done
URLS=() NAMED=()
for n in n1 n2 n3; do
    routes=()
    for m in n1 n2 n3; do [[ $m != "$n" ]] && routes+=("nats-route://127.0.0.1:${RPORT[$m]}"); done
    cat >"$WORK/$n.conf" <<CONF
server_name: $n
listen: 127.0.0.1:${CPORT[$n]}
server_tags: ["node:$n"]
jetstream { store_dir: "$WORK/js-$n" }
cluster {
  name: bench
  listen: 127.0.0.1:${RPORT[$n]}
  routes: [$(IFS=,; echo "${routes[*]}")]
}
CONF
    nats-server -c "$WORK/$n.conf" >"$WORK/$n.log" 2>&1 &
    PIDS+=($!)
    URLS+=("nats://127.0.0.1:${CPORT[$n]}")
    NAMED+=("$n=$!")
done

echo "== NATS $(nats-server --version) : 3 servers clustered, $N x $P B, file storage, R$R"
sync
"$WORK/venv/bin/python" "$HERE/cluster.py" "$(IFS=,; echo "${URLS[*]}")" "$N" "$P" "$ROUNDS" "$R" \
    "$(IFS=,; echo "${NAMED[*]}")" | tee "$WORK/nats-cluster.txt"
cleanup
PIDS=()
rm -rf "$WORK"/js-n*

echo "== Tributary : 3 data nodes, $N x $P B, file storage, R$R"
sync
"$BENCH" publish --messages "$N" --payload "$P" --replicas "$R" | tee "$WORK/trib-publish.txt"
"$BENCH" mirror --messages "$N" --payload "$P" --replicas "$R" --rounds "$ROUNDS" | tee "$WORK/trib-mirror.txt"

nats() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/nats-cluster.txt"; }
rate() { grep -E "^$1" "$2" | head -n 1 | sed -E 's/.* ([0-9]+) msgs\/s.*/\1/'; }
# The bench prints a Rust Duration ("612.3ms", "1.2s"): in milliseconds.
failover_ms() {
    grep -oE 'acknowledged [0-9.]+(ms|s|µs) after' "$WORK/trib-publish.txt" | python3 -c '
import re, sys
v, u = re.match(r"acknowledged ([0-9.]+)(ms|s|µs)", sys.stdin.read()).groups()
print(round(float(v) * {"ms": 1, "s": 1000, "µs": 0.001}[u]))'
}

echo
printf '%-26s %14s %14s %8s\n' "figure" "NATS" "Tributary" "ratio"
row() { # name nats trib higher_is_better
    local r
    if [[ $4 == 1 ]]; then r=$(python3 -c "print(f'{$3/max($2,1):.2f}x')")
    else r=$(python3 -c "print(f'{$2/max($3,1):.2f}x')"); fi
    printf '%-26s %14s %14s %8s\n' "$1" "$2" "$3" "$r"
}
row "publish R1 msgs/s" "$(nats pub_r1)" "$(rate 'R1 via node' "$WORK/trib-publish.txt")" 1
row "publish R$R msgs/s" "$(nats "pub_r$R")" "$(rate "R$R \\(to its leader\\)" "$WORK/trib-publish.txt")" 1
row "mirror R1 same node" "$(nats mirror_same)" "$(rate 'mirror R1, same node' "$WORK/trib-mirror.txt")" 1
row "mirror R1 across nodes" "$(nats mirror_across)" "$(rate 'mirror R1, across nodes' "$WORK/trib-mirror.txt")" 1
row "mirror R$R of R$R" "$(nats "mirror_r$R")" "$(rate "mirror R$R of R$R" "$WORK/trib-mirror.txt")" 1
row "failover ms" "$(nats failover_ms)" "$(failover_ms)" 0
echo "(ratios are Tributary/NATS for rates and NATS/Tributary for failover: above 1x, Tributary is ahead)"
