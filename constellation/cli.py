"""`satellite-run TYPE --name NAME --group GROUP ...`: start one satellite in this process.

Prints one machine-readable line once every socket is bound and discovery has started:

    READY Sputnik.One cmd=PORT hb=PORT mon=PORT

Exit codes: 0 clean exit (shutdown command, SIGINT, SIGTERM), 1 start-up failure (port in use, ...),
2 bad arguments (argparse usage, unknown TYPE, bad name).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import ClassVar

from protocols.names import split_canonical_name, validate_name_part

from .errors import ConstellationError, SatelliteTypeError
from .satellite import Satellite
from .standard import CNSTLN_VERSION

__all__ = ["Settings", "load_satellite_type", "main", "parse_args"]

ENTRY_POINT_GROUP = "constellation.satellites"
GROUP_ENV = "CONSTELLATION_GROUP"
LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "STATUS", "CRITICAL")
_PY_LEVEL = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "STATUS": 35, "CRITICAL": 40}
NAME_RULE = (
    "--name must be a name (letters, digits, '_'; the canonical name becomes TYPE.NAME) "
    "or a full canonical name 'Type.Name' with both parts of that form"
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated command-line settings.

    A frozen dataclass rather than a pydantic model: pydantic would add about 10 MiB of RSS and 0.2 s
    of start-up to every satellite process, and both are benchmark targets.
    """

    satellite_type: str
    type_name: str
    name: str
    group: str
    interfaces: tuple[str, ...] | None = None
    cmd_port: int = 0
    hb_port: int = 0
    mon_port: int = 0
    bind: str = "*"
    level: str = "INFO"
    discovery: tuple[str, ...] = ("chirp", "zeroconf")

    def __post_init__(self) -> None:
        validate_name_part(self.type_name)
        validate_name_part(self.name)
        if not self.group:
            raise ValueError("group must not be empty")
        for key in ("cmd_port", "hb_port", "mon_port"):
            port = getattr(self, key)
            if not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"{key.replace('_', '-')} must be in 0..65535, got {port}")
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        for backend in self.discovery:
            if backend not in ("chirp", "zeroconf"):
                raise ValueError(f"unknown discovery backend {backend!r} (chirp, zeroconf or none)")


def known_types() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_satellite_type(name: str) -> type[Satellite]:
    """The satellite class registered under `name` (case-insensitive) in the entry-point group."""
    eps = {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    ep = eps.get(name.lower())
    if ep is None:
        known = ", ".join(sorted(known_types())) or "(none installed)"
        raise SatelliteTypeError(f"unknown satellite type {name!r}; known types: {known}")
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Satellite)):
        raise SatelliteTypeError(f"entry point {ep.name} = {ep.value} is not a Satellite subclass")
    return cls


def _version() -> str:
    try:
        return version("operator-constellation")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="satellite-run", description="Run one Constellation satellite.")
    p.add_argument("type", metavar="TYPE", help="satellite type (entry point in 'constellation.satellites')")
    p.add_argument(
        "-n",
        "--name",
        default=socket.gethostname().replace("-", "_").replace(".", "_"),
        help="NAME (canonical TYPE.NAME) or a canonical 'Type.Name' (default: the host name)",
    )
    p.add_argument(
        "-g",
        "--group",
        default=os.environ.get(GROUP_ENV),
        help=f"Constellation group (default: ${GROUP_ENV})",
    )
    p.add_argument(
        "-i",
        "--interface",
        action="append",
        dest="interfaces",
        metavar="IFACE",
        help="announce on this interface (repeatable; default: all multicast interfaces)",
    )
    p.add_argument("--cmd-port", "--command-port", "--cscp", type=int, default=0)
    p.add_argument("--hb-port", "--heartbeat-port", "--chp", type=int, default=0)
    p.add_argument("--mon-port", "--monitoring-port", "--cmdp", type=int, default=0)
    p.add_argument("--bind", default="*", help="address to bind the TCP sockets to (default: all, '*')")
    p.add_argument("-l", "--level", type=str.upper, choices=LEVELS, default="INFO", help="console log level")
    p.add_argument(
        "--version",
        action="version",
        version=f"satellite-run {_version()} (Constellation {CNSTLN_VERSION} wire protocols)",
    )
    p.add_argument(
        "--discovery",
        default="chirp,zeroconf",
        help="comma-separated discovery backends: chirp, zeroconf, or none",
    )
    return p


def parse_args(argv: Sequence[str] | None) -> Settings:
    """Settings from the command line; argparse exits with 2 and the usage on bad arguments."""
    parser = _parser()
    ns = parser.parse_args(argv)
    if not ns.group:
        parser.error(f"--group is required (or set ${GROUP_ENV})")
    try:
        validate_name_part(ns.group)
    except ValueError:
        parser.error(f"invalid group {ns.group!r}: letters, digits and '_' only")
    try:
        cls = load_satellite_type(ns.type)
    except SatelliteTypeError as exc:
        parser.error(str(exc))
    try:
        if "." in ns.name:
            type_name, name = split_canonical_name(ns.name)
        else:
            type_name, name = cls.satellite_type or cls.__name__, validate_name_part(ns.name)
    except ValueError as exc:
        parser.error(f"{exc}. {NAME_RULE}")
    backends = tuple(b.strip() for b in ns.discovery.split(",") if b.strip() and b.strip() != "none")
    try:
        return Settings(
            satellite_type=ns.type,
            type_name=type_name,
            name=name,
            group=ns.group,
            interfaces=tuple(ns.interfaces) if ns.interfaces else None,
            cmd_port=ns.cmd_port,
            hb_port=ns.hb_port,
            mon_port=ns.mon_port,
            bind=ns.bind,
            level=ns.level,
            discovery=backends,
        )
    except ValueError as exc:
        parser.error(str(exc).replace("\n", " "))


class _ConsoleFormatter(logging.Formatter):
    """Names Constellation's TRACE (5) and STATUS (35) levels without touching logging's global table."""

    _NAMES: ClassVar[dict[int, str]] = {5: "TRACE", 35: "STATUS", 40: "CRITICAL"}

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = self._NAMES.get(record.levelno, record.levelname)
        component = getattr(record, "component", None)
        record.component = component or record.name.rpartition(".")[2].upper()
        return super().format(record)


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(_PY_LEVEL[level])
    handler.setFormatter(_ConsoleFormatter("%(asctime)s %(levelname)s [%(component)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(5)  # CMDP subscribers may ask for TRACE; the console handler filters by --level
    for noisy in ("asyncio", "zeroconf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(settings: Settings) -> int:
    cls = load_satellite_type(settings.satellite_type)
    sat = cls(
        settings.name,
        settings.group,
        type_name=settings.type_name,
        interfaces=settings.interfaces,
        cmd_port=settings.cmd_port,
        hb_port=settings.hb_port,
        mon_port=settings.mon_port,
        bind=settings.bind,
        discovery=settings.discovery,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sat.request_exit)
    try:
        async with sat:
            p = sat.ports
            print(f"READY {sat.name} cmd={p['cmd']} hb={p['hb']} mon={p['mon']}", flush=True)
            await sat.wait_closed()
            sat._ctrl_log.info("Satellite %s leaving", sat.name)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    _setup_logging(settings.level)
    try:
        code = asyncio.run(serve(settings))
    except ConstellationError as exc:
        print(f"satellite-run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT before the signal handlers were installed
        code = 0
    # A hook stuck in a worker thread must not keep the process alive after a clean shutdown.
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
