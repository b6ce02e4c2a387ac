"""gml-nas: which BigNAS recipe changes close the gap between supernet subnets and scratch training.

For each variant (config overrides on ``--config``, default the shipped digits demo) the supernet is
trained in-process like ``gml run`` does (``nas_recipe.fit``: the algorithm's ``train_step`` and
optimiser groups, per-epoch cosine lr, ``--epochs``). Then:

* 5 subnets spanning the FLOPs range (min, the random subnets at the 20/50/80 % FLOPs quantiles of
  300 draws, max; the same 5 for every variant) are measured inside the supernet on the test
  split after BN re-calibration on 8 training batches, no fine-tuning;
* Spearman rank correlation between those accuracies and FLOPs over 20 random subnets;
* once, the same 5 architectures trained from scratch with the same data, optimiser and epochs;
* with ``--calib-sweep 32,84``, the 5 subnets also after re-calibration on more batches;
* with ``--scratch-random``, the 20 random subnets trained from scratch too: the Spearman correlation of
  their scratch accuracy with FLOPs (what the search space itself allows at this budget) and with their
  supernet accuracy (the ranking a search relies on); ``--scratch-random-only 0:10`` trains only those
  random subnets from scratch (no supernet), so two processes can share the work, and ``--summarise`` joins
  such files (several training seeds too) into the correlations;
* with ``--probe``, one dimension at a time: the max subnet with that key at its min value and the
  min subnet with it at its max value (how far the shared weights carry away from the sandwich ends).

Every variant is written to ``--out`` (JSON lines) as soon as it is done; ``--seeds 0,1`` repeats
all of it per training seed.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/nas_recipe_ablation.py --out work_dirs/bench/nas_recipe.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nas_recipe as R  # noqa: E402

SOFT = 'algorithm.model.head.distiller_mode="soft"'
VARIANTS = {  # each variant is explicit about every knob it compares (the shipped configs use labels)
    "paper (distil from step 0, decay on BN/bias)": [SOFT, "algorithm.norm_bias_decay=true"],
    "no decay on BN/bias": [SOFT, "algorithm.norm_bias_decay=false"],
    "no decay on BN/bias + distil after 30% warm-up": [SOFT, "algorithm.norm_bias_decay=false",
                                                       "algorithm.distill_warmup=0.3"],
    "no decay on BN/bias + labels only (no distillation)": ["algorithm.norm_bias_decay=false",
                                                             'algorithm.model.head.distiller_mode="none"'],
    "no decay on BN/bias + distil after 60% warm-up": [SOFT, "algorithm.norm_bias_decay=false",
                                                       "algorithm.distill_warmup=0.6"],
    # twice the random subnets per step (max, 4 random, min): the middle of the space gets twice the
    # updates, at 1.5x the compute of a step
    "labels only + sandwich6": ["algorithm.norm_bias_decay=false", 'algorithm.model.head.distiller_mode="none"',
                                'algorithm.strategy="sandwich6"'],
}


def probe(algo, calib: list, test_set) -> list[dict]:
    """Top-1 of the max subnet with one key at its min value, and of the min subnet with it at its max."""
    space = algo.model.space
    top, bottom = space.max(), space.min()
    rows = []
    for key in space.keys():
        if top[key] == bottom[key]:
            continue
        rows.append({"key": key, "max_with_min_value": R.supernet_accuracy(algo, {**top, key: bottom[key]}, calib, test_set),
                     "min_with_max_value": R.supernet_accuracy(algo, {**bottom, key: top[key]}, calib, test_set)})
    return rows


def random_subnets(algo, n: int) -> list[dict]:
    """The same ``n`` random subnets for every variant and run (their own seed)."""
    from gml_nas.mutator import StatelessMutator

    mut = StatelessMutator(1234).prepare(algo.model.space)
    return [mut.random_subnet() for _ in range(n)]


def scratch_random_only(config: Path, overrides: list[str], epochs: int, seed: int, n_random: int, part: str) -> dict:
    """Scratch top-1 of the random subnets ``part`` (``start:stop``) of the ``n_random``, no supernet."""
    cfg, bundle = R.load(config, overrides)
    algo = R.build_algorithm(cfg, bundle, seed)
    start, stop = (int(v) for v in part.split(":"))
    rows = []
    for i, s in list(enumerate(random_subnets(algo, n_random)))[start:stop]:
        rows.append({"index": i, "mflops": R.subnet_flops(algo, s, bundle.info.input_shape) / 1e6,
                     **{k: v for k, v in s.items() if "resolution" in k},
                     "scratch_top1": R.scratch_accuracy(cfg, bundle, algo, s, epochs, seed)})
    return {"random": rows}


def summarise(paths: list[str]) -> dict:
    """Join the random rows of several output files by index (a supernet line, scratch-random parts of one or
    more seeds) and give the Spearman correlations between FLOPs, supernet and scratch accuracies."""
    supernet, scratch, flops = {}, {}, {}
    for path in paths:
        for line in map(json.loads, Path(path).read_text().splitlines()):
            for i, row in enumerate(line.get("random", [])):
                index = row.get("index", i)
                flops[index] = row["mflops"]
                if "supernet_top1" in row:
                    supernet[index] = row["supernet_top1"]
                if "scratch_top1" in row:
                    scratch.setdefault(line["seed"], {})[index] = row["scratch_top1"]
    out = {"n": len(flops)}
    idx = sorted(flops)
    if supernet:
        out["supernet~flops"] = R.spearman([supernet[i] for i in idx], [flops[i] for i in idx])
    for seed, acc in sorted(scratch.items()):
        out[f"scratch_s{seed}~flops"] = R.spearman([acc[i] for i in idx], [flops[i] for i in idx])
        if supernet:
            out[f"supernet~scratch_s{seed}"] = R.spearman([supernet[i] for i in idx], [acc[i] for i in idx])
    seeds = sorted(scratch)
    if len(seeds) >= 2:  # how well the same architectures trained twice agree: the ceiling of any ranking
        a, b = scratch[seeds[0]], scratch[seeds[1]]
        out[f"scratch_s{seeds[0]}~scratch_s{seeds[1]}"] = R.spearman([a[i] for i in idx], [b[i] for i in idx])
        mean = [(a[i] + b[i]) / 2 for i in idx]
        out["scratch_mean~flops"] = R.spearman(mean, [flops[i] for i in idx])
        if supernet:
            out["supernet~scratch_mean"] = R.spearman([supernet[i] for i in idx], mean)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def measure(config: Path, overrides: list[str], epochs: int, seed: int, n_random: int,
            calib_sweep: list[int] = (), with_probe: bool = False, scratch_random: bool = False) -> dict:
    cfg, bundle = R.load(config, overrides)
    algo, seconds = R.train_supernet(cfg, bundle, epochs, seed)
    shape = bundle.info.input_shape
    calib = R.calib_batches(bundle.train, cfg.train.batch_size, 8)
    span = R.spanning_subnets(algo, shape)
    rows = [{"subnet": name, "mflops": R.subnet_flops(algo, s, shape) / 1e6,
             "supernet_top1": R.supernet_accuracy(algo, s, calib, bundle.val)} for name, s in span]
    for n in calib_sweep:  # the same subnets re-calibrated on n batches instead of 8
        more = R.calib_batches(bundle.train, cfg.train.batch_size, n)
        for row, (_, s) in zip(rows, span):
            row[f"supernet_top1_calib{n}"] = R.supernet_accuracy(algo, s, more, bundle.val)
    randoms = random_subnets(algo, n_random)
    accs = [R.supernet_accuracy(algo, s, calib, bundle.val) for s in randoms]
    flops = [R.subnet_flops(algo, s, shape) for s in randoms]
    random_rows = [{"mflops": f / 1e6, "supernet_top1": a, **{k: v for k, v in s.items() if "resolution" in k}}
                   for f, a, s in zip(flops, accs, randoms)]
    extra = {}
    if scratch_random:
        scratch = [R.scratch_accuracy(cfg, bundle, algo, s, epochs, seed) for s in randoms]
        for row, acc in zip(random_rows, scratch):
            row["scratch_top1"] = acc
        extra = {"spearman_scratch_flops": R.spearman(scratch, flops), "spearman_supernet_scratch": R.spearman(accs, scratch)}
    return {"train_s": round(seconds, 1), "rows": rows, "spearman_acc_flops": R.spearman(accs, flops), **extra,
            "random": random_rows,
            "probe": probe(algo, calib, bundle.val) if with_probe else None, "span": span, "cfg": cfg, "bundle": bundle, "algo": algo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(R.REPO / "configs/nas/bignas_digits.toml"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--random-subnets", type=int, default=20)
    parser.add_argument("--variants", default="", help="comma-separated indices into the variant list (default all)")
    parser.add_argument("--no-scratch", action="store_true")
    parser.add_argument("--scratch-only", action="store_true", help="only the from-scratch rows (the same 5 subnets)")
    parser.add_argument("--scratch-subnets", default="min,q20,q50,q80,max", metavar="NAME,NAME",
                        help="which of the 5 subnets get a from-scratch row (e.g. q50 alone, to split long runs)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every variant, e.g. data.dataset.train_limit=0 (the full training set)")
    parser.add_argument("--calib-sweep", default="", metavar="N,N",
                        help="also measure the 5 subnets after BN re-calibration on N training batches (e.g. 32,84)")
    parser.add_argument("--probe", action="store_true",
                        help="also measure max / min with one key moved to the other end (one row per key)")
    parser.add_argument("--scratch-random", action="store_true",
                        help="also train the random subnets from scratch (Spearman of scratch accuracy vs FLOPs and vs supernet)")
    parser.add_argument("--scratch-random-only", default="", metavar="START:STOP",
                        help="only train random subnets START..STOP-1 from scratch (no supernet, no other rows)")
    parser.add_argument("--save-supernet", default="", metavar="PATH",
                        help="write the trained supernet's weights here (one seed, one variant), for "
                             "nas_search_budget.py --load-supernet")
    parser.add_argument("--out", default="work_dirs/bench/nas_recipe.jsonl")
    parser.add_argument("--summarise", nargs="+", metavar="JSONL",
                        help="only print the Spearman correlations of the random rows in these output files")
    args = parser.parse_args()
    if args.summarise:
        print(json.dumps(summarise(args.summarise)))
        return
    unknown = set(args.scratch_subnets.split(",")) - {"min", "q20", "q50", "q80", "max"}
    if unknown:
        parser.error(f"--scratch-subnets: unknown {sorted(unknown)}; accepted: min, q20, q50, q80, max")
    if args.save_supernet and ("," in args.seeds or "," in args.variants or not args.variants or args.scratch_only):
        parser.error("--save-supernet: needs one seed, one variant (--variants N) and a supernet (no --scratch-only)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = list(VARIANTS)
    chosen = [names[int(i)] for i in args.variants.split(",")] if args.variants else names
    config = Path(args.config)
    shown = str(config.resolve().relative_to(R.REPO)) if config.resolve().is_relative_to(R.REPO) else config.name
    for seed in [int(v) for v in args.seeds.split(",")]:
        last = None
        if args.scratch_random_only:
            t0 = time.time()
            line = scratch_random_only(config, VARIANTS[chosen[-1]] + args.set, args.epochs, seed, args.random_subnets,
                                       args.scratch_random_only)
            write(out, {"variant": "scratch-random", "overrides": args.set, "epochs": args.epochs, "seed": seed,
                        "config": shown, "wall_s": round(time.time() - t0, 1), **line})
            continue
        if args.scratch_only:
            cfg, bundle = R.load(config, VARIANTS[chosen[-1]] + args.set)
            algo = R.build_algorithm(cfg, bundle, seed)
            last = {"cfg": cfg, "bundle": bundle, "algo": algo, "span": R.spanning_subnets(algo, bundle.info.input_shape)}
        for name in [] if args.scratch_only else chosen:
            t0 = time.time()
            last = measure(config, VARIANTS[name] + args.set, args.epochs, seed, args.random_subnets,
                           [int(n) for n in args.calib_sweep.split(",") if n], args.probe, args.scratch_random)
            line = {"variant": name, "overrides": VARIANTS[name] + args.set, "epochs": args.epochs, "seed": seed,
                    "config": shown, "train_s": last["train_s"], "rows": last["rows"],
                    "spearman_acc_flops": last["spearman_acc_flops"], "wall_s": round(time.time() - t0, 1)}
            line.update({k: last[k] for k in ("spearman_scratch_flops", "spearman_supernet_scratch") if k in last})
            line["random"] = last["random"]
            if last["probe"] is not None:
                line["probe"] = last["probe"]
            write(out, line)
            if args.save_supernet:
                from gml_core.api import save_checkpoint

                save_checkpoint(last["algo"].state_dict(), args.save_supernet)
        if last is not None and not args.no_scratch:
            scratch = [{"subnet": n, "scratch_top1": R.scratch_accuracy(last["cfg"], last["bundle"], last["algo"], s,
                                                                        args.epochs, seed)}
                       for n, s in last["span"] if n in args.scratch_subnets.split(",")]
            write(out, {"variant": "scratch", "overrides": args.set, "epochs": args.epochs, "seed": seed, "config": shown, "rows": scratch})


def write(out: Path, line: dict) -> None:
    with out.open("a") as f:
        f.write(json.dumps(line) + "\n")
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
