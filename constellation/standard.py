"""The standard CSCP commands of a 1.0.2 satellite, answered exactly as 1.0.2 does (wire doc §2.3).

The docstrings are the 1.0.2 help texts, so `get_commands` reads the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols import cscp
from protocols.names import validate_run_id
from protocols.states import State

from .command_server import Outgoing
from .commands import command
from .config import Configuration
from .errors import ConfigError, InvalidRequest, WrongArgument
from .framework import read_conditions
from .fsm import Event

if TYPE_CHECKING:
    from .satellite import Satellite

__all__ = ["CNSTLN_VERSION", "StandardCommands"]

CNSTLN_VERSION = "1.0.2"
_SHUTDOWN_STATES = (State.NEW, State.INIT, State.SAFE, State.ERROR)
# The 1.0.2 help texts, verbatim (indentation included), so `get_commands` reads the same.
_TAIL = (
    "        The doc string of the function will be used to derive the summary and payload argument "
    "description for each\n"
    "        command by using the first and the second line of the doc string, respectively (not counting "
    "empty lines).\n        "
)
_GET_COMMANDS_DOC = (
    "Return all commands supported by the Satellite.\n\n"
    "        This will include all methods with the ``@cscp_requestable()`` decorator.\n" + _TAIL
)
_HIDDEN_COMMANDS_DOC = (
    "Return all hidden commands supported by the Satellite.\n\n"
    "        This will include all methods with the ``@cscp_requestable()`` decorator starting with an "
    "underscore.\n" + _TAIL
)


class StandardCommands:
    def __init__(self, sat: Satellite) -> None:
        self.sat = sat

    @property
    def _name(self) -> str:
        return self.sat.name

    @command
    def get_name(self) -> cscp.Message:
        """Return the canonical name of the Satellite."""
        return cscp.success_reply(self._name, self._name)

    @command
    def get_version(self) -> cscp.Message:
        """Get Satellite version."""
        return cscp.success_reply(self._name, self.sat.version)

    @command
    def get_cnstln_version(self) -> cscp.Message:
        """Get Constellation version."""
        return cscp.success_reply(self._name, CNSTLN_VERSION)

    @command(doc=_GET_COMMANDS_DOC)
    def get_commands(self) -> cscp.Message:
        return cscp.get_commands_reply(self._name, self.sat._commands.listing(hidden=False))

    @command(doc=_HIDDEN_COMMANDS_DOC)
    def _get_commands(self) -> cscp.Message:
        return cscp.get_commands_reply(self._name, self.sat._commands.listing(hidden=True))

    @command
    def get_state(self) -> cscp.Message:
        """Return the current state of the Satellite."""
        snap = self.sat.fsm.snapshot()
        return cscp.get_state_reply(self._name, snap.state, snap.last_changed_ns)

    @command
    def get_role(self) -> cscp.Message:
        """Return the current role of the Satellite."""
        return cscp.get_role_reply(self._name, self.sat.role)

    @command
    def get_status(self) -> cscp.Message:
        """Get a string describing the current status of the Satellite."""
        return cscp.success_reply(self._name, self.sat.fsm.status)

    @command
    def get_config(self) -> cscp.Message:
        """Get current satellite configuration."""
        return cscp.get_config_reply(self._name, self.sat._config.as_dict())

    @command
    def get_run_id(self) -> cscp.Message:
        """Get current/last known run identifier."""
        tags = {"degraded": self.sat.degraded} if self.sat.run_id else {}
        return cscp.success_reply(self._name, self.sat.run_id, None, tags)

    @command(unpack_list=False, validate=False)
    def initialize(self, config_dict: dict) -> cscp.Message:  # type: ignore[type-arg]
        """Initiate 'initialize' state transition via a CSCP request."""
        config = Configuration(config_dict)  # ConfigError (a ValueError) -> INCOMPLETE
        try:
            self.sat._conditions = read_conditions(config, self._name, self.sat.peers)
        except ConfigError as exc:
            raise InvalidRequest(str(exc)) from None
        return self._transition("initialize", Event.INITIALIZE, config)

    @command
    def launch(self) -> cscp.Message:
        """Initiate launch state transition via a CSCP request."""
        return self._transition("launch", Event.LAUNCH)

    @command
    def land(self) -> cscp.Message:
        """Initiate landing state transition via a CSCP request."""
        return self._transition("land", Event.LAND)

    @command(allowed_states=(State.ORBIT,), unpack_list=False, validate=False)
    def reconfigure(self, config_dict: dict) -> cscp.Message:  # type: ignore[type-arg]
        """Initiate reconfigure state transition via a CSCP request."""
        return self._transition("reconfigure", Event.RECONFIGURE, Configuration(config_dict))

    @command(unpack_list=False)
    def start(self, run_identifier: str) -> cscp.Message:
        """Initiate start state transition via a CSCP request."""
        try:
            validate_run_id(run_identifier)
        except ValueError:
            raise WrongArgument("Run identifier contains invalid characters") from None
        return self._transition("start", Event.START, run_identifier)

    @command
    def stop(self) -> cscp.Message:
        """Initiate stop state transition via a CSCP request."""
        return self._transition("stop", Event.STOP)

    @command(allowed_states=_SHUTDOWN_STATES)
    def shutdown(self) -> Outgoing:
        """Queue the Satellite's reentry."""
        self.sat._ctrl_log.log(35, "Satellite on reentry course for self-destruction")
        return Outgoing(cscp.shutdown_reply(self._name), after=self.sat.request_exit)

    @command
    def _interrupt(self) -> cscp.Message:
        """Initiate interrupt state transition via a CSCP request.

        This is intended for debugging purposes only and should not be called in normal operation.
        """
        return self._transition("_interrupt", Event.INTERRUPT)

    @command
    def _failure(self) -> cscp.Message:
        """Enter error state transition via a CSCP request.

        This is intended for debugging purposes only and should not be called in normal operation.
        """
        return self._transition("_failure", Event.FAILURE)

    def _transition(self, cmd: str, event: Event, payload: Any = None) -> cscp.Message:
        self.sat._runner.request(event, payload)  # TransitionNotAllowed -> INVALID
        return cscp.transition_reply(self._name, cmd)
