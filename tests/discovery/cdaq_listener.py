"""Runs in the ConstellationDAQ 1.0.2 environment: a 1.0.2 CHIRP endpoint that prints what it receives.

``python cdaq_listener.py GROUP CANONICAL_NAME SECONDS [SERVICE ...]`` opens 1.0.2's own
``CHIRPBeaconTransmitter`` on loopback, prints ``READY``, sends a REQUEST for each SERVICE (CONTROL, ...)
and prints ``MSG <type> <service> <host uuid hex> <port> <source>`` for each beacon of its group.
"""

import sys
import time

from constellation.core.chirp import CHIRPBeaconTransmitter, CHIRPMessageType, CHIRPServiceIdentifier

group, name, seconds, *services = sys.argv[1:]
beacon = CHIRPBeaconTransmitter(name, group, ["127.0.0.1"])
print("READY", flush=True)
for service in services:
    beacon.emit(CHIRPServiceIdentifier[service], CHIRPMessageType.REQUEST)
deadline = time.monotonic() + float(seconds)
try:
    while time.monotonic() < deadline:
        msg = beacon.listen()
        if msg is not None:
            print(
                f"MSG {msg.msgtype.name} {msg.serviceid.name} {msg.host_uuid.hex} {msg.port} "
                f"{msg.from_address}",
                flush=True,
            )
finally:
    beacon.close()
print("DONE", flush=True)
