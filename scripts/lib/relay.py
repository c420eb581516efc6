#!/usr/bin/env python3
"""scripts/lib/relay.py: a TCP relay on loopback that delays and counts, for tests and benchmarks.

    relay.py --delay-ms 20 --stats FILE LISTEN_PORT:TARGET_PORT [LISTEN_PORT:TARGET_PORT ...]

Each pair accepts on 127.0.0.1:LISTEN_PORT and forwards to 127.0.0.1:TARGET_PORT. Every chunk is
delivered DELAY ms after it was read, in order, in each direction, without limiting throughput:
this is latency as a far-away server has it (`tc netem delay` is not available here), so a
client that waits on each round trip pays 2 x DELAY per request and one that pipelines does not.

A storage node whose `tub.location` names the relay's port announces the relay in its FURL and
NURL, so the node and tahoe-jobs both reach it through the relay (TLS passes through untouched:
the relay sees only bytes).

FILE receives JSON after every connection closes and at most every 0.2 s while bytes flow:
{"pairs": {"LISTEN_PORT": {"up": BYTES_TO_TARGET, "down": BYTES_FROM_TARGET,
"connections": TOTAL, "open": OPEN}}, "serial": N}, written atomically (rename). "up" is what the
servers received from their clients: a test can count the share bytes a client sent. SIGUSR1
writes the file at once (N, the number of writes so far, tells a reader that it did), so a count
taken after the traffic ended is exact: the timed writes may lag by up to 0.2 s.
The relay prints "relay ready" on stdout once every port listens; SIGTERM stops it.
Standard library only.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time


class Stats:
    def __init__(self, path, ports):
        self.path = path
        self.pairs = {str(p): {"up": 0, "down": 0, "connections": 0, "open": 0} for p in ports}
        self.last_write = 0.0
        self.serial = 0

    def write(self, force=False):
        now = time.monotonic()
        if not force and now - self.last_write < 0.2:
            return
        self.last_write = now
        if not self.path:
            return
        self.serial += 1
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pairs": self.pairs, "serial": self.serial}, f)
        os.replace(tmp, self.path)


async def pipe(reader, writer, delay, count):
    """Copies reader to writer, each chunk delivered `delay` seconds after it was read."""
    queue = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            if chunk is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
            count(len(chunk))
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass

    sender = asyncio.ensure_future(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            await queue.put((loop.time() + delay, chunk))
    except (ConnectionError, OSError):
        pass
    await queue.put((0, None))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def serve_pair(listen, target, delay, stats):
    entry = stats.pairs[str(listen)]

    async def handle(client_reader, client_writer):
        entry["connections"] += 1
        entry["open"] += 1
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            entry["open"] -= 1
            client_writer.close()
            stats.write(force=True)
            return

        def up(n):
            entry["up"] += n
            stats.write()

        def down(n):
            entry["down"] += n
            stats.write()

        await asyncio.gather(
            pipe(client_reader, server_writer, delay, up),
            pipe(server_reader, client_writer, delay, down),
        )
        for w in (client_writer, server_writer):
            try:
                w.close()
            except OSError:
                pass
        entry["open"] -= 1
        stats.write(force=True)

    return await asyncio.start_server(handle, "127.0.0.1", listen)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--stats", default="")
    parser.add_argument("pairs", nargs="+", metavar="LISTEN:TARGET")
    args = parser.parse_args()
    pairs = []
    for text in args.pairs:
        listen, _, target = text.partition(":")
        pairs.append((int(listen), int(target)))
    stats = Stats(args.stats, [p for p, _ in pairs])
    servers = [await serve_pair(l, t, args.delay_ms / 1000.0, stats) for l, t in pairs]
    stats.write(force=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: stats.write(force=True))
    print("relay ready", flush=True)
    await stop.wait()
    for s in servers:
        s.close()
    stats.write(force=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
