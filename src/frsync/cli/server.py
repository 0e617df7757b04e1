"""`frsync serve`: the API server (needs the server extra)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import logging
import math
import multiprocessing
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frsync import supervisor
from frsync.cli.common import (
    USAGE,
    database_flag,
    describe_setting_error,
    err,
    migrate_store,
    settings_from,
)
from frsync.config import Settings, SettingsError, env_variable
from frsync.logs import configure_logging
from frsync.server_protocol import PROTOCOL

if TYPE_CHECKING:
    from frsync.store.sqlite_writer import Writer

# serve ---------------------------------------------------------------------------------


def app_from_env() -> Any:
    """uvicorn's factory in each worker process: settings come through the environment."""
    from frsync.app import create_app
    from frsync.server_protocol import GuardedHttpToolsProtocol

    configure_logging()  # worker processes are spawned fresh: set logging up in each
    supervisor.die_with_supervisor()  # no orphan outlives a supervisor killed with -9
    settings = Settings.from_env()
    GuardedHttpToolsProtocol.configure(settings)  # before this worker accepts a connection
    app = create_app(settings)
    # Everything imported and built so far lives as long as the process. A full collection
    # walks every tracked object, and these were 2/3 of a worker's: 25–60 ms with the event
    # loop stopped, a few times a minute under load. Frozen, they are never walked again
    # (collected first, so no garbage is frozen with them).
    gc.collect()
    gc.freeze()
    return app


def _export_for_workers(settings: Settings) -> None:
    """Workers are separate processes: hand them the resolved settings as FRSYNC_* variables."""
    names = ("database_url", "rate_limit_url", "rate", "burst", "metrics_dir", "sandbox",
             "sqlite_write_socket")  # fmt: skip
    for name in names:
        value = getattr(settings, name)
        if value is not None:
            os.environ[env_variable(name)] = str(value)


def _metrics_dir(settings: Settings) -> tuple[Settings, str | None]:
    """With several workers, a directory where they pool their metrics (see api/metrics.py).

    Returns the settings to use and a directory to remove afterwards (one made here)."""
    if settings.metrics_dir:
        for stale in Path(settings.metrics_dir).glob("*.msgpack"):
            stale.unlink()  # a previous run's counters would inflate this run's totals
        return settings, None
    if settings.workers <= 1:
        return settings, None
    made = supervisor.private_dir("metrics")  # a crashed run's directories removed first
    return dataclasses.replace(settings, metrics_dir=made), made


def write_process_main(path: str, socket_path: str, busy_timeout: float, synchronous: str) -> None:
    """The SQLite write process (store/sqlite_write_process.py), a `multiprocessing` spawn
    target. SIGINT and SIGTERM are ignored: sent to the whole process group (a Ctrl-C, a
    service manager) they would stop it while the workers still finish their requests.
    `serve` stops it with STOP_SIGNAL once the workers are gone; the kernel kills it if
    `serve` dies."""
    import uvloop

    from frsync.store.sqlite_write_process import serve

    configure_logging()
    supervisor.die_with_supervisor()
    supervisor.name_this_process(supervisor.WRITE_PROCESS_NAME)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    uvloop.run(serve(write_process_writer(path, synchronous, busy_timeout), socket_path))


def write_process_writer(path: str, synchronous: str, busy_timeout: float) -> Writer:
    """The write process's writer: inline on its loop. Its writes are the workers' PATCH
    batches and usage counts, each bounded, so the statement journal can stay in memory
    (store/sqlite.py, `connect`)."""
    from frsync.store.sqlite import connect
    from frsync.store.sqlite_writer import Writer

    return Writer(connect(path, synchronous, journal_in_memory=True), busy_timeout, threaded=False)


log = logging.getLogger("frsync.server")
_UNIX_PATH_MAX = 107  # bytes of a Unix socket's path (Linux's sun_path, less its NUL)


