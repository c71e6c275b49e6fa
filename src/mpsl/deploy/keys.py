"""CURVE keys of a deployment: one key pair per member, every public key known to every member.

Layout of a keys directory (made by ``mpsl keys``)::

    keys/NAME.key_secret      NAME's key pair (keep it on NAME's host only; mode 0600)
    keys/public/NAME.key      NAME's public key (copy public/ to every host)

A member accepts connections only from public keys in its ``public/`` directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from mpsl.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Identity:
    """A member's CURVE key pair (z85 text)."""

    name: str
    public: str
    secret: str


@dataclass(frozen=True)
class Credentials:
    """What a process needs for encrypted, authenticated traffic."""

    identity: Identity
    authorized: dict[str, str]  # public key -> member name, everyone this process may hear from

    def public_key_of(self, name: str) -> str:
        """The public key of member ``name``."""
        for key, member in self.authorized.items():
            if member == name:
                return key
        raise ConfigError(f"no public key for '{name}' among the authorized keys", field="keys")


def create_keys(directory: str | Path, names: Iterable[str]) -> list[Path]:
    """Make a key pair for every name; returns the secret key files."""
    root = Path(directory)
    public = root / "public"
    public.mkdir(parents=True, exist_ok=True)
    made = []
    for name in names:
        if not _NAME.match(name):
            raise ConfigError(f"key name '{name}' must be 1-64 letters, digits, _ or -")
        secret = root / f"{name}.key_secret"
        if secret.exists():
            raise ConfigError(f"{secret} exists; remove it to make a new key pair", field="keys")
        pub_path, sec_path = zmq.auth.create_certificates(str(root), name)
        os.replace(pub_path, public / f"{name}.key")
        os.chmod(sec_path, 0o600)
        made.append(Path(sec_path))
    return made


def load_credentials(directory: str | Path, name: str) -> Credentials:
    """``name``'s key pair and the public keys it trusts, from a keys directory."""
    root = Path(directory)
    secret_file = root / f"{name}.key_secret"
    if not secret_file.is_file():
        raise ConfigError(f"{secret_file} not found (make keys with `mpsl keys`)", field="keys")
    public, secret = _read(secret_file)
    if secret is None:
        raise ConfigError(f"{secret_file} holds no secret key", field="keys")
    authorized = {}
    for path in sorted((root / "public").glob("*.key")):
        key, _ = _read(path)
        authorized[key.decode()] = path.stem
    if public.decode() not in authorized:
        raise ConfigError(
            f"{root / 'public'} lacks {name}.key, the public half of {secret_file}", field="keys"
        )
    return Credentials(Identity(name, public.decode(), secret.decode()), authorized)


def _read(path: Path) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a CURVE key file ({exc})", field="keys") from None
