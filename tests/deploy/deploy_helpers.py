"""Helpers: a deployment inside one test process, the coordinator and every member over loopback."""

import threading
from collections.abc import Callable
from pathlib import Path

from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.role import Role, RoleOptions
from mpsl.deploy.transport import ZmqTransport
from mpsl.runtime.config import RunConfig
from mpsl.runtime.engine import RunResult

SMALL = dict(
    model="digits_cnn",
    dataset="digits",
    data_owners=3,
    compute_nodes=2,
    rounds=1,
    local_epochs=1,
    batches_per_epoch=3,
    batch_size=16,
    seed=3,
)


def small_config(**changes) -> RunConfig:
    return RunConfig(**(SMALL | changes))


class ThreadDeployment:
    """Coordinator in the test's thread, each member a thread with its own transport."""

    def __init__(self, config: RunConfig, keys: Path, timeout_s: float = 20.0) -> None:
        self.config = config
        self.keys = keys
        self.coordinator = DeploymentCoordinator(
            config, heartbeat_s=0.2, timeout_s=timeout_s, wait_s=60
        )
        create_keys(keys, ["coordinator", *self.coordinator.members])
        self.transport = ZmqTransport(
            "coordinator", credentials=load_credentials(keys, "coordinator")
        )
        self.errors: list[BaseException] = []
        self.roles: dict[str, Role] = {}

    def start_member(self, name: str, make: Callable[[RoleOptions], Role] = Role) -> None:
        options = RoleOptions(name, self.transport.address, keys=self.keys)
        role = make(options)
        self.roles[name] = role

        def run() -> None:
            try:
                role.run()
            except BaseException as exc:  # surfaced by the test
                self.errors.append(exc)

        threading.Thread(target=run, name=name, daemon=True).start()

    def run(self, skip: tuple[str, ...] = ()) -> RunResult:
        for name in self.coordinator.members:
            if name not in skip:
                self.start_member(name)
        try:
            return self.coordinator.run(self.transport)
        finally:
            self.transport.close()
