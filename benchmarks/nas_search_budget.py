"""gml-nas: does the evolution search spend its budget and beat random sampling?

Trains the supernet of ``--config`` in-process (as ``gml run`` does; ``--epochs``), then for each
FLOPs budget runs ``gml nas search``'s evolution (scores: top-1 on the held-out search split after BN
re-calibration; ``algorithm.search`` settings of the config) and draws ``--random`` random subnets under
the same budget, scored the same way. Reported on the **test split**, which neither saw: the chosen
subnet, the random subnet the search split would have picked, and the best random subnet by test
accuracy itself (an oracle). Also the share of the budget used and the accuracy-vs-FLOPs front.
With ``--scratch`` the chosen subnet and the random pick are also trained alone from scratch (same
data, optimiser and epochs as the supernet) and tested: what the supernet's weights are worth.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/nas_search_budget.py --out work_dirs/bench/nas_search_budget.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gml_core.api import save_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nas_recipe as R  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/nas/bignas_digits.toml")
    parser.add_argument("--epochs", type=int, default=0, help="supernet epochs (default: the config's)")
    parser.add_argument("--budgets", default="0.5M,1M,1.5M")
    parser.add_argument("--random", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search-seed", type=int, default=None,
                        help="seed of the evolution and of the random subnets (default --seed; another value "
                             "repeats the searches on the same supernet)")
    parser.add_argument("--out", default="work_dirs/bench/nas_search_budget.json")
    parser.add_argument("--scratch", action="store_true",
                        help="also train the chosen and the randomly picked subnet from scratch (after all searches)")
    parser.add_argument("--candidates", action="store_true",
                        help="record every scored candidate: search-split score, a second score with other BN "
                             "calibration batches, and test accuracy (for studying the selection offline)")
    parser.add_argument("--save-supernet", default="", help="write the trained supernet's weights here")
    parser.add_argument("--load-supernet", default="", help="load these weights instead of training")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.lr=0.1")
    args = parser.parse_args()
    search_seed = args.seed if args.search_seed is None else args.search_seed

    import attrs

    from gml_core.api import parse_count
    from gml_nas.commands import subnet_costs, subnet_scorer
    from gml_nas.search import EvolutionSearch, random_search, random_subnets
    from gml_nas.session import Session

    cfg, bundle = R.load(R.REPO / args.config, args.overrides)
    epochs = args.epochs or cfg.train.epochs
    if args.load_supernet:
        algo, seconds = R.build_algorithm(cfg, bundle, args.seed), 0.0
        algo.load_state_dict(torch.load(args.load_supernet, map_location="cpu"))
    else:
        algo, seconds = R.train_supernet(cfg, bundle, epochs, args.seed)
    if args.save_supernet:
        save_checkpoint(algo.state_dict(), args.save_supernet)
    algo.eval()
    session = Session(cfg, algo, bundle, Path("."), Path("."))
    if not session.held_out:
        raise SystemExit(f"{args.config}: needs data.type = \"search_split\" (a held-out search split)")
    search_cfg = cfg.algorithm.search
    flops_of = subnet_costs(session)["flops"]
    flops_cache: dict[str, float] = {}

    def flops(subnet: dict) -> float:  # the budget is on FLOPs only; cached (the random draws repeat subnets)
        key = json.dumps(subnet, sort_keys=True)
        if key not in flops_cache:
            flops_cache[key] = flops_of(subnet)
        return flops_cache[key]

    costs = {"flops": flops}
    scorer = subnet_scorer(session, search_cfg)
    score_cache: dict[str, float] = {}

    def score(subnet: dict) -> float:  # deterministic; cached (the random subnets are scored for the pick and the record)
        key = json.dumps(subnet, sort_keys=True)
        if key not in score_cache:
            score_cache[key] = scorer(subnet)
        return score_cache[key]

    calib = session.calib_batches(search_cfg.calib_batches, search_cfg.seed)

    def test_top1(subnet: dict) -> float:
        return R.supernet_accuracy(algo, subnet, calib, bundle.val)

    score2 = subnet_scorer(session, attrs.evolve(search_cfg, seed=search_cfg.seed + 1000))

    def record(subnet: dict, search_top1: float) -> dict:
        return {"subnet": subnet, "mflops": flops(subnet) / 1e6, "search_top1": search_top1,
                "search_top1_calib2": score2(subnet), "test_top1": test_top1(subnet)}

    rows = []
    with torch.no_grad():
        for budget in args.budgets.split(","):
            limit = parse_count(budget)
            evo = EvolutionSearch(algo.model.space, score, costs, {"flops": limit},
                                  attrs.evolve(search_cfg, seed=search_seed))
            best = evo.run()[0]
            randoms = [subnet for subnet, _ in random_subnets(algo.model.space, costs, {"flops": limit}, args.random,
                                                               seed=search_seed + 1, max_tries=20000)]
            if len(randoms) < args.random:
                print(f"note: only {len(randoms)} distinct subnets fit {budget}", flush=True)
            picked = random_search(algo.model.space, score, costs, {"flops": limit}, args.random, seed=search_seed + 1,
                                   max_tries=20000)
            oracle = max(test_top1(s) for s in randoms)
            row = {"budget": budget, "limit": limit, "evaluated": len(evo.scores), "random_drawn": len(randoms),
                   "searched": {"mflops": best["flops"] / 1e6, "budget_used": best["flops"] / limit,
                                "search_top1": best["score"], "test_top1": test_top1(best["subnet"]),
                                "subnet": best["subnet"]},
                   "random_picked_on_search_split": {"mflops": picked["flops"] / 1e6,
                                                     "budget_used": picked["flops"] / limit,
                                                     "search_top1": picked["score"],
                                                     "test_top1": test_top1(picked["subnet"]),
                                                     "subnet": picked["subnet"]},
                   "random_best_on_test_oracle": oracle,
                   "front": [{"mflops": p["flops"] / 1e6, "search_top1": p["score"]} for p in evo.front()]}
            if args.candidates:
                row["candidates"] = [record(evo.subnets[k], v) for k, v in evo.scores.items()]
                row["random_candidates"] = [record(r, score(r)) for r in randoms]
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k not in ("front", "candidates", "random_candidates")}),
                  flush=True)
    if args.scratch:  # after every search: training from scratch sets the supernet's active subnet
        trained: dict[str, float] = {}  # the same subnet is often chosen under two budgets
        for row in rows:
            for key in ("searched", "random_picked_on_search_split"):
                name = json.dumps(row[key]["subnet"], sort_keys=True)
                if name not in trained:
                    trained[name] = R.scratch_accuracy(cfg, bundle, algo, row[key]["subnet"], epochs, args.seed)
                row[key]["scratch_test_top1"] = trained[name]
            print(json.dumps({"budget": row["budget"], **{k: row[k]["scratch_test_top1"]
                                                          for k in ("searched", "random_picked_on_search_split")}}),
                  flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": args.config, "overrides": args.overrides, "epochs": epochs, "seed": args.seed, "search_seed": search_seed, "supernet_training_s": round(seconds, 1),
                               "random": args.random, "rows": rows}, indent=2))
    plot(rows, out.with_suffix(".png"), args.config)
    print(f"wrote {out} and {out.with_suffix('.png')}")


def plot(rows: list[dict], path: Path, config: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for row in rows:
        front = row["front"]
        line, = ax.plot([p["mflops"] for p in front], [p["search_top1"] for p in front], "o-", ms=3,
                        label=f"front under {row['budget']} (search split)")
        ax.axvline(row["limit"] / 1e6, color=line.get_color(), ls=":", lw=1)
        ax.plot(row["searched"]["mflops"], row["searched"]["test_top1"], "*", ms=11, color=line.get_color())
    ax.plot([], [], "k*", label="chosen subnet, test split")
    ax.set_xlabel("MFLOPs (a multiply-add = 2 FLOPs)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"evolution search under FLOPs budgets ({Path(config).name})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
