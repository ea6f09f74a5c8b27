"""A scaling model for pairmi on Dask, built from pieces measured on this machine.

    python bench/scaling_model.py [--network-gbps 10] [--json FILE]

Measured here, one thread each: binned accumulation (pair-samples per second), the binned tile
kernel (pair-samples per second), the copula's product (flop per second) and its ranking (values
per second), merging and pickling accumulators (bytes per second), GPT-2 small's forward pass
(random weights, residual stream, tokens per second), and the Dask scheduler's cost per task (a
LocalCluster of 2 processes, 1,000 empty tasks). The network is assumed: --network-gbps per worker.

Predicted, for W workers of one core each (W = 8, 64, 512):
(a) 10^8 tokens through GPT-2 small, residual stream (13 x 768), 15 equal-width bins: each worker
    runs the model and accumulates its shard, then the accumulators (6.9 GB each) merge in a tree
    of fan-in 8.
(b) all 36,864 GPT-2 MLP neurons at 10^6 tokens, pair tiles: the Gaussian copula (normal scores
    ranked once, float64 tiles of 512 variables) and 15 equal-width bins (uint8 codes, tiles of
    1,024), each tile's two blocks sent to its worker.
(c) every one of the 36,864 GPT-2 MLP neurons' 16 strongest partners in any layer at 10^8 tokens
    (``pairmi.topk_stream``: 64 candidates a unit, about 1.6 M pairs counted exactly; the screen
    on all tokens, or on the first 10^6 with ``screen_samples``): token
    shards, each worker running the model twice over its shard, its screen (the (2 d)^2 float32
    products of z and |z|, float64 sums of 43.5 GB) and its exact counts (2.9 GB); the screens
    merge in a tree before the pairs are chosen, the counts after. And on one GPU, from the rates
    docs/gpu.md measured on an H200 (the stream's counting) and two stated assumptions (its
    float32 product rate and GPT-2's forward rate there).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core per worker, BLAS included
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import math
import pickle
import time

import numpy as np

import pairmi
from pairmi.copula import normal_scores


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure() -> dict[str, float]:
    rng = np.random.default_rng(0)
    m: dict[str, float] = {}
    chunk = rng.standard_normal((16384, 384), dtype=np.float32)
    edges = pairmi.fit_edges(chunk, bins=15)
    acc = pairmi.Accumulator(edges=edges, threads=1).update(chunk)  # totals allocated and touched
    m["accumulate_pair_samples_per_s"] = 384 * 383 / 2 * 16384 / best_of(lambda: acc.update(chunk))
    a, b = chunk[:, :192], chunk[:, 192:]
    m["tile_pair_samples_per_s"] = 192 * 192 * 16384 / best_of(lambda: pairmi.mi_matrix(a, b, threads=1))
    z = rng.standard_normal((1024, 16384))
    m["gemm_flop_per_s"] = 2 * 1024 * 1024 * 16384 / best_of(lambda: z @ z.T)
    v = rng.standard_normal((64, 65536))
    m["rank_values_per_s"] = v.size / best_of(lambda: normal_scores(v))
    other = pairmi.Accumulator(edges=edges, threads=1).update(chunk)
    nbytes = other._totals["counts"].nbytes
    m["merge_bytes_per_s"] = nbytes / best_of(lambda: acc.merge(other))
    m["pickle_bytes_per_s"] = nbytes / best_of(lambda: pickle.loads(pickle.dumps(other, protocol=5)))
    y = rng.standard_normal((2048, 4096)).astype(np.float32)
    m["gemm32_flop_per_s"] = 2048 * 2048 * 4096 / best_of(lambda: y @ y.T)  # the screen's product (half: symmetric)
    wide = rng.standard_normal((4096, 4096)).astype(np.float32)
    i = np.repeat(np.arange(4096), 32)
    j = (i + rng.integers(1, 4096, size=i.size)) % 4096
    flat = np.unique(np.minimum(i, j) * 4096 + np.maximum(i, j))
    pairs = np.stack([flat // 4096, flat % 4096], axis=1)
    listed = pairmi.PairAccumulator(pairs, edges=pairmi.fit_edges(wide, "equal_frequency"), threads=1).update(wide)
    m["pair_list_pair_samples_per_s"] = len(pairs) * 4096 / best_of(lambda: listed.update(wide))
    m["forward_tokens_per_s"] = forward_rate()
    m["task_overhead_s"] = task_overhead()
    return m


def forward_rate() -> float:
    """GPT-2 small (random weights) on one thread: hidden states of 4 x 128 tokens."""
    import torch
    import transformers

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = transformers.GPT2Model(transformers.GPT2Config()).eval()
    ids = torch.randint(0, 50257, (4, 128))
    with torch.no_grad():
        seconds = best_of(lambda: model(ids, output_hidden_states=True), 2)
    return ids.numel() / seconds


def task_overhead() -> float:
    """Seconds of scheduler and worker time per (empty) task, on 2 worker processes."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", host="127.0.0.1") as cluster,
        Client(cluster) as client,
    ):
        client.gather(client.map(abs, range(100)))  # warm
        t0 = time.perf_counter()
        client.gather(client.map(abs, range(1000, 2000)))
        return 2 * (time.perf_counter() - t0) / 1000


