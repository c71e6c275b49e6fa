"""The reference profiles shipped inside the package, and loading a profile by path or name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mpsl.errors import FormatError
from mpsl.profile.format import Profile


def shipped_names() -> list[str]:
    """Names of the shipped profiles (``mpsl_vgg19_CIFAR``, ``workflow_resnet101_CIFAR``, ...)."""
    root = resources.files("mpsl") / "profiles"
    return sorted(p.name.removesuffix(".json") for p in root.iterdir() if p.name.endswith(".json"))


def load_profile(text: str | Path) -> Profile:
    """A profile file, or the name of a shipped profile (``mpsl_vgg19_CIFAR``)."""
    path = Path(text)
    if path.is_file():
        return Profile.load(path)
    shipped = resources.files("mpsl") / "profiles" / f"{str(text).removesuffix('.json')}.json"
    if shipped.is_file():
        with resources.as_file(shipped) as p:
            return Profile.load(p)
    raise FormatError(
        f"{text}: no such profile file, nor a shipped profile ({', '.join(shipped_names())})"
    )
