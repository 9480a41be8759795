"""One process against ``--workers 2`` with Redis, on the same clients (#14).

Each configuration serves the bundled stream (``--speed``, default 60 with gaps clamped to 2
minutes: an event every few seconds at most) on a free port; ``livesim load`` then holds
``--clients`` SSE subscribers on it for ``--duration`` and judges every event (missing,
duplicate, out of order) and its lateness. With ``--workers 2`` the kernel spreads the
connections over both workers (SO_REUSEPORT), so the same URL reaches both nodes. Reported per
configuration: deliveries per second, lateness p99, server CPU per delivery (the server's
processes and, for the pool, redis-server's: user + system, ``/proc/PID/stat``) and resident
memory per subscriber.

    .venv/bin/python benchmarks/scale_bench.py --clients 2000 --duration 20s
    .venv/bin/python benchmarks/scale_bench.py --clients 20000 --procs 2 --speed 600

What it does not do yet: search for the most subscribers each configuration carries at p99 under
1 s (run it at several ``--clients``), nor ``livesim load`` spread over explicit node URLs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STREAM = "aljazeera-iraq-2014-06"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def family(pid: int) -> list[int]:
    """``pid`` and its children (a worker pool's parent and its workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve(args: argparse.Namespace, extra: list[str]) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--speed", args.speed]
    process = subprocess.Popen(
        [*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"serving on (http://\S+)", line)
        if found:
            time.sleep(1.0)  # a pool's other worker
            return process, found.group(1)
    raise SystemExit("the server did not start")


def measure(
    args: argparse.Namespace, name: str, extra: list[str], redis: int | None
) -> dict[str, Any]:
    server, url = serve(args, extra)
    try:
        pids = family(server.pid) + ([redis] if redis else [])
        before = {pid: cpu_seconds(pid) for pid in pids}
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "load.json"
            load = [sys.executable, "-m", "simulator", "load", f"{url}/streams/{STREAM}"]
            load += ["--clients", str(args.clients), "--duration", args.duration]
            load += ["--procs", str(args.procs), "--json", str(report)]
            started = time.monotonic()
            subprocess.run(load, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = time.monotonic() - started
            result = json.loads(report.read_text())
        cpu = sum(cpu_seconds(pid) - before[pid] for pid in pids)
        memory = sum(rss_bytes(pid) for pid in pids)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    received = result["events"]["received"]
    return {
        "name": name,
        "passed": result["passed"],
        "clients": args.clients,
        "received": received,
        "missing": result["events"]["missing"],
        "deliveries_per_s": round(received / max(elapsed, 1e-9)),
        "p99_ms": result["lateness_ms"].get("p99"),
        "cpu_us_per_delivery": round(cpu / max(received, 1) * 1e6, 2),
        "rss_bytes_per_subscriber": round(memory / args.clients),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--procs", type=int, default=1, help="load client processes")
    parser.add_argument("--speed", default="60")
    args = parser.parse_args()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is not installed")
    rows = [measure(args, "one process", [], None)]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        redis = subprocess.Popen(
            [redis_server, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            pool = ["--workers", "2", "--redis", f"redis://127.0.0.1:{port}/0"]
            rows.append(measure(args, "--workers 2 + redis", pool, redis.pid))
        finally:
            redis.terminate()
            redis.wait(timeout=10)
    for row in rows:
        print(json.dumps(row))
    one, pool_row = rows
    if one["cpu_us_per_delivery"]:
        ratio = pool_row["cpu_us_per_delivery"] / one["cpu_us_per_delivery"]
        print(f"CPU per delivery, pool / one process: {ratio:.2f}")
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