def predict(m: dict[str, float], workers: int, net: float) -> dict[str, dict[str, float]]:
    out = {}
    # (a) 10^8 tokens, GPT-2 small residual stream, binned.
    tokens, layers, d, bins = 1e8, 13, 768, 15
    pairs = layers * d * (d - 1) / 2
    per_token = 1 / m["forward_tokens_per_s"] + pairs / m["accumulate_pair_samples_per_s"]
    compute = tokens * per_token / workers
    state = pairs * bins * bins * 8
    levels = math.ceil(math.log(workers, 8)) if workers > 1 else 0
    merge = levels * (7 * state / net + 8 * state / m["merge_bytes_per_s"] + 8 * state / m["pickle_bytes_per_s"])
    out["a"] = {
        "compute_s": compute,
        "merge_s": merge,
        "total_s": compute + merge,
        "model_share": (1 / m["forward_tokens_per_s"]) / per_token,
    }
    # (b) 36,864 neurons at 10^6 tokens, pair tiles.
    d, n = 36864, 1e6
    tile = 512
    blocks = math.ceil(d / tile)
    tiles = blocks * (blocks + 1) / 2
    rank = d * n / m["rank_values_per_s"] / workers + d * n * 4 / (workers * net)  # ranks, raw values sent once
    flops = 2 * tile * tile * n
    per_tile = flops / m["gemm_flop_per_s"]
    moved = 2 * tile * n * 8
    tile_s = max(per_tile, moved / net)
    copula = rank + math.ceil(tiles / workers) * (tile_s + m["task_overhead_s"])
    out["b_copula"] = {
        "tiles": tiles,
        "tile_compute_s": per_tile,
        "tile_transfer_s": moved / net,
        "total_s": copula,
        "bytes_moved": tiles * moved,
    }
    tile = 1024
    blocks = math.ceil(d / tile)
    tiles = blocks * (blocks + 1) / 2
    per_tile = tile * tile * n / m["tile_pair_samples_per_s"]
    moved = 2 * tile * n  # uint8 codes
    binning = d * n * 4 / (workers * net) + d * n / (5e8 * workers)  # raw values sent once, coded at ~5e8/s
    binned = binning + math.ceil(tiles / workers) * (max(per_tile, moved / net) + m["task_overhead_s"])
    out["b_binned"] = {
        "tiles": tiles,
        "tile_compute_s": per_tile,
        "tile_transfer_s": moved / net,
        "total_s": binned,
        "bytes_moved": tiles * moved,
    }
    out["c_topk"] = topk_plan(m, workers, net)
    return out


# One GPU (c): the H200's stream counted 1,000,000 x 768 pairs in 0.39 s (docs/gpu.md, measured);
# its float32 product rate and GPT-2 small's forward rate there are assumptions, not measurements.
GPU_PAIR_SAMPLES_PER_S = 1e6 * 768 * 767 / 2 / 0.39
GPU_FLOP_PER_S = 50e12  # assumed: an H200's float32 (not TF32) product rate, about its peak
GPU_FORWARD_TOKENS_PER_S = 200e3  # assumed: GPT-2 small, batches of 8 x 1,024 tokens
SAMPLE = 10_000  # the token sample whose binned MI of every pair nominates candidates too


def topk_plan(m: dict[str, float], workers: int | None, net: float, screened: float = 1e8) -> dict[str, float]:
    """(c): 36,864 units, 10^8 tokens, 64 candidates a unit, the screen on the first `screened`
    tokens; on `workers` one-core workers, or on one GPU (None)."""
    tokens, d, candidates, bins = 1e8, 36864, 64, 15
    pairs = d * candidates * 0.7  # each unit's candidates, less the pairs both ends chose (0.68 measured at 4,096)
    screen_flop = (2 * d) ** 2 * screened  # the symmetric product of the 2 d scores, once per screened token
    forward = tokens + screened  # pass 1 runs the model over the screened tokens only
    gram = (2 * d) ** 2 * 8
    counts = pairs * bins * bins * 8
    if workers is None:
        parts = {
            "forward_s": forward / GPU_FORWARD_TOKENS_PER_S,
            "screen_s": 2 * screen_flop / GPU_FLOP_PER_S,  # torch multiplies both triangles
            "count_s": pairs * tokens / GPU_PAIR_SAMPLES_PER_S,
            "sample_s": d * d / 2 * SAMPLE / GPU_PAIR_SAMPLES_PER_S,
            "merge_s": 0.0,
        }
    else:
        levels = math.ceil(math.log(workers, 8)) if workers > 1 else 0
        move = levels * 7 * (gram + counts) / net + levels * 8 * (gram + counts) / m["merge_bytes_per_s"]
        parts = {
            "forward_s": forward / (m["forward_tokens_per_s"] * workers),
            "screen_s": screen_flop / (m["gemm32_flop_per_s"] * workers),
            "count_s": pairs * tokens / (m["pair_list_pair_samples_per_s"] * workers),
            "sample_s": d * d / 2 * SAMPLE / m["pair_list_pair_samples_per_s"],  # on the client, one core
            "merge_s": move,
        }
    return {**parts, "total_s": sum(parts.values()), "worker_bytes": gram + counts, "pairs": pairs}


