"""Link checks reach only the public internet, unless the organisation says otherwise.

Links come from subscribed feeds too, and checking a link is a request from inside the
organisation's network. Without a guard, a feed item pointing at `http://169.254.169.254/` or
`http://10.0.0.5/admin` would have the service probe addresses nobody outside can reach. So,
by default, a link whose host is a private, loopback, link-local or otherwise non-global
address is not requested, whether it is written as an address or is a name resolving to one.
`library.check.private_addresses: true` lifts this for libraries of intranet links.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

PRIVATE = "the address is private or local (see library.check.private_addresses)"


def is_public(address: str) -> bool:
    """Whether an IP address is one the public internet routes to."""
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_global
    except ValueError:
        return False


def literal_private(url: str) -> bool:
    """Whether the URL's host is written as an IP address that is not public.

    aiohttp does not ask the resolver about addresses written out, so these are caught here.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if host is None:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: the resolver decides
    return not is_public(host)


class PublicResolver(AbstractResolver):
    """Resolves names as usual and keeps only public addresses; none left is an error."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public(entry["host"])]
        if not public:
            raise OSError(f"{host}: {PRIVATE}")
        return public

    async def close(self) -> None:
        await self._inner.close()
