"""The torch thread policy of member processes on one host (deploy/threads.py) and its plumbing."""

import os
import threading

import pytest
from deploy_helpers import ThreadDeployment, small_config

from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.launch import member_command
from mpsl.deploy.threads import ComputeThread, computing_at_once, host_cores, member_threads
from mpsl.errors import FormatError
from mpsl.runtime.config import RunConfig
from mpsl.runtime.device import Device
from mpsl.runtime.engine import InProcessEngine
from mpsl.runtime.setup import RunSetup


def test_one_data_owner_computes_one_member_at_a_time():
    assert computing_at_once(data_owners=1, compute_nodes=3) == 1
    assert computing_at_once(data_owners=4, compute_nodes=2) == 6


@pytest.mark.parametrize(
    ("owners", "nodes", "cores", "threads"),
    [
        (1, 2, 2, 2),  # sequential chain: every member may use every core
        (1, 2, 16, 16),
        (4, 2, 2, 1),  # 6 members may compute at once on 2 cores: one thread each
        (2, 2, 16, 4),
        (8, 4, 4, 1),  # never below one
    ],
)
def test_members_share_the_cores_they_compute_on_together(owners, nodes, cores, threads):
    config = small_config(data_owners=owners, compute_nodes=nodes)
    assert member_threads(config, nodes, cores) == threads


def test_the_run_config_threads_win_over_the_policy():
    config = small_config(data_owners=1, threads=3)
    assert member_threads(config, 2, cores=16) == 3


def test_the_policy_counts_the_cores_this_process_may_use():
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mine)})  # as under `taskset -c N`
    try:
        assert host_cores() == 1
    finally:
        os.sched_setaffinity(0, mine)
    assert host_cores() == len(mine)


def test_threads_must_be_positive():
    with pytest.raises(FormatError, match="threads"):
        RunConfig.from_values({"threads": 0}, "run.toml")


def test_the_launcher_gives_every_member_its_threads(tmp_path):
    coordinator = DeploymentCoordinator(small_config(data_owners=1))
    for member in coordinator.members:
        cmd = member_command(coordinator, member, "tcp://127.0.0.1:5555", str(tmp_path), 2)
        assert cmd[cmd.index("--threads") + 1] == "2"
        assert cmd[cmd.index("--keys") + 1] == str(tmp_path)
    insecure = member_command(coordinator, "owner1", "tcp://127.0.0.1:5555", None, 1)
    assert "--insecure" in insecure and "--keys" not in insecure


def test_the_threads_engine_gives_each_role_the_run_config_threads():
    engine = InProcessEngine(small_config(threads=2), scheduling="threads", evaluate=False)
    assert engine.threads_per_role == 2


def test_the_compute_thread_runs_jobs_in_order_on_itself_and_hands_back_errors():
    compute = ComputeThread("member")
    order: list[int] = []
    first = compute.submit(lambda: order.append(1) or threading.get_ident())
    assert compute.call(lambda: order.append(2) or 7) == 7
    assert order == [1, 2] and first.result() == compute.thread.ident != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        compute.call(lambda: 1 / 0)
    assert compute.call(lambda: "still serving") == "still serving"
    last = compute.submit(lambda: "queued before close")
    compute.close()
    compute.thread.join(5)
    assert not compute.thread.is_alive() and last.result() == "queued before close"


def test_a_member_builds_its_part_and_runs_every_task_on_its_compute_thread(tmp_path, monkeypatch):
    # OpenMP gives each thread that starts parallel work its own pool: a member that built on one
    # thread and computed on another would hold two, and its workers would stop spinning.
    where: dict[str, set[int]] = {"build": set(), "task": set()}
    build, run = RunSetup.build.__func__, Device.run  # type: ignore[attr-defined]

    def recorded_build(cls, *args, **kwargs):
        where["build"].add(threading.get_ident())
        return build(cls, *args, **kwargs)

    def recorded_run(self, *args, **kwargs):
        where["task"].add(threading.get_ident())
        return run(self, *args, **kwargs)

    monkeypatch.setattr(RunSetup, "build", classmethod(recorded_build))
    monkeypatch.setattr(Device, "run", recorded_run)
    deployment = ThreadDeployment(small_config(data_owners=1), tmp_path / "keys")
    deployment.run()
    deployment.join()
    assert not deployment.errors
    computes = {r.compute.thread.ident for r in deployment.roles.values()}
    assert len(computes) == len(deployment.roles)  # one each
    coordinator = threading.get_ident()  # the coordinator builds the run too, here
    assert where["build"] - {coordinator} == computes  # each member built on its compute thread
    assert where["task"] <= computes and len(where["task"]) >= 3  # data owner and compute nodes
    runners = {t.ident for t in deployment.threads}  # where Role.run was called
    assert not computes & runners
    for role in deployment.roles.values():  # a member that ended leaves no thread behind
        role.compute.thread.join(5)
        assert not role.compute.thread.is_alive()
