"""Outbound HTTP that never reaches inside our network (SSRF guard).

Every URL we fetch or call back comes from a user, so:

* only ``http``/``https``, no credentials in the URL;
* the host's addresses must all be public: loopback, private (10/8, 172.16/12, 192.168/16),
  CGNAT (100.64/10), link-local (169.254/16 with the cloud metadata address, fe80::/10),
  multicast, unspecified, reserved, documentation ranges, IPv6 ULA (fc00::/7) are refused,
  and so are IPv4 addresses hidden in IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64) and
  odd IPv4 spellings (``2130706433``, ``0177.0.0.1``, ``0x7f.1``: read as `inet_aton` does);
* the check runs again at connect time on the address actually dialled (a socket factory
  on the connector), so a DNS answer that changes between check and connect (rebinding)
  is refused too;
* redirects are followed by hand, at most `MAX_REDIRECTS`, each target checked again;
* no proxies from the environment (``trust_env=False``): a proxy would dial for us.

`settings.allow_loopback_urls` lets loopback through (tests and local dev); nothing else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from core.errors import UnsafeURL, VideoTooLarge
from core.ports import Storage
from core.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
MAX_URL_LENGTH = 2048
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 256 * 1024
DNS_TIMEOUT_S = 10

# Refused even where Python's `is_global` would let them through (it varies by version).
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(OSError):
    """Raised by the connector's socket factory for an address we never dial."""


class LookupFailed(OSError):
    """DNS could not answer right now (temporary: retry later), unlike a name that does not exist."""


