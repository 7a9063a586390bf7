"""`python -m bench.sse_holder BASE`: holds many event streams open from one asyncio process (the bench's client
side for bench.sse_streams) and times each terminal job event's arrival against the job's updated_at.

Reads JSON from stdin: {"streams": [token, ...]} (one stream per entry; a token may repeat). Prints `open <n>` once
every stream answered 200 and sent its retry hint, then `mark` on a line of stdin starts a measuring window and
`stop` ends it: it prints one JSON line {"open": ..., "events": ..., "latencies_ms": [...]} with the latency of every
terminal event received in the window (arrival minus the job's updated_at, set by the worker before its commit)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from urllib.parse import urlsplit

TERMINAL = ("succeeded", "failed", "cancelled")


class Holder:
    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.open = 0
        self.events = 0
        self.measuring = False
        self.latencies_ms: list[float] = []
        self.failures: list[str] = []

    async def stream(self, token: str, ready: asyncio.Event) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.write((f"GET /api/v1/events HTTP/1.0\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n"
                          f"Authorization: Bearer {token}\r\n\r\n").encode())
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                self.failures.append(status.decode(errors="replace").strip() or "closed")
                ready.set()
                return
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # headers
            await reader.readline()  # retry: hint
            self.open += 1
            ready.set()
            while line := await reader.readline():
                if line.startswith(b"data: "):
                    self._event(json.loads(line[6:]))
            self.open -= 1  # the server ended the stream
        except (OSError, asyncio.IncompleteReadError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")
            ready.set()

    def _event(self, job: dict) -> None:  # type: ignore[type-arg]
        arrived = time.time()
        self.events += 1
        if self.measuring and job.get("status") in TERMINAL and job.get("updated_at"):
            finished = datetime.fromisoformat(job["updated_at"]).timestamp()
            self.latencies_ms.append((arrived - finished) * 1000)


async def main(base: str) -> int:
    spec = json.loads(sys.stdin.readline())
    holder = Holder(base)
    loop = asyncio.get_running_loop()
    tasks = []
    for i, token in enumerate(spec["streams"]):
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(holder.stream(token, ready)))
        await ready.wait()  # one at a time: a connection burst would only measure the accept backlog
        if i % 100 == 99:
            await asyncio.sleep(0)
    print(f"open {holder.open} failed {len(holder.failures)} {holder.failures[:3]}", flush=True)
    while command := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if command == "mark":
            holder.latencies_ms.clear()
            holder.measuring = True
        elif command == "stop":
            holder.measuring = False
            print(json.dumps({"open": holder.open, "events": holder.events, "latencies_ms": holder.latencies_ms}),
                  flush=True)
        elif command == "quit":
            break
    for task in tasks:
        task.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
