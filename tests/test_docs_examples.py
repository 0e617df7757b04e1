"""Every example in README.md and docs/ runs, in order, against a fresh `frsync demo` server.

For each page: `frsync demo` seeds a SQLite file, `frsync token create` issues the tokens the
examples name, and `frsync serve` runs on a free port. Then each fenced block of the page:

- `sh` and `python` blocks run (bash with `set -euo pipefail`; the venv's python) and must
  exit 0, or the code a `<!-- exit: N -->` comment before the block names. `curl` fails on an
  HTTP error status (`--fail-with-body`, exit 22), so an example that shows a refusal says so
  with `<!-- exit: 22 -->`.
- A block after `<!-- file: NAME -->` is written to NAME in the working directory, for the
  commands after it (a CSV to push, a fixture to load). `json` blocks must parse (JSON, or
  JSON Lines).
- `<!-- not-tested: why -->` before a block keeps it from running; the reason is required.
- `text` blocks are output or grammar, shown, not run. Every block must name its language.

The examples address the server as `http://127.0.0.1:8000` (what `make run` serves); here that
is rewritten to the test server's port. Their environment holds what the pages tell a reader
to set: `FRSYNC_BASE_URL`, `FRSYNC_TOKEN` and `TOKEN` (an account-1 token), `SOURCE_TOKEN`
(source 10), `CHANNEL_TOKEN` (channel 20), `OPERATOR_TOKEN`, and `FRSYNC_DATABASE_URL`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port, wait_ready

ROOT = Path(__file__).parents[1]
# Pages other suites own and test: their examples drive a sandbox or a multi-host deployment.
NOT_HERE = {"docs/sandbox.md", "docs/deploy.md"}
PAGES = sorted(
    str(path.relative_to(ROOT))
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md")]
    if str(path.relative_to(ROOT)) not in NOT_HERE
)
RUN = {"sh": "bash", "bash": "bash", "python": "python"}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARK = re.compile(r"^\s*<!--\s*(not-tested|file|exit):\s*(.*?)\s*-->\s*$")
FRSYNC = [sys.executable, "-m", "frsync"]


@dataclass
class Block:
    page: str
    line: int
    language: str
    text: str
    marks: dict[str, str]

    def __str__(self) -> str:
        return f"{self.page}:{self.line} ({self.language})"


def blocks(page: str) -> Iterator[Block]:
    """The fenced blocks of `page`, each with the marker comments just before it."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    marks: dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        if mark := MARK.match(line):
            marks[mark[1]] = mark[2]
        elif fence := FENCE.match(line):
            indent, language = fence.groups()
            end = index + 1
            while not lines[end].startswith(f"{indent}```"):
                end += 1
            body = [text[len(indent) :] for text in lines[index + 1 : end]]
            yield Block(page, index + 1, language, "\n".join(body) + "\n", marks)
            marks, index = {}, end
        elif line.strip():
            marks = {}  # a marker speaks of the block right after it only
        index += 1


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """`frsync demo` data and a token of each type, made once (six processes); each page's
    examples run on a copy."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    env = _environment(path)
    subprocess.run([*FRSYNC, "demo"], env=env, check=True, capture_output=True, timeout=120)
    tokens = {
        name: _create_token(env, *scope)
        for name, scope in {
            "TOKEN": ("account", "1"),
            "SOURCE_TOKEN": ("source", "10"),
            "CHANNEL_TOKEN": ("channel", "20"),
            "OPERATOR_TOKEN": ("operator",),
        }.items()
    }
    return path, tokens


@pytest.fixture
def demo_server(tmp_path: Path, demo_data: tuple[Path, dict[str, str]]) -> Iterator[dict[str, str]]:
    """A fresh copy of the demo data served on a free port; yields the environment for the
    examples."""
    source, tokens = demo_data
    original, copy = sqlite3.connect(source), sqlite3.connect(tmp_path / "demo.db")
    try:
        original.backup(copy)  # whole, WAL included
    finally:
        original.close()
        copy.close()
    env = _environment(tmp_path / "demo.db")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*FRSYNC, "serve", "--port", str(port)], env=env, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{port}"
    shims = tmp_path / "bin"
    shims.mkdir()
    curl = shims / "curl"
    curl.write_text(f'#!/bin/sh\nexec {_real("curl")} --fail-with-body "$@"\n')
    _real("jq")  # docs/loading.md pages with it
    curl.chmod(0o755)
    try:
        wait_ready(base)
        yield {
            **env,
            **tokens,
            "FRSYNC_TOKEN": tokens["TOKEN"],
            "FRSYNC_BASE_URL": base,
            "PORT": str(port),
            "PATH": os.pathsep.join([str(shims), str(Path(sys.executable).parent), env["PATH"]]),
        }
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "Traceback" not in log.read_text()


def _environment(database: Path) -> dict[str, str]:
    env = {**os.environ, "FRSYNC_DATABASE_URL": f"sqlite:///{database}"}
    for name in ("FRSYNC_BASE_URL", "FRSYNC_TOKEN", "FRSYNC_REDIS_URL"):
        env.pop(name, None)
    return env


def _create_token(env: dict[str, str], token_type: str, scope_id: str | None = None) -> str:
    command = [*FRSYNC, "token", "create", "--type", token_type, "--label", "docs"]
    command += ["--id", scope_id] if scope_id else []
    result = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return result.stdout.strip()


def _real(program: str) -> str:
    for folder in os.environ["PATH"].split(os.pathsep):
        if os.access(candidate := os.path.join(folder, program), os.X_OK):
            return candidate
    pytest.fail(f"the examples need {program}")


def test_every_page_has_examples_and_each_block_names_its_language() -> None:
    for page in PAGES:
        found = list(blocks(page))
        assert found, f"{page} has no examples"
        for block in found:
            assert block.language, f"{block}: a fenced block without a language"
            if "not-tested" in block.marks:
                assert block.marks["not-tested"], f"{block}: not-tested needs a reason"


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_examples_run_against_a_demo_server(
    page: str, demo_server: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    ran = 0
    for block in blocks(page):
        text = block.text.replace("127.0.0.1:8000", f"127.0.0.1:{demo_server['PORT']}")
        if "not-tested" in block.marks:
            continue
        if "file" in block.marks:
            (work / block.marks["file"]).write_text(text, encoding="utf-8")
        if block.language == "json":
            _parses(block, text)
        if block.language in RUN:
            _run(block, text, work, demo_server)
            ran += 1
    assert ran, f"{page}: no example ran"


def _parses(block: Block, text: str) -> None:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        for line in filter(str.strip, text.splitlines()):
            try:
                json.loads(line)
            except json.JSONDecodeError as error:
                pytest.fail(f"{block}: not JSON nor JSON Lines: {error}")


def _run(block: Block, text: str, work: Path, env: dict[str, str]) -> None:
    if RUN[block.language] == "bash":
        command = ["bash", "-c", "set -euo pipefail\n" + text]
    else:
        command = [sys.executable, "-c", text]
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180)
    expected = int(block.marks.get("exit", "0"))
    assert result.returncode == expected, (
        f"{block} exited {result.returncode}, not {expected}\n--- example\n{text}"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
    )


def test_the_readme_synopsis_names_only_flags_the_commands_have() -> None:
    synopsis = next(
        block.text for block in blocks("README.md") if block.text.startswith("frsync serve")
    )
    command, flags = "", {}
    for line in synopsis.splitlines():
        if line.startswith("frsync "):
            command = line.split()[1]
        flags.setdefault(command, set()).update(re.findall(r"--[a-z][a-z-]+", line))
    assert {"serve", "load", "demo", "token", "push", "pending"} <= flags.keys()
    for command, named in flags.items():
        argv = ["token", "create"] if command == "token" else [command]
        result = subprocess.run(
            [*FRSYNC, *argv, "--help"], capture_output=True, text=True, timeout=60, check=True
        )
        missing = {flag for flag in named if flag not in result.stdout}
        assert not missing, f"README names {sorted(missing)} for frsync {command}"