def hours(s: float) -> str:
    return f"{s / 3600:.1f} h" if s >= 3600 else f"{s / 60:.0f} min" if s >= 60 else f"{s:.0f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network-gbps", type=float, default=10.0, help="network bandwidth per worker (assumed)")
    ap.add_argument("--json")
    args = ap.parse_args()
    m = measure()
    net = args.network_gbps * 1e9 / 8
    print("# measured pieces (one thread each)\n")
    print("| piece | rate |\n| --- | --- |")
    print(f"| binned accumulation | {m['accumulate_pair_samples_per_s']:.3g} pair-samples/s |")
    print(f"| binned tile kernel | {m['tile_pair_samples_per_s']:.3g} pair-samples/s |")
    print(f"| copula product (float64 GEMM) | {m['gemm_flop_per_s'] / 1e9:.1f} GFLOP/s |")
    print(f"| copula ranking to normal scores | {m['rank_values_per_s']:.3g} values/s |")
    print(
        f"| accumulator merge / pickle round trip | {m['merge_bytes_per_s'] / 1e9:.2f} / "
        f"{m['pickle_bytes_per_s'] / 1e9:.2f} GB/s |"
    )
    print(f"| screen product (float32 GEMM) | {m['gemm32_flop_per_s'] / 1e9:.1f} GFLOP/s |")
    print(f"| pair-list accumulation | {m['pair_list_pair_samples_per_s']:.3g} pair-samples/s |")
    print(f"| GPT-2 small forward, residual stream | {m['forward_tokens_per_s']:.0f} tokens/s |")
    print(f"| Dask scheduler, per task | {1e3 * m['task_overhead_s']:.2f} ms |")
    print(f"| network per worker (assumed) | {args.network_gbps:g} Gb/s |")
    print("\n# predicted wall time, workers of one core\n")
    print("| workers | (a) 10^8 tokens, GPT-2 residual, binned | merge part | (b) 36,864 neurons, copula | (b) binned |")
    print("| --- | --- | --- | --- | --- |")
    rows = {}
    for w in (8, 64, 512):
        p = predict(m, w, net)
        rows[w] = p
        print(
            f"| {w} | {hours(p['a']['total_s'])} | {hours(p['a']['merge_s'])} | {hours(p['b_copula']['total_s'])} | "
            f"{hours(p['b_binned']['total_s'])} |"
        )
    print("\n# (c) every GPT-2 MLP neuron's top-16 partners at 10^8 tokens (topk_stream)\n")
    print("| where | screened tokens | total | model (2 passes) | screen | token sample's MI | exact counts | merges | memory |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for screened in (1e8, 1e6):
        for w in (8, 64, 512, None):
            c = topk_plan(m, w, net, screened)
            where = "one H200 (rates: measured stream, assumed product and forward)" if w is None else f"{w} workers"
            print(
                f"| {where} | {screened:.0e} | {hours(c['total_s'])} | {hours(c['forward_s'])} | {hours(c['screen_s'])} | "
                f"{hours(c['sample_s'])} | {hours(c['count_s'])} | {hours(c['merge_s'])} | {c['worker_bytes'] / 1e9:.0f} GB |"
            )
    p = rows[8]
    print(
        f"\n(a) the model's forward pass is {100 * p['a']['model_share']:.0f} % of each token's time. "
        f"(b) copula tile of 512: {p['b_copula']['tile_compute_s']:.0f} s compute against "
        f"{p['b_copula']['tile_transfer_s']:.1f} s transfer; binned tile of 1,024: "
        f"{p['b_binned']['tile_compute_s']:.0f} s against {p['b_binned']['tile_transfer_s']:.1f} s. "
        f"Scheduler overhead under 5 % needs tasks of at least {20 * m['task_overhead_s']:.2f} s."
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "measured": m,
                    "network_gbps": args.network_gbps,
                    "predicted": {str(w): v for w, v in rows.items()},
                    "topk_one_gpu": topk_plan(m, None, net),
                    "topk_screen_1e6": {str(w): topk_plan(m, w, net, 1e6) for w in (8, 64, 512, None)},
                },
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
