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
