"""The audit of a multi-process run: each compute node records what it receives, and that is
what the in-process run's observer records."""

import pytest
import torch

from mpsl.errors import ConfigError, FormatError
from mpsl.privacy.observed_run import Watch, train_observed
from mpsl.runtime.config import RunConfig
from mpsl.runtime.messages import Kind
from mpsl.runtime.observe import Recorder, observation_file
from mpsl.runtime.setup import load_run_data

SMALL = dict(data_owners=2, rounds=2, local_epochs=1, batches_per_epoch=3, batch_size=16, seed=3)


def test_processes_record_what_the_in_process_run_records():
    cfg = RunConfig(**SMALL)
    data = load_run_data(cfg)
    watch = Watch(nodes=None, round=1, check=lambda nodes: None)
    local = train_observed(cfg, data, watch, "cooperative", lambda _: None)
    remote = train_observed(cfg, data, watch, "processes", lambda _: None)
    want, got = local.recorder.received, remote.recorder.received
    assert set(want) == {
        ("node1", Kind.ACTIVATION),
        ("node2", Kind.ACTIVATION),
        ("node2", Kind.GRADIENT),
    }
    assert set(got) == set(want)
    for key in want:
        assert (
            set(got[key])
            == set(want[key])
            == {(owner, 1, batch) for owner in range(2) for batch in range(3)}
        ), key
        for batch in want[key]:
            # one process and processes agree to float rounding (tests/deploy/test_deploy.py)
            assert torch.allclose(got[key][batch], want[key][batch], atol=1e-5, rtol=0), batch
    # the observed round starts from the same global weights
    for k, w in local.start_weights.items():
        assert torch.allclose(remote.start_weights[k], w, atol=1e-5, rtol=0), k
    assert remote.result.rounds[-1].accuracy == pytest.approx(local.result.rounds[-1].accuracy)


def test_an_observation_file_reads_back_what_was_recorded(tmp_path):
    rec = Recorder(nodes=["node1"], last_node="node2", owners=1)
    rec.received[("node1", Kind.ACTIVATION)] = {(0, 1, 2): torch.randn(4, 3)}
    rec.received[("node2", Kind.GRADIENT)] = {(0, 1, 2): torch.randn(4, 5)}
    path = observation_file(tmp_path, "node1")
    path.write_bytes(rec.to_bytes())
    back = Recorder(nodes=["node1"], last_node="node2", owners=1, rounds={1})
    back.add_file(path)
    assert set(back.received) == set(rec.received)
    for key, got in back.received.items():
        assert torch.equal(got[(0, 1, 2)], rec.received[key][(0, 1, 2)])
    other_round = Recorder(nodes=["node1"], last_node="node2", owners=1, rounds={0})
    other_round.add_file(path)
    assert other_round.received == {}


def test_a_bad_observation_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "observed-node1.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match=r"observed-node1\.npz"):
        Recorder(nodes=["node1"], last_node="node2", owners=1).add_file(path)


def test_an_unknown_engine_is_refused_naming_the_field():
    cfg = RunConfig(**SMALL)
    watch = Watch(nodes=None, round=0, check=lambda nodes: None)
    with pytest.raises(ConfigError, match="engine"):
        train_observed(cfg, load_run_data(cfg), watch, "gpu", lambda _: None)
