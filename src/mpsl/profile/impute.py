"""Imputing timings a profile lacks: a declared estimate, never a silent zero.

A profile row a device did not measure (the reference's zero rows: a Raspberry Pi 3 out of memory)
is missing, not free. With ``ratio`` imputation the missing time of layer L on device D is the time
of L on a reference device R, times the ratio of D's and R's total time (fwd + bwd + opt) over the
layers both measured: D is assumed as much slower than R on L as on the layers we can compare.

The reference is the one named (``ratio:R``) or chosen as follows: d1 when it measured L (the
Raspberry Pi 4, the measured device closest to the Pi 3 that has the gaps), else the device that
measured L and shares the most measured layers with D (ties by name). Every imputed entry is
returned as an ``Imputation`` so that commands report what they estimated and from what.

This is the one mechanism: the estimator, the planner, the emulation and the scheduler all call
``complete``; without an imputation they refuse missing entries with ``missing_error``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mpsl.errors import ConfigError, FormatError
from mpsl.profile.format import Profile, Timing

log = logging.getLogger(__name__)

PREFERRED_REFERENCES = ("d1",)
METHODS = ("ratio",)


@dataclass(frozen=True)
class Imputation:
    """How to fill missing timings: ``ratio``, with a reference device or an automatic one."""

    method: str = "ratio"
    reference: str | None = None

    @classmethod
    def parse(cls, text: str | None, field: str = "--impute") -> Imputation | None:
        """``None``/``off`` -> None; ``ratio`` or ``ratio:DEVICE`` -> an Imputation."""
        if text is None or text == "off":
            return None
        method, _, reference = text.partition(":")
        if method not in METHODS:
            raise ConfigError(
                f"unknown imputation '{text}'; choose off, ratio or ratio:DEVICE (e.g. ratio:d1)",
                field=field,
            )
        return cls(method, reference or None)


@dataclass(frozen=True)
class Imputed:
    """One filled entry: ``device``'s timing of ``layer``, scaled from ``reference``."""

    device: str
    layer: int  # 1-based
    name: str
    reference: str
    ratio: float
    shared_layers: int
    timing: Timing

    def to_json(self) -> dict[str, Any]:
        """The entry as reported in a command's JSON output."""
        return {
            "device": self.device,
            "layer": self.layer,
            "name": self.name,
            "reference": self.reference,
            "ratio": self.ratio,
            "shared_layers": self.shared_layers,
            "ms": self.timing.model_dump(),
        }


def _total(t: Timing) -> float:
    return t.fwd + t.bwd + t.opt


def _measured(profile: Profile, device: str) -> set[int]:
    return {i for i, layer in enumerate(profile.layers, 1) if device in layer.ms}


def missing(profile: Profile, needs: Mapping[str, Iterable[int]]) -> list[tuple[str, int]]:
    """(device, 1-based layer) of every needed timing the profile lacks, sorted."""
    for d, layers in needs.items():
        for i in layers:
            if not 1 <= i <= profile.num_layers:
                raise FormatError(
                    f"layer {i} (on device '{d}') is not a layer of {profile.model}; "
                    f"choose 1..{profile.num_layers}"
                )
    return sorted(
        {(d, i) for d, layers in needs.items() for i in layers if d not in profile.layers[i - 1].ms}
    )


def _ranges(layers: list[int]) -> str:
    """'4,6,8-33' from sorted layer numbers."""
    out: list[str] = []
    start = prev = layers[0]
    for i in [*layers[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(out)


def missing_error(profile: Profile, gaps: list[tuple[str, int]], source: str) -> FormatError:
    """The error for needed timings that were not measured: which, and how to proceed."""
    by_device: dict[str, list[int]] = {}
    for device, layer in gaps:
        by_device.setdefault(device, []).append(layer)
    listed = "; ".join(
        f"{d} layer{'s' if len(ls) > 1 else ''} {_ranges(ls)}" for d, ls in by_device.items()
    )
    return FormatError(
        f"{source}: the profile of {profile.model} has no timing for {listed}; profile them, "
        "choose cuts or devices that avoid them, or estimate them with --impute ratio "
        "(docs/profile.md)"
    )


def impute_timing(
    profile: Profile, device: str, layer: int, reference: str | None = None
) -> Imputed:
    """The timing of an unmeasured ``layer`` on ``device``, scaled from a reference device."""
    mine = _measured(profile, device)
    if not mine:
        raise FormatError(
            f"profile of {profile.model} has no timing at all for device '{device}'; devices "
            f"there: {', '.join(profile.devices())}"
        )
    lp = profile.layers[layer - 1]
    refs = [d for d in lp.ms if d != device]
    if reference is not None:
        if reference not in refs:
            raise FormatError(
                f"profile of {profile.model}: reference device '{reference}' did not measure "
                f"layer {layer} ({lp.name}); devices that did: {', '.join(refs) or 'none'}"
            )
        ref = reference
    elif not refs:
        raise FormatError(
            f"profile of {profile.model}: no device measured layer {layer} ({lp.name}), so its "
            f"time on '{device}' cannot be estimated; profile that layer or choose cuts that "
            f"keep it off '{device}'"
        )
    else:
        preferred = [d for d in PREFERRED_REFERENCES if d in refs]
        ref = (
            preferred[0]
            if preferred
            else min(refs, key=lambda d: (-len(mine & _measured(profile, d)), d))
        )
    shared = sorted(mine & _measured(profile, ref))
    if not shared:
        raise FormatError(
            f"profile of {profile.model}: device '{device}' shares no measured layer with "
            f"'{ref}', which measured layer {layer}; cannot estimate it"
        )
    num = sum(_total(profile.timing(device, i)) for i in shared)
    den = sum(_total(profile.timing(ref, i)) for i in shared)
    ratio = num / den if den > 0 else 1.0
    t = lp.ms[ref]
    timing = Timing(fwd=t.fwd * ratio, bwd=t.bwd * ratio, opt=t.opt * ratio)
    return Imputed(device, layer, lp.name, ref, ratio, len(shared), timing)


def complete(
    profile: Profile,
    needs: Mapping[str, Iterable[int]],
    imputation: Imputation | None,
    source: str = "profile",
) -> tuple[Profile, tuple[Imputed, ...]]:
    """``profile`` with every needed (device, layers) timing present, and what was imputed.

    Without an imputation a missing entry raises ``missing_error``; with one, each is estimated
    from the measured entries only (an imputed entry never feeds another).
    """
    needs = {d: list(ls) for d, ls in needs.items()}
    gaps = missing(profile, needs)
    if not gaps:
        return profile, ()
    if imputation is None:
        raise missing_error(profile, gaps, source)
    filled = tuple(impute_timing(profile, d, i, imputation.reference) for d, i in gaps)
    extra: dict[int, dict[str, Timing]] = {}
    for f in filled:
        extra.setdefault(f.layer, {})[f.device] = f.timing
        log.info(
            "%s layer %d on %s not measured: estimated as %s x %.3f (ratio over %d shared layers)",
            profile.model, f.layer, f.device, f.reference, f.ratio, f.shared_layers,
        )  # fmt: skip
    layers = [
        lp.model_copy(update={"ms": {**lp.ms, **extra[i]}}) if i in extra else lp
        for i, lp in enumerate(profile.layers, 1)
    ]
    return profile.model_copy(update={"layers": layers}), filled


def imputed_json(filled: Iterable[Imputed]) -> list[dict[str, Any]]:
    """The imputed entries as a command prints them in its JSON (``imputed``)."""
    return [f.to_json() for f in filled]
