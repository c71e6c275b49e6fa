"""Random scenarios from the reference profiles (workflow-optimization study setting).

- Model and cut: resnet101 cut (3, 33) or vgg19 cut (3, 20) by default, CIFAR-10, batch 128, from
  the shipped ``profiles/workflow_<model>_CIFAR.json``.
- Low heterogeneity: each data owner is a d1 (Raspberry Pi 4) or a d2 (Raspberry Pi 3), drawn with
  equal odds; each helper is a VM (16 GB) or a laptop (8 GB), drawn with equal odds. Layers d2 did
  not measure are estimated (``mpsl.profile.impute``, ratio: scaled from d1 by the d2/d1 ratio of
  shared layers); this imputation is part of the study's setting.
- High heterogeneity: data owner k draws u_k ~ U(0, 1) and takes, for every layer and phase, the
  fastest + u_k x (slowest - fastest) of the client devices d1, d2, jetson-cpu and jetson-gpu that
  measured that layer (the laptop and the VM are helpers, not clients). One draw per data owner
  rather than per layer, since independent per-layer draws would average out over the tens of
  layers of a part and make all data owners alike. Helper h draws v_h ~ U(0, 1): per layer and
  phase VM + v_h x (laptop - VM), and memory 16 GB + v_h x (8 GB - 16 GB).
- Links: every (data owner, helper) pair gets a rate ~ U(1, 20) Mbit/s, the same both ways.
- Memory demand of a data owner at its helper: part-2 weights + gradients + optimizer state plus
  the activations of one batch (``parts.helper_demand_bytes``); the same for every data owner.
Draws come from ``numpy.random.default_rng(seed)`` in a fixed order: helpers, owners, links.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import as_file, files
from typing import Literal

import numpy as np

from mpsl.errors import ConfigError
from mpsl.profile.format import Profile
from mpsl.profile.impute import Imputation, complete
from mpsl.schedule.parts import (
    OwnerSide,
    PartTime,
    assemble,
    cut_bytes,
    helper_demand_bytes,
    owner_side,
    part_ranges,
    part_time,
)
from mpsl.schedule.scenario import Scenario

Heterogeneity = Literal["low", "high"]
MODELS: dict[str, tuple[int, int]] = {"resnet101": (3, 33), "vgg19": (3, 20)}
LOW_CLIENTS = ("d1", "d2")
HIGH_CLIENTS = ("d1", "d2", "jetson-cpu", "jetson-gpu")
HELPERS = ("VM", "laptop")
HELPER_MEMORY_BYTES = {"VM": 16_000_000_000, "laptop": 8_000_000_000}
LINK_MBPS = (1.0, 20.0)


def reference_profile(model: str) -> Profile:
    """The shipped workflow-study profile of ``model`` (CIFAR-10, batch 128)."""
    if model not in MODELS:
        raise ConfigError(
            f"unknown model '{model}'; choose one of {', '.join(MODELS)}", field="--model"
        )
    with as_file(files("mpsl") / "profiles" / f"workflow_{model}_CIFAR.json") as path:
        return Profile.load(path)


def _between(
    profile: Profile, filled: Profile, devices: Sequence[str], layers: range, u: float
) -> PartTime:
    """Per layer and phase: fastest + u x (slowest - fastest) among ``devices`` that measured it
    (in ``profile``); a layer none measured takes the first device's imputed time (``filled``)."""
    fwd = bwd = 0.0
    for i in layers:
        measured = [profile.layers[i - 1].ms[d] for d in devices if d in profile.layers[i - 1].ms]
        if not measured:
            measured = [filled.timing(devices[0], i)]
        f = [t.fwd for t in measured]
        b = [t.bwd + t.opt for t in measured]
        fwd += min(f) + u * (max(f) - min(f))
        bwd += min(b) + u * (max(b) - min(b))
    return PartTime(fwd, bwd)


def _mix(a: PartTime, b: PartTime, v: float) -> PartTime:
    return PartTime(a.fwd_ms + v * (b.fwd_ms - a.fwd_ms), a.bwd_ms + v * (b.bwd_ms - a.bwd_ms))


def _check_sizes(owners: int, helpers: int, heterogeneity: str) -> None:
    if owners < 1:
        raise ConfigError(f"need at least 1 data owner; got {owners}", field="--owners")
    if helpers < 1:
        raise ConfigError(f"need at least 1 helper; got {helpers}", field="--helpers")
    if heterogeneity not in ("low", "high"):
        raise ConfigError(f"expected low or high; got '{heterogeneity}'", field="--heterogeneity")


def generate(
    model: str = "resnet101",
    owners: int = 20,
    helpers: int = 5,
    heterogeneity: str = "low",
    cuts: Sequence[int] | None = None,
    seed: int = 0,
) -> Scenario:
    """A random scenario of ``owners`` data owners and ``helpers`` helpers (see module doc)."""
    _check_sizes(owners, helpers, heterogeneity)
    profile = reference_profile(model)
    cut = tuple(cuts) if cuts is not None else MODELS[model]
    p1, p2, p3 = part_ranges(profile, cut)
    own = [*p1, *p3]
    needs = {**{d: own for d in (*LOW_CLIENTS, HIGH_CLIENTS[0])}, **{h: list(p2) for h in HELPERS}}
    filled, _ = complete(profile, needs, Imputation("ratio"), f"workflow_{model}_CIFAR")
    rng = np.random.default_rng(seed)
    helper_times: list[PartTime] = []
    capacity: list[int] = []
    helper_names: list[str] = []
    vm, laptop = (part_time(filled, d, p2) for d in HELPERS)
    if heterogeneity == "low":
        for h, pick in enumerate(rng.integers(0, 2, size=helpers)):
            device = HELPERS[int(pick)]
            helper_times.append(vm if device == "VM" else laptop)
            capacity.append(HELPER_MEMORY_BYTES[device])
            helper_names.append(f"h{h} ({device})")
    else:
        lo_mem, hi_mem = HELPER_MEMORY_BYTES["laptop"], HELPER_MEMORY_BYTES["VM"]
        for h, v in enumerate(rng.random(helpers)):
            helper_times.append(_mix(vm, laptop, float(v)))
            capacity.append(int(hi_mem + float(v) * (lo_mem - hi_mem)))
            helper_names.append(f"h{h} (v={v:.2f})")
    owner_sides: list[OwnerSide] = []
    owner_names: list[str] = []
    if heterogeneity == "low":
        sides = {d: owner_side(filled, d, cut) for d in LOW_CLIENTS}
        for k, pick in enumerate(rng.integers(0, 2, size=owners)):
            device = LOW_CLIENTS[int(pick)]
            owner_sides.append(sides[device])
            owner_names.append(f"k{k} ({device})")
    else:
        for k, u in enumerate(rng.random(owners)):
            uf = float(u)
            owner_sides.append(
                OwnerSide(
                    _between(profile, filled, HIGH_CLIENTS, p1, uf),
                    _between(profile, filled, HIGH_CLIENTS, p3, uf),
                )
            )
            owner_names.append(f"k{k} (u={uf:.2f})")
    mbps = rng.uniform(*LINK_MBPS, size=(owners, helpers))
    demand = helper_demand_bytes(profile, cut)
    return assemble(
        owner_sides,
        helper_times,
        (mbps * 1e6).tolist(),
        cut_bytes(profile, cut),
        [demand] * owners,
        capacity,
        owner_names=owner_names,
        helper_names=helper_names,
        source=(
            f"generated: {model} cuts {cut[0]},{cut[1]}, {heterogeneity} heterogeneity, "
            f"K={owners}, H={helpers}, seed {seed}"
        ),
    )
