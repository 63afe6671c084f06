"""The caller's address, behind a reverse proxy too.

Every connection through our proxy comes from the proxy's address. When the peer is a
trusted proxy (``LAOWU_TRUSTED_PROXIES``: addresses or CIDR networks, comma-separated;
default ``127.0.0.1,::1``, an empty value trusts none) the caller is the last entry of
``X-Forwarded-For``: the address the proxy itself saw, which a client cannot forge (a
forged entry lands before it). Anything else that claims to forward is ignored. Used by
the audit log, logins and the rate limits alike (docs/operations.md).
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from typing import Any

VARIABLE = "LAOWU_TRUSTED_PROXIES"
DEFAULT = "127.0.0.1,::1"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def parse(raw: str) -> tuple[Network, ...]:
    """The networks named by ``raw``; a bad entry is refused with its words."""
    networks: list[Network] = []
    for part in raw.split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(
                f"{VARIABLE}: “{entry}” 不是有效的 IP 地址或网段（如 10.0.0.0/8）"
            ) from exc
    return tuple(networks)


def trusted() -> tuple[Network, ...]:
    return parse(os.environ.get(VARIABLE, DEFAULT))


def is_trusted(peer: str | None) -> bool:
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False  # "testclient", a unix socket: not an address we can trust
    return any(address in network for network in trusted())


def _header(scope: Any, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def client_ip(scope: Any) -> str | None:
    """The address of whoever made the request (see the module text)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if is_trusted(peer):
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            last = forwarded.rsplit(",", 1)[-1].strip()
            try:
                return str(ipaddress.ip_address(last))
            except ValueError:
                pass  # a proxy that forwards garbage: keep the proxy's own address
    return peer
