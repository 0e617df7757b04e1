"""`Sandbox`: the admin API of a running `frsync serve --sandbox`, or one started for you."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from frsync.client import Client

START_TIMEOUT = 60.0
# The admin API's filter names, accepted in Python spelling too.
_FILTER_NAMES = {"token_id": "tokenId"}


class SandboxError(Exception):
    """The sandbox could not be started, or its admin API refused a call."""


@dataclass
class Tenant:
    """An isolated account in the sandbox: its ids and a token of each type."""

    account_id: int
    source_id: int
    channel_id: int
    tokens: dict[str, str]
    fulfillment_request_ids: list[int]
    base_url: str
    _sandbox: Sandbox | None = field(default=None, repr=False)

    def client(self, token_type: str = "account", **options: Any) -> Client:  # noqa: S107
        """A `frsync.client.Client` on the sandbox with this tenant's token of that type."""
        if token_type not in self.tokens:
            raise ValueError(f"token_type must be one of {', '.join(self.tokens)}")
        return Client(self.tokens[token_type], base_url=self.base_url, **options)

    def remove(self) -> None:
        """Remove the tenant and revoke its tokens (again: no error)."""
        if self._sandbox is not None:
            self._sandbox.delete_tenant(self.account_id)


class Sandbox:
    """A frsync sandbox: `Sandbox()` starts `frsync serve --sandbox` over a fresh SQLite file
    with the demo data; `Sandbox(url, operator_token)` uses one that is already running."""

    def __init__(
        self,
        url: str | None = None,
        operator_token: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: str | None = None
        if url is None:
            url, operator_token = self._start()
        elif not operator_token:
            raise SandboxError("a running sandbox needs its operator token too")
        self.base_url = url.rstrip("/")
        self.operator_token: str = operator_token or ""
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"X-API-TOKEN": self.operator_token, "Accept": "application/json"},
        )

    # -- admin API -------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the demo data (or the last load): FRs, history, buckets, rules, journal."""
        self._call("POST", "/__admin/reset")

    def fault(
        self,
        match: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
        times: int | None = None,
        probability: float | None = None,
    ) -> dict[str, Any]:
        """Add a fault rule; returns it with its `id` and `remaining`."""
        if action is None:
            raise TypeError("fault() needs an action, e.g. {'status': 503}")
        rule: dict[str, Any] = {"match": match or {}, "action": action}
        if times is not None:
            rule["times"] = times
        if probability is not None:
            rule["probability"] = probability
        created: dict[str, Any] = self._call("POST", "/__admin/faults", json=rule).json()
        return created

    def faults(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self._call("GET", "/__admin/faults").json()
        return listed

    def delete_fault(self, fault_id: int) -> None:
        self._call("DELETE", f"/__admin/faults/{fault_id}")

    def clear_faults(self) -> None:
        self._call("DELETE", "/__admin/faults")

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The request journal, newest first; filters: method, path, status, token_id, limit."""
        params = {_FILTER_NAMES.get(k, k): str(v) for k, v in filters.items() if v is not None}
        entries: list[dict[str, Any]] = self._call("GET", "/__admin/requests", params=params).json()
        return entries

    def clear_requests(self) -> None:
        self._call("DELETE", "/__admin/requests")

    def new_tenant(self, fulfillment_requests: int = 10, items_per_request: int = 2) -> Tenant:
        body = {"fulfillmentRequests": fulfillment_requests, "itemsPerRequest": items_per_request}
        made = self._call("POST", "/__admin/tenants", json=body).json()
        return Tenant(
            made["accountId"],
            made["sourceId"],
            made["channelId"],
            made["tokens"],
            made["fulfillmentRequestIds"],
            self.base_url,
            self,
        )

    def delete_tenant(self, account_id: int) -> None:
        self._call("DELETE", f"/__admin/tenants/{account_id}")

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as error:
            raise SandboxError(f"{method} {self.base_url}{path}: {error}") from error
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise SandboxError(f"{method} {path}: {response.status_code} {detail}")
        return response

    # -- lifecycle -------------------------------------------------------------------------

    def _start(self) -> tuple[str, str]:
        self._workdir = tempfile.mkdtemp(prefix="frsync-sandbox-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRSYNC_")}
        env["FRSYNC_DATABASE_URL"] = f"sqlite:///{Path(self._workdir) / 'sandbox.db'}"
        frsync = [sys.executable, "-m", "frsync"]
        try:
            _run([*frsync, "demo"], env)
            token = _run(
                [*frsync, "token", "create", "--type", "operator", "--label", "frsync.testing"], env
            ).strip()
        except BaseException:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise
        port = _free_port()
        log = (Path(self._workdir) / "serve.log").open("wb")
        self._process = subprocess.Popen(  # noqa: S603 (our own command line)
            [*frsync, "serve", "--sandbox", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        url = f"http://127.0.0.1:{port}"
        self._wait_until_up(url)
        return url, token

    def _wait_until_up(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                log = Path(self._workdir or ".") / "serve.log"
                self.close()
                raise SandboxError(f"frsync serve --sandbox exited:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.close()
        raise SandboxError(f"frsync serve --sandbox did not answer within {START_TIMEOUT:g} s")

    def close(self) -> None:
        """Stop the sandbox this object started (a running one is left alone)."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.close()
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _run(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    if done.returncode != 0:
        raise SandboxError(f"{' '.join(command[2:])} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
