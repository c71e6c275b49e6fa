"""The privacy audit: what nodes receive is recorded faithfully, and the attacks are real."""

import json

import torch

from cli_run import run
from mpsl.privacy.audit import AttackSettings, audit
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.messages import Kind
from mpsl.runtime.observe import Recorder


def small(**kw):
    values = dict(data_owners=2, rounds=2, local_epochs=1, batches_per_epoch=10, batch_size=32)
    return RunConfig(**(values | kw))


def test_observing_leaves_training_bit_identical_and_joins_the_right_samples():
    cfg = small(rounds=1)
    plain = InProcessEngine(cfg)
    first = [p for p in plain.parts[0].parameters()]
    initial_first = [p.detach().clone() for p in first]
    plain.run()
    recorder = Recorder(nodes=["node1", "node2"], last_node="node2", owners=2)
    observed = InProcessEngine(cfg, observer=recorder)
    observed.run()
    want, got = plain.model.state_dict(), observed.model.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)

    views = {
        (v.node, v.kind): v
        for v in recorder.views(observed.setup.owner_shares(), observed.setup.workload)
    }
    assert set(views) == {
        ("node1", Kind.ACTIVATION),
        ("node2", Kind.ACTIVATION),
        ("node2", Kind.GRADIENT),
    }
    for v in views.values():
        assert len(v) == 2 * 10 * 32  # data owners x batches x batch size
    # Data owner 1's first batch left its first part before any step: the initial weights applied
    # to the joined inputs give exactly what node1 received.
    node1 = views[("node1", Kind.ACTIVATION)]
    part = plain.parts[0]
    with torch.no_grad():
        for p, w in zip(part.parameters(), initial_first, strict=True):
            p.copy_(w)
        assert torch.allclose(part(node1.inputs[:32]), node1.tensors[:32], atol=1e-6)


def test_without_a_defence_the_attacks_beat_chance_and_the_baseline():
    report = audit(small(), AttackSettings(nodes=("node1",), inversion_epochs=20))
    none = report["defences"]["none"]
    chance = none["label_chance"]
    assert chance < 0.2  # ten digits, about evenly spread
    assert none["label_attack_accuracy"]["learned"] > 4 * chance
    assert none["label_attack_accuracy"]["direction"] > 3 * chance
    assert none["label_attack_accuracy"]["norm"] is None  # binary labels only
    assert set(none["reconstruction_mse"]) == {"node1"}
    assert none["reconstruction_mse"]["node1"] < 0.5 * none["baseline_mse"]["node1"]
    recon = none["reconstruction"]["node1"]
    assert recon["classifier_accuracy"] > 4 * recon["chance"]


def test_norm_attack_on_binary_labels():
    from mpsl.privacy.labels import infer_labels

    gen = torch.Generator().manual_seed(0)
    labels = (torch.rand(400, generator=gen) < 0.2).long()  # class 1 the minority
    direction = torch.randn(16, generator=gen)
    # minority samples get larger gradients, pointing the other way (Li et al.'s setting)
    scale = torch.where(labels == 1, 3.0, 1.0) * torch.where(labels == 1, -1.0, 1.0)
    grads = scale[:, None] * direction + 0.3 * torch.randn(400, 16, generator=gen)
    got = infer_labels(grads, labels, known=5)
    assert got.norm_auc is not None and got.norm_auc > 0.9
    assert got.norm_accuracy is not None and got.norm_accuracy > 0.9
    assert got.direction_accuracy > 0.95


def test_cli_writes_the_report(tmp_path, monkeypatch, capsys):
    out = tmp_path / "audit"
    args = ["audit", "--rounds", "1", "--data-owners", "2", "--local-epochs", "1"]
    args += ["--batches-per-epoch", "4", "--batch-size", "32", "--inversion-epochs", "2"]
    args += ["--out", str(out), "--json"]
    code, stdout, _ = run(args, monkeypatch, capsys)
    assert code == 0
    report = json.loads(stdout)
    none = report["defences"]["none"]
    for key in (
        "test_accuracy",
        "label_attack_accuracy",
        "label_chance",
        "reconstruction_mse",
        "baseline_mse",
    ):
        assert key in none
    assert set(none["reconstruction_mse"]) == {"node1", "node2"}
    assert json.loads((out / "privacy.json").read_text()) == report
    assert (out / "privacy.png").stat().st_size > 0


def test_cli_names_a_bad_engine(tmp_path, monkeypatch, capsys):
    code, _, err = run(["audit", "--engine", "gpu", "--out", str(tmp_path)], monkeypatch, capsys)
    assert code == 2
    assert "engine" in err and "gpu" in err and "processes" in err


def test_cli_names_a_bad_setting(tmp_path, monkeypatch, capsys):
    code, _, err = run(
        ["audit", "--attack-nodes", "node9", "--out", str(tmp_path)], monkeypatch, capsys
    )
    assert code == 2
    assert "attack_nodes" in err and "node9" in err
