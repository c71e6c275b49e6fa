"""Defences: off they change nothing, on they cut what the attacks get, bad values are refused."""

import pytest
import torch

from mpsl.errors import ConfigError, FormatError
from mpsl.privacy.audit import DEFENCES, AttackSettings, audit
from mpsl.privacy.labels import infer_labels
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.training.defences import (
    Defences,
    clip_and_noise,
    distance_correlation,
    gaussian_epsilon,
    max_norm,
    privacy_entry,
)


def small(**kw):
    values = dict(data_owners=2, rounds=2, local_epochs=1, batches_per_epoch=10, batch_size=32)
    return RunConfig(**(values | kw))


def weights(config):
    return InProcessEngine(config).run().model.state_dict()


def test_defences_off_leave_training_bit_identical_and_on_change_it():
    plain = weights(small())
    off = weights(small(activation_noise=0, gradient_noise=0, nopeek=0, label_defence="none"))
    assert all(torch.equal(plain[k], off[k]) for k in plain)
    for on in (dict(label_defence="max-norm"), dict(nopeek=1.0), dict(activation_clip=1.0)):
        got = weights(small(**on))
        assert not all(torch.equal(plain[k], got[k]) for k in plain), on


def test_a_strong_defence_brings_both_attacks_to_chance_and_the_baseline():
    report = audit(
        small(), AttackSettings(nodes=("node1",), inversion_epochs=20), ["none", "strong"]
    )
    none, strong = report["defences"]["none"], report["defences"]["strong"]
    assert strong["settings"]["gradient_noise"] > 0 and strong["settings"]["activation_noise"] > 0
    for got in (none, strong):
        assert got["label_chance"] < 0.2  # ten digits, about evenly spread
    # without it the last node reads the labels, and node1's view decodes to the inputs
    chance = none["label_chance"]
    assert none["label_attack_accuracy"]["direction"] > 0.9
    assert none["label_attack_accuracy"]["learned"] > 0.9
    assert none["reconstruction_mse"]["node1"] < 0.5 * none["baseline_mse"]["node1"]
    # with it every label attack is within a fifth of the way from chance to its undefended
    # success, and the reconstruction is no better than the mean image, its classes near chance
    for attack in ("direction", "learned"):
        undefended = none["label_attack_accuracy"][attack]
        defended = strong["label_attack_accuracy"][attack]
        assert defended < strong["label_chance"] + 0.2 * (undefended - chance), attack
    assert strong["reconstruction_mse"]["node1"] > strong["baseline_mse"]["node1"]
    recon = strong["reconstruction"]["node1"]
    assert recon["classifier_accuracy"] < 2 * recon["chance"]


def test_max_norm_changes_almost_nothing_when_the_norms_are_equal():
    """Why max-norm barely moves the label attacks early in training: near a uniform softmax
    every sample's returned gradient has about the same norm, and max-norm only lifts the
    smaller norms to the batch's largest, along each gradient's own direction."""
    grads = torch.nn.functional.normalize(torch.randn(32, 128), dim=1)
    moved = max_norm(grads, torch.Generator().manual_seed(0)) - grads
    # only float rounding of the equal norms is left to lift (the square root magnifies it)
    assert moved.norm(dim=1).max() < 0.01
    uneven = grads * torch.linspace(0.1, 1.0, 32)[:, None]
    moved = max_norm(uneven, torch.Generator().manual_seed(0)) - uneven
    assert moved.norm(dim=1)[:16].mean() > 0.1  # the small ones are randomly rescaled


def test_max_norm_hides_the_norm_on_binary_labels():
    gen = torch.Generator().manual_seed(0)
    labels = (torch.rand(400, generator=gen) < 0.2).long()
    direction = torch.randn(16, generator=gen)
    # Li et al.'s setting: minority samples get larger gradients pointing the other way
    scale = torch.where(labels == 1, -3.0, 1.0)
    grads = scale[:, None] * direction + 0.3 * torch.randn(400, 16, generator=gen)
    before = infer_labels(grads, labels, known=5)
    after = infer_labels(max_norm(grads, torch.Generator().manual_seed(1)), labels, known=5)
    assert before.norm_accuracy is not None and before.norm_accuracy > 0.9
    assert after.norm_accuracy is not None and after.norm_accuracy < before.norm_accuracy - 0.2
    assert after.direction_accuracy < before.direction_accuracy - 0.1


def test_clipping_bounds_every_sample_and_noise_has_its_scale():
    t = torch.randn(64, 3, 5) * 10
    clipped = clip_and_noise(t, 2.0, 0.0, torch.Generator())
    assert clipped.flatten(1).norm(dim=1).max() <= 2.0 + 1e-5
    noisy = clip_and_noise(torch.zeros(2000, 50), 2.0, 0.5, torch.Generator().manual_seed(0))
    assert noisy.std().item() == pytest.approx(1.0, rel=0.05)


def test_distance_correlation_is_one_for_a_copy_and_small_for_independent_data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=gen)
    assert distance_correlation(x, 2 * x + 1).item() == pytest.approx(1.0, abs=1e-3)
    assert (
        distance_correlation(x, torch.randn(200, 8, generator=gen)).item() < 0.5
    )  # biased up at n=200


def test_the_summary_reports_epsilon_only_with_noise():
    assert privacy_entry(Defences(nopeek=1.0), 12) is None
    entry = privacy_entry(Defences(activation_clip=1.0, activation_noise=4.0), 12)
    assert entry is not None
    act = entry["activation"]
    assert act["epsilon_all_releases"] == gaussian_epsilon(4.0, 12, 1e-5)
    assert act["epsilon_per_release"] < act["epsilon_all_releases"]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"activation_noise": 1.0}, "activation_clip"),
        ({"gradient_noise": 1.0}, "gradient_clip"),
        ({"activation_clip": 0}, "activation_clip"),
        ({"gradient_clip": -1.0}, "gradient_clip"),
        ({"nopeek": -0.5}, "nopeek"),
        ({"activation_noise": -1.0, "activation_clip": 1.0}, "activation_noise"),
        ({"label_defence": "hide"}, "label_defence"),
        ({"nopeek": True}, "nopeek"),
    ],
)
def test_bad_values_are_refused_naming_the_field(values, field):
    with pytest.raises(FormatError, match=field):
        RunConfig.from_values(values)


def test_a_strength_for_max_norm_is_refused():
    with pytest.raises(ConfigError, match="max-norm"):
        DEFENCES["max-norm"].config(small(), 1.0)
