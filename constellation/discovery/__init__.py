"""Discovery of Constellation services over CHIRP (1.0.2 wire format) and zeroconf/DNS-SD.

See docs/discovery.md. The public names below are imported on first use.
"""

from protocols.lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time); mypy knows it
if TYPE_CHECKING:
    from .chirp import ChirpBackend
    from .discovery import Discovery
    from .dnssd import SERVICE_TYPES, DnssdBackend, instance_name, txt_record
    from .errors import DiscoveryClosed, DiscoveryError, InvalidOffer, UnknownBackend, UnknownInterface
    from .interfaces import select_addresses, usable_interfaces
    from .service import BACKENDS, CHIRP, ZEROCONF, Service, ServiceTable

__all__ = [
    "BACKENDS",
    "CHIRP",
    "SERVICE_TYPES",
    "ZEROCONF",
    "ChirpBackend",
    "Discovery",
    "DiscoveryClosed",
    "DiscoveryError",
    "DnssdBackend",
    "InvalidOffer",
    "Service",
    "ServiceTable",
    "UnknownBackend",
    "UnknownInterface",
    "instance_name",
    "select_addresses",
    "txt_record",
    "usable_interfaces",
]

_EXPORTS = {
    "ChirpBackend": ".chirp",
    "Discovery": ".discovery",
    **dict.fromkeys(("SERVICE_TYPES", "DnssdBackend", "instance_name", "txt_record"), ".dnssd"),
    **dict.fromkeys(
        ("DiscoveryClosed", "DiscoveryError", "InvalidOffer", "UnknownBackend", "UnknownInterface"), ".errors"
    ),
    **dict.fromkeys(("select_addresses", "usable_interfaces"), ".interfaces"),
    **dict.fromkeys(("BACKENDS", "CHIRP", "ZEROCONF", "Service", "ServiceTable"), ".service"),
}
# Loaded on first use: `constellation.launch` needs the interface selection and CHIRP's send sockets
# without zeroconf, which takes longer to import than a satellite may take to announce itself.
if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name imported from here
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
