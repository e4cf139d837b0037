"""A mock radio beacon: channels with set-points, a temperature sensor, and a run that "beeps".

Configuration keys (all optional):

| key            | type   | default | meaning                                         |
|----------------|--------|---------|-------------------------------------------------|
| `channels`     | int    | 4       | number of channels (1..64)                      |
| `beep_period`  | float  | 0.1     | seconds between beeps during a run (>0)         |
| `temperature`  | float  | 21.5    | starting temperature of the mock sensor (degC)  |
"""

from __future__ import annotations

import random
import threading

from constellation import Configuration, Satellite, State, StopToken, command, metric


class Sputnik(Satellite):
    """A mock instrument with a metric, a custom command and a run loop."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self.channels: list[float] = []
        self.beep_period = 0.1
        self._temperature = 21.5
        self.beeps = 0

    def do_initializing(self, config: Configuration) -> str:
        n = config.get_int("channels", 4, min_val=1, max_val=64)
        self.beep_period = config.get_float("beep_period", 0.1, min_val=0.001)
        self._temperature = config.get_float("temperature", 21.5)
        with self._lock:
            self.channels = [0.0] * n
        return f"Initialized with {n} channels"

    def do_launching(self) -> str:
        self.log.info("Extending antennas")
        return "Launched"

    def do_landing(self) -> str:
        self.log.info("Retracting antennas")
        return "Landed"

    def do_reconfigure(self, partial: Configuration) -> str:
        if "beep_period" in partial:
            self.beep_period = partial.get_float("beep_period", min_val=0.001)
        if "temperature" in partial:
            self._temperature = partial.get_float("temperature")
        return "Reconfigured"

    def do_starting(self, run_id: str) -> str:
        self.beeps = 0
        return f"Started run {run_id}"

    def do_run(self, stop: StopToken) -> str:
        while not stop.wait(self.beep_period):
            self.beeps += 1
            self.log.debug("beep %d", self.beeps)
        return f"{self.beeps} beeps"

    def do_stopping(self) -> str:
        return "Stopped"

    @command(allowed_states=(State.INIT, State.ORBIT, State.RUN))
    def set_channel(self, channel: int, value: float) -> tuple[str, object, dict[str, object]]:
        """Set the value of one channel."""
        with self._lock:
            if not 0 <= channel < len(self.channels):
                raise ValueError(f"channel {channel} out of range 0..{len(self.channels) - 1}")
            self.channels[channel] = value
        return f"set {channel} to {value}", {"channel": channel, "value": value}, {}

    @command
    def get_channels(self) -> tuple[str, object]:
        """Return the values of all channels."""
        with self._lock:
            return f"{len(self.channels)} channels", list(self.channels)

    @metric(unit="degC", interval=1.0, blocking=False)
    def temperature(self) -> float:
        """Temperature of the mock sensor."""
        self._temperature += random.uniform(-0.05, 0.05)
        return round(self._temperature, 3)
