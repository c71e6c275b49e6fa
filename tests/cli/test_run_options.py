"""The run options: declared once as fields of RunConfig and JobConfig, as flags and as file keys."""

import json
import re
import tomllib
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest
import typer
from pydantic.fields import FieldInfo

import mpsl.cli.deploy
import mpsl.cli.run
from cli_run import run
from mpsl.cli import app
from mpsl.cli.job import FIELDS, JobConfig, load_job
from mpsl.cli.options import field_command, flags, help_text, without_none
from mpsl.errors import ConfigError, FormatError
from mpsl.runtime.config import RunConfig

DOCS = Path(__file__).parents[2] / "docs"
RUNTIME = {
    "model", "dataset", "data_path", "input_shape", "num_classes", "data_owners", "partition",
    "alpha", "cuts", "compute_nodes", "nodes", "rounds", "local_epochs", "batches_per_epoch",
    "batch_size", "optimizer", "lr", "momentum", "weight_decay", "seed", "queue_policy",
    "min_data_owners", "node_memory_budget", "node_device", "activation_clip", "activation_noise",
    "gradient_clip", "gradient_noise", "nopeek", "label_defence", "threads",
}  # fmt: skip
JOB = {"out", "plan", "profile", "cluster", "first_cut", "last_cut", "objective", "schedule"}


def flat(text: str) -> str:
    """Help output as one line: table borders and line breaks gone."""
    return " ".join(text.replace("│", " ").split())


def help_column(text: str) -> str:
    """The help cells of the option panel as one line.

    Rich folds a metavar wider than its column (--dataset's six choices) onto the next line, where
    flat() would put it between the words of the option's help.
    """
    rows = [line for line in text.splitlines() if line.startswith("│")]
    start = min(m.end() for row in rows if (m := re.match(r"│ -.*? <\S*\s+", row)))
    return flat("\n".join(row[start:] for row in rows))


def spy(monkeypatch, module) -> list[JobConfig]:
    """Record the job ``module``'s command loads, then stop the command before it trains."""
    seen: list[JobConfig] = []

    def loaded(*args):
        seen.append(load_job(*args))
        raise typer.Exit(0)

    monkeypatch.setattr(module, "load_job", loaded)
    return seen


def test_the_runtime_config_holds_only_what_the_runtime_reads():
    assert set(RunConfig.model_fields) == RUNTIME
    assert set(FIELDS) == RUNTIME | JOB
    assert all(info.description for info in FIELDS.values())


@pytest.mark.parametrize(("command", "missing"), [("run", set()), ("coordinator", {"schedule"})])
def test_help_lists_every_field_with_its_description(command, missing, monkeypatch, capsys):
    code, out, _ = run([command, "--help"], monkeypatch, capsys)
    assert code == 0
    text, helps = flat(out), help_column(out)
    for name, info in FIELDS.items():
        shown = all(re.search(rf"{re.escape(flag)}\b", text) for flag in flags(name))
        assert shown is (name not in missing), name
        if name not in missing:
            assert help_text(info) in helps, name
    assert "--hops" in text and "--config" in text


def test_flag_values_reach_the_config(monkeypatch, capsys, tmp_path):
    seen = spy(monkeypatch, mpsl.cli.run)
    args = ["run", "--dataset", "synthetic", "--input-shape", "3,8,8", "--num-classes", "7"]
    args += ["--cuts", "1, 3,5", "--nodes", "vm2,vm1", "--lr", "0.01", "--weight-decay", "1e-4"]
    args += ["--queue-policy", "backward-first", "--out", str(tmp_path / "o"), "--first-cut", "2"]
    args += ["--cluster", "c.json", "--objective", "cost", "--schedule", "s.json"]
    assert run(args, monkeypatch, capsys)[0] == 0
    job = seen[0]
    cfg = job.run
    assert cfg.dataset == "synthetic" and cfg.input_shape == [3, 8, 8] and cfg.num_classes == 7
    assert cfg.cuts == [1, 3, 5] and cfg.nodes == ["vm2", "vm1"]
    assert cfg.lr == 0.01 and cfg.weight_decay == 1e-4 and cfg.queue_policy == "backward-first"
    assert cfg.rounds == RunConfig.model_fields["rounds"].default  # not given: the model's
    assert job.out == tmp_path / "o" and job.cluster == Path("c.json")
    assert job.first_cut == 2 and job.objective == "cost" and job.schedule == Path("s.json")


