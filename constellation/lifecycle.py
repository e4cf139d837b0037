"""Runs the FSM: validates events with `next_state`, runs the user hooks off the command path.

The command task calls `request()`: it checks the table, switches to the transitional state (visible at
once in heartbeats, `get_state` and STAT/STATE) and queues a job. One worker task runs the jobs in order;
sync hooks run in a worker thread (`asyncio.to_thread`), async hooks on the loop. `do_run` runs in its
own task and is stopped through a `StopToken`. A failing hook sends the satellite to ERROR with the 1.0.2
status `<ExcType> in _wrap_<event>: <msg>` (also for `SystemExit`, `KeyboardInterrupt` and other
BaseExceptions, which `call_hook` turns into `HookExit`: the process goes on), and logs it CRITICAL on
the satellite's own topic, as 1.0.2's `handle_error`; an epoch counter makes a job that was overtaken
by a failure drop its result instead of completing. Before the hook of a transitional state with
conditions, the job waits in `constellation.peers.conditions.wait_for_conditions`; a `ConditionFailed`
ends in ERROR with 1.0.2's status `RuntimeError in _satisfy_remote_conditions: <cause>`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from protocols.states import State

from .config import Configuration
from .errors import HookExit
from .fsm import Event, next_state
from .peers.conditions import wait_for_conditions
from .peers.errors import ConditionFailed
from .stop import StopToken

if TYPE_CHECKING:
    from .satellite import Satellite

__all__ = ["HookResult", "TransitionRunner", "call_hook", "inline_hook"]


HookResult = str | None | Awaitable[str | None]
F = TypeVar("F", bound=Callable[..., Any])
_INLINE = "_constellation_inline"


def inline_hook(fn: F) -> F:
    """Mark a (non-blocking) hook to be called on the loop instead of in a worker thread."""
    setattr(fn, _INLINE, True)
    return fn


async def call_hook(fn: Callable[..., Any], *args: Any, executor: Executor | None = None) -> Any:
    """Await an async hook on the loop, or run a sync one in a worker thread of `executor`.

    A BaseException of the hook (`sys.exit()` in a hook, ...) comes out as `HookExit`: raised through
    the runner's task it would otherwise leave the event loop and end the process.
    """
    try:
        return await _call_hook(fn, *args, executor=executor)
    except (Exception, asyncio.CancelledError):
        raise
    except BaseException as exc:
        raise HookExit(exc) from exc


async def _call_hook(fn: Callable[..., Any], *args: Any, executor: Executor | None) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    if getattr(fn, _INLINE, False):
        result = fn(*args)
        return await result if inspect.isawaitable(result) else result
    result = await asyncio.get_running_loop().run_in_executor(executor, functools.partial(fn, *args))
    if inspect.isawaitable(result):
        result = await result
    return result


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _hook_error(exc: BaseException, where: str) -> str:
    """1.0.2's ERROR status for a failing hook: `<ExcType> in <where>: <msg>` (`SystemExit`, not the
    `HookExit` that carried it)."""
    original = exc.original if isinstance(exc, HookExit) else exc
    return f"{type(original).__name__} in {where}: {original}"


class _Abandoned(Exception):
    """A transition step noticed that a failure overtook it."""


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


@dataclass(frozen=True, slots=True)
class _Job:
    event: Event
    payload: Any
    epoch: int


class TransitionRunner:
    def __init__(self, sat: Satellite, log: logging.LoggerAdapter[logging.Logger]) -> None:
        self._sat = sat
        self._fsm = sat.fsm
        self._log = log
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue(maxsize=64)
        self._epoch = 0
        self._stop: StopToken | None = None
        self._run_task: asyncio.Task[str] | None = None
        self._pending_interrupt: str | None = None
        self._abandon = asyncio.Event()
        self._failure_queued = False

    # -- called from the command task / peer monitor (event loop) -----------------------------------

    def request(self, event: Event, payload: Any = None) -> None:
        """Start `event` now (TransitionNotAllowed if the table refuses it)."""
        target = next_state(self._fsm.state, event)
        self._log.debug("State transition %s requested", event.value)
        self._log.log(35, "State transition %s initiated", event.value)
        if event is Event.FAILURE:
            self.fail("Failure requested")
            return
        self._fsm.enter(target, f"{event.value.capitalize()} requested")
        self._jobs.put_nowait(_Job(event, payload, self._epoch))

    def fail(self, status: str) -> None:
        """Go to ERROR now, stop the run, and run `do_failure` on the worker."""
        self._epoch += 1
        self._abandon.set()  # a transition still waiting for its hook gives up now
        self._abandon = asyncio.Event()
        if self._stop is not None:
            self._stop.set()
        self._fsm.enter(State.ERROR, status)
        if not self._failure_queued:  # one pending do_failure is enough
            self._failure_queued = True
            self._jobs.put_nowait(_Job(Event.FAILURE, None, self._epoch))

    def interrupt(self, reason: str) -> bool:
        """Interrupt from ORBIT/RUN; in a transitional state it is deferred until the state is steady."""
        state = self._fsm.state
        if state in (State.ORBIT, State.RUN):
            self._log.warning("Interrupting: %s", reason)
            self.request(Event.INTERRUPT)
            return True
        if state.is_transitional and state is not State.interrupting:
            self._pending_interrupt = reason
        return False

    # -- the worker -------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                job = await self._jobs.get()
                await self._execute(job)
        finally:
            if self._stop is not None:
                self._stop.set()
            if self._run_task is not None:
                self._run_task.cancel()

    async def _execute(self, job: _Job) -> None:
        if job.event is Event.FAILURE:
            self._failure_queued = False
            await self._do_failure()
            return
        if job.epoch != self._epoch:
            return
        step = asyncio.ensure_future(self._conditional_step(job))
        abandon = asyncio.ensure_future(self._abandon.wait())
        try:
            await asyncio.wait({step, abandon}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            abandon.cancel()
        if not step.done():
            # Overtaken by a failure while the hook still runs (its thread cannot be killed): the
            # worker moves on so that `initialize` can leave ERROR; the late result is ignored.
            self._log.warning("Transition %s abandoned: its hook is still running", job.event.value)
            step.add_done_callback(_consume)
            return
        try:
            status = step.result()
        except _Abandoned:
            return
        except Exception as exc:
            if job.epoch == self._epoch:
                if isinstance(exc, ConditionFailed):  # 1.0.2 spells it as a RuntimeError
                    msg = f"RuntimeError in _satisfy_remote_conditions: {exc}"
                else:
                    msg = _hook_error(exc, f"_wrap_{job.event.value}")
                self._sat.log.critical(msg, exc_info=True)  # 1.0.2's handle_error: the satellite's topic
                self.fail(msg)
            return
        if job.epoch != self._epoch or status is None:
            return
        prev = self._fsm.state
        self._fsm.enter(prev.target, status)
        self._log.log(
            35, "State transition to steady state completed (%s -> %s).", prev.name, prev.target.name
        )
        self._after_steady()

    def _after_steady(self) -> None:
        reason, self._pending_interrupt = self._pending_interrupt, None
        if reason is not None:
            self.interrupt(reason)

    async def _await_run(self, timeout: float | None = None) -> str:
        """Stop `do_run` and return its result ("" if none was running)."""
        task, self._run_task = self._run_task, None
        if self._stop is not None:
            self._stop.set()
        if task is None:
            return ""
        async with asyncio.timeout(timeout):
            return await asyncio.shield(task)

    async def _conditional_step(self, job: _Job) -> str | None:
        """Wait for the remotes this transitional state depends on (if any), then run the step."""
        state = self._fsm.state
        conditions = self._sat._conditions
        if conditions.remotes(state):
            self._log.debug("Awaiting remote conditions for state transition %s", state.name)
            await wait_for_conditions(state, conditions, self._sat.peers, on_status=self._awaiting)
            self._log.debug("Satisfied with all remote conditions, continuing")
            self._guard(job.epoch)
        result: str | None = await self._steps[job.event](self, job.payload, job.epoch)
        return result

    def _awaiting(self, status: str) -> None:
        """`Awaiting state from X, currently: SatelliteState.Y` (1.0.2): status, and logged once."""
        self._log.debug("%s", status)
        self._fsm.set_status(status)

    def _guard(self, epoch: int) -> None:
        if epoch != self._epoch:
            raise _Abandoned

    async def _initialize(self, config: Configuration, epoch: int) -> str:
        await self._await_run(timeout=2.0)
        self._guard(epoch)
        sat = self._sat
        sat._apply_framework(config)
        status = _text(await sat._call(sat.do_initializing, config), "Initialized")
        self._guard(epoch)
        unused = config.remove_unused()
        if unused:
            sat.log.warning("%d keys of the configuration were not used: %s", len(unused), unused)
            status += f" ({len(unused)} unused keys)"
        sat._config = config
        sat.log.info("Configuration: %s", config.user_items())
        return status

    async def _launch(self, _: Any, epoch: int) -> str:
        return _text(await self._sat._call(self._sat.do_launching), "Launched")

    async def _land(self, _: Any, epoch: int) -> str:
        return _text(await self._sat._call(self._sat.do_landing), "Landed")

    async def _reconfigure(self, partial: Configuration, epoch: int) -> str:
        sat = self._sat
        status = _text(await sat._call(getattr(sat, "do_reconfigure"), partial), "Reconfigured")  # noqa: B009
        self._guard(epoch)
        unused = partial.remove_unused()
        if unused:
            raise RuntimeError(f"{len(unused)} keys of the configuration were not used: {unused}")
        sat._config.update_from(partial)
        return status

    async def _start(self, run_id: str, epoch: int) -> None:
        sat = self._sat
        sat._begin_run(run_id)
        sat._ctrl_log.info("Starting run '%s'", run_id)  # on CTRL, as 1.0.2
        status = _text(await sat._call(sat.do_starting, run_id), "")
        self._guard(epoch)
        sat.stat("RUN_ID", run_id)
        self._stop = StopToken()
        self._fsm.enter(State.RUN, status)
        self._log.log(35, "State transition to steady state completed (starting -> RUN).")
        self._run_task = asyncio.ensure_future(self._run_body(self._stop, self._epoch))
        self._after_steady()
        return None

    async def _run_body(self, stop: StopToken, epoch: int) -> str:
        try:
            result = _text(await self._sat._call(self._sat.do_run, stop), "")
        except Exception as exc:
            if epoch == self._epoch:
                msg = _hook_error(exc, "_wrap_start")
                self._sat.log.critical(msg, exc_info=True)
                self.fail(msg)
            return ""
        if not stop.is_set() and epoch == self._epoch and self._fsm.state is State.RUN:
            self._fsm.set_status(result or "Transition completed!")
        return result

    async def _stop_run(self, _: Any, epoch: int) -> str:
        res_run = await self._await_run()
        return f"{res_run}; {_text(await self._sat._call(self._sat.do_stopping), 'Stopped')}"

    async def _interrupt(self, _: Any, epoch: int) -> str:
        res_run = await self._await_run()
        return f"{res_run}; {_text(await self._sat._call(self._sat.do_interrupting), 'Interrupted')}"

    async def _do_failure(self) -> None:
        try:
            await self._await_run(timeout=1.0)
        except TimeoutError:
            self._log.critical("Timeout while joining the run, continuing.")
        except Exception:
            pass
        try:
            async with asyncio.timeout(5.0):
                await self._sat._call(self._sat.do_failure)
        except TimeoutError:
            self._log.critical("do_failure did not return within 5 s, continuing.")
        except Exception:
            self._log.critical("Exception caught during failure handling", exc_info=True)

    _steps: ClassVar[dict[Event, Any]] = {
        Event.INITIALIZE: _initialize,
        Event.LAUNCH: _launch,
        Event.LAND: _land,
        Event.RECONFIGURE: _reconfigure,
        Event.START: _start,
        Event.STOP: _stop_run,
        Event.INTERRUPT: _interrupt,
    }
