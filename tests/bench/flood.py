#!/usr/bin/env python3
"""Loopback floods against `authspec serve`, for tests/bench/hardening.sh.

  flood.py rcpt HOST PORT CONNECTIONS RCPTS      pipelined RCPT TO flood per connection
  flood.py data HOST PORT CONNECTIONS MEGABYTES  one DATA body of MEGABYTES per connection
  flood.py silent HOST PORT CONNECTIONS          connect, send nothing, time until closed

Prints one line of results. Bounded: every socket has a timeout.
"""
import asyncio, base64, sys, time

PLAIN = base64.b64encode(b"\0alice\0wonderland").decode()


async def drain(reader, until=None, limit=600):
    got = bytearray()
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=max(0.1, end - time.monotonic()))
        except (asyncio.TimeoutError, ConnectionError, OSError):
            # A server that closes with input unread resets the connection.
            break
        if not chunk:
            break
        got += chunk
        if until and until in got[-200:]:
            break
    return bytes(got)


async def rcpt_one(host, port, n):
    reader, writer = await asyncio.open_connection(host, port)
    head = f"EHLO flood.example\r\nAUTH PLAIN {PLAIN}\r\nMAIL FROM:<a@example.com>\r\n".encode()
    writer.write(head)
    reading = asyncio.create_task(drain(reader))
    batch = 1000
    try:
        for start in range(0, n, batch):
            writer.write(b"".join(b"RCPT TO:<r%d@example.net>\r\n" % i for i in range(start, min(n, start + batch))))
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    try:
        writer.write(b"QUIT\r\n")
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    out = await reading
    writer.close()
    return out.count(b"250 2.1.5"), out.count(b"452 4.5.3"), b"421 " in out


async def data_one(host, port, mb):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"EHLO flood.example\r\nAUTH PLAIN {PLAIN}\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n".encode())
    await drain(reader, until=b"354 ", limit=60)
    line = b"x" * 998 + b"\r\n"
    chunk = line * 64
    total = mb * 1024 * 1024
    sent = 0
    while sent < total:
        writer.write(chunk)
        await writer.drain()
        sent += len(chunk)
    writer.write(b".\r\nQUIT\r\n")
    await writer.drain()
    out = await drain(reader, until=b"221 ", limit=300)
    writer.close()
    return b"250 2.0.0" in out


async def silent(host, port, n):
    conns = []
    for _ in range(n):
        conns.append(await asyncio.open_connection(host, port))
    opened = time.monotonic()

    async def wait_closed(reader):
        await drain(reader, limit=900)
        return time.monotonic()

    ends = await asyncio.gather(*(wait_closed(r) for r, _ in conns))
    for _, w in conns:
        w.close()
    return len(conns), max(ends) - opened, min(ends) - opened


async def main():
    mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "rcpt":
        rcpts = int(sys.argv[5])
        res = await asyncio.gather(*(rcpt_one(host, port, rcpts) for _ in range(n)))
        print(f"accepted={sum(r[0] for r in res)} refused_452={sum(r[1] for r in res)} closed_421={sum(1 for r in res if r[2])}")
    elif mode == "data":
        mb = int(sys.argv[5])
        res = await asyncio.gather(*(data_one(host, port, mb) for _ in range(n)))
        print(f"queued={sum(res)} of {n}")
    elif mode == "silent":
        count, last, first = await silent(host, port, n)
        print(f"connections={count} first_closed_s={first:.2f} all_closed_s={last:.2f}")


asyncio.run(main())
