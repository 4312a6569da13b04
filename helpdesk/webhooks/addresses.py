"""Where a webhook may point: the public internet, not our own network (SSRF).

A workspace admin chooses the URL, and the delivery worker posts from inside our network; left
unchecked, a subscription to ``http://10.0.0.5/`` or ``http://169.254.169.254/`` (a cloud's
metadata service) would make us a proxy into it. The URL is checked when it is saved (a literal
address or ``localhost``) and again, after resolving the name, before each delivery.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    mapped = getattr(ip, "ipv4_mapped", None)
    return not (mapped or ip).is_global


def literal_address_problem(url: str) -> str | None:
    """Why the URL's host is, on its face, not on the public internet; None when it may be."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return f"the webhook URL points at this network ({host}); use a public address"
    try:
        private = _not_public(host)
    except ValueError:
        return None  # a name: resolved and checked at delivery
    return f"the webhook URL points at a non-public address ({host})" if private else None


def resolved_address_problem(url: str) -> str | None:
    """Why delivering to the URL would reach a non-public address, after resolving its name.

    The name is resolved again when httpx connects, so a DNS answer that changes in between
    (rebinding) is not caught here; a deployment that needs that should also send webhooks
    through an egress proxy that refuses private ranges.
    """
    problem = literal_address_problem(url)
    if problem:
        return problem
    parts = urlsplit(url)
    try:
        answers = socket.getaddrinfo(parts.hostname or "", parts.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None  # unresolvable: the POST fails and is retried like any connection error
    for *_, sockaddr in answers:
        if _not_public(str(sockaddr[0])):
            return f"the webhook URL's host resolves to a non-public address ({sockaddr[0]})"
    return None
