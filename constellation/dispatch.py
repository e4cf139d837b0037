"""Command dispatch: one table of commands and one mapping from outcomes to CSCP reply codes.

Standard commands run inline on the event loop (they only read state and never block). User commands
run as their own task: async ones are awaited, sync ones run in a worker thread, so the command socket
keeps answering whatever a command or hook is doing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from protocols import cscp
from protocols.states import State

from .command_server import Outgoing
from .commands import CommandSpec, bind_arguments, describe
from .errors import CommandNotAllowed, HookExit, TransitionNotAllowed, UnknownCommand, WrongArgument

__all__ = ["CommandTable"]

log = logging.getLogger(__name__)


def _verb_repr(msg: cscp.Message) -> str:
    """1.0.2 prints the verb tuple: `(<Type.SUCCESS: 1>, 'get_name')`."""
    vt = cscp.VerbType(msg.verb_type)
    return f"(<Type.{vt.name}: {int(vt)}>, {msg.verb!r})"


class CommandTable:
    """Maps command names to (spec, owner); `inline` owners run on the loop."""

    def __init__(
        self,
        name: str,
        state: Callable[[], State],
        logger: logging.LoggerAdapter[logging.Logger] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._executor = executor
        self._name = name
        self._state = state
        self._log = logger or logging.LoggerAdapter(log, {})
        self._commands: dict[str, tuple[CommandSpec, Any, bool]] = {}

    def add(self, spec: CommandSpec, owner: Any, *, inline: bool = False) -> None:
        self._commands[spec.name] = (spec, owner, inline)

    def names(self) -> list[str]:
        return list(self._commands)

    def listing(self, hidden: bool) -> dict[str, str]:
        """name -> `<doc>\\n<signature>` for the public (or the hidden) commands."""
        # 1.0.2 order: alphabetical (it walks dir()), with `reconfigure` appended last (added at run time).
        names = sorted(self._commands, key=lambda n: (n == "reconfigure", n))
        return {n: describe(self._commands[n][0]) for n in names if self._commands[n][0].hidden == hidden}

    # -- dispatch ---------------------------------------------------------------------------------

    def __call__(self, req: cscp.Message) -> Outgoing | Awaitable[Outgoing]:
        try:
            spec, owner, inline, args = self._resolve(req)
        except UnknownCommand as exc:
            self._log.warning("Unknown command: %s", exc)
            return Outgoing(cscp.unknown_command_reply(self._name, str(exc)))
        except CommandNotAllowed:
            state = self._state()
            self._log.warning("Command %s not allowed in %s state", req.verb.lower(), state.name)
            return Outgoing(cscp.command_not_allowed_reply(self._name, state))
        except WrongArgument as exc:
            self._log.warning("Command %s received wrong argument: %s", req.verb.lower(), exc)
            return Outgoing(cscp.wrong_argument_reply(self._name, str(exc)))
        except _NotARequest:
            text = f"Received malformed request with msg verb: {_verb_repr(req)}"
            self._log.warning(text)
            return Outgoing(cscp.reply(self._name, cscp.VerbType.INVALID, text))
        if inline:
            try:
                return self._to_outgoing(spec.func(owner, *args))
            except Exception as exc:
                return self._failed(spec, exc)
        return self._run_user(spec, owner, args)

    def _resolve(self, req: cscp.Message) -> tuple[CommandSpec, Any, bool, list[Any]]:
        if req.verb_type is not cscp.VerbType.REQUEST:
            raise _NotARequest
        name = req.verb.lower()
        entry = self._commands.get(name)
        if entry is None:
            raise UnknownCommand(name)
        spec, owner, inline = entry
        if spec.allowed_states is not None and self._state() not in spec.allowed_states:
            raise CommandNotAllowed(name)
        return spec, owner, inline, bind_arguments(spec, req.payload)

    async def _run_user(self, spec: CommandSpec, owner: Any, args: list[Any]) -> Outgoing:
        try:
            if spec.is_async:
                result = await spec.func(owner, *args)
            else:
                result = await asyncio.get_running_loop().run_in_executor(
                    self._executor, functools.partial(spec.func, owner, *args)
                )
            return self._to_outgoing(result)
        except Exception as exc:
            return self._failed(spec, exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # sys.exit() in a command: an error reply, not the process's end
            return self._failed(spec, HookExit(exc))

    def _to_outgoing(self, result: Any) -> Outgoing:
        if isinstance(result, Outgoing):
            return result
        if isinstance(result, cscp.Message):
            return Outgoing(result)
        if isinstance(result, str):
            return Outgoing(cscp.success_reply(self._name, result))
        if isinstance(result, tuple) and len(result) in (2, 3) and isinstance(result[0], str):
            tags = result[2] if len(result) == 3 else None
            return Outgoing(cscp.success_reply(self._name, result[0], result[1], tags or {}))
        return Outgoing(cscp.success_reply(self._name, f"Command returned: {result}", result))

    def _failed(self, spec: CommandSpec, exc: Exception) -> Outgoing:
        name, text = self._name, str(exc)
        if isinstance(exc, TransitionNotAllowed):
            self._log.warning("Transition `%s` not allowed: %s", spec.name, text)
            return Outgoing(cscp.reply(name, cscp.VerbType.INVALID, f"Transition not allowed: {text}", text))
        if isinstance(exc, WrongArgument | TypeError | ValueError):
            self._log.warning("Command `%s` received wrong argument: %s", spec.name, text)
            return Outgoing(cscp.wrong_argument_reply(name, text))
        if isinstance(exc, NotImplementedError | AttributeError):
            self._log.error("Command `%s` failed: %s", spec.name, text)
            return Outgoing(
                cscp.reply(name, cscp.VerbType.NOTIMPLEMENTED, f"WrongImplementation: {text}", text)
            )
        self._log.error("Command `%s` failed: %s", spec.name, text)
        return Outgoing(cscp.reply(name, cscp.VerbType.INVALID, f"Exception: {text}", text))


class _NotARequest(Exception):
    pass
