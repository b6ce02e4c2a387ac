"""gml-nas: which rule picks the subnet that does best on the test split, from the same scored candidates?

Reads outputs of ``nas_search_budget.py --candidates`` (every candidate the evolution scored and the
random subnets, each with its search-split score, a second score after BN re-calibration on other
batches, and its test accuracy) and compares the test accuracy of the subnet each rule picks, per
budget, among the evolution's candidates and, separately, among the random subnets. The rules see
only what a search sees (scores, FLOPs, architectures, the search split's size):

- ``key``: the highest score, ties broken by the subnet's text (the search's rule before this study);
- ``flops``: the highest score, ties broken by the larger FLOPs (the search's rule now);
- ``rescore``: the 5 highest re-scored after BN calibration on other batches, mean of both scores;
- ``gp-rbf`` / ``gp-linear``: the highest posterior mean of a Gaussian process over the architecture
  codes (each key's position among its choices, in [0, 1]) with every score's binomial noise
  ``p (1 - p) / n`` and its other hyper-parameters fitted by marginal likelihood (scikit-learn): a
  Bayesian estimate meant to undo the lift that noise gives the highest of many scores.

    python benchmarks/nas_selection_study.py --search-images 6000 docs/benchmarks/nas_candidates_fmnist_full_s*.json.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

RULES = ("key", "flops", "rescore", "gp-rbf", "gp-linear")


def codes(space, subnets: list[dict]) -> np.ndarray:
    return np.asarray([[item.choices().index(s[k]) / max(1, len(item.choices()) - 1)
                        for k, item in space.items.items()] for s in subnets], dtype=float)


def posterior(x: np.ndarray, scores: np.ndarray, n_images: int, kernel: str) -> np.ndarray:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct

    p = np.clip(scores / 100.0, 0.5 / n_images, 1 - 0.5 / n_images)
    noise = 1e4 * p * (1 - p) / n_images
    mean, scale = scores.mean(), scores.std()
    x = x[:, x.std(axis=0) > 0]
    k = (ConstantKernel(1.0, (1e-4, 1e2)) * RBF(np.ones(x.shape[1]), (1e-2, 1e2)) if kernel == "gp-rbf"
         else ConstantKernel(1.0, (1e-4, 1e2)) * DotProduct(1.0, (1e-3, 1e2)))
    gp = GaussianProcessRegressor(k, alpha=noise / scale ** 2, n_restarts_optimizer=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp.fit(x, (scores - mean) / scale)
    return mean + scale * gp.predict(x)


def pick(rule: str, cands: list[dict], space, n_images: int) -> dict:
    from gml_nas.space import subnet_key

    if rule == "key":
        return min(cands, key=lambda c: (-c["search_top1"], subnet_key(c["subnet"])))
    if rule == "flops":
        return min(cands, key=lambda c: (-c["search_top1"], -c["mflops"], subnet_key(c["subnet"])))
    if rule == "rescore":
        top = sorted(cands, key=lambda c: (-c["search_top1"], -c["mflops"]))[:5]
        return max(top, key=lambda c: c["search_top1"] + c["search_top1_calib2"])
    scores = np.array([c["search_top1"] for c in cands])
    post = posterior(codes(space, [c["subnet"] for c in cands]), scores, n_images, rule)
    return cands[int(np.argmax(post))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--search-images", type=int, required=True, help="images in the search split")
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    args = parser.parse_args()

    import nas_recipe as R

    space, picks = None, {(r, w): [] for r in args.rules for w in ("evolution", "random")}
    print("| run, budget | among | " + " | ".join(args.rules) + " | best by test |")
    print("|---" * (3 + len(args.rules)) + "|")
    for name in args.files:
        raw = gzip.decompress(Path(name).read_bytes()) if name.endswith(".gz") else Path(name).read_bytes()
        data = json.loads(raw)
        if space is None:
            cfg, bundle = R.load(R.REPO / data["config"], data["overrides"])
            space = R.build_algorithm(cfg, bundle, 0).model.space
        for row in data["rows"]:
            for among, cands in (("evolution", row["candidates"]), ("random", row["random_candidates"])):
                tops = [pick(r, cands, space, args.search_images)["test_top1"] for r in args.rules]
                for r, t in zip(args.rules, tops):
                    picks[(r, among)].append(t)
                cells = [f"{Path(name).name.split('.')[0]} {row['budget']}", among, *(f"{t:.2f}" for t in tops),
                         f"{max(c['test_top1'] for c in cands):.2f}"]
                print("| " + " | ".join(cells) + " |", flush=True)
    base = args.rules[0]
    for among in ("evolution", "random"):
        cells = [f"mean − {base} ({among})", ""]
        for r in args.rules:
            diffs = [a - b for a, b in zip(picks[(r, among)], picks[(base, among)])]
            se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
            cells.append(f"{statistics.mean(diffs):+.2f} ± {se:.2f}")
        print("| " + " | ".join(cells) + " | |")


if __name__ == "__main__":
    main()
