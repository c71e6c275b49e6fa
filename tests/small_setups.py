"""Small setups several test modules share: a toy profile and cluster for the sharing tests, and a
four-data-owner digits_cnn run on synthetic 8x8 images for the compute-node tests."""

from __future__ import annotations

from typing import Any

from mpsl.cluster import Cluster
from mpsl.data.synthetic import load_synthetic
from mpsl.models import build_model
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine

TOY_PROFILE = Profile(
    model="toy",
    batch_size=8,
    layers=[
        LayerProfile(
            name=f"l{i}", output_bytes=1000, param_bytes=10, ms={"dev": Timing(fwd=4, bwd=6)}
        )
        for i in range(1, 7)
    ],
)
TOY_CUTS = [1, 3, 5]  # owners keep 1 and 6; n0 runs 2-3, n1 4-5


def toy_cluster(
    owners: int = 3,
    hosts: tuple[str | None, str | None] = (None, None),
    cores: int | None = None,
    link_bps: float = 1e6,
    uplink_bps: float | None = None,
    **training: Any,
) -> Cluster:
    """Two compute nodes (on the hosts given) and ``owners`` data owners at ``link_bps``, behind
    one uplink when ``uplink_bps`` is given."""
    group: dict[str, Any] = {
        "count": owners,
        "device": "dev",
        "memory_bytes": 1e9,
        "link_bps": link_bps,
    }
    links: dict[str, Any] = {"compute_to_compute_bps": 1e12}
    if uplink_bps is not None:
        group["uplink"] = "ap"
        links["uplinks"] = [{"name": "ap", "bps": uplink_bps}]
    nodes = [
        {"name": f"n{i}", "device": "dev", "memory_bytes": 1e9, **({"host": h} if h else {})}
        for i, h in enumerate(hosts)
    ]
    spec: dict[str, Any] = {
        "data_owners": [group],
        "compute_nodes": nodes,
        "links": links,
        "training": {"batch_size": 8, "batches_per_epoch": 2, "local_epochs": 1, **training},
    }
    if cores is not None:
        spec["hosts"] = [{"name": h, "cores": cores} for h in sorted({h for h in hosts if h})]
    return Cluster.model_validate(spec)


SMALL_DATA = load_synthetic((1, 8, 8), 10, train_size=96, test_size=16, seed=3)


def small_config(**changes: object) -> RunConfig:
    """Four data owners, digits_cnn cut 1,3,5, two rounds of Adam; ``changes`` on top."""
    values: dict[str, object] = dict(
        dataset="synthetic",
        input_shape=[1, 8, 8],
        data_owners=4,
        cuts=[1, 3, 5],
        rounds=2,
        batch_size=8,
        optimizer="adam",
        lr=0.01,
        seed=3,
    )
    return RunConfig(**(values | changes))  # type: ignore[arg-type]


def run_small(cfg: RunConfig) -> InProcessEngine:
    """Run ``cfg`` in process on the small data; the result is kept as ``engine.result``."""
    engine = InProcessEngine(
        cfg, dataset=SMALL_DATA, model=build_model("digits_cnn", 10, (1, 8, 8))
    )
    engine.result = engine.run()  # type: ignore[attr-defined]
    return engine
