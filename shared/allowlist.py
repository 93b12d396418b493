"""Which hosts the service may connect to for a caller: the EXPORT_ALLOWED_DESTINATION_HOSTS allowlist, and loopback."""
from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Optional, Tuple, Union
from urllib.parse import SplitResult, urlsplit

from shared.errors import InvalidRequestError, ServiceConfigurationError

SETTING = "EXPORT_ALLOWED_DESTINATION_HOSTS"
DEFAULT_ALLOWED_HOSTS = "*.blob.core.windows.net,*.blob.core.usgovcloudapi.net,*.blob.core.chinacloudapi.cn"
DEFAULT_PORTS = {"https": 443, "http": 80}
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_NEVER = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"),
          ipaddress.ip_network("fd00:ec2::254/128"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_FORBIDDEN_URL_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")


def _as_ipv4(host: str) -> Optional[ipaddress.IPv4Address]:
    """The address of a host written in one of the legacy IPv4 forms resolvers accept (`2852039166`, `0xa9fea9fe`)."""
    if not _LEGACY_IPV4.match(host) or not _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise ValueError(host) from None


def ip_literal(host: str) -> Optional[IPAddress]:
    """The IP address `host` (lower-case, without brackets) denotes, None for a DNS name; ValueError if it is neither."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise ValueError(host)
    return _as_ipv4(host)


def is_ip_literal(host: str) -> bool:
    """Whether `host` is written as an IP address rather than a DNS name."""
    try:
        return ip_literal(host) is not None
    except ValueError:
        return False


def is_loopback_host(host: str) -> bool:
    """Whether `host` names this machine (`localhost` or a loopback address), where local emulators run."""
    if host == "localhost":
        return True
    try:
        address = ip_literal(host)
    except ValueError:
        return False
    return address is not None and address.is_loopback


def is_never_allowed(address: IPAddress) -> bool:
    """Whether an address is link-local or a cloud metadata endpoint, which no setting can allow."""
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour, address.teredo and address.teredo[1]]
        if address in _NAT64 or (address.packed[:12] == bytes(12) and int(address) > 1):
            embedded.append(ipaddress.IPv4Address(address.packed[12:]))
        candidates.extend(a for a in embedded if a is not None)
    return any(a.version == n.version and a in n for a in candidates for n in _NEVER)


@dataclass(frozen=True)
class HostPattern:
    """One allowlist entry: an exact host name or IP address, or `*.suffix`, with an optional port."""

    host: str
    port: Optional[int] = None
    wildcard: bool = False
    address: Optional[IPAddress] = None

    @classmethod
    def parse(cls, entry: str) -> "HostPattern":
        """Read `name`, `*.suffix`, `1.2.3.4`, `[::1]`, each optionally with `:port`; ValueError if malformed."""
        text = entry.strip().lower()
        host, port = text, None
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = _port(rest) if rest else None
        elif text.count(":") == 1:
            host, rest = text.split(":")
            port = _port(":" + rest)
        wildcard = host.startswith("*.")
        name = host[2:] if wildcard else host
        address = ip_literal(name)
        if address is None and not _is_dns_name(name) or address is not None and wildcard:
            raise ValueError(entry)
        if text.startswith("[") and (address is None or address.version != 6):
            raise ValueError(entry)
        return cls(name, port, wildcard, address)

    def matches(self, host: str, address: Optional[IPAddress], port: int) -> bool:
        """Whether a destination host (lower-case) and its effective port fall under this entry."""
        if self.port is not None and self.port != port:
            return False
        if self.address is not None or address is not None:
            return self.address is not None and self.address == address
        return host.endswith("." + self.host) if self.wildcard else host == self.host


def _port(text: str) -> int:
    if not re.match(r"^:[0-9]{1,5}$", text) or not 0 < int(text[1:]) < 65536:
        raise ValueError(text)
    return int(text[1:])


def _is_dns_name(host: str) -> bool:
    return len(host) <= 253 and bool(_DNS_NAME.match(host)) and not _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1])


def _shown_host(host: str, address: Optional[IPAddress], port: Optional[int]) -> str:
    if port is None:
        return host
    return f"[{host}]:{port}" if address is not None and address.version == 6 else f"{host}:{port}"


@dataclass(frozen=True)
class DestinationAllowlist:
    """The hosts exports may write to; see `check` for the rules."""

    patterns: Tuple[HostPattern, ...]

    @classmethod
    def parse(cls, text: str) -> "DestinationAllowlist":
        """Read the setting's comma-separated entries; raise ServiceConfigurationError naming a malformed one."""
        patterns = []
        for entry in filter(None, (e.strip() for e in text.split(","))):
            try:
                patterns.append(HostPattern.parse(entry))
            except ValueError:
                raise ServiceConfigurationError(
                    f"App setting {SETTING} has the entry '{entry}', which is neither a host name, an IP address "
                    "nor a '*.suffix' pattern (each optionally followed by ':port').") from None
        return cls(tuple(patterns))

    def check(self, url: str, field: str) -> SplitResult:
        """Refuse (InvalidRequestError naming `field` and the host) any URL this service must not connect to.

        Allowed: https (or http for a host listed by exact name) to a host matching an entry, without user info.
        Link-local and metadata addresses are refused even when listed; IP addresses only match IP entries.
        """
        shown = url.split("?", 1)[0]
        try:
            if _FORBIDDEN_URL_CHARACTERS.search(url):
                raise ValueError(url)
            parts = urlsplit(url)
            host = parts.hostname or ""
            port = parts.port
            if port == 0:
                raise ValueError(url)
        except ValueError:
            raise InvalidRequestError(f"{field} is not a valid URL: '{shown}'.") from None
        if parts.username is not None or parts.password is not None:
            raise InvalidRequestError(f"{field} must not carry a user name or password, but '{parts.netloc}' does.")
        if not host or parts.scheme not in DEFAULT_PORTS:
            raise InvalidRequestError(f"{field} must be an absolute https URL, not '{shown}'.")
        try:
            address = ip_literal(host)
        except ValueError:
            address = None
        if address is not None and is_never_allowed(address):
            written = f"'{host}' ({address})" if address.version == 4 and str(address) != host else f"'{host}'"
            raise InvalidRequestError(
                f"{field} points at the link-local or metadata address {written}, which is never allowed.")
        if address is None and not _is_dns_name(host):
            raise InvalidRequestError(f"{field} has the host '{host}', which is not a plain DNS name or IP address.")
        effective_port = DEFAULT_PORTS[parts.scheme] if port is None else port
        matching = [p for p in self.patterns if p.matches(host, address, effective_port)]
        if not matching:
            raise InvalidRequestError(
                f"{field} points at '{_shown_host(host, address, port)}', which is not an allowed destination host "
                f"(app setting {SETTING}).")
        if parts.scheme != "https" and all(p.wildcard for p in matching):
            raise InvalidRequestError(
                f"{field} must use https (plain http is only accepted for hosts listed by exact name in the app "
                f"setting {SETTING}, such as the local storage emulator), not '{shown}'.")
        return parts


DEFAULT_ALLOWLIST = DestinationAllowlist.parse(DEFAULT_ALLOWED_HOSTS)
