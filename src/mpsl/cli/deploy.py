"""Deployment commands: ``mpsl keys``, ``mpsl coordinator`` and one command per role."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from mpsl.cli.exits import exit_on_signals
from mpsl.cli.job import FIELDS
from mpsl.cli.options import ConfigFile, field_command
from mpsl.deploy.address import parse_address, parse_host
from mpsl.errors import ConfigError

Coordinator = Annotated[str, typer.Option(help="The coordinator's address, tcp://HOST:PORT.")]
Keys = Annotated[
    Path | None, typer.Option(help="Keys directory from `mpsl keys` (NAME.key_secret, public/).")
]
Insecure = Annotated[
    bool, typer.Option(help="No encryption or authentication (loopback experiments only).")
]
Listen = Annotated[
    str, typer.Option(help="Where this process listens, tcp://IP:PORT (* = any free port).")
]
Advertise = Annotated[
    str | None, typer.Option(help="Host name or IP that peers use to reach this process.")
]
Threads = Annotated[
    int | None,
    typer.Option(
        help="torch threads of this process (default: the run config's threads, else all cores)."
    ),
]
Wait = Annotated[
    float,
    typer.Option(
        help="Seconds to wait for the coordinator's assignment (it comes once every member has "
        "registered)."
    ),
]


def keys(
    out: Annotated[Path, typer.Option(help="Directory for the keys.")],
    compute_nodes: Annotated[int, typer.Option(help="Compute nodes N (node1..nodeN).")] = 2,
    data_owners: Annotated[int, typer.Option(help="Data owners K (owner1..ownerK).")] = 3,
    name: Annotated[list[str] | None, typer.Option(help="Further member names.")] = None,
) -> None:
    """Make the CURVE key pairs of a deployment: coordinator, nodes, aggregator, data owners."""
    from mpsl.deploy.keys import create_keys

    names = ["coordinator", *(f"node{i + 1}" for i in range(compute_nodes)), "aggregator"]
    names += [f"owner{k + 1}" for k in range(data_owners)] + list(name or [])
    made = create_keys(out, names)
    typer.echo(f"made {len(made)} key pairs in {out}/ (public keys in {out}/public/)")
    typer.echo("copy public/ to every host, and NAME.key_secret only to NAME's host")


def coordinator(
    config: ConfigFile = None,
    listen: Listen = "tcp://0.0.0.0:5555",
    advertise: Advertise = None,
    keys: Keys = None,
    insecure: Insecure = False,
    heartbeat_timeout: Annotated[
        float, typer.Option(help="Seconds of silence after which a member counts as gone.")
    ] = 30.0,
    wait: Annotated[float, typer.Option(help="Seconds to wait for every member.")] = 600.0,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue the run in this directory from its last completed round (the members "
            "start afresh)."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a run already in --out instead of refusing.")
    ] = False,
    **options: Any,
) -> None:
    """Hold the run config and plan, register the members, drive the rounds, write the report."""
    from mpsl.cli.run import describe, open_run, registered, resume_point, train
    from mpsl.deploy.coordinator import DeploymentCoordinator
    from mpsl.deploy.transport import ZmqTransport
    from mpsl.record import Recorder
    from mpsl.runtime.coordinator import Progress, RoundResult
    from mpsl.runtime.engine import RunResult
    from mpsl.signals import deferred

    _check_addresses(listen, advertise)
    console = Console(stderr=True)
    recorder: Recorder | None = None

    def kept() -> str:
        told = "the run did not complete (the registered members were told to stop)"
        return f"{told}; {recorder.kept('mpsl coordinator')}" if recorder is not None else told

    with exit_on_signals("the coordinator", kept):
        job, run_dir = open_run(config, options, resume, overwrite, console, one_hop=False)
        cfg = job.run
        deployment = DeploymentCoordinator(cfg, timeout_s=heartbeat_timeout, wait_s=wait)
        transport = ZmqTransport(
            "coordinator", listen, _credentials(keys, insecure, "coordinator"), advertise
        )
        try:
            start, recorder = resume_point(
                run_dir, deployment.setup.model, console, job, events=deployment.events
            )
            console.print(
                f"[bold]MP-SL coordinator[/] at {transport.address}: "
                f"{describe(cfg, deployment.cuts)}"
            )
            console.print(f"waiting for {', '.join(deployment.members)}")

            on_member = registered(console)

            def rounds(progress: Progress, on_round: Callable[[RoundResult], None]) -> RunResult:
                return deployment.run(transport, progress, on_round, on_member, start)

            train(cfg, console, rounds, recorder)
        finally:
            with deferred():
                # After a complete run every member has answered the last STOP with its metrics:
                # nothing is left to flush. Otherwise the abort to the members must go out.
                transport.close(linger_s=0.0 if deployment.finished.is_set() else 2.0)


def _role(
    role: str,
    name: str,
    coordinator: str,
    keys: Path | None,
    insecure: bool,
    listen: str,
    advertise: str | None,
    threads: int | None,
    wait: float,
    data_path: str | None = None,
    device: str | None = None,
    observe: Path | None = None,
    observe_round: int | None = None,
) -> None:
    from mpsl.deploy.role import Role, RoleOptions
    from mpsl.runtime.layout import RoleKind

    _check_addresses(listen, advertise, coordinator)
    if observe_round is not None and observe_round < 1:
        raise ConfigError(f"rounds count from 1, got {observe_round}", field="observe_round")
    logging.getLogger("mpsl").setLevel(logging.INFO)
    _credentials(keys, insecure, name)  # fail early, before connecting, on missing keys
    if device is not None:
        from mpsl.runtime.accelerator import resolve_device

        resolve_device(device, "--device")  # fail before connecting, as for the keys
    options = RoleOptions(
        name,
        coordinator,
        listen,
        advertise,
        keys,
        data_path,
        threads,
        RoleKind(role),
        wait,
        device=device,
        observe=observe,
        observe_rounds=None if observe_round is None else (observe_round - 1,),
    )
    with exit_on_signals(name, "the run did not complete (the coordinator was told, if reachable)"):
        Role(options).run()


def compute_node(
    name: Annotated[
        str, typer.Option(help="Member name: node<i>, or the plan's node name (and key name).")
    ],
    coordinator: Coordinator,
    keys: Keys = None,
    insecure: Insecure = False,
    listen: Listen = "tcp://0.0.0.0:*",
    advertise: Advertise = None,
    threads: Threads = None,
    wait: Wait = 600.0,
    device: Annotated[
        str | None,
        typer.Option(
            help="Compute on this device: cpu, cuda or cuda:N, instead of the run config's "
            "node_device (docs/memory.md, GPUs)."
        ),
    ] = None,
    observe: Annotated[
        Path | None,
        typer.Option(
            help="Record what this node receives (a privacy audit, docs/privacy.md) into "
            "DIR/observed-NAME.npz at the end of the run."
        ),
    ] = None,
    observe_round: Annotated[
        int | None,
        typer.Option(help="With --observe: the one round recorded, from 1 (default: every round)."),
    ] = None,
) -> None:
    """Serve one middle part (one instance per data owner) for the coordinator's run."""
    _role(
        "compute-node",
        name,
        coordinator,
        keys,
        insecure,
        listen,
        advertise,
        threads,
        wait,
        device=device,
        observe=observe,
        observe_round=observe_round,
    )


