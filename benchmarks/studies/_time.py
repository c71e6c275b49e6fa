"""What the time studies share: one setting predicted (closed form, simulation) and measured
(the real runtime in emulation, time scaled), epoch and round apart, with the role that bounds it.

Every figure is in the deployment's seconds: an emulated run is scaled so that it lasts about
``target_s`` seconds per 10 data owners, and converted back. Scaled too fast, the machine cannot
keep up (VGG-19, K = 40, P = 5 at 3 s a round measured 2003 s against 1427 s simulated; at 12 s,
1427 s): the run's wall time is kept in ``wall_s`` to tell.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mpsl.cluster import Cluster
from mpsl.emulate.emulation import Emulation, epoch_seconds
from mpsl.errors import ConfigError
from mpsl.estimate.summary import estimate
from mpsl.profile.format import Profile
from mpsl.profile.impute import Imputation


def predicted(
    profile: Profile,
    cluster: Cluster,
    cuts: Sequence[int],
    nodes: Sequence[str] | None = None,
    imputation: Imputation | None = None,
) -> dict[str, Any]:
    """Closed-form and simulated epoch and round (s), and the simulation's bounding role."""
    sim = estimate(profile, cluster, cuts, nodes, method="sim", imputation=imputation)
    row: dict[str, Any] = {
        "sim_epoch_s": sim.training_ms / 1000,
        "sim_round_s": sim.round_s,
        "aggregation_s": sim.aggregation_ms / 1000,
        "bound": sim.bound.name if sim.bound else None,
        "bound_share": sim.bound.busy_ms / sim.training_ms if sim.bound else None,
        "imputed": len(sim.imputed),
    }
    try:
        closed = estimate(profile, cluster, cuts, nodes, imputation=imputation)
    except ConfigError:  # shared hosts or uplinks: the closed form does not model them
        row["closed_epoch_s"] = row["closed_round_s"] = None
    else:
        row["closed_epoch_s"] = closed.training_ms / 1000
        row["closed_round_s"] = closed.round_s
    return row


def emulated(
    profile: Profile,
    cluster: Cluster,
    cuts: Sequence[int],
    nodes: Sequence[str] | None,
    sim_round_s: float,
    target_s: float,
    imputation: Imputation | None = None,
) -> dict[str, float]:
    """One round in the emulated runtime, scaled to last about ``target_s`` s per 10 data owners,
    converted back."""
    scale = target_s * max(1.0, cluster.num_data_owners / 10) / sim_round_s
    em = Emulation(profile, cluster, cuts, nodes, time_scale=scale, imputation=imputation)
    start = time.perf_counter()
    run = em.run()
    return {
        "measured_round_s": run.rounds[0].seconds / scale,
        "measured_epoch_s": epoch_seconds(run) / scale,
        "time_scale": scale,
        "wall_s": time.perf_counter() - start,
    }
