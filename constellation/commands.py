"""Command declarations: the `@command` decorator, argument binding and the get_commands text.

A command is a method; its name is the command name (`_`-prefixed names are hidden: listed by
`_get_commands`, not by `get_commands`). Arguments arrive as a msgpack array of positional values (1.0.2
§2.5) and are validated against the annotations; the docstring is the help text.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from protocols.states import State

from .errors import WrongArgument

__all__ = ["CommandSpec", "Param", "bind_arguments", "collect_commands", "command", "describe"]

F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "_constellation_command"
_SIMPLE = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: Any  # inspect.Parameter.empty when unannotated

    @property
    def label(self) -> str:
        if self.annotation is inspect.Parameter.empty:
            return ""
        if isinstance(self.annotation, type):
            return self.annotation.__name__
        return str(self.annotation)


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    func: Callable[..., Any]
    allowed_states: frozenset[State] | None
    params: tuple[Param, ...]
    doc: str
    unpack_list: bool = True
    validate: bool = True

    @property
    def hidden(self) -> bool:
        return self.name.startswith("_")

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


@overload
def command(func: F) -> F: ...


@overload
def command(
    *,
    name: str | None = None,
    allowed_states: Iterable[State] | None = None,
    unpack_list: bool = True,
    validate: bool = True,
    doc: str | None = None,
) -> Callable[[F], F]: ...


def command(
    func: F | None = None,
    *,
    name: str | None = None,
    allowed_states: Iterable[State] | None = None,
    unpack_list: bool = True,
    validate: bool = True,
    doc: str | None = None,
) -> Any:
    """Declare a satellite method as a CSCP command.

    ```python
    @command(allowed_states=(State.INIT, State.ORBIT))
    def set_channel(self, channel: int, value: float) -> str:
        "Set a channel."
        return f"set {channel} to {value}"
    ```
    The method may be sync (run in a worker thread) or async. It returns a str (the reply text), a
    `(text, payload)` or `(text, payload, tags)` tuple, or any other value (text `Command returned:
    <value>`, payload the value).
    """

    def decorate(f: F) -> F:
        try:
            sig = inspect.signature(f, eval_str=True)  # resolve `from __future__ import annotations`
        except (NameError, TypeError, SyntaxError):
            sig = inspect.signature(f)
        params = tuple(
            Param(p.name, p.annotation)
            for p in list(sig.parameters.values())[1:]  # skip self
        )
        for p in sig.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY):
                raise TypeError(f"command {f.__name__}: only positional parameters are supported")
        if not unpack_list and len(params) != 1:
            raise TypeError(f"command {f.__name__}: unpack_list=False needs exactly one parameter")
        spec = CommandSpec(
            name=(name or f.__name__).lower(),
            func=f,
            allowed_states=frozenset(allowed_states) if allowed_states is not None else None,
            params=params,
            doc=doc if doc is not None else (f.__doc__ or ""),
            unpack_list=unpack_list,
            validate=validate,
        )
        setattr(f, _ATTR, spec)
        return f

    return decorate(func) if func is not None else decorate


def collect_commands(cls: type) -> dict[str, CommandSpec]:
    """Every command declared on `cls` and its bases (a subclass overrides by name)."""
    found: dict[str, CommandSpec] = {}
    for klass in reversed(cls.__mro__):
        for attr in vars(klass).values():
            spec = getattr(attr, _ATTR, None)
            if isinstance(spec, CommandSpec):
                found[spec.name] = spec
    return found


def describe(spec: CommandSpec) -> str:
    """`<docstring>\\n<signature line>`, the 1.0.2 get_commands format."""
    if spec.params:
        parts = ", ".join(f"{p.name}: {p.label}" if p.label else p.name for p in spec.params)
        line = f"Arguments: {parts}."
    else:
        line = "No arguments."
    return f"{spec.doc}\n{line}" if spec.doc else line


def _check(param: Param, value: Any) -> Any:
    ann = param.annotation
    if ann is inspect.Parameter.empty or ann is Any:
        return value
    simple = _SIMPLE.get(ann)
    if simple is not None:
        ok = isinstance(value, ann) and not (ann is not bool and isinstance(value, bool))
        if ann is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        if not ok:
            raise WrongArgument(f"Parameter '{param.name}' must be {simple}, got {type(value).__name__}")
        return value
    import pydantic  # only for complex annotations: keeps it out of a plain satellite's start-up

    try:
        return pydantic.TypeAdapter(ann).validate_python(value, strict=True)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise WrongArgument(f"Parameter '{param.name}' must be {param.label}: {first['msg']}") from None
    except pydantic.PydanticSchemaGenerationError:
        return value


def bind_arguments(spec: CommandSpec, payload: Any) -> list[Any]:
    """Positional arguments for `spec` from a request payload; WrongArgument with 1.0.2's messages."""
    if not spec.params:
        if payload:  # 1.0.2 accepts nil, an empty array and any other falsy payload
            count = len(payload) if isinstance(payload, list) else 1
            raise WrongArgument(f"Expected no arguments, got {count}")
        return []
    if not spec.unpack_list:
        return [_check(spec.params[0], payload) if spec.validate else payload]
    if not isinstance(payload, list):
        raise WrongArgument(
            f"Payload must be a list with {len(spec.params)} elements, got {type(payload).__name__}"
        )
    if len(payload) != len(spec.params):
        raise WrongArgument(f"Expected {len(spec.params)} payload elements, got {len(payload)}")
    return [_check(p, v) for p, v in zip(spec.params, payload, strict=True)]
