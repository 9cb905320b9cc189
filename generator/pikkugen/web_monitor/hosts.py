"""Which `Host` a request may carry: the defence against DNS rebinding.

A page on `evil.example` can make its name resolve to 127.0.0.1 and then talk to a monitor on
this machine as its own origin: the browser sends `Host: evil.example:PORT` and an `Origin` to
match, so neither loopback binding nor an Origin check stops it. Only the name in `Host`
gives it away. A request is served only when its `Host` is one of the names this monitor is
reached by: the bound address, `localhost`, `127.0.0.1`, `[::1]` (each with the server's own
port; no port means 80), or a name given with `--allowed-host` (`name`: with the server's port
or none, as behind a reverse proxy; `name:port`: exactly that). Everything else gets 421
before any route runs (`auth.HostGuard`).
"""

from __future__ import annotations

from dataclasses import dataclass

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class HostName:
    """A `Host` value taken apart: the name (lowercase, IPv6 without brackets) and the port
    (None when it names none)."""

    name: str
    port: int | None


def parse_host(value: str) -> HostName | None:
    """`name`, `name:port`, `[v6]` or `[v6]:port`; None for anything else (an empty value,
    a port that is not a number, stray brackets or colons)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, colon, port_text_or_empty = value.partition(":")
        port_text = port_text_or_empty if colon else None
        if ":" in port_text_or_empty or "[" in name or "]" in name:
            return None
    name = name.rstrip(".")
    if not name:
        return None
    if port_text is None:
        return HostName(name, None)
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        return None
    return HostName(name, int(port_text))


@dataclass(frozen=True)
class HostRule:
    """The names a `Host` may carry for one server."""

    #: Names accepted with the server's own port (or none, meaning 80).
    local: frozenset[str]
    #: `--allowed-host name`: with the server's port or with none.
    named: frozenset[str]
    #: `--allowed-host name:port`: exactly that.
    exact: frozenset[HostName]

    @classmethod
    def of(cls, bound: str, allowed: tuple[str, ...]) -> HostRule:
        local = {*LOOPBACK_NAMES, bound.strip("[]").lower()}
        named: set[str] = set()
        exact: set[HostName] = set()
        for entry in allowed:
            host = parse_host(entry)
            if host is None:
                raise ValueError(f"--allowed-host {entry!r} is not a host name or name:port")
            if host.port is None:
                named.add(host.name)
            else:
                exact.add(host)
        return cls(frozenset(local), frozenset(named), frozenset(exact))

    def allows(self, value: str | None, server_port: int | None) -> bool:
        host = parse_host(value or "")
        if host is None:
            return False
        if host in self.exact:
            return True
        if host.name in self.named:
            return host.port is None or host.port == server_port
        if host.name in self.local:
            return (host.port or 80) == server_port
        return False