_NO_SUCH_HOST = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # IPv4-compatible (deprecated ::a.b.c.d)
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal_reason(ip: IPAddress, allow_loopback: bool = False) -> str | None:
    """Why we would not connect to `ip` (None: it is a public address we may dial)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner, allow_loopback)
            return f"{reason} (inside an IPv6 address)" if reason else None
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or any(ip in net for net in _BLOCKED_NETWORKS if net.version == ip.version):
        return "a private or reserved address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a host names directly, read the lenient way resolvers read IPv4, else None."""
    bare = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if "%" in bare:
        try:
            return ipaddress.ip_address(bare.split("%", 1)[0])
        except ValueError:
            return None
    try:
        # decimal (2130706433), octal (0177.0.0.1), hex (0x7f.1) and short (127.1) forms
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def check_url_syntax(url: str, allow_loopback: bool = False) -> URL:
    """Check scheme, form and any literal address of a URL (no DNS); return it parsed."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"a URL must be a string of at most {MAX_URL_LENGTH} characters")
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise UnsafeURL("the URL cannot be parsed") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    if not parsed.host:
        raise UnsafeURL("the URL has no host")
    if parsed.user is not None or parsed.password is not None:
        raise UnsafeURL("credentials inside a URL are not allowed")
    try:
        parsed.port  # noqa: B018 - raises on an out-of-range port
    except ValueError:
        raise UnsafeURL("the URL has an invalid port") from None
    literal = parse_ip_literal(parsed.host)
    if literal is not None:
        reason = refusal_reason(literal, allow_loopback)
        if reason:
            raise UnsafeURL(f"the URL points to {reason}")
    return parsed


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (as the connector would dial them)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(DNS_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise UnsafeURL(f"the URL's host is not a valid name ({host})") from exc
    except socket.gaierror as exc:
        if exc.errno in _NO_SUCH_HOST:
            raise UnsafeURL(f"the URL's host does not resolve ({host})") from exc
        raise LookupFailed(f"could not look up {host} right now") from exc
    except TimeoutError:
        raise LookupFailed(f"looking up {host} timed out") from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = parse_ip_literal(str(sockaddr[0]))
        if address is not None:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"the URL's host does not resolve ({host})")
    return addresses


async def check_url(url: str, allow_loopback: bool = False) -> None:
    """Refuse (UnsafeURL) a URL that is not http(s) or whose host resolves to a non-public address.

    Raises LookupFailed (an OSError) when DNS cannot answer right now.
    """
    parsed = check_url_syntax(url, allow_loopback)
    host = parsed.host
    assert host is not None
    if parse_ip_literal(host) is not None:
        return
    for address in await resolve(host, parsed.port or 80):
        reason = refusal_reason(address, allow_loopback)
        if reason:
            raise UnsafeURL(f"the URL's host resolves to {reason}")


def _socket_factory(allow_loopback: bool) -> Callable[[Any], socket.socket]:
    """The connect-time guard: refuse to open a socket towards a non-public address."""

    def factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = parse_ip_literal(str(sockaddr[0]))
        reason = (
            "an unreadable address" if address is None else refusal_reason(address, allow_loopback)
        )
        if reason:
            raise RefusedAddress(f"refused to connect to {reason}")
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def open_session(
    settings: Settings, *, timeout_s: float = 60, headers: dict[str, str] | None = None
) -> aiohttp.ClientSession:
    """A ClientSession that can only reach public addresses (loopback too when allowed)."""
    connector = aiohttp.TCPConnector(
        socket_factory=_socket_factory(settings.allow_loopback_urls),
        limit=32,
        ttl_dns_cache=10,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s, sock_connect=10),
        trust_env=False,
        headers=headers,
        auto_decompress=False,
    )


def _unsafe_from(exc: BaseException) -> UnsafeURL | None:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, RefusedAddress):
            return UnsafeURL(
                f"the URL's host resolves to {str(cause).removeprefix('refused to connect to ')}"
            )
        cause = getattr(cause, "os_error", None) or cause.__cause__
    return None


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    allow_loopback: bool,
    follow_redirects: bool = True,
    max_redirects: int = MAX_REDIRECTS,
    **kwargs: Any,
) -> aiohttp.ClientResponse:
    """Send a request through a session from `open_session`, checking every hop.

    The caller releases the response (``async with``, or ``.release()``). Raises UnsafeURL
    for a refused target (before or at connect time, or after a redirect), and aiohttp's
    ClientError / TimeoutError for network failures.
    """
    current = url
    for _hop in range(max_redirects + 1):
        await check_url(current, allow_loopback)
        try:
            response = await session.request(method, current, allow_redirects=False, **kwargs)
        except aiohttp.ClientError as exc:
            unsafe = _unsafe_from(exc)
            if unsafe is not None:
                raise unsafe from exc
            raise
        if not follow_redirects or response.status not in REDIRECT_STATUSES:
            return response
        location = response.headers.get("Location")
        response.release()
        if not location:
            return response
        try:
            current = str(URL(current).join(URL(location)))
        except ValueError:
            raise UnsafeURL("a redirect points to an unreadable URL") from None
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, kwargs = "GET", {k: v for k, v in kwargs.items() if k not in ("data", "json")}
    raise UnsafeURL(f"more than {max_redirects} redirects")


@dataclass(frozen=True)
class Fetched:
    """What a streamed download stored."""

    size: int
    content_type: str | None


async def fetch_to_storage(
    settings: Settings,
    storage: Storage,
    url: str,
    key: str,
    *,
    max_bytes: int | None = None,
    timeout_s: float = 600,
    session: aiohttp.ClientSession | None = None,
) -> Fetched:
    """GET `url` safely and stream the body into storage under `key` (never whole in memory).

    Raises UnsafeURL, VideoTooLarge (declared or streamed size past `max_bytes`; nothing
    stored), aiohttp.ClientResponseError for a non-2xx answer, ClientError / TimeoutError
    for network failures.
    """
    own = session is None
    active = session or open_session(settings, timeout_s=timeout_s)
    try:
        response = await request(active, "GET", url, allow_loopback=settings.allow_loopback_urls)
        async with response:
            response.raise_for_status()
            limit = max_bytes if max_bytes is not None else settings.max_upload_bytes
            if response.content_length is not None and response.content_length > limit:
                raise VideoTooLarge(
                    f"the video is larger than the {limit // (1024 * 1024)} MB limit"
                )

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                    yield chunk

            size = await storage.put_stream(
                key,
                chunks(),
                content_type=response.content_type or "application/octet-stream",
                max_bytes=limit,
            )
            return Fetched(size=size, content_type=response.content_type)
    finally:
        if own:
            await active.close()
