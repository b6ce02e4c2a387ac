"""Two CPU processes (gloo): every rank trains the same subnets and ends with the same weights."""

import json
import os

import torch
import torch.multiprocessing as mp


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    import torch.distributed as dist
    from mmengine.optim import OptimWrapper
    from nas_helpers import batches
    from nas_helpers import make_algorithm as make
    
    from gml_core._internal.training.dist import GmlDataParallel, sync_gradients
    from gml_nas.algorithms.bignas import BigNAS, BigNASConfig

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.manual_seed(rank)  # different initial weights: the wrapper broadcasts rank 0's
        algo = make(BigNAS, BigNASConfig, mutator={"type": "StatelessMutator", "seed": rank},
                    search_eval_cfg={"bn_stats_calib_kwargs": {"num_iters": 2}})
        plans = []
        original = algo.mutator.sandwich
        algo.mutator.sandwich = lambda n: plans.append(original(n)) or plans[-1]
        wrapped = GmlDataParallel(algo)
        wrapper = OptimWrapper(torch.optim.SGD(algo.parameters(), lr=0.05, momentum=0.9))
        sync_gradients(wrapper)
        for step in range(3):
            wrapped.train_step(batches(1, seed=100 * rank + step)[0], wrapper)
        results = algo.eval_hook.run(algo, batches(2, seed=7 + rank), batches(2, seed=50 + rank), 10, (1, 1, 12, 12))
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"plans": [[[k, s] for k, s in plan] for plan in plans], "results": results}, fh)
        torch.save({n: p.detach().clone() for n, p in algo.named_parameters()},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_sample_identical_subnets(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    runs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert runs[0]["plans"] == runs[1]["plans"]
    randoms = [json.dumps(s, sort_keys=True) for plan in runs[0]["plans"] for k, s in plan if k == "random"]
    assert len(randoms) == 6 and len(set(randoms)) > 1
    assert runs[0]["results"] == runs[1]["results"]
    p0, p1 = (torch.load(tmp_path / f"rank{r}.pt") for r in range(2))
    assert all(torch.equal(p0[n], p1[n]) for n in p0)
