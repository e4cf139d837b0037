"""`python -m tests.harness`: prepare the ConstellationDAQ 1.0.2 oracle (needs the package registry)."""

from tests.harness.oracle import prepare_oracle

print(prepare_oracle())
