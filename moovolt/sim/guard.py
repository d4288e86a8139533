"""Keep simulated load on this machine unless the operator says otherwise."""

import ipaddress
import socket
from urllib.parse import urlsplit


class NotLoopback(ValueError):
    """The target is not on this machine and remote targets were not allowed."""


def check_target(url: str, *, allow_remote: bool = False) -> None:
    """Refuse a gateway URL that is not on the loopback interface.

    A host name counts as loopback when every address it resolves to does.

    Args:
        url: the gateway's ``ws://`` or ``wss://`` URL.
        allow_remote: skip the check (the operator asked for it explicitly).

    Raises:
        NotLoopback: the URL is not ``ws(s)://`` or its host is not loopback.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise NotLoopback(f"not a ws:// or wss:// URL: {url}")
    if allow_remote:
        return
    host = parts.hostname
    if not all(_is_loopback(address) for address in _addresses(host)):
        raise NotLoopback(
            f"{host} is not a loopback address; pass --allow-remote to load "
            "a gateway on another machine"
        )


def _addresses(host: str) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise NotLoopback(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in found]


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_loopback
