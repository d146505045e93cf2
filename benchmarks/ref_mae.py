# PINNED BASELINE -- verbatim copy of /work/shared/bench/ref_mae.py (the project's shared
# reference, DESIGN section 6), kept in the repository so benchmarks/train_step.py can time our
# MAX against it in the same run on any machine. It is the only copied file allowed: do not edit
# it (below this header) and do not import it from the package; it is a yardstick, not our code.
"""Pinned reference: a plain-PyTorch 1-D MAE with the published MAX shapes (timm-style
pre-norm blocks, explicit softmax attention, fp32), used as the same-run baseline for the
project's training-step throughput. Prints spectra/s per config.

usage: ref_mae.py [--config tiny|base] [--batch N] [--steps N]
"""
import argparse, math, time
import torch
from torch import nn

CONFIGS = {  # width, depth, heads, decoder width, decoder depth, decoder heads
    "tiny": (128, 4, 4, 64, 2, 4),
    "base": (768, 12, 12, 512, 8, 16),
}


class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.qkv, self.proj = h, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.h)
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.n1, self.att = nn.LayerNorm(d, eps=1e-6), Attention(d, h)
        self.n2, self.mlp = nn.LayerNorm(d, eps=1e-6), nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.att(self.n1(x))
        return x + self.mlp(self.n2(x))


def sincos(n, d):
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    om = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2))
    return torch.cat([torch.sin(pos * om), torch.cos(pos * om)], 1).float()


class MAE1D(nn.Module):
    def __init__(self, cfg="base", channels=2048, patch=16, mask=0.5):
        super().__init__()
        d, depth, h, dd, ddepth, dh = CONFIGS[cfg]
        self.patch, self.mask, self.n = patch, mask, channels // patch
        self.embed = nn.Conv1d(1, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.register_buffer("pos", torch.cat([torch.zeros(1, d), sincos(self.n, d)])[None])
        self.blocks = nn.ModuleList(Block(d, h) for _ in range(depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.dec_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer("dpos", torch.cat([torch.zeros(1, dd), sincos(self.n, dd)])[None])
        self.dec = nn.ModuleList(Block(dd, dh) for _ in range(ddepth))
        self.dnorm, self.pred = nn.LayerNorm(dd, eps=1e-6), nn.Linear(dd, patch)

    def forward(self, x):  # x: (B, channels), instance-normalised
        b = x.shape[0]
        t = self.embed(x[:, None]).transpose(1, 2) + self.pos[:, 1:]
        keep = int(self.n * (1 - self.mask))
        ids = torch.rand(b, self.n, device=x.device).argsort(1)
        restore = ids.argsort(1)
        t = torch.gather(t, 1, ids[:, :keep, None].expand(-1, -1, t.shape[2]))
        t = torch.cat([(self.cls + self.pos[:, :1]).expand(b, -1, -1), t], 1)
        for blk in self.blocks:
            t = blk(t)
        t = self.dec_embed(self.norm(t))
        m = self.mask_token.expand(b, self.n - keep, -1)
        y = torch.cat([t[:, 1:], m], 1)
        y = torch.gather(y, 1, restore[:, :, None].expand(-1, -1, y.shape[2]))
        y = torch.cat([t[:, :1], y], 1) + self.dpos
        for blk in self.dec:
            y = blk(y)
        pred = self.pred(self.dnorm(y))[:, 1:]
        target = x.reshape(b, self.n, self.patch)
        masked = torch.ones(b, self.n, device=x.device)
        masked[:, :keep] = 0
        masked = torch.gather(masked, 1, restore)
        return (((pred - target) ** 2).mean(-1) * masked).sum() / masked.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    a = ap.parse_args()
    torch.manual_seed(0)
    m = MAE1D(a.config)
    print("trainable parameters", sum(p.numel() for p in m.parameters() if p.requires_grad))
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01)
    x = torch.randn(a.batch, 2048)
    times = []
    for i in range(a.steps + 2):
        t0 = time.perf_counter()
        loss = m(x)
        opt.zero_grad(); loss.backward(); opt.step()
        times.append(time.perf_counter() - t0)
    med = sorted(times[2:])[len(times[2:]) // 2]
    print(f"ref {a.config} batch {a.batch}: {a.batch / med:.1f} spectra/s (median step {med * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
