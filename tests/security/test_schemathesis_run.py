"""schemathesis' own runner against a real server on each store: every check (`--checks all`),
positive and negative data (`--mode all`), every phase (examples, coverage, fuzzing and the
stateful phase, which follows links from one answer to the next request).

The document must promise exactly what the server does, on the request side too: a request
that fits it is accepted, one that does not is refused, and every answer fits it. The only
excuses are the rules JSON Schema cannot express (schemathesis_hooks.py, RELIABILITY.md).
FRSYNC_SCHEMATHESIS_EXAMPLES raises the examples per operation for a deeper run.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from frsync.config import Settings
from tests.security.schemathesis_hooks import BEYOND_SCHEMA
from tests.security.tally import Recorder
from tests.support import TOKENS, examples, serve_over_tcp

EXAMPLES = os.environ.get("FRSYNC_SCHEMATHESIS_EXAMPLES", str(examples(40)))
ROOT = Path(__file__).parents[2]


def _schemathesis(
    base_url: str, workdir: Path, excused: Path, seed: int
) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{base_url}/openapi.json",
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--header", f"X-API-TOKEN: {TOKENS['account1']}",
        "--max-examples", EXAMPLES, "--workers", "1", "--no-color", "--seed", str(seed),
    ]  # fmt: skip
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.security.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "FRSYNC_SCHEMATHESIS_EXCUSED": str(excused),
    }
    return subprocess.run(
        command,
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300 * max(1, int(EXAMPLES) // 40),  # `make fuzz` runs ten times the examples
    )


@pytest.mark.slow  # every phase of schemathesis' runner against a real server
def test_schemathesis_with_every_check_and_phase_finds_nothing(
    settings: Settings, store_name: str, tmp_path: Path, generation_seed: int
) -> None:
    # `ignored_auth` and `missing_required_header` send requests without a token, all from
    # one address: the invalid-token limit would answer them 429 (as it should elsewhere).
    settings = dataclasses.replace(settings, invalid_token_burst=10**6, invalid_token_rate=1e6)
    excused = tmp_path / "excused.txt"
    with serve_over_tcp(settings) as base_url:
        run = _schemathesis(base_url, tmp_path, excused, generation_seed)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-8000:]
    reasons = Counter(excused.read_text().splitlines()) if excused.exists() else Counter()
    assert set(reasons) <= set(BEYOND_SCHEMA.values())
    summary = re.search(r"(\d+) generated, (\d+) passed", report)
    note = f"full run, every check and phase: {summary.group(0) if summary else '?'}"
    Recorder("6 generated: schemathesis", store_name).counts.notes.append(
        f"{note}, excused {dict(reasons) or 'none'}"
    )
    # Every phase ran, the stateful one included, and none was skipped for lack of input.
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅  {phase} \(in", report), f"{phase} did not pass:\n{report[-4000:]}"
    assert "API Links:" in report, "the stateful phase found no links to follow"
