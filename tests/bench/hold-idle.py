#!/usr/bin/env python3
"""Open N SMTP connections, read each greeting, and hold them idle.

    hold-idle.py HOST PORT N

Prints "held N" (or "held K of N" and the first error) on stdout once every
connection has its greeting, then keeps them open until stdin closes.
Used by tests/bench/idle-sessions.sh.
"""
import asyncio
import sys


async def open_one(host, port, sem):
    async with sem:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        line = await asyncio.wait_for(reader.readline(), 30)
        if not line.startswith(b"220"):
            raise RuntimeError(f"greeting {line[:40]!r}")
        return writer


async def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # Opening thousands at once would overflow the listen backlog; 200 in flight is plenty.
    sem = asyncio.Semaphore(200)
    results = await asyncio.gather(*(open_one(host, port, sem) for _ in range(n)), return_exceptions=True)
    writers = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"held {len(writers)} of {n}; first error: {errors[0]!r}", flush=True)
    else:
        print(f"held {len(writers)}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for w in writers:
        w.close()


asyncio.run(main())
