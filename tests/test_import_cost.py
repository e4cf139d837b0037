"""A satellite process does not pay for what it does not use.

The Console API models (pydantic) cost a satellite about 9 MiB of RSS and a fifth of its start-up; the
runtime and a satellite type must import without them (the benchmark targets RSS and start-up).
"""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import constellation.cli, satellites.sputnik  # what `satellite-run Sputnik` imports before serving
heavy = sorted(m for m in ("pydantic", "protocols.console_api", "fastapi", "sqlalchemy", "httpx")
               if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_satellite_imports_no_console_or_pydantic() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
