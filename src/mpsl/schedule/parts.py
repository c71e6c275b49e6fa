"""From a profile and a cut (c0, c1) to the times and bytes of a scheduling scenario.

The data owner keeps part 1 (layers 1..c0) and part 3 (c1+1..S); its helper runs part 2
(c0+1..c1). A layer's time is fwd, and bwd + opt (the update runs with the backward pass).

Unmeasured timings (a profile row of zeros, e.g. d2 out of memory) are never taken as free: the
profile reaching here is complete for the layers used (``mpsl.profile.impute.complete``, with or
without an imputation), so an unmeasured layer raises FormatError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpsl.errors import CutError
from mpsl.profile.format import Profile
from mpsl.schedule.scenario import Scenario


@dataclass(frozen=True)
class PartTime:
    """Milliseconds of a run of layers on one device: forward, and backward + update."""

    fwd_ms: float
    bwd_ms: float

    def scaled(self, factor: float) -> PartTime:
        """This time multiplied by ``factor`` (a slowdown)."""
        return PartTime(self.fwd_ms * factor, self.bwd_ms * factor)


@dataclass(frozen=True)
class OwnerSide:
    """A data owner's own work: part-1 forward, part-1 backward, part-3 forward + backward."""

    part1: PartTime
    part3: PartTime


def check_cuts(profile: Profile, cuts: Sequence[int]) -> tuple[int, int]:
    """(c0, c1) if 1 <= c0 < c1 < S, else CutError saying what to choose."""
    S = profile.num_layers
    if len(cuts) != 2:
        raise CutError(
            f"one-hop parallel SL needs two cuts c0,c1 (data owner keeps 1..c0 and c1+1..{S}); "
            f"got {len(cuts)}: {list(cuts)}"
        )
    c0, c1 = int(cuts[0]), int(cuts[1])
    if not 1 <= c0 < c1 < S:
        raise CutError(
            f"cuts {c0},{c1} do not split the {S} layers of {profile.model} into three parts; "
            f"choose 1 <= c0 < c1 <= {S - 1}"
        )
    return c0, c1


def part_time(profile: Profile, device: str, layers: range) -> PartTime:
    """Time of ``layers`` (1-based) on ``device``: forward, and backward + update."""
    fwd = bwd = 0.0
    for i in layers:
        t = profile.timing(device, i)
        fwd += t.fwd
        bwd += t.bwd + t.opt
    return PartTime(fwd, bwd)


def part_ranges(profile: Profile, cuts: Sequence[int]) -> tuple[range, range, range]:
    """The 1-based layers of parts 1, 2 and 3."""
    c0, c1 = check_cuts(profile, cuts)
    return range(1, c0 + 1), range(c0 + 1, c1 + 1), range(c1 + 1, profile.num_layers + 1)


def owner_side(profile: Profile, device: str, cuts: Sequence[int]) -> OwnerSide:
    """A data owner on ``device``: its part-1 and part-3 times."""
    p1, _, p3 = part_ranges(profile, cuts)
    return OwnerSide(part_time(profile, device, p1), part_time(profile, device, p3))


def helper_demand_bytes(profile: Profile, cuts: Sequence[int]) -> int:
    """Memory a helper needs per data owner: one part-2 instance plus its batch activations."""
    _, p2, _ = part_ranges(profile, cuts)
    layers = [profile.layers[i - 1] for i in p2]
    return sum(lp.train_state_bytes for lp in layers) + sum(lp.output_bytes for lp in layers)


def cut_bytes(profile: Profile, cuts: Sequence[int]) -> tuple[int, int]:
    """Bytes crossing each cut per batch (activation one way, its gradient the other)."""
    c0, c1 = check_cuts(profile, cuts)
    return profile.layers[c0 - 1].output_bytes, profile.layers[c1 - 1].output_bytes


def transfer_ms(nbytes: float, bps: float, latency_s: float = 0.0) -> float:
    """Time to send ``nbytes`` over a link of ``bps`` bits per second."""
    return nbytes * 8 / bps * 1000 + latency_s * 1000


def assemble(
    owners: Sequence[OwnerSide],
    helpers: Sequence[PartTime],
    link_bps: Sequence[Sequence[float]],
    cut_sizes: tuple[int, int],
    demand_bytes: Sequence[int],
    capacity_bytes: Sequence[int],
    *,
    latency_s: Sequence[Sequence[float]] | None = None,
    owner_names: Sequence[str] | None = None,
    helper_names: Sequence[str] | None = None,
    source: str | None = None,
) -> Scenario:
    """Build the scenario matrices: release, fwd, lag, bwd, tail for every (data owner, helper)."""
    a0, a1 = cut_sizes
    rows: dict[str, list[list[float]]] = {n: [] for n in ("release", "fwd", "lag", "bwd", "tail")}
    for k, own in enumerate(owners):
        for name in rows:
            rows[name].append([])
        for h, part2 in enumerate(helpers):
            bps = link_bps[k][h]
            lat = latency_s[k][h] if latency_s is not None else 0.0
            rows["release"][k].append(own.part1.fwd_ms + transfer_ms(a0, bps, lat))
            rows["fwd"][k].append(part2.fwd_ms)
            rows["lag"][k].append(
                transfer_ms(a1, bps, lat) + own.part3.fwd_ms + own.part3.bwd_ms
                + transfer_ms(a1, bps, lat)
            )  # fmt: skip
            rows["bwd"][k].append(part2.bwd_ms)
            rows["tail"][k].append(transfer_ms(a0, bps, lat) + own.part1.bwd_ms)
    return Scenario(
        release_ms=rows["release"],
        fwd_ms=rows["fwd"],
        lag_ms=rows["lag"],
        bwd_ms=rows["bwd"],
        tail_ms=rows["tail"],
        demand_bytes=list(demand_bytes),
        capacity_bytes=list(capacity_bytes),
        owner_names=list(owner_names) if owner_names is not None else None,
        helper_names=list(helper_names) if helper_names is not None else None,
        source=source,
    )
