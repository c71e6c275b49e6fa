"""The profiler on real compute: structure and bytes, never speed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from mpsl.cluster import Cluster
from mpsl.errors import ConfigError
from mpsl.estimate.summary import estimate
from mpsl.models import build_model, describe_layers
from mpsl.profile.format import Profile
from mpsl.profile.measure import MeasureSettings, measure_model, trimmed_mean

FAST = MeasureSettings(repeats=2, warmup=1)
BATCH = 4


@pytest.fixture(scope="module")
def digits() -> Profile:
    return measure_model("digits_cnn", BATCH, device_name="box", settings=FAST)


def test_every_layer_is_present_with_independent_byte_counts(digits: Profile) -> None:
    chain = build_model("digits_cnn")
    infos = describe_layers(chain)
    assert [lp.name for lp in digits.layers] == chain.layer_names()
    assert digits.model == "digits_cnn" and digits.batch_size == BATCH
    assert digits.input_shape == [1, 8, 8] and digits.input_bytes == BATCH * 64 * 4
    for lp, info, layer in zip(digits.layers, infos, chain, strict=True):
        params = sum(p.numel() for p in layer.parameters()) * 4
        assert lp.output_bytes == BATCH * math.prod(info.output_shape) * 4
        assert lp.param_bytes == params == info.params * 4
        assert lp.grad_bytes == params
        assert lp.optimizer_bytes == params  # SGD momentum: one buffer per parameter


def test_times_are_positive_and_steps_only_where_there_are_weights(digits: Profile) -> None:
    assert digits.devices() == ["box"]
    for lp in digits.layers:
        t = lp.ms["box"]
        assert t.fwd > 0 and t.bwd > 0
        assert (t.opt > 0) == (lp.param_bytes > 0)
    assert digits.layers[2].name == "pool" and digits.layers[2].ms["box"].opt == 0


def test_peak_covers_what_must_be_resident(digits: Profile) -> None:
    previous = digits.input_bytes or 0
    for lp in digits.layers:
        # input, upstream gradient, weights and momentum, plus at least the output itself
        floor = previous + lp.output_bytes + lp.param_bytes + (lp.optimizer_bytes or 0)
        assert lp.peak_bytes is not None and lp.peak_bytes >= floor + lp.output_bytes
        previous = lp.output_bytes


def test_profile_survives_its_file(digits: Profile, tmp_path: Path) -> None:
    digits.save(tmp_path / "p.json")
    assert Profile.load(tmp_path / "p.json") == digits


def test_plain_sgd_keeps_no_optimizer_state() -> None:
    p = measure_model("digits_cnn", 2, settings=MeasureSettings(repeats=1, warmup=0, momentum=0))
    assert all(lp.optimizer_bytes == 0 for lp in p.layers)


def test_token_model_gets_token_input() -> None:
    p = measure_model("gpt_small", 2, input_shape=(16,), settings=FAST, device_name="box")
    assert p.input_bytes == 2 * 16 * 8  # int64 tokens
    assert p.layers[0].output_bytes == 2 * 16 * 128 * 4
    assert p.layers[-1].output_bytes == 2 * 16 * 256 * 4
    assert p.layers[0].ms["box"].bwd > 0  # embedding weights get gradients


def test_threads_setting_is_restored() -> None:
    before = torch.get_num_threads()
    p = measure_model("digits_cnn", 2, settings=MeasureSettings(repeats=1, warmup=0, threads=1))
    assert torch.get_num_threads() == before
    assert "1 threads" in (p.source or "")


def test_a_measured_profile_feeds_the_estimator(digits: Profile) -> None:
    cluster = Cluster.model_validate(
        {
            "data_owners": [{"count": 3, "device": "box", "memory_bytes": 1e9, "link_bps": 1e8}],
            "compute_nodes": [
                {"name": "n1", "device": "box", "memory_bytes": 1e9},
                {"name": "n2", "device": "box", "memory_bytes": 1e9},
            ],
            "links": {"compute_to_compute_bps": 1e9},
            "training": {"batch_size": BATCH, "batches_per_epoch": 2, "local_epochs": 1},
        }
    )
    est = estimate(digits, cluster, (2, 4, 5), method="sim")
    assert est.round_ms > 0 and all(n.fits for n in est.nodes)


def test_trimmed_mean_drops_both_ends() -> None:
    assert trimmed_mean([100.0, 1.0, 2.0, 3.0, -50.0], 0.2) == 2.0
    assert trimmed_mean([5.0], 0.4) == 5.0


@pytest.mark.parametrize("kwargs", [{"repeats": 0}, {"warmup": -1}, {"trim": 0.5}, {"threads": 0}])
def test_bad_settings_name_the_field(kwargs: dict) -> None:
    with pytest.raises(ConfigError) as err:
        MeasureSettings(**kwargs)
    assert err.value.field == next(iter(kwargs))


def test_saved_activations_and_buffers_are_measured(digits: Profile) -> None:
    by = {lp.name: lp for lp in digits.layers}
    # conv + ReLU keeps its input (for the weight gradient) and its output (ReLU's result)
    assert by["conv2"].saves_input and by["conv2"].saves_output
    assert by["conv2"].saved_bytes == 2 * by["conv1"].output_bytes
    # max-pooling keeps its input and the (int64) indices of the maxima, not its output
    pool = by["pool"]
    assert pool.saves_input and not pool.saves_output
    assert pool.saved_bytes == by["conv2"].output_bytes + 2 * pool.output_bytes
    assert all(lp.buffer_bytes == 0 for lp in digits.layers)
    resnet = measure_model("resnet18", 2, input_shape=(3, 16, 16), settings=FAST)
    block = next(lp for lp in resnet.layers if lp.name == "block1_1")
    assert block.buffer_bytes == 2 * (2 * 64 * 4 + 8)  # two BatchNorms: mean, var, counter


def test_profiles_without_the_newer_fields_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        '{"model": "m", "batch_size": 2, "layers": [{"name": "a", "output_bytes": 8, '
        '"param_bytes": 4, "ms": {"x": {"fwd": 1, "bwd": 2}}}]}'
    )
    old = Profile.load(path)
    lp = old.layers[0]
    assert lp.saved_bytes is None and lp.buffer_bytes is None and old.task_overhead_ms is None
    assert old.task_overhead("x") == 0.0


def test_merging_keeps_both_task_overheads(digits: Profile) -> None:
    a = digits.model_copy(update={"task_overhead_ms": {"box": 0.2}})
    b = digits.model_copy(update={"task_overhead_ms": {"pi": 1.5}})
    assert a.merged(b).task_overhead_ms == {"box": 0.2, "pi": 1.5}
    assert digits.merged(digits).task_overhead_ms is None
