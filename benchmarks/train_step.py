"""Training-step throughput of our MAX against the pinned reference MAE, in the same run.

One step = forward (masking, encoder, decoder, masked MSE) + backward + AdamW update, on a batch
of random already-scaled spectra, exactly as each side trains: ours with the engine's optimizer
(fused AdamW, decay groups), gradient clipping and, on CUDA, bf16 autocast with fused attention;
the reference (benchmarks/ref_mae.py, untouched) with its own fp32 forward and a plain AdamW.
Steps of the two models alternate (and swap order) so machine noise hits both alike; the figure
is the median spectra/s over the timed steps after warm-up, and the ratio is ours / reference
(>= 1: ours no slower). On a shared CPU the absolute numbers move with the load; the ratio much
less.

usage: python benchmarks/train_step.py [--config tiny|base|all] [--steps N] [--device auto|cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ref_mae import MAE1D  # noqa: E402  (the pinned baseline beside this file)

from xrfhub_max.config import MaxConfig  # noqa: E402
from xrfhub_max.engine import autocast, build_optimizer, pick_device  # noqa: E402
from xrfhub_max.model import MaxAutoencoder, count_parameters  # noqa: E402

BATCH = {"tiny": 64, "base": 8}  # what the 2-core CPU affords; DESIGN section 8
STEPS = {"tiny": 10, "base": 3}
WARMUP = 2


def our_step(model, optimizer, x, config, device):
    with autocast(device, config.amp):
        loss, _, _ = model(x)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
    optimizer.step()


def ref_step(model, optimizer, x):
    loss = model(x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def timed(step, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench(name: str, steps: int, batch: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    config = MaxConfig.from_preset(name)
    ours = MaxAutoencoder(config).to(device)
    ours_opt = build_optimizer(ours, config, config.lr)
    ref = MAE1D(name, channels=config.channels, patch=config.patch,
                mask=config.mask_ratio).to(device)
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01)
    assert count_parameters(ours) == count_parameters(ref), "the two models must be the same size"
    x = torch.randn(batch, config.channels, device=device)
    ours_t, ref_t = [], []
    for i in range(WARMUP + steps):
        # swap which model goes first each step, so neither always runs on a warm cache
        if i % 2:
            b = timed(lambda: ref_step(ref, ref_opt, x), device)
            a = timed(lambda: our_step(ours, ours_opt, x, config, device), device)
        else:
            a = timed(lambda: our_step(ours, ours_opt, x, config, device), device)
            b = timed(lambda: ref_step(ref, ref_opt, x), device)
        if i >= WARMUP:
            ours_t.append(a)
            ref_t.append(b)
    ours_s, ref_s = batch / statistics.median(ours_t), batch / statistics.median(ref_t)
    return {"config": name, "batch": batch, "steps": steps, "params": count_parameters(ours),
            "ours": ours_s, "ref": ref_s, "ratio": ours_s / ref_s}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="all", choices=["tiny", "base", "all"])
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default tiny 10, base 3)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default tiny 64, base 8)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    names = ["tiny", "base"] if args.config == "all" else [args.config]
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'bf16 autocast' if device.type == 'cuda' else 'fp32'} for ours, fp32 for ref")
    for name in names:
        r = bench(name, args.steps or STEPS[name], args.batch or BATCH[name], device)
        print(f"{r['config']:>5} batch {r['batch']:>4} ({r['params']:,} params, "
              f"median of {r['steps']}): ours {r['ours']:8.1f} spectra/s   "
              f"ref {r['ref']:8.1f} spectra/s   ratio {r['ratio']:.2f}", flush=True)


if __name__ == "__main__":
    main()
