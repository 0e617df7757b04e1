"""Profile the PATCH path: py-spy samples one worker while wrk drives PATCH load.

py-spy reads the worker's memory from outside (no instrumentation inside the process), so
the profile shows where a real worker spends its time. Frames are aggregated two ways:
self time (the sampled leaf) and inclusive time (any frame on the stack, once per sample).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.servers import Server

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


@dataclass
class Profile:
    samples: int
    self_top: list[tuple[str, int]]
    inclusive_top: list[tuple[str, int]]
    rps: float


def py_spy() -> str | None:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def _name(frame: str) -> str:
    """`sync_accounting (frsync/store/sqlite.py:123)` → `frsync/store/sqlite.py:sync_accounting`."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{match['function']}"


def aggregate(raw: str, top: int = 12) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, own.most_common(top), inclusive.most_common(top * 3)


def profile_patch(server: Server, targets: Path, seconds: float, out: Path) -> Profile:
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    (worker,) = server.workers()
    command = [tool, "record", "--pid", str(worker), "--duration", f"{seconds:g}", "--rate",
               "250", "--format", "raw", "--nonblocking", "--output", str(out)]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    summary, _ = load.wrk(server.base_url, seconds, "patch", str(targets), "0")
    _, errors = spy.communicate(timeout=60)
    if spy.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')[-500:]}")
    samples, self_top, inclusive_top = aggregate(out.read_text())
    rps = int(summary["requests"]) / (float(summary["duration_us"]) / 1e6)  # type: ignore[call-overload,arg-type]
    return Profile(samples, self_top, inclusive_top, rps)
