#!/usr/bin/env bash
# Runs the mirror/source workloads on NATS JetStream (Debian's nats-server, file storage) and
# on Tributary (`bench -- mirror|sources`) in one go, and prints the figures and the ratios.
#
#   scripts/nats-side-by-side.sh [MESSAGES] [PAYLOAD]      (defaults: 1000000 128)
#
# Needs root (or sudo) for apt, python3 with venv, and cargo. Everything binds 127.0.0.1.
set -euo pipefail

N=${1:-1000000}
P=${2:-128}
LAG_SECS=${LAG_SECS:-10}
# Each copy figure is the median of this many copies, on both sides.
ROUNDS=${ROUNDS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tributary-target}

cleanup() {
    if [[ -n "${NATS_PID:-}" ]]; then kill "$NATS_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v nats-server >/dev/null; then
    SUDO=$([[ $(id -u) == 0 ]] && echo "" || echo sudo)
    $SUDO apt-get install -y --no-install-recommends nats-server
fi
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet nats-py

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$WORK/js" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!

cat >"$WORK/nats_bench.py" <<'EOF'
import asyncio, sys, time
import nats
from nats.js.api import StreamConfig, StreamSource, StorageType

URL, N, P, LAG, ROUNDS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
DATA = b"x" * P

async def fill(nc, subjects, n):
    for i in range(n):
        await nc.publish(subjects[i % len(subjects)], DATA)
        if i % 10000 == 0:
            await nc.flush()
    await nc.flush()

async def count(js, name):
    return (await js.stream_info(name)).state.messages

async def wait_count(js, name, n):
    while await count(js, name) < n:
        await asyncio.sleep(0.005)

async def timed(js, cfg, name, n):
    start = time.monotonic()
    await js.add_stream(cfg)
    await wait_count(js, name, n)
    return n / (time.monotonic() - start)

async def median(js, make, name, n):
    """ROUNDS copies, each into a new stream; the median rate (as the bench reports)."""
    rates = sorted([await timed(js, make(f"{name}{r}"), f"{name}{r}", n) for r in range(1, ROUNDS + 1)])
    return rates[len(rates) // 2]

async def main():
    nc = await nats.connect(URL)
    js = nc.jetstream()
    for s in ("ORDERS", "RETURNS"):
        await js.add_stream(StreamConfig(name=s, subjects=[s + ".>"], storage=StorageType.FILE))
    await fill(nc, ["ORDERS.a", "ORDERS.b"], N)
    await wait_count(js, "ORDERS", N)
    await fill(nc, ["RETURNS.new"], N)
    await wait_count(js, "RETURNS", N)
    m = await median(js, lambda name: StreamConfig(name=name, storage=StorageType.FILE,
                                                   mirror=StreamSource(name="ORDERS")), "MIRROR", N)
    f = await median(js, lambda name: StreamConfig(name=name, storage=StorageType.FILE,
                                                   mirror=StreamSource(name="ORDERS", filter_subject="ORDERS.a")),
                     "FILTERED", (N + 1) // 2)
    s = await median(js, lambda name: StreamConfig(name=name, storage=StorageType.FILE,
                                                   sources=[StreamSource(name="ORDERS"), StreamSource(name="RETURNS")]),
                     "ARCHIVE", 2 * N)
    await js.add_stream(StreamConfig(name="LIVE", subjects=["LIVE.>"], storage=StorageType.FILE))
    await js.add_stream(StreamConfig(name="LIVE_MIRROR", storage=StorageType.FILE,
                                     mirror=StreamSource(name="LIVE")))
    stop = asyncio.Event()
    async def publisher():
        sent, start = 0, time.monotonic()
        while not stop.is_set():
            await fill(nc, ["LIVE.x"], 10000)
            sent += 10000
        return sent / (time.monotonic() - start)
    task = asyncio.create_task(publisher())
    lags, end = [], time.monotonic() + LAG
    while time.monotonic() < end:
        o = (await js.stream_info("LIVE")).state.last_seq
        mm = (await js.stream_info("LIVE_MIRROR")).state.last_seq
        lags.append(max(0, o - mm))
        await asyncio.sleep(0.01)
    stop.set()
    rate = await task
    lags.sort()
    p50, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(f"mirror {m:.0f}\nfiltered {f:.0f}\nsources {s:.0f}\nlag_p50 {p50}\nlag_p99 {p99}\npub_rate {rate:.0f}")
    await nc.close()

asyncio.run(main())
EOF

# Built first, so nothing compiles while either side runs; and each side starts with the
# disk quiet (`sync`), its predecessor's files gone.
(cd "$ROOT" && cargo build --release -p tributary-integration --bin bench >/dev/null)
BENCH="$CARGO_TARGET_DIR/release/bench"

echo "== NATS $(nats-server --version) : $N x $P B, file storage"
sync
"$WORK/venv/bin/python" "$WORK/nats_bench.py" "nats://127.0.0.1:$PORT" "$N" "$P" "$LAG_SECS" "$ROUNDS" | tee "$WORK/nats.txt"
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
