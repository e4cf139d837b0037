"""Errors raised by the discovery library.

```
DiscoveryError                       base of everything raised here
├── UnknownInterface (ValueError)    an interface name/address that is not usable for multicast
├── UnknownBackend (ValueError)      a backend name other than "chirp" / "zeroconf"
├── InvalidOffer (ValueError)        a port outside 1..65535, or a service id that cannot be offered
└── DiscoveryClosed                  the Discovery was closed (or never started) for this operation
```
Malformed input from the network is never raised: it is counted and logged at DEBUG level.
"""

from __future__ import annotations


class DiscoveryError(Exception):
    """Base class of every error raised by ``constellation.discovery``."""


class UnknownInterface(DiscoveryError, ValueError):
    """An interface that does not exist, is down, has no IPv4 address or cannot do multicast."""


class UnknownBackend(DiscoveryError, ValueError):
    """A backend name that is not one of ``BACKENDS``."""


class InvalidOffer(DiscoveryError, ValueError):
    """An offer that cannot be announced (port outside 1..65535, bad service id)."""


class DiscoveryClosed(DiscoveryError):
    """The operation needs a started, not yet closed, ``Discovery``."""
