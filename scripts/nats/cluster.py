"""NATS JetStream side of `scripts/nats-side-by-side.sh ... REPLICAS`: three clustered
servers (tags node:n1..n3), file storage. Prints one `key value` per line:

  pub_r1 / pub_rN    publishes to an R1 and an RN stream, until stored (core publishes, no acks)
  mirror_same        R1 mirror on its origin's server
  mirror_across      R1 mirror on another server than its origin
  mirror_rN          RN mirror of an RN origin
  failover_ms        RN stream leader's server killed -> first acknowledged publish

Each copy is timed from its add_stream until it holds every message, the median of ROUNDS.

  cluster.py URL1,URL2,URL3 N PAYLOAD ROUNDS REPLICAS n1=PID,n2=PID,n3=PID
"""
import asyncio, os, signal, sys, time
import nats
from nats.js.api import Placement, StreamConfig, StreamSource, StorageType

URLS = sys.argv[1].split(",")
N, P, ROUNDS, R = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
PIDS = dict(kv.split("=") for kv in sys.argv[6].split(","))
DATA = b"x" * P


async def quiet(_e):
    """Connection errors (a killed server's clients lose it) are expected here."""


def on(server):
    return Placement(tags=[f"node:{server}"])


async def wait_count(js, name, n, deadline=600):
    end = time.monotonic() + deadline
    while True:
        try:
            if (await js.stream_info(name)).state.messages >= n:
                return
        except Exception:
            pass  # no leader yet
        if time.monotonic() > end:
            raise SystemExit(f"{name} did not reach {n} messages")
        await asyncio.sleep(0.005)


async def publish_rate(nc, js, stream, subject, n):
    """n core publishes (flushed every 10,000), timed until the stream holds them all: as the
    single-server figures, and kinder to NATS than acknowledged publishes (a Python client
    waiting for acks would measure itself)."""
    start = time.monotonic()
    for i in range(n):
        await nc.publish(subject, DATA)
        if i % 10000 == 0:
            await nc.flush()
    await nc.flush()
    await wait_count(js, stream, n)
    return n / (time.monotonic() - start)


async def median_copy(js, make, n):
    rates = []
    for r in range(1, ROUNDS + 1):
        cfg = make(r)
        start = time.monotonic()
        await js.add_stream(cfg)
        await wait_count(js, cfg.name, n)
        rates.append(n / (time.monotonic() - start))
    rates.sort()
    return rates[len(rates) // 2]


async def ready(js):
    end = time.monotonic() + 60
    while True:
        try:
            await js.account_info()
            return
        except Exception:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


async def main():
    nc = await nats.connect(URLS[0], error_cb=quiet)
    js = nc.jetstream(timeout=10)
    await ready(js)
    file = StorageType.FILE
    await js.add_stream(StreamConfig(name="ONE", subjects=["ONE.>"], storage=file, num_replicas=1))
    await js.add_stream(StreamConfig(name="MANY", subjects=["MANY.>"], storage=file, num_replicas=R))
    print(f"pub_r1 {await publish_rate(nc, js, 'ONE', 'ONE.x', N):.0f}", flush=True)
    print(f"pub_r{R} {await publish_rate(nc, js, 'MANY', 'MANY.x', N):.0f}", flush=True)

    await js.add_stream(StreamConfig(name="ORDERS", subjects=["ORDERS.>"], storage=file,
                                     num_replicas=1, placement=on("n1")))
    await publish_rate(nc, js, "ORDERS", "ORDERS.a", N)
    same = await median_copy(js, lambda r: StreamConfig(
        name=f"SAME{r}", storage=file, num_replicas=1, placement=on("n1"),
        mirror=StreamSource(name="ORDERS")), N)
    print(f"mirror_same {same:.0f}", flush=True)
    across = await median_copy(js, lambda r: StreamConfig(
        name=f"ACROSS{r}", storage=file, num_replicas=1, placement=on("n2"),
        mirror=StreamSource(name="ORDERS")), N)
    print(f"mirror_across {across:.0f}", flush=True)
    await js.add_stream(StreamConfig(name="ORDERS3", subjects=["ORDERS3.>"], storage=file,
                                     num_replicas=R))
    await publish_rate(nc, js, "ORDERS3", "ORDERS3.a", N)
    many = await median_copy(js, lambda r: StreamConfig(
        name=f"MIRROR3_{r}", storage=file, num_replicas=R,
        mirror=StreamSource(name="ORDERS3")), N)
    print(f"mirror_r{R} {many:.0f}", flush=True)

    # Failover: a client on a server that does not lead MANY; the leader's server is killed.
    leader = (await js.stream_info("MANY")).cluster.leader
    via = next(u for s, u in zip(("n1", "n2", "n3"), URLS) if s != leader)
    nc2 = await nats.connect(via, error_cb=quiet)
    js2 = nc2.jetstream(timeout=0.25)
    await js2.publish("MANY.failover", b"before")
    start = time.monotonic()
    os.kill(int(PIDS[leader]), signal.SIGKILL)
    while True:
        try:
            await js2.publish("MANY.failover", b"after")
            break
        except Exception:
            if time.monotonic() - start > 60:
                raise SystemExit("no publish acknowledged within 60 s of the kill")
            await asyncio.sleep(0.005)
    print(f"failover_ms {(time.monotonic() - start) * 1000:.0f}", flush=True)
    await nc2.close()
    try:
        await asyncio.wait_for(nc.close(), 5)
    except Exception:
        pass  # its server may be the one killed


asyncio.run(main())
