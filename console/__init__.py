"""Console API server: the Operator Agent's pull protocol with deployments on SQLite or PostgreSQL."""

from typing import Any

from console.errors import (
    BadRequest,
    Conflict,
    ConsoleError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from console.settings import Settings

__all__ = [
    "BadRequest",
    "Conflict",
    "ConsoleError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Settings",
    "Unauthorized",
    "Unavailable",
    "create_app",
]


def __getattr__(name: str) -> Any:
    # FastAPI is imported only when the server is wanted: the admin CLI starts faster without it.
    if name == "create_app":
        from console.app import create_app

        return create_app
    raise AttributeError(f"module 'console' has no attribute {name!r}")
