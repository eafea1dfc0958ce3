"""The form of a Ray cluster address, checked without Ray (it may not be installed) and before any work.

What ``ray.init(address=...)`` takes: ``auto`` (the cluster this machine joined), ``local`` (a new local
instance), ``host:port`` (a cluster's GCS, as `ray start --head` prints it) and ``ray://host:port`` (Ray
Client). A host is a name, an IPv4 address or an IPv6 address in brackets (``[::1]:6379``, as Ray writes
it); the port is required -- Ray has no default for either form -- and is 1..65535.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.limits import shown

NO_ADDRESS = ("auto", "local")  # Ray finds or starts the cluster itself: nothing to check
_HOST = re.compile(
    r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?"
)
FORMS = (
    "give host:port (ray start --head prints it; IPv6 as [::1]:6379), ray://host:port for Ray Client, "
    "'auto' for the cluster this machine belongs to, or leave --address out for a local Ray instance"
)


@dataclass(frozen=True)
class RayAddress:
    scheme: str | None  # "ray" for Ray Client, None for a GCS address
    host: str  # without brackets
    port: int


class AddressError(ConfigError):
    """An --address that is no address Ray could use (exit 2); ``reason`` is the message without the option."""

    def __init__(self, address: str, why: str):
        self.reason = f"{shown(address)}: {why}; {FORMS}"
        super().__init__(f"--address {self.reason}")


def parse_address(address: str) -> RayAddress | None:
    """``address`` checked for its form; None for ``auto`` and ``local``; anything else an AddressError
    naming the value and the forms Ray accepts."""
    if address in NO_ADDRESS:
        return None

    def bad(why: str) -> AddressError:
        return AddressError(address, why)

    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = None, address
    elif scheme != "ray":
        raise bad(f"{scheme}:// is not a Ray address (only ray:// for Ray Client)")
    if rest.startswith("["):
        host, close, after = rest[1:].partition("]")
        if not close:
            raise bad("an IPv6 address opened with [ is never closed with ]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise bad(f"{shown(host)} is not an IPv6 address") from None
        if not after.startswith(":"):
            raise bad("no port after the host")
        port_text = after[1:]
    else:
        if rest.count(":") > 1:
            raise bad("an IPv6 address needs brackets, [::1]:6379")
        host, colon, port_text = rest.partition(":")
        if not colon:
            raise bad("no port")
        if len(host) > 253 or not _HOST.fullmatch(host):
            raise bad(f"{shown(host)} is not a host name or IP address")
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        raise bad(f"the port {shown(port_text)} is not a number 1..65535")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise bad(f"the port {port} is outside 1..65535")
    return RayAddress(scheme, host, port)