@contextlib.contextmanager
def _write_process(settings: Settings) -> Iterator[Settings]:
    """For a SQLite database, the write process, started before the workers and stopped
    after them; yields the settings that send the workers' PATCHes to it."""
    from frsync.backends import scheme_of
    from frsync.store.sqlite import path_from_url, synchronous_of
    from frsync.store.sqlite_write_process import STOP_SIGNAL

    url = settings.database_url
    if not settings.sqlite_write_process or scheme_of(url) != "sqlite" or os.name != "posix":
        yield settings
        return
    # In /dev/shm when there is one: a Unix socket's path may not pass 107 bytes, and a
    # temporary directory can be deep (TMPDIR under a test's folder was).
    directory = supervisor.private_dir("write", supervisor.shared_memory_dir())
    socket_path = os.path.join(directory, "patches.sock")
    if len(os.fsencode(socket_path)) > _UNIX_PATH_MAX:
        log.warning("%s is too long for a Unix socket: no write process", socket_path)
        supervisor.remove_dir(directory)
        yield settings
        return
    args = (path_from_url(url), socket_path, settings.store_busy_timeout, synchronous_of(url))
    process = multiprocessing.get_context("spawn").Process(
        target=write_process_main, args=args, name="frsync-sqlite-write"
    )
    process.start()
    try:
        yield settings.replace(sqlite_write_socket=socket_path)
    finally:
        if process.pid is not None:  # the workers are gone: it applies what it holds, exits
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, STOP_SIGNAL)
        process.join(settings.shutdown_grace_seconds)
        if process.is_alive():
            process.kill()
            process.join()
        supervisor.remove_dir(directory)


def _bring_schema_to_head(settings: Settings) -> None:
    """`migrate_store`, unless the schema is known to be at head already: then neither Alembic
    nor SQLAlchemy is imported (half a second of a sandbox's start, most of it)."""
    from frsync.store.upgrade import is_at_head

    if not is_at_head(settings.database_url):
        migrate_store(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    flags = {
        "rate_limit_url": args.redis_url,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "rate": args.rate,
        "burst": args.burst,
        "forwarded_allow_ips": args.forwarded_allow_ips,
        "sandbox": True if args.sandbox else None,
    }
    settings, made_dir = _metrics_dir(settings_from(args, **flags))
    try:
        settings, made_table = supervisor.shared_rate_limits(settings)
    except supervisor.ServeConfigError as error:
        err.print(f"frsync serve: {error}")
        return 2
    _bring_schema_to_head(settings)
    configure_logging()
    backend = settings.database_url.split(":", 1)[0]
    where = f"http://{settings.host}:{settings.port}"
    mode = ", sandbox" if settings.sandbox else ""
    err.print(f"frsync serving on {where} ({settings.workers} worker(s), {backend} store{mode})")
    try:
        with supervisor.cleanup_before_sigterm(), _write_process(settings) as settings:
            _export_for_workers(settings)
            _run_workers(settings)
    finally:
        if made_dir is not None:
            shutil.rmtree(made_dir, ignore_errors=True)
        supervisor.remove_dir(made_table)
    return 0


def _run_workers(settings: Settings) -> None:
    supervisor.run(  # uvicorn.run, closing the listening socket at SIGTERM
        "frsync.cli.server:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop" if sys.platform != "win32" else "auto",
        http=PROTOCOL,  # httptools, plus header/body deadlines and a connection cap
        access_log=False,
        log_config=None,
        **supervisor.proxy_options(settings),  # no proxy trusted unless listed
        # uvicorn takes whole seconds; 0 would mean "do not wait at all".
        timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_grace_seconds)),
        server_header=False,
    )


# parser --------------------------------------------------------------------------------


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the API server")
    database_flag(serve)
    serve.add_argument("--redis-url", help="share rate limits through Redis ($FRSYNC_REDIS_URL)")
    serve.add_argument("--host", help="default 127.0.0.1")
    serve.add_argument("--port", type=int, help="default 8000")
    serve.add_argument("--workers", type=int, help="worker processes, 1 to 64 (default 1)")
    serve.add_argument("--rate", type=float, help="bucket refill per second (default 2)")
    serve.add_argument("--burst", type=int, help="bucket capacity (default 40)")
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies trusted to set X-Forwarded-For, comma-separated IPs or CIDRs"
        " ($FRSYNC_FORWARDED_ALLOW_IPS; default: none, the header is ignored)",
    )
    serve.add_argument(
        "--sandbox",
        action="store_true",
        help="serve as a test sandbox: the /__admin API for resets, tenants, fault rules and"
        " the request journal, with an operator token ($FRSYNC_SANDBOX=1)",
    )
    serve.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> None:
    """`python -m frsync.cli.server [serve flags]`: `frsync serve` alone, as the sandbox
    fixture starts it. Building every other command's parser imports the client, rich tables
    and the loaders: a third of a sandbox's start, for nothing."""
    parser = argparse.ArgumentParser(prog="frsync")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    try:
        code = cmd_serve(args)
    except SettingsError as error:
        err.print(f"frsync serve: {describe_setting_error(error, args)}", markup=False)
        code = USAGE
    sys.exit(code)


if __name__ == "__main__":
    main()
