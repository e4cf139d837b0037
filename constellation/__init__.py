"""The satellite runtime.

``constellation`` is shared with ConstellationDAQ 1.0.2, whose ``constellation`` is a namespace package
holding ``core``, ``tools`` and ``satellites``. Extending ``__path__`` keeps those importable next to ours
in regular and editable installs alike (see docs/architecture.md).
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
