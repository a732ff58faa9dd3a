#!/usr/bin/env bash
# Runs the mirror/source workloads on NATS JetStream (Debian's nats-server, file storage) and
# on Tributary (`bench -- mirror|sources`) in one go, and prints the figures and the ratios.
# With REPLICAS (3 or 5), the replicated workloads instead: three clustered nats-servers
# beside `bench -- publish|mirror --replicas N` on three data nodes (R1 and RN publish, R1
# mirror on the origin's server and across servers, RN mirror of RN, leader failover).
#
#   scripts/nats-side-by-side.sh [MESSAGES] [PAYLOAD] [REPLICAS]   (defaults: 1000000 128 1)
#
# Needs root (or sudo) for apt, python3 with venv, and cargo. Everything binds 127.0.0.1.
set -euo pipefail

N=${1:-1000000}
P=${2:-128}
R=${3:-1}
LAG_SECS=${LAG_SECS:-10}
# Each copy figure is the median of this many copies, on both sides.
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tributary-target}

cleanup() {
    if [[ -n "${NATS_PID:-}" ]]; then kill "$NATS_PID" 2>/dev/null || true; fi
    for p in ${CLUSTER_PIDS:-}; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v nats-server >/dev/null; then
    SUDO=$([[ $(id -u) == 0 ]] && echo "" || echo sudo)
    $SUDO apt-get install -y --no-install-recommends nats-server
fi
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet nats-py


# Built first, so nothing compiles while either side runs; and each side starts with the
# disk quiet (`sync`), its predecessor's files gone.
(cd "$ROOT" && cargo build --release -p tributary-integration --bin bench >/dev/null)
BENCH="$CARGO_TARGET_DIR/release/bench"

if [[ $R != 1 ]]; then
    "$ROOT/scripts/nats/cluster.sh" "$N" "$P" "$R" "$ROUNDS" "$BENCH" "$WORK"
    exit
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$WORK/js" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!


echo "== NATS $(nats-server --version) : $N x $P B, file storage"
sync
"$WORK/venv/bin/python" "$ROOT/scripts/nats/single.py" "nats://127.0.0.1:$PORT" "$N" "$P" "$LAG_SECS" "$ROUNDS" | tee "$WORK/nats.txt"
kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true; NATS_PID=
rm -rf "$WORK/js"

echo "== Tributary : $N x $P B, file storage"
sync
# Lag is sampled twice: behind a publisher at full speed, and at the rate NATS's publisher
# reached, so the lag figures compare the same load.
NATS_RATE=$(awk '$1 == "pub_rate" { print $2 }' "$WORK/nats.txt")
"$BENCH" mirror --messages "$N" --payload "$P" --rounds "$ROUNDS" --lag-secs "$LAG_SECS" | tee "$WORK/trib-mirror.txt"
"$BENCH" mirror --messages 1000 --payload "$P" --rounds 1 --lag-secs "$LAG_SECS" --lag-rate "$NATS_RATE" |
    grep "^mirror lag" | tee "$WORK/trib-lag.txt"
"$BENCH" sources --messages "$N" --payload "$P" --rounds "$ROUNDS" | tee "$WORK/trib-sources.txt"

nats() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/nats.txt"; }
rate() { grep -E "^$1" "$2" | head -n 1 | sed -E 's/.* ([0-9]+) msgs\/s.*/\1/'; }
lagq() { grep "^mirror lag" "$2" | sed -E "s/.* $1 ([0-9]+).*/\1/"; }

echo
printf '%-22s %14s %14s %8s\n' "figure" "NATS" "Tributary" "ratio"
row() { # name nats trib higher_is_better
    local r
    if [[ $2 == "$3" ]]; then r="same"
    elif [[ $4 == 1 ]]; then r=$(python3 -c "print(f'{$3/max($2,1):.2f}x')")
    # Lower is better: NATS/Tributary, and a zero on Tributary's side means it never lagged.
    elif [[ $3 == 0 ]]; then r="no lag"
    else r=$(python3 -c "print(f'{$2/$3:.2f}x')"); fi
    printf '%-22s %14s %14s %8s\n' "$1" "$2" "$3" "$r"
}
row "mirror msgs/s" "$(nats mirror)" "$(rate 'mirror +[0-9]' "$WORK/trib-mirror.txt")" 1
row "filtered mirror msgs/s" "$(nats filtered)" "$(rate 'filtered' "$WORK/trib-mirror.txt")" 1
row "sources msgs/s" "$(nats sources)" "$(rate 'sources' "$WORK/trib-sources.txt")" 1
row "lag p50, same rate" "$(nats lag_p50)" "$(lagq p50 "$WORK/trib-lag.txt")" 0
row "lag p99, same rate" "$(nats lag_p99)" "$(lagq p99 "$WORK/trib-lag.txt")" 0
row "lag p99, full speed" "$(nats lag_p99)" "$(lagq p99 "$WORK/trib-mirror.txt")" 0
echo "(lag ratios are NATS/Tributary: above 1x means Tributary lags less; NATS's publisher: $(nats pub_rate) msgs/s;"
echo " Tributary's at full speed: $(grep -oE 'behind a [0-9]+' "$WORK/trib-mirror.txt" | grep -oE '[0-9]+') msgs/s)"
