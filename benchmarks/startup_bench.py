"""How long does ``livesim serve`` take to be ready on a large archive?

Starts ``python -m simulator serve ARCHIVE --port 0`` (the archive as its one stream, default
settings) and times it from the process's start to the first ``GET /readyz`` that answers 200:
reading and importing the archive, building the stream's script and replay, starting the server.
Besides wall time it reads the server's own CPU time (user + system, ``/proc/PID/stat``) at that
moment, the steadier figure on a shared machine. Then it stops the server with SIGINT.

The archive is ``livesim synth --posts N --seed S`` (written once to a temporary directory, or
given with ``--archive``). ``--tree`` runs another checkout of the project with this one's
interpreter, so two versions are timed by the same invocation:

    .venv/bin/python benchmarks/startup_bench.py                         # 1 000 000 posts
    git worktree add /tmp/base <commit>
    .venv/bin/python benchmarks/startup_bench.py --tree /tmp/base --archive /tmp/m1.jsonl
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 600.0
POLL = 0.05


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def synthesize(posts: int, seed: int, directory: Path) -> Path:
    path = directory / f"synth-{posts}-{seed}.jsonl"
    command = [sys.executable, "-m", "simulator", "synth", "--posts", str(posts)]
    subprocess.run([*command, "--seed", str(seed), "-o", str(path)], check=True, cwd=ROOT)
    return path


def start_up(tree: Path, archive: Path) -> tuple[float, float]:
    """Wall and CPU seconds from starting ``livesim serve`` to its first ready ``/readyz``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "simulator", "serve", str(archive)]
    started = time.perf_counter()
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", "0"],
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = ""
        for line in server.stdout:
            if "serving on " in line:
                url = line.split("serving on ", 1)[1].split()[0]
                break
        if not url:
            raise SystemExit(f"startup_bench: the server exited with {server.wait()}")
        while time.perf_counter() - started < READY_TIMEOUT:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - started, cpu_seconds(server.pid)
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(POLL)
        raise SystemExit(f"startup_bench: not ready within {READY_TIMEOUT:g} s")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--archive", type=Path, help="an archive to serve instead of synth's")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout to run")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        archive = args.archive or synthesize(args.posts, args.seed, Path(scratch))
        print(f"startup_bench: {archive} ({archive.stat().st_size:,} bytes), tree {args.tree}")
        for run in range(1, args.runs + 1):
            wall, cpu = start_up(args.tree.resolve(), archive.resolve())
            print(f"  run {run}: ready in {wall:.2f} s wall, {cpu:.2f} s server CPU", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