@pytest.mark.parametrize("flag", ["--hops", "--compute-nodes"])
def test_hops_is_compute_nodes(flag, monkeypatch, capsys):
    seen = spy(monkeypatch, mpsl.cli.run)
    assert run(["run", flag, "3"], monkeypatch, capsys)[0] == 0
    assert seen[0].run.compute_nodes == 3


def test_flags_override_the_file_key_by_key(monkeypatch, capsys, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('rounds = 3\nlr = 0.1\nout = "from-file"\nplan = "p.json"\ncuts = [1, 5]\n')
    seen = spy(monkeypatch, mpsl.cli.run)
    assert run(["run", "--config", str(cfg), "--rounds", "5"], monkeypatch, capsys)[0] == 0
    job = seen[0]
    assert job.run.rounds == 5 and job.run.lr == 0.1 and job.run.cuts == [1, 5]
    assert job.out == Path("from-file") and job.plan == "p.json"


def test_a_json_config_works_too(tmp_path):
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"data_owners": 2, "objective": "paper"}))
    job = load_job(cfg, {})
    assert job.run.data_owners == 2 and job.objective == "paper"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--lr", "fast"], "'--lr'"),
        (["--objective", "fastest"], "'--objective'"),
        (["--cuts", "1,x"], "field '--cuts'"),
        (["--nodes", ","], "field '--nodes'"),
        (["--rounds", "0"], "flags: field 'rounds'"),
        (["--momentum", "1.5"], "flags: field 'momentum'"),
        (["--first-cut", "0"], "flags: field 'first_cut'"),
    ],
)
def test_a_bad_flag_value_names_the_flag_or_field(args, named, monkeypatch, capsys):
    code, out, err = run(["run", *args], monkeypatch, capsys)
    assert code == 2 and named in out + err


@pytest.mark.parametrize("command", ["run", "coordinator"])
@pytest.mark.parametrize(
    ("flag", "example"),
    [("--cuts", "3,32,32"), ("--nodes", "vm2,vm1"), ("--input-shape", "3,32,32")],
)
@pytest.mark.parametrize("value", ["", " , "])
def test_an_empty_list_flag_is_refused_naming_the_flag(
    command, flag, example, value, monkeypatch, capsys
):
    insecure = ["--insecure"] if command == "coordinator" else []
    code, _, err = run([command, *insecure, flag, value], monkeypatch, capsys)
    assert code == 2
    assert (
        f"error: field '{flag}': expected a comma-separated list like {example}; got '{value}', "
        f"an empty list: give at least one item, or leave {flag} out"
    ) in flat(err)


@pytest.mark.parametrize("key", ["cuts", "nodes", "input_shape"])
def test_an_empty_list_in_the_file_is_refused_naming_the_key(key, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"{key} = []\n")
    with pytest.raises(
        FormatError,
        match=rf"{re.escape(str(cfg))}: field '{key}': List should have at least 1 item",
    ):
        load_job(cfg, {})


BOOLEAN = "Value error, expected a number, not a boolean (true/false); write the number itself"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_no_field_takes_a_boolean(name):
    list_field = get_origin(without_none(FIELDS[name].annotation)) is list
    for value in ([True], [1, False]) if list_field else (True, False):
        with pytest.raises(FormatError, match=rf"^run.toml: field '{name}(\[\d\])?': "):
            JobConfig.from_flat({name: value}, "run.toml")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_boolean_for_a_number_names_the_field(suffix, tmp_path):
    cfg = tmp_path / f"run{suffix}"
    text = {".toml": "rounds = true\n", ".json": '{"rounds": true}'}[suffix]
    cfg.write_text(text)
    with pytest.raises(FormatError) as err:
        load_job(cfg, {})
    assert str(err.value) == f"{cfg}: field 'rounds': {BOOLEAN} (got True)"
    cfg.write_text(text.replace("rounds", "lr").replace("true", "false"))
    with pytest.raises(FormatError, match=rf"field 'lr': {re.escape(BOOLEAN)} \(got False\)"):
        load_job(cfg, {})
    cfg.write_text({".toml": "cuts = [1, true]\n", ".json": '{"cuts": [1, true]}'}[suffix])
    with pytest.raises(
        FormatError, match=rf"field 'cuts': {re.escape(BOOLEAN)} \(got \[1, True\]\)"
    ):
        load_job(cfg, {})
    assert RunConfig.from_values({"rounds": 2, "lr": 1, "cuts": [1, 3]}).lr == 1.0  # numbers pass


