"""gml-nas: which rule picks the subnet that does best on the test split, from the same scored candidates?

Reads outputs of ``nas_search_budget.py --candidates`` (every candidate the evolution scored and the
random subnets, each with its search-split score, a second score after BN re-calibration on other
batches, and its test accuracy) and compares, per budget, the test accuracy of the subnet each rule
picks. The rules see only what a search sees (scores, architectures, the search split's size):

- ``score``: the highest search-split score (what the search returned);
- ``rescore``: the 5 highest re-scored after BN calibration on other batches, mean of both scores;
- ``posterior``: the highest posterior mean (``gml_nas.selection``: a GP over the architecture
  codes with each score's binomial noise, fitted by marginal likelihood).

Each rule is applied to the evolution's candidates and, separately, to the random subnets.

    python benchmarks/nas_selection_study.py work_dirs/bench/cand_s0.json work_dirs/bench/cand_s1.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pick(rule: str, cands: list[dict], space, n_images: int) -> dict:
    from gml_nas.selection import shrunk_ranking

    if rule == "score":
        return max(cands, key=lambda c: c["search_top1"])
    if rule == "rescore":
        top = sorted(cands, key=lambda c: -c["search_top1"])[:5]
        return max(top, key=lambda c: c["search_top1"] + c["search_top1_calib2"])
    if rule == "posterior":
        post = shrunk_ranking(space, [c["subnet"] for c in cands], [c["search_top1"] for c in cands], n_images)
        return cands[max(range(len(cands)), key=lambda i: post[i])]
    raise ValueError(rule)


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--search-images", type=int, default=6000, help="images in the search split")
    parser.add_argument("--rules", nargs="+", default=["score", "rescore", "posterior"])
    args = parser.parse_args()

    import nas_recipe as R

    space = None
    print("| run, budget | candidates | " + " | ".join(args.rules) + " | best candidate (test) | random: "
          + " | random: ".join(args.rules) + " | random oracle | Spearman search~test |")
    print("|---" * (4 + 2 * len(args.rules)) + "|---|")
    for name in args.files:
        data = json.loads(Path(name).read_text())
        if space is None:
            cfg, bundle = R.load(R.REPO / data["config"], data["overrides"])
            space = R.build_algorithm(cfg, bundle, 0).model.space
        for row in data["rows"]:
            cands, rand = row["candidates"], row["random_candidates"]
            evo = [pick(r, cands, space, args.search_images)["test_top1"] for r in args.rules]
            rnd = [pick(r, rand, space, args.search_images)["test_top1"] for r in args.rules]
            rho = spearman([c["search_top1"] for c in cands], [c["test_top1"] for c in cands])
            cells = [f"{Path(name).stem} {row['budget']}", str(len(cands)), *(f"{v:.2f}" for v in evo),
                     f"{max(c['test_top1'] for c in cands):.2f}", *(f"{v:.2f}" for v in rnd),
                     f"{max(c['test_top1'] for c in rand):.2f}", f"{rho:.2f}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
