"""Optimal plan against the manual split, measured: both run in the emulated runtime.

    python benchmarks/planner_emulated.py [--json] [--out FILE] [--target-s 8]

Setups of benchmarks/planner_vs_manual.py (reference profiles, K = 100 d1 data owners at 8 Mbit/s,
VMs with slowdowns 1.0-2.0 at 7.13 Gbit/s, B = 16, r = 2). Each plan runs one round in the real
runtime in emulation-only mode with every time scaled by one factor so a run takes about
``--target-s`` seconds; reported times are converted back.
"""

from __future__ import annotations

import argparse
import json
import sys

from _common import machine, write
from mpsl.emulate.emulation import Emulation
from mpsl.estimate.simulate import simulate_deployment
from mpsl.plan import make_plan
from mpsl.profile.shipped import load_profile
from planner_vs_manual import HETEROGENEOUS, MODELS, vms


def measure(profile, cluster, cuts, nodes, target_s: float) -> tuple[float, float]:
    """(measured, simulated) round seconds of one emulated round."""
    sim_s = simulate_deployment(profile, cluster, cuts, nodes).round_ms / 1000
    scale = target_s / sim_s
    run = Emulation(profile, cluster, cuts, nodes, time_scale=scale).run()
    return run.rounds[0].seconds / scale, sim_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--out", help="JSON file (default benchmarks/results/planner_emulated.json)"
    )
    parser.add_argument("--target-s", type=float, default=8.0)
    parser.add_argument("--owners", type=int, default=100)
    args = parser.parse_args()
    rows = []
    for model, name, a, b in MODELS:
        profile = load_profile(name)
        for count in (3, 5):
            cluster = vms(count, args.owners, slowdowns=HETEROGENEOUS[:count])
            plan = make_plan(profile, cluster, a, b, hops=count)
            manual = plan.manual
            if not plan.feasible or manual is None or not manual.runnable:
                continue
            opt_s, opt_sim = measure(profile, cluster, plan.cuts, plan.nodes, args.target_s)
            man_s, man_sim = measure(profile, cluster, manual.cuts, manual.nodes, args.target_s)
            row = {
                "model": model,
                "owners": args.owners,
                "nodes": count,
                "plan_cuts": plan.cuts,
                "plan_nodes": plan.nodes,
                "manual_cuts": manual.cuts,
                "plan_predicted_s": plan.objective_value,
                "manual_predicted_s": manual.round_s,
                "plan_sim_s": opt_sim,
                "manual_sim_s": man_sim,
                "plan_measured_s": opt_s,
                "manual_measured_s": man_s,
                "measured_gain_pct": 100 * (man_s - opt_s) / man_s,
                "predicted_gain_pct": manual.gain_pct,
            }
            rows.append(row)
            if not args.json:
                print(
                    f"{model:10s} K={args.owners} N={count}  plan {opt_s:8.1f} s "
                    f"(closed form {plan.objective_value:8.1f}, sim {opt_sim:8.1f})  manual "
                    f"{man_s:8.1f} s (closed form {manual.round_s:8.1f}, sim {man_sim:8.1f})  "
                    f"measured gain {row['measured_gain_pct']:.1f}% "
                    f"(predicted {manual.gain_pct:.1f}%)",
                    file=sys.stderr,
                )
    data = {"benchmark": "planner_emulated", "machine": machine(), "rows": rows}
    path = write("planner_emulated", data, args.out)
    print(json.dumps(data, indent=1) if args.json else f"wrote {path}")


if __name__ == "__main__":
    main()
