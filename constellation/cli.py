"""`satellite-run TYPE --name NAME --group GROUP ...`: start one satellite in this process.

Prints one machine-readable line once every socket is bound and discovery has started:

    READY Sputnik.One cmd=PORT hb=PORT mon=PORT

Start-up (docs/architecture.md): the ports are bound and announced over CHIRP by `constellation.launch`
before the runtime and the satellite type are imported, so this module imports only the standard library
at first; the runtime is imported once the announcement is out.

Exit codes: 0 clean exit (shutdown command, SIGINT, SIGTERM), 1 start-up failure (port in use, ...),
2 bad arguments (argparse usage, unknown TYPE, bad name).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
import threading
from collections.abc import Mapping, Sequence

from protocols.names import split_canonical_name, validate_name_part

from .errors import ConstellationError, SatelliteTypeError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time); mypy knows it
if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from .consolelog import ConsoleHandler
    from .launch import EarlyOffer, Prebound
    from .satellite import Satellite

__all__ = ["Settings", "find_entry_point", "load_satellite_type", "main", "parse_args"]

ENTRY_POINT_GROUP = "constellation.satellites"
GROUP_ENV = "CONSTELLATION_GROUP"
LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "STATUS", "CRITICAL")
#: CPython's switch interval in a `satellite-run` process (the default is 5 ms). A hook that keeps the
#: GIL (a busy loop) gives it up only when another thread has waited this long, and the event loop
#: waits that at each of its system calls: a reply takes several. Not set by `Satellite` itself: a
#: library does not change a process-wide setting of its host.
SWITCH_INTERVAL_S = 0.001
_PY_LEVEL = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "STATUS": 35, "CRITICAL": 40}
NAME_RULE = (
    "--name must be a name (letters, digits, '_'; the canonical name becomes TYPE.NAME) "
    "or a full canonical name 'Type.Name' with both parts of that form"
)


@dataclasses.dataclass(frozen=True, slots=True)
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
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def find_entry_point(name: str) -> EntryPoint:
    """The entry point registered under `name` (case-insensitive), not loaded yet."""
    from importlib.metadata import entry_points

    eps = {ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    ep = eps.get(name.lower())
    if ep is None:
        known = ", ".join(sorted(known_types())) or "(none installed)"
        raise SatelliteTypeError(f"unknown satellite type {name!r}; known types: {known}")
    return ep


def load_satellite_type(name: str) -> type[Satellite]:
    """The satellite class registered under `name` (case-insensitive) in the entry-point group."""
    from .satellite import Satellite

    ep = find_entry_point(name)
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Satellite)):
        raise SatelliteTypeError(f"entry point {ep.name} = {ep.value} is not a Satellite subclass")
    return cls


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("operator-constellation")
    except PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``, resolved only when asked (the runtime's modules load after the announcement)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from .standard import CNSTLN_VERSION

        parser.exit(message=f"satellite-run {_version()} (Constellation {CNSTLN_VERSION} wire protocols)\n")


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
    p.add_argument("--version", action=_VersionAction, help="show the version and exit")
    p.add_argument(
        "--discovery",
        default="chirp,zeroconf",
        help="comma-separated discovery backends: chirp, zeroconf, or none",
    )
    return p


def parse_args(argv: Sequence[str] | None) -> Settings:
    """Settings from the command line; argparse exits with 2 and the usage on bad arguments.

    Loads the satellite type: its class may name the canonical type (`Satellite.satellite_type`).
    """
    parser, settings, explicit = _parse(argv)
    return _resolve_type(parser, settings, explicit)[1]


def _parse(argv: Sequence[str] | None) -> tuple[argparse.ArgumentParser, Settings, bool]:
    """Validated settings without loading the satellite type: the type name is the entry point's.

    The flag tells whether ``--name`` gave the type name itself (a canonical 'Type.Name').
    """
    parser = _parser()
    ns = parser.parse_args(argv)
    if not ns.group:
        parser.error(f"--group is required (or set ${GROUP_ENV})")
    try:
        validate_name_part(ns.group)
    except ValueError:
        parser.error(f"invalid group {ns.group!r}: letters, digits and '_' only")
    from .launch import scan_entry_point

    ep_name = scan_entry_point(ENTRY_POINT_GROUP, ns.type)
    if ep_name is None:
        try:
            ep_name = find_entry_point(ns.type).name
        except SatelliteTypeError as exc:
            parser.error(str(exc))
    explicit = "." in ns.name
    try:
        if explicit:
            type_name, name = split_canonical_name(ns.name)
        else:
            type_name, name = ep_name, validate_name_part(ns.name)
    except ValueError as exc:
        parser.error(f"{exc}. {NAME_RULE}")
    backends = tuple(b.strip() for b in ns.discovery.split(",") if b.strip() and b.strip() != "none")
    try:
        settings = Settings(
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
    return parser, settings, explicit


def _resolve_type(
    parser: argparse.ArgumentParser, settings: Settings, explicit: bool
) -> tuple[type[Satellite], Settings]:
    """Load the satellite class; without an explicit type name, the class names the canonical type."""
    try:
        cls = load_satellite_type(settings.satellite_type)
    except SatelliteTypeError as exc:
        parser.error(str(exc))
    if not explicit:
        try:
            settings = dataclasses.replace(settings, type_name=cls.satellite_type or cls.__name__)
        except ValueError as exc:
            parser.error(f"satellite type {cls.__name__}: {exc}")
    return cls, settings


def _setup_logging(level: str) -> ConsoleHandler:
    from .consolelog import ConsoleFormatter, ConsoleHandler

    handler = ConsoleHandler()
    handler.setLevel(_PY_LEVEL[level])
    handler.setFormatter(ConsoleFormatter("%(asctime)s %(levelname)s [%(component)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(5)  # CMDP subscribers may ask for TRACE; the console handler filters by --level
    for noisy in ("asyncio", "zeroconf"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


async def serve(
    settings: Settings,
    cls: type[Satellite] | None = None,
    *,
    listen_fds: Mapping[str, int] | None = None,
    early: EarlyOffer | None = None,
    console: ConsoleHandler | None = None,
) -> int:
    """Run the satellite until it exits; `early` offers are closed once its own discovery runs; the
    `console` handler batches its lines for its writer thread while the loop runs
    (constellation/consolelog.py)."""
    import asyncio
    import signal

    if cls is None:
        cls = load_satellite_type(settings.satellite_type)
    try:
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
            listen_fds=listen_fds,
        )
    except BaseException:
        for fd in (listen_fds or {}).values():  # ours again: no satellite holds them
            os.close(fd)
        raise
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sat.request_exit)
    if console is not None:
        console.attach(loop)
    try:
        if early is not None:  # loaded and constructed: it beats within milliseconds (launch.py, step 2)
            early.ready(settings.hb_port)
        # Not `async with`: its exit would not run when `start` fails, leaving the listeners open.
        await sat.start()
        if early is not None:
            early.close()  # the satellite's discovery has made the same offers: it departs them
        p = sat.ports
        # one write: under PYTHONUNBUFFERED `print` writes the text and the newline separately, and the
        # console's writer thread may put a log line between them when stdout and stderr share a pipe
        sys.stdout.write(f"READY {sat.name} cmd={p['cmd']} hb={p['hb']} mon={p['mon']}\n")
        sys.stdout.flush()
        await sat.wait_closed()
        sat._ctrl_log.info("Satellite %s leaving", sat.name)
    finally:
        await sat.aclose()  # idempotent; closes what a failed start left open
        if console is not None:
            console.detach()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser, settings, explicit = _parse(argv)
    from .launch import ExitSignals, announce

    signals = ExitSignals()
    signals.hold()  # the early OFFERs go out: a signal now would leave one that nothing departs
    prebound: Prebound | None = None
    early: EarlyOffer | None = None
    try:
        try:
            prebound, early = announce(
                settings.bind,
                {"cmd": settings.cmd_port, "hb": settings.hb_port, "mon": settings.mon_port},
                settings.group,
                f"{settings.type_name}.{settings.name}",
                offer="chirp" in settings.discovery,
                interfaces=settings.interfaces,
            )
        except OSError as exc:
            print(f"satellite-run: {exc}", file=sys.stderr)
            return 1
        signals.release()  # a signal held meanwhile is raised here, inside the `try`
        cls, resolved = _resolve_type(parser, settings, explicit)
        if prebound is not None:
            resolved = dataclasses.replace(
                resolved,
                cmd_port=prebound.ports["cmd"],
                hb_port=prebound.ports["hb"],
                mon_port=prebound.ports["mon"],
            )
        if early is not None and resolved.type_name.lower() != settings.type_name.lower():
            early.withdraw()  # the class names another type: the early offers were for the wrong host id
        console = _setup_logging(resolved.level)
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        import asyncio

        fds = prebound.take() if prebound is not None else None
        code = asyncio.run(serve(resolved, cls, listen_fds=fds, early=early, console=console))
    except ConstellationError as exc:
        print(f"satellite-run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT or SIGTERM before the runtime's signal handlers were installed
        code = 0
    finally:
        signals.hold()  # leaving anyway: a signal now must not cut the DEPARTs short
        if early is not None and early.open:
            early.withdraw()  # the satellite never came up: no peer may keep it
        if prebound is not None:
            prebound.close()
        signals.restore()
    # A hook stuck in a worker thread must not keep the process alive after a clean shutdown.
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()  # flushes the console handler's buffer too: os._exit skips atexit
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
