"""Lazy package exports (PEP 562): a package names what it re-exports, and imports it on first use.

A satellite process must announce itself within 0.1 s of starting (issue 3), before the runtime's heavy
imports (pyzmq, asyncio, msgpack) are done; `import protocols.chirp` or `import constellation.launch`
runs the package's ``__init__`` first, so those must not import everything eagerly.

    __getattr__, __dir__ = lazy_exports(__name__, {"Satellite": ".satellite", "cmdp": ".cmdp"})

A name mapped to a module whose last component is the name itself is that submodule; any other name is
the attribute of that name in the module. Loaded values are cached in the package's namespace.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` for `package` exporting `exports` lazily."""
    table = dict(exports)

    def __getattr__(name: str) -> object:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(target, package)
        value: object = module if target.rpartition(".")[2] == name else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