def aggregator(
    coordinator: Coordinator,
    keys: Keys = None,
    insecure: Insecure = False,
    listen: Listen = "tcp://0.0.0.0:*",
    advertise: Advertise = None,
    threads: Threads = None,
    name: Annotated[str, typer.Option(help="Member name (and key name).")] = "aggregator",
    wait: Wait = 600.0,
) -> None:
    """Average the data owners' first and last parts (FedAvg) every round."""
    _role("aggregator", name, coordinator, keys, insecure, listen, advertise, threads, wait)


def data_owner(
    name: Annotated[str, typer.Option(help="Member name owner<k> (and its key name).")],
    coordinator: Coordinator,
    keys: Keys = None,
    insecure: Insecure = False,
    listen: Listen = "tcp://0.0.0.0:*",
    advertise: Advertise = None,
    threads: Threads = None,
    data_path: Annotated[str | None, typer.Option(help="This device's dataset directory.")] = None,
    wait: Wait = 600.0,
) -> None:
    """Train the first and last parts on this device's data; labels never leave it."""
    _role(
        "data-owner", name, coordinator, keys, insecure, listen, advertise, threads, wait, data_path
    )


def _check_addresses(listen: str, advertise: str | None, coordinator: str | None = None) -> None:
    """A ConfigError naming the option and its value for a malformed address, before any socket."""
    parse_address(listen, "--listen", listening=True)
    if advertise is not None:
        parse_host(advertise, "--advertise")
    if coordinator is not None:
        parse_address(coordinator, "--coordinator")


def _credentials(keys: Path | None, insecure: bool, name: str) -> Any:
    from mpsl.deploy.keys import load_credentials

    if keys is None and not insecure:
        raise ConfigError("give --keys DIR (from `mpsl keys`), or --insecure for loopback tests")
    if keys is not None and insecure:
        raise ConfigError("--keys and --insecure exclude each other")
    return load_credentials(keys, name) if keys else None


def register(app: typer.Typer) -> None:
    """Add the deployment commands to the app."""
    app.command()(keys)
    # every run option but schedule, which a deployment refuses
    app.command("coordinator")(field_command(coordinator, FIELDS, exclude={"schedule"}))
    app.command("compute-node")(compute_node)
    app.command()(aggregator)
    app.command("data-owner")(data_owner)
