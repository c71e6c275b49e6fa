"""``mpsl run --engine processes``: every role its own local process, encrypted, on loopback.

The same deployment as on many hosts (keys, registration, heartbeats), all on this machine: the
coordinator runs in this process, every other member is started as ``python -m mpsl <role>``.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable

from mpsl.deploy.coordinator import DeploymentCoordinator, OnMember
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.transport import ZmqTransport
from mpsl.runtime.config import RunConfig
from mpsl.runtime.coordinator import Progress, RoundResult
from mpsl.runtime.engine import RunResult
from mpsl.runtime.layout import RoleKind

log = logging.getLogger(__name__)


def run_processes(
    config: RunConfig,
    progress: Progress | None = None,
    on_round: Callable[[RoundResult], None] | None = None,
    on_member: OnMember | None = None,
    secure: bool = True,
    threads: int | None = 1,
    timeout_s: float = 30.0,
) -> RunResult:
    """Train ``config`` with every member a separate process of this machine."""
    coordinator = DeploymentCoordinator(config, timeout_s=timeout_s, wait_s=120)
    with tempfile.TemporaryDirectory(prefix="mpsl-keys-") as keys:
        credentials = None
        if secure:
            create_keys(keys, ["coordinator", *coordinator.members])
            credentials = load_credentials(keys, "coordinator")
        transport = ZmqTransport("coordinator", "tcp://127.0.0.1:*", credentials)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for member in coordinator.members:
                role = coordinator.layout.role_of(member)
                cmd = [sys.executable, "-m", "mpsl", role.value, "--name", member]
                cmd += ["--coordinator", transport.address, "--listen", "tcp://127.0.0.1:*"]
                cmd += ["--keys", keys] if secure else ["--insecure"]
                cmd += ["--threads", str(threads)] if threads else []
                if config.data_path and role is RoleKind.DATA_OWNER:
                    cmd += ["--data-path", config.data_path]
                procs.append(subprocess.Popen(cmd))
            return coordinator.run(transport, progress, on_round, on_member)
        finally:
            for p in procs:
                try:
                    p.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning("member process %d did not exit; killing it", p.pid)
                    p.kill()
            transport.close()
