"""Discovery of Constellation services over CHIRP (1.0.2 wire format) and zeroconf/DNS-SD.

See docs/discovery.md.
"""

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
