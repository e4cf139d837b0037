"""Typed errors of the Console server; each carries its HTTP status."""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "ConsoleError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
]


class ConsoleError(Exception):
    """Base of every error the Console answers with ``{"error": message}``."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ConsoleError):
    status = 400


class Unauthorized(ConsoleError):
    status = 401


class Forbidden(ConsoleError):
    status = 403


class NotFound(ConsoleError):
    status = 404


class Conflict(ConsoleError):
    status = 409


class PayloadTooLarge(ConsoleError):
    status = 413


class RateLimited(ConsoleError):
    status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ConsoleError):
    """Transient: the answer could not be determined now; the client retries after ``retry_after_s``."""

    status = 503

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
