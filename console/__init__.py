"""Console API server: the Operator Agent's pull protocol with deployments on SQLite or PostgreSQL."""

from console.app import create_app
from console.errors import (
    BadRequest,
    Conflict,
    ConsoleError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
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
    "create_app",
]
