"""`python -m bench.load`: the HTTP load generator, in a process of its own so its CPU is neither bankq's nor the
bench's. asyncio over raw keep-alive connections: a request costs it a fraction of what a `requests` thread would,
so on a 2-core machine the client takes as little as possible from the server it measures.

Reads one JSON job from stdin and prints one JSON line of results:

    {"host", "port", "path", "connections", "mode": "closed" | "open", "rate" (open: requests/s offered),
     "warmup", "seconds", "run" (a prefix for Idempotency-Keys),
     "clients": [{"token", "bodies": [json body, ...]}, ...]}

POSTs each client's bodies in turn to `path`; a client with "paths": [...] instead GETs those in turn.

closed: each connection sends its next request as soon as the last one is answered (saturation).
open: requests are due at fixed intervals, whatever the answers; a request waits for a free connection if none is,
and its latency runs from when it was due, so a server that falls behind shows it in p99 (no coordinated omission).
Only requests due (open) or sent (closed) inside the window after the warm-up count. The lines `window start` and
`window end` are printed as the window opens and closes, so the caller can read the database and the CPU meter at
the same moments.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

ATTEMPTS = 3


@dataclass
class Results:
    sent: int = 0
    accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    retries: int = 0


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Load:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.results = Results()
        self.keys = itertools.count()
        self.bodies = [itertools.cycle(c.get("bodies") or [None]) for c in job["clients"]]
        self.paths = [itertools.cycle(c["paths"]) if c.get("paths") else None for c in job["clients"]]
        self.tokens = [c["token"] for c in job["clients"]]
        self.window: tuple[float, float] = (0.0, 0.0)

    def raw(self, client: int) -> bytes:
        paths = self.paths[client]
        if paths is not None:
            return (f"GET {next(paths)} HTTP/1.1\r\nHost: {self.job['host']}\r\n"
                    f"Authorization: Bearer {self.tokens[client]}\r\n\r\n").encode()
        body = json.dumps(next(self.bodies[client])).encode()
        key = f"{self.job['run']}-{next(self.keys)}"
        return (f"POST {self.job['path']} HTTP/1.1\r\nHost: {self.job['host']}\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {self.tokens[client]}\r\nIdempotency-Key: {key}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def one(self, conn: Connection, raw: bytes, since: float) -> None:
        """Send one request (again, same key, on a fresh connection if the kept-alive one was closed under us)."""
        for attempt in range(ATTEMPTS):
            try:
                status, body = await conn.request(raw)
                break
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                conn.close()
                self.results.retries += 1
                if attempt == ATTEMPTS - 1:
                    self._error(f"{type(exc).__name__}: {exc}")
                    return
        done = time.perf_counter()
        if not self.window[0] <= since < self.window[1]:
            return
        r = self.results
        r.sent += 1
        r.statuses[str(status)] = r.statuses.get(str(status), 0) + 1
        r.latencies_ms.append((done - since) * 1000)
        if 200 <= status < 300:
            r.accepted += 1
        else:
            self._error(f"{status} {body[:200].decode(errors='replace')}")

    def _error(self, message: str) -> None:
        if len(self.results.errors) < 5:
            self.results.errors.append(message)

    async def closed_loop(self, conn: Connection, client: int, end: float) -> None:
        while (now := time.perf_counter()) < end:
            await self.one(conn, self.raw(client), now)

    async def open_loop(self, queue: asyncio.Queue[tuple[float, int] | None], conn: Connection) -> None:
        while (item := await queue.get()) is not None:
            due, client = item
            await self.one(conn, self.raw(client), due)

    async def mark_window(self) -> None:
        for at, word in zip(self.window, ("start", "end"), strict=True):
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            print(f"window {word}", flush=True)

    async def run(self) -> dict[str, Any]:
        job = self.job
        start = time.perf_counter()
        self.window = (start + job["warmup"], start + job["warmup"] + job["seconds"])
        end = self.window[1]
        conns = [Connection(job["host"], job["port"]) for _ in range(job["connections"])]
        marks = asyncio.create_task(self.mark_window())
        clients = len(self.tokens)
        if job["mode"] == "closed":
            await asyncio.gather(*(self.closed_loop(c, i % clients, end) for i, c in enumerate(conns)))
        else:
            queue: asyncio.Queue[tuple[float, int] | None] = asyncio.Queue()
            senders = [asyncio.create_task(self.open_loop(queue, c)) for c in conns]
            interval = 1.0 / job["rate"]
            for n in itertools.count():
                due = start + n * interval
                if due >= end:
                    break
                if (pause := due - time.perf_counter()) > 0:
                    await asyncio.sleep(pause)
                queue.put_nowait((due, n % clients))
            for _ in senders:
                queue.put_nowait(None)
            await asyncio.gather(*senders)
        await marks
        for c in conns:
            c.close()
        r = self.results
        return {"sent": r.sent, "accepted": r.accepted, "statuses": r.statuses, "errors": r.errors,
                "retries": r.retries, "window_seconds": job["seconds"], "latencies_ms": r.latencies_ms}


def main() -> int:
    job = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(Load(job).run())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