def test_the_file_is_validated_key_by_key(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("rounds = 2\ncolour = 1\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(str(cfg))}: field 'colour': unknown key"):
        load_job(cfg, {})
    cfg.write_text("[run]\nrounds = 2\n")  # the file is flat: JobConfig.run is no key
    with pytest.raises(ConfigError, match="field 'run': unknown key"):
        load_job(cfg, {})
    cfg.write_text("rounds = 0\n")
    with pytest.raises(FormatError, match=rf"{re.escape(str(cfg))}: field 'rounds'"):
        load_job(cfg, {})
    cfg.write_text('objective = "fast"\n')
    with pytest.raises(FormatError, match=rf"{re.escape(str(cfg))} and flags: field 'objective'"):
        load_job(cfg, {"rounds": 1})


def test_coordinator_takes_the_run_options_and_refuses_a_schedule(monkeypatch, capsys, tmp_path):
    seen = spy(monkeypatch, mpsl.cli.run)  # the coordinator opens its run as mpsl run does
    args = ["coordinator", "--insecure", "--hops", "3", "--rounds", "2", "--nodes", "a,b,c"]
    assert run([*args, "--out", str(tmp_path)], monkeypatch, capsys)[0] == 0
    assert seen[0].run.compute_nodes == 3 and seen[0].run.nodes == ["a", "b", "c"]
    assert seen[0].out == tmp_path
    monkeypatch.undo()
    cfg = tmp_path / "run.toml"
    cfg.write_text('schedule = "s.json"\n')
    code, _, err = run(["coordinator", "--insecure", "--config", str(cfg)], monkeypatch, capsys)
    assert code == 2 and "field 'schedule'" in err
    code, _, err = run(["coordinator", "--insecure", "--schedule", "s.json"], monkeypatch, capsys)
    assert code == 2 and "--schedule" in err


def test_field_command_needs_options_and_no_clash():
    def plain(config: int = 0) -> None: ...

    def clash(rounds: int = 0, **options: object) -> None: ...

    for body in (plain, clash):
        with pytest.raises(TypeError):
            field_command(body, FIELDS)


KINDS = {int: "integer", float: "number", str: "text", Path: "path"}
ITEMS = {int: "integers", str: "names"}


def accepted(info: FieldInfo) -> str:
    """What a key takes, as docs/run.md's table says it."""
    kind = without_none(info.annotation)
    if get_origin(kind) is Literal:
        return ", ".join(f"`{value}`" for value in get_args(kind))
    if get_origin(kind) is list:
        return f"list of {ITEMS[get_args(kind)[0]]}"
    return KINDS[kind]


def option_rows() -> list[str]:
    """docs/run.md's option table, one row per field (the test prints it on a mismatch)."""
    rows = []
    for name, info in FIELDS.items():
        default = info.get_default(call_default_factory=True)
        cells = [
            ", ".join(f"`{flag}`" for flag in flags(name)),
            f"`{name}`",
            accepted(info),
            "" if default is None else f"`{default}`",
            info.description,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def test_run_md_option_table_is_the_fields():
    section = (DOCS / "run.md").read_text().split("## Options", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| [^|]* \| `", line)]
    assert rows == option_rows(), "\n".join(option_rows())


def test_formats_md_run_config_shows_every_key_and_validates():
    text = (DOCS / "formats.md").read_text().split("## Run config", 1)[1]
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    shown = set(re.findall(r"^(?:# )?(\w+) =", toml, flags=re.MULTILINE))
    assert shown == set(FIELDS)
    values = tomllib.loads(toml)
    job = JobConfig.from_flat(values, "docs/formats.md")
    assert job.run.cuts == values["cuts"]


def test_deploy_md_lists_the_coordinators_own_options():
    command = typer.main.get_command(app).commands["coordinator"]
    own = {opt for p in command.params if p.name not in FIELDS for opt in p.opts} - {"--help"}
    section = (DOCS / "deploy.md").read_text().split("## `mpsl coordinator` options", 1)[1]
    table = section.split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `(--[a-z-]+)", table, flags=re.MULTILINE)) == own
