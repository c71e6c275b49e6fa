"""Helpers: a deployment inside one test process, the coordinator and every member over loopback."""

import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mpsl.deploy.coordinator import DeploymentCoordinator
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.role import Role, RoleOptions
from mpsl.deploy.transport import ZmqTransport
from mpsl.deploy.wire import HEAD, MAGIC, VERSION
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
        self.threads: list[threading.Thread] = []

    def start_member(self, name: str, make: Callable[[RoleOptions], Role] = Role) -> None:
        options = RoleOptions(name, self.transport.address, keys=self.keys)
        role = make(options)
        self.roles[name] = role

        def run() -> None:
            try:
                role.run()
            except BaseException as exc:  # surfaced by the test
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float = 20.0) -> None:
        """Wait for every member thread to end (failing the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"{thread.name} still runs"

    def run(self, skip: tuple[str, ...] = ()) -> RunResult:
        for name in self.coordinator.members:
            if name not in skip:
                self.start_member(name)
        try:
            return self.coordinator.run(self.transport)
        finally:
            self.transport.close()


def children(pid: int) -> dict[int, tuple[str, list[str]]]:
    """The child processes of ``pid`` (Linux /proc): pid -> (state, command line)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid:
            found[int(entry.name)] = (state, [a.decode() for a in cmdline.split(b"\0") if a])
    return found


def members_of(pid: int) -> dict[str, int]:
    """The deployment members that ``pid`` started (``python -m mpsl ROLE --name NAME``)."""
    return {
        cmd[cmd.index("--name") + 1]: child
        for child, (_, cmd) in children(pid).items()
        if "mpsl" in cmd and "--name" in cmd
    }


def option_of(pid: int, option: str) -> str:
    """The value of ``option`` on the command line of process ``pid``."""
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return cmd[cmd.index(option) + 1]


def alive(pid: int, name: str) -> bool:
    """Whether process ``pid`` still exists (not a zombie) and is member ``name``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and name in cmd


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def cli(*args: str) -> list[str]:
    """The command line of ``mpsl ARGS`` in a child process (running this tree's code)."""
    return [sys.executable, "-m", "mpsl", *args]


def raw_header(
    *,
    kind: int = 1,
    flags: int = 0,
    dtype: int = 0,
    shape: tuple[int, ...] = (),
    ids: tuple[int, int, int, int, int, float] = (-1, -1, -1, 0, 0, 0.0),
    sender: bytes = b"owner1",
    text: bytes = b"",
    owners: tuple[int, ...] = (),
    version: int = VERSION,
    ndim: int | None = None,
) -> bytes:
    """A header frame built field by field, any of them wrong (the wire format's layout)."""
    fixed = HEAD.pack(
        MAGIC,
        version,
        kind,
        flags,
        dtype,
        len(shape) if ndim is None else ndim,
        *ids,
        len(sender),
        len(text),
        len(owners),
    )
    variable = struct.pack(f"<{len(shape)}I", *shape), struct.pack(f"<{len(owners)}I", *owners)
    return fixed + variable[0] + sender + text + variable[1]
