"""Who is calling: the client's address, seen through the reverse proxies the operator trusts.

`X-Forwarded-For` is believed only when the request comes from an address in `[server]
trusted_proxies`, and only hop by hop from the right: each trusted proxy appends the address it
saw, so the first address (from the right) that is not a trusted proxy is the client. Anything a
client writes further left is ignored, so it cannot pick its own address (and escape its throttle).
With no trusted proxies configured the header is ignored entirely.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from flask import Flask, current_app, request

CONFIG_KEY = "DASHFLEET_TRUSTED_PROXIES"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def init_app(app: Flask, trusted_proxies: Iterable[str]) -> None:
    app.config[CONFIG_KEY] = tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted_proxies)


def client_address() -> str:
    """The calling client's address (the peer's address when no proxy is trusted)."""
    peer = request.remote_addr or "unknown"
    trusted: tuple[Network, ...] = current_app.config.get(CONFIG_KEY, ())
    if not trusted:
        return peer
    hops = [hop.strip() for value in request.headers.getlist("X-Forwarded-For") for hop in value.split(",")]
    current = peer
    while hops and _is_trusted(current, trusted):
        hop = hops.pop()
        if _address(hop) is None:  # garbage from the left of a trusted chain: stop at the proxy
            break
        current = hop
    return current


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    ip = _address(address)
    return ip is not None and any(ip in network for network in trusted)
