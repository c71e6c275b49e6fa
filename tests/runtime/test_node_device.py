"""Compute nodes on a device of their own (node_device, a member's --device): CPU checks here,
CUDA checks where a GPU is present (docs/memory.md, "GPUs")."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch

from mpsl.errors import ConfigError, FormatError
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.instances import DiskBacking, HostBacking, InstanceStore
from mpsl.runtime.setup import RunSetup, optimizer_factory
from small_setups import SMALL_DATA
from small_setups import run_small as _run
from small_setups import small_config as _config

# cuBLAS is deterministic only with a fixed workspace, set before its first use (torch's
# reproducibility notes); harmless without a GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
DATA = SMALL_DATA
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")


def _weights(engine: InProcessEngine) -> dict[str, torch.Tensor]:
    return engine.result.model.state_dict()  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "CPU", ""])
def test_a_device_that_is_no_device_is_refused_naming_the_field(bad):
    with pytest.raises(FormatError, match=r"node_device.*expected cpu, cuda or cuda:N"):
        RunConfig.from_values({"node_device": [bad]})


def test_one_device_in_a_config_file_is_a_list_of_one():
    assert RunConfig.from_values({"node_device": "cuda:1"}).node_device == ["cuda:1"]


def test_a_device_per_node_must_cover_every_compute_node():
    cfg = _config(node_device=["cpu", "cpu", "cpu"])
    with pytest.raises(ConfigError, match=r"node_device.*3 devices but the run has 2 compute"):
        RunSetup.build(cfg, dataset=DATA)


def test_each_node_gets_its_own_device():
    cfg = _config(node_device=["cpu", "cuda:1"])
    assert [cfg.device_of(i) for i in range(2)] == ["cpu", "cuda:1"]
    assert _config().device_of(1) == "cpu"


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_a_gpu_asked_of_a_machine_without_one_is_refused_before_training():
    with pytest.raises(ConfigError, match=r"node_device.*'cuda'.*no CUDA device"):
        InProcessEngine(_config(node_device=["cuda"]), dataset=DATA).run()


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without CUDA")
def test_a_member_given_a_gpu_on_a_machine_without_one_stops_before_connecting():
    args = ["compute-node", "--name", "node1", "--coordinator", "tcp://127.0.0.1:9", "--insecure"]
    cmd = [sys.executable, "-m", "mpsl", *args, "--device", "cuda:0", "--wait", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "--device" in done.stderr and "no CUDA device" in done.stderr


def test_cpu_named_trains_what_the_default_trains():
    a, b = _weights(_run(_config())), _weights(_run(_config(node_device=["cpu"])))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("backing", [DiskBacking, HostBacking])
def test_an_instance_backed_up_and_read_back_keeps_its_weights_and_optimizer_state(backing):
    part = torch.nn.Linear(3, 2)
    store = InstanceStore(part, [0, 1], optimizer_factory(RunConfig(optimizer="adam")), budget=1)
    store.backing = backing()
    store.start_round()
    slot = store.acquire(0, pinned=())
    slot.module(torch.ones(1, 3)).sum().backward()
    assert slot.optimizer is not None
    slot.optimizer.step()
    store.instances[0].samples = 1
    before = copy.deepcopy(slot.optimizer.state_dict()["state"])
    weights = {k: v.clone() for k, v in slot.module.state_dict().items()}
    store.acquire(1, pinned=())  # takes the only slot: 0 goes to the backing store
    assert store.instances[0].on_disk and store.instances[0].slot is None
    (kept,) = store.states([0])
    assert all(torch.equal(kept[k], weights[k]) for k in weights)
    back = store.acquire(0, pinned=())
    assert back.optimizer is not None
    after = back.optimizer.state_dict()["state"]
    assert before.keys() == after.keys()
    for i in before:
        for k in before[i]:
            assert (
                torch.equal(before[i][k], after[i][k]) and before[i][k].device == after[i][k].device
            )
    store.close()


# --- on a GPU ---


@pytest.fixture
def deterministic(monkeypatch):
    """Deterministic GPU kernels, full float32: what two runs may differ by is then ours alone."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


@needs_cuda
def test_gpu_nodes_train_the_model_cpu_nodes_train(deterministic):
    # SGD: Adam's step is about lr x sign(gradient) wherever a gradient is near zero, so float
    # rounding that differs between CPU and GPU kernels can move such a weight by up to 2 lr
    # (seen on an H200: Adam runs differed beyond 1e-4, SGD runs agreed).
    cpu = _run(_config(optimizer="sgd"))
    gpu = _run(_config(optimizer="sgd", node_device=["cuda"]))
    for node in gpu.nodes:
        assert all(p.is_cuda for s in node.store.slots for p in s.module.parameters())
        assert not any(p.is_cuda for p in node.global_part.parameters())  # the host's copy
    a, b = _weights(cpu), _weights(gpu)
    assert all(not b[k].is_cuda for k in b)  # the run's model stays on the host
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4), k


def _same_runs(**changes: object) -> tuple[InProcessEngine, InProcessEngine]:
    """Two runs of the same GPU config, which deterministic kernels must make bit-equal: a
    difference between a run with a budget and one without can then only be the swapping's."""
    a, b = _run(_config(**changes)), _run(_config(**changes))
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "GPU runs are not deterministic"
    return a, b


@needs_cuda
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_gpu_node_swapping_on_every_task_trains_the_same_model(optimizer, deterministic):
    free, _ = _same_runs(node_device=["cuda"], optimizer=optimizer)
    tight = _run(_config(node_device=["cuda"], optimizer=optimizer, node_memory_budget=1))
    for node in tight.nodes:
        assert isinstance(node.store.backing, HostBacking)
        assert len(node.store.slots) == 1 and node.store.writes > 0
    # Bit-equal: swapping only moves bytes, and the kernels are deterministic (seen on an H200).
    a, b = _weights(free), _weights(tight)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


@needs_cuda
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_gpu_node_prefetching_on_its_copy_stream_trains_the_same_model(optimizer, deterministic):
    free, _ = _same_runs(node_device=["cuda"], data_owners=6, optimizer=optimizer)
    node = free.nodes[0]
    # Room for three instances of six: swaps, most of them prefetched on the copy stream.
    budget = node.store.backward_bytes + 3 * (node.store.instance_bytes + node.store.batch_bytes)
    changes = dict(node_device=["cuda"], data_owners=6, optimizer=optimizer)
    tight = _run(_config(**changes, node_memory_budget=budget))
    store = tight.nodes[0].store
    assert store.swaps_in > 0 and store.prefetched > 0
    assert tight.nodes[0].peak_memory_bytes <= budget
    a, b = _weights(free), _weights(tight)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


@needs_cuda
def test_one_gpu_node_and_one_cpu_node_as_processes(tmp_path):
    cmd = [sys.executable, "-m", "mpsl", "run", "--engine", "processes", "--dataset", "digits"]
    cmd += ["--rounds", "1", "--data-owners", "3", "--batches-per-epoch", "3", "--local-epochs"]
    cmd += ["1", "--node-device", "cuda,cpu", "--out", str(tmp_path / "run"), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "model.safetensors").is_file()
