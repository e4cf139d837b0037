"""Run the Console under uvicorn on a socket we bind ourselves (so ``--port 0`` reports the real port)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from typing import TextIO

import uvicorn

from console.app import create_app
from console.settings import Settings

__all__ = ["serve"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log_level: str = "warning",
    out: TextIO = sys.stdout,
) -> None:
    """Serve until SIGINT/SIGTERM; print ``listening on http://HOST:PORT`` once accepting."""
    sock = _bind(host, port)
    real_port = sock.getsockname()[1]
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # startup failed: re-raise
            raise SystemExit(1)
        await asyncio.sleep(0.01)
    shown = f"[{host}]" if ":" in host else host
    print(f"listening on http://{shown}:{real_port}", file=out, flush=True)
    try:
        await task
    finally:
        with contextlib.suppress(OSError):
            sock.close()
