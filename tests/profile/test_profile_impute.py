"""Imputing missing profile timings: the one mechanism every command uses."""

from __future__ import annotations

import pytest

from mpsl.errors import ConfigError, FormatError
from mpsl.profile.format import LayerProfile, Profile, Timing
from mpsl.profile.impute import Imputation, complete, impute_timing, missing
from mpsl.profile.shipped import load_profile


def _toy_profile() -> Profile:
    def layer(i: int, ms: dict[str, Timing]) -> LayerProfile:
        return LayerProfile(name=f"l{i}", output_bytes=1000 * i, param_bytes=10, ms=ms)

    return Profile(
        model="toy",
        batch_size=128,
        layers=[
            layer(1, {"A": Timing(fwd=1, bwd=2), "B": Timing(fwd=2, bwd=4)}),
            layer(
                2, {"A": Timing(fwd=3, bwd=3), "B": Timing(fwd=6, bwd=6), "C": Timing(fwd=1, bwd=1)}
            ),
            layer(3, {"A": Timing(fwd=5, bwd=1, opt=1), "C": Timing(fwd=1, bwd=1)}),
            layer(4, {"A": Timing(fwd=1, bwd=1)}),
        ],
    )


def test_unmeasured_layer_is_scaled_from_a_comparable_device() -> None:
    # B is 2x A on the layers both measured (1 and 2), so B's layer 3 is 2x A's
    f = impute_timing(_toy_profile(), "B", 3)
    assert (f.timing.fwd, f.timing.bwd, f.timing.opt) == (10, 2, 2)
    assert (f.reference, f.ratio, f.shared_layers, f.name) == ("A", 2.0, 2, "l3")


def test_a_named_reference_is_used() -> None:
    # C shares layer 2 with B only: B = 12/2 = 6x C there, so B's layer 3 is 6x C's
    f = impute_timing(_toy_profile(), "B", 3, reference="C")
    assert (f.timing.fwd, f.timing.bwd, f.ratio) == (6, 6, 6)
    with pytest.raises(FormatError, match="reference device 'B' did not measure layer 4"):
        impute_timing(_toy_profile(), "C", 4, reference="B")


def test_layer_nobody_measured_and_unknown_device_raise() -> None:
    profile = _toy_profile()
    empty = profile.layers[3].model_copy(update={"ms": {}})
    gap = profile.model_copy(update={"layers": [*profile.layers[:3], empty]})
    with pytest.raises(FormatError, match="no device measured layer 4"):
        impute_timing(gap, "B", 4)
    with pytest.raises(FormatError, match="no timing at all for device 'D'"):
        impute_timing(profile, "D", 1)


def test_without_imputation_missing_entries_are_named_and_the_option_suggested() -> None:
    with pytest.raises(FormatError, match=r"B layers 3-4; C layers 1,4.*--impute ratio"):
        complete(_toy_profile(), {"A": [1, 2, 3, 4], "B": [1, 3, 4], "C": [1, 2, 4]}, None)


def test_complete_fills_only_needed_entries_and_reports_them() -> None:
    profile = _toy_profile()
    filled, imputed = complete(profile, {"B": [3, 4], "A": [1]}, Imputation("ratio"))
    assert [(f.device, f.layer, f.reference) for f in imputed] == [("B", 3, "A"), ("B", 4, "A")]
    assert filled.timing("B", 4) == Timing(fwd=2, bwd=2)
    assert missing(filled, {"B": [1, 2, 3, 4]}) == []
    assert missing(filled, {"C": [1]}) == [("C", 1)]  # not needed, not filled
    assert filled.timing("A", 3) == profile.timing("A", 3)  # measured entries untouched
    # nothing missing: the same profile, nothing reported
    assert complete(profile, {"A": [1, 2, 3, 4]}, None) == (profile, ())


def test_parse() -> None:
    assert Imputation.parse(None) is None
    assert Imputation.parse("off") is None
    assert Imputation.parse("ratio") == Imputation("ratio", None)
    assert Imputation.parse("ratio:d1") == Imputation("ratio", "d1")
    with pytest.raises(ConfigError, match="unknown imputation 'mean'"):
        Imputation.parse("mean")


def test_shipped_resnet_d2_gap_is_scaled_from_d1() -> None:
    profile = load_profile("mpsl_resnet101_CIFAR")
    _, imputed = complete(profile, {"d2": [37]}, Imputation("ratio"))
    (f,) = imputed
    assert (f.device, f.layer, f.reference) == ("d2", 37, "d1")
    # the Pi 3 is slower than the Pi 4 on the layers both measured, so on layer 37 too
    assert f.ratio > 1 and f.timing.fwd > profile.timing("d1", 37).fwd


@pytest.mark.parametrize(
    "command",
    [
        ["estimate", "--cuts", "3,20,33"],
        ["plan", "--first-cut", "3", "--last-cut", "33"],
        ["emulate", "--cuts", "3,20,33", "--time-scale", "0.0001"],
    ],
)
def test_commands_refuse_missing_timings_unless_imputed_and_report_them(
    tmp_path, command: list[str]
) -> None:
    import json

    from typer.testing import CliRunner

    from mpsl.cli import app
    from mpsl.cluster import reference_testbed

    # Raspberry Pi 3 data owners: d2 never measured ResNet-101's layer 37 (the classifier)
    nodes = [{"name": f"vm{i}", "device": "VM", "memory_bytes": 64e9} for i in (1, 2)]
    groups = [{"count": 2, "device": "d2", "memory_bytes": 1e9, "link_bps": 8e6}]
    cluster = reference_testbed(nodes, data_owners=groups)
    data = cluster.model_dump()
    data["training"]["batches_per_epoch"] = 1
    path = tmp_path / "pis.json"
    path.write_text(json.dumps(data))
    args = [*command, "--profile", "mpsl_resnet101_CIFAR", "--cluster", str(path), "--json"]
    runner = CliRunner()
    refused = runner.invoke(app, args)  # main() prints it as "error: ..." and exits 2
    assert isinstance(refused.exception, FormatError)
    message = str(refused.exception)
    assert "37" in message and "d2" in message and "--impute ratio" in message
    done = runner.invoke(app, [*args, "--impute", "ratio"])
    assert done.exit_code == 0, done.output
    (entry,) = json.loads(done.stdout)["imputed"]
    assert (entry["device"], entry["layer"], entry["reference"]) == ("d2", 37, "d1")
