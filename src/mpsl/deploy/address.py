"""Deployment addresses, parsed in one place: ``tcp://HOST:PORT`` and a bare ``HOST``.

The command line checks every address with these before any socket opens (ZeroMQ would bind port
99999 as 34463, its value modulo 65536); the role process reads its listen and coordinator
addresses with them too.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from mpsl.errors import ConfigError

SCHEME = "tcp://"
ANY = "*"  # as host: every interface; as port: any free port (both only where listening)
MAX_PORT = 65535
# A host name, an IPv4 address, an interface name, or an IPv6 address in brackets.
HOST = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])$")


@dataclass(frozen=True)
class Address:
    """``tcp://HOST:PORT``; ``port`` None is ``*``, any free port."""

    host: str
    port: int | None

    @property
    def every_interface(self) -> bool:
        """Whether it listens on every interface (so peers need another name to reach it)."""
        return self.host in (ANY, "0.0.0.0")


def parse_address(text: str, option: str, *, listening: bool = False) -> Address:
    """``text`` as ``tcp://HOST:PORT``; a ConfigError names ``option``, the value and the fix.

    PORT is 1..65535; where ``listening``, HOST and PORT may also be ``*`` (every interface, any
    free port).
    """
    form = f"tcp://HOST:PORT with PORT 1..{MAX_PORT}{' or *' if listening else ''}"
    example = "tcp://0.0.0.0:5555" if listening else "tcp://10.0.0.1:5555"

    def refuse(problem: str) -> ConfigError:
        return ConfigError(
            f"expected {form}, e.g. {example}; got '{text}': {problem}", field=option
        )

    if not text.startswith(SCHEME):
        raise refuse(f"it does not start with {SCHEME}")
    host, colon, port = text.removeprefix(SCHEME).rpartition(":")
    if not colon:
        raise refuse("no :PORT")
    if not (HOST.match(host) or (listening and host == ANY)):
        raise refuse(f"'{host}' is no host name or IP address")
    if port == ANY and listening:
        return Address(host, None)
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= MAX_PORT):
        wildcard = " (* is for --listen)" if port == ANY else ""
        raise refuse(f"port '{port}' is not in 1..{MAX_PORT}{wildcard}")
    return Address(host, int(port))


def parse_host(text: str, option: str) -> str:
    """``text`` as a bare host name or IP address; a ConfigError names ``option`` and the value."""
    if not HOST.match(text):
        raise ConfigError(
            f"expected a host name or IP address alone, e.g. 10.0.0.1 (no tcp://, no port: the "
            f"port is the one --listen binds); got '{text}'",
            field=option,
        )
    return text


def is_wildcard(address: str) -> bool:
    """Whether listen address ``address`` binds every interface."""
    return parse_address(address, "--listen", listening=True).every_interface


def local_ip_toward(address: str) -> str:
    """This host's IP address on the route to ``address`` (what peers there can reach)."""
    host = parse_address(address, "--coordinator").host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))  # UDP: picks the route, sends nothing
            return str(probe.getsockname()[0])
        except OSError as exc:
            raise ConfigError(f"cannot route to the coordinator at {address}: {exc}") from None
