"""Import the published MAX weights (the MAE layout of dispink/xpt) into our models.

The authors of MAX (source document 000) trained with code built on MAE: a pre-training
checkpoint holds ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.*`` (timm blocks:
``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``), ``norm``, and the
decoder's ``decoder_embed``, ``mask_token``, ``decoder_pos_embed``, ``decoder_blocks.N.*``,
``decoder_norm``, ``decoder_pred``; a fine-tuned regressor holds the encoder part and ``fc.0``,
the linear layer of ``fc = Sequential(Linear(width, 1), Sigmoid())`` whose output, times 100, is
the target in wt%. Our modules compute the same functions under other names (``encoder.*``,
``decoder.embed``, ``decoder.head``, ``head``), so importing is a renaming plus checks:

- the file is read with ``torch.load(weights_only=True)`` (no pickled code runs) or as
  safetensors; a ``{"model": state_dict, ...}`` training checkpoint and DDP's ``module.``
  prefixes are unwrapped;
- the architecture (width, depth, patch, channels, MLP ratio, decoder size) is read from the
  tensor shapes; attention heads cannot be (``qkv`` has the same shape for any head count), so
  they come from the configuration (ViT-Base: 12 encoder, 16 decoder heads, our defaults);
- every mapped tensor's shape is checked against our model, and every checkpoint key must be
  mapped or knowingly ignored (the decoder when a regressor is built); the stored sin-cos
  position tables must equal the ones our model computes;
- a plain ``fc`` (a Linear without the published Sigmoid) says nothing of its output's scale, so
  it is not imported: the head starts fresh and the fine-tune learns it (recorded);
- the spectra are scaled as the authors scaled them: per channel with their mean and standard
  deviation over the 44,168 spectra MAX was pre-trained on (``xrfhub/data/
  xpt_spe_channel_mean_std.csv``, provenance in ``xrfhub/data/PROVENANCE.md``), unless the
  configuration names another transform. Channels the authors' std is 0 for are divided by 1.

A Hugging Face cache is read offline (``huggingface_hub.snapshot_download(local_files_only=True)``):
``--init`` may name a cache folder (``~/.cache/huggingface/hub``), one repository's folder in it
(``models--OWNER--NAME``) or a snapshot folder; the single weights file found there is imported.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any


from xrfhub.errors import ConfigError

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
STATS_CSV = Path(__file__).resolve().parents[2] / "xrfhub" / "data" / "xpt_spe_channel_mean_std.csv"
STATS_SOURCE = "dispink/xpt src/datas/xpt_spe_{mean,std}.pth via xrfhub/data/xpt_spe_channel_mean_std.csv"
IMPORT_FILE = "imported.json"

# MAE name -> ours, for the encoder (prefix "encoder." in both our models)
_ENCODER = [(r"^patch_embed\.proj\.(weight|bias)$", r"patch_embed.proj.\1"),
            (r"^cls_token$", "cls_token"),
            (r"^blocks\.(\d+)\.(.+)$", r"blocks.\1.\2"),
            (r"^norm\.(weight|bias)$", r"norm.\1")]
_DECODER = [(r"^decoder_embed\.(weight|bias)$", r"embed.\1"),
            (r"^mask_token$", "mask_token"),
            (r"^decoder_blocks\.(\d+)\.(.+)$", r"blocks.\1.\2"),
            (r"^decoder_norm\.(weight|bias)$", r"norm.\1"),
            (r"^decoder_pred\.(weight|bias)$", r"head.\1")]
_FIXED = ("pos_embed", "decoder_pos_embed")  # fixed sin-cos tables: checked, not loaded


def is_published(init) -> bool:
    """True when ``--init`` names outside weights (a file or a folder without ``run.json``)."""
    path = Path(init)
    return path.is_file() or (path.is_dir() and not (path / "run.json").is_file())


def weights_file(init) -> Path:
    """The weights file ``init`` names: itself, or the one file in a Hugging Face cache folder."""
    path = Path(init)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"--init {init}: no such file or folder")
    folder = _snapshot(path)
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    if len(found) != 1:
        listed = ", ".join(str(p.relative_to(folder)) for p in found[:8]) or "none"
        raise ConfigError(f"--init {init}: expected one weights file ({', '.join(WEIGHT_SUFFIXES)}) in "
                          f"{folder}, found {len(found)} ({listed}); pass the file itself")
    return found[0]


def _snapshot(path: Path) -> Path:
    """The snapshot folder of a Hugging Face cache (root, repository folder or snapshot)."""
    repos = sorted(p for p in path.glob("models--*") if p.is_dir())
    if repos:  # the cache root
        if len(repos) != 1:
            raise ConfigError(f"--init {path}: a Hugging Face cache with {len(repos)} models "
                              f"({', '.join(p.name for p in repos[:6])}); name one of their folders")
        path = repos[0]
    if path.name.startswith("models--"):
        from huggingface_hub import snapshot_download

        repo_id = path.name[len("models--"):].replace("--", "/")
        try:  # offline: only what the cache holds, no network
            return Path(snapshot_download(repo_id, cache_dir=path.parent, local_files_only=True))
        except Exception as e:  # huggingface_hub raises several types for an incomplete cache
            raise ConfigError(f"--init {path}: cannot read {repo_id!r} from the Hugging Face cache "
                              f"offline ({type(e).__name__}: {e})") from e
    return path


def read_state(init) -> tuple[dict[str, Any], Path]:
    """The checkpoint's tensors by MAE name (unwrapped), and the file they came from."""
    import torch

    path = weights_file(init)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refusals, truncated files, not a checkpoint at all
        why = str(e)
        refused = re.search(r"WeightsUnpickler error: ([^\n]*?\.)(?: |$)", why)
        why = (f"it holds more than tensors, which xrfhub never unpickles: {refused.group(1)}" if refused
               else f"{type(e).__name__}: {why.splitlines()[0] if why else ''}")
        raise ConfigError(f"{path}: cannot read it as torch weights with weights_only=True ({why})") from e
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(f"{path}: expected a state dict of tensors (MAE layout), got "
                          f"{type(state).__name__} with keys {list(state)[:6] if isinstance(state, dict) else ''}")
    state = {re.sub(r"^module\.", "", k): v for k, v in state.items()}
    if "patch_embed.proj.weight" not in state:
        raise ConfigError(f"{path}: no 'patch_embed.proj.weight': not MAE-layout MAX weights "
                          f"(keys start {', '.join(list(state)[:6])})")
    return state, path


def inferred_config(state: dict[str, Any]) -> dict[str, Any]:
    """The architecture the tensors imply (heads excepted), the head kind and the transform."""
    proj = state["patch_embed.proj.weight"]
    if proj.ndim != 3 or proj.shape[1] != 1:
        raise ConfigError(f"patch_embed.proj.weight has shape {tuple(proj.shape)}; expected "
                          "(width, 1, patch), a Conv1d over one spectrum")
    width, patch = int(proj.shape[0]), int(proj.shape[2])
    config: dict[str, Any] = {"width": width, "patch": patch, "transform": "channel",
                              "depth": _count(state, "blocks"),
                              "head": "sigmoid100" if "fc.0.weight" in state else "linear"}
    if "pos_embed" in state:
        config["channels"] = (int(state["pos_embed"].shape[1]) - 1) * patch
    if "blocks.0.mlp.fc1.weight" in state:
        config["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / width
    if "decoder_embed.weight" in state:
        config["decoder_width"] = int(state["decoder_embed.weight"].shape[0])
        config["decoder_depth"] = _count(state, "decoder_blocks")
    return config


def _count(state, prefix: str) -> int:
    numbers = {int(m.group(1)) for k in state if (m := re.match(rf"^{prefix}\.(\d+)\.", k))}
    if numbers and numbers != set(range(len(numbers))):
        raise ConfigError(f"{prefix}: block numbers {sorted(numbers)} are not 0..{len(numbers) - 1}")
    return len(numbers)


def load_into(model, state: dict[str, Any], source: Path) -> dict[str, Any]:
    """Copy the MAE-named tensors into our ``MaxAutoencoder`` or ``MaxRegressor``; returns a
    record of what was mapped, ignored and left fresh. Shapes and fixed tables are checked."""
    import torch

    from .model import MaxAutoencoder, sincos_positions

    autoencoder = isinstance(model, MaxAutoencoder)
    ours = model.state_dict()
    mapped, ignored, problems = {}, [], []
    for key, tensor in state.items():
        name = _our_name(key, autoencoder)
        if key in _FIXED:
            part = model.encoder if key == "pos_embed" else getattr(model, "decoder", None)
            if part is None:
                ignored.append(key)
                continue
            table = sincos_positions(part.pos_embed.shape[1] - 1, part.pos_embed.shape[2])[None]
            if tuple(tensor.shape) != tuple(table.shape):
                problems.append(f"{key}: shape {tuple(tensor.shape)}, our model has {tuple(table.shape)}")
            elif not torch.allclose(tensor.float(), table, atol=1e-4):
                problems.append(f"{key}: not the fixed 1-D sin-cos table our model computes "
                                f"(max difference {float((tensor.float() - table).abs().max()):.3g})")
            continue
        if name is None:
            ignored.append(key)
            continue
        if name not in ours:
            problems.append(f"{key} -> {name}: our model has no such parameter (depth or layout differ)")
        elif tuple(ours[name].shape) != tuple(tensor.shape):
            problems.append(f"{key} -> {name}: shape {tuple(tensor.shape)}, ours {tuple(ours[name].shape)}")
        else:
            mapped[name] = tensor.to(ours[name].dtype)
    if "head.weight" in mapped and model.config.head != "sigmoid100":
        problems.append("fc.0 is the published head, 100 * sigmoid(linear): keep head=sigmoid100 "
                        "(it was set from the checkpoint) rather than overriding it")
    fresh = sorted(set(ours) - set(mapped))
    needed = [k for k in fresh if not (k.startswith("head.") and not autoencoder)]
    if needed:
        problems.append(f"our model's {', '.join(needed[:6])}{' ...' if len(needed) > 6 else ''} "
                        "have no counterpart in the checkpoint")
    if problems:
        raise ConfigError(f"{source}: cannot import into the MAX "
                          f"{'autoencoder' if autoencoder else 'regressor'}: " + "; ".join(problems[:8])
                          + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else ""))
    unknown = [k for k in ignored if not re.match(r"^(decoder_|mask_token|fc\.)", k)]
    if unknown:  # not a key the MAE layout has: the file is something else
        raise ConfigError(f"{source}: keys outside the MAE layout: {', '.join(unknown[:8])}")
    model.load_state_dict({**ours, **mapped})
    return {"file": str(source), "sha256": _sha256(source), "mapped": len(mapped),
            "ignored": sorted(ignored), "fresh": fresh,
            "head": ("published fc.0 (100 * sigmoid)" if "head.weight" in mapped
                     else "fresh (no usable fc head: learned by the fine-tune)") if not autoencoder else None}


def _our_name(key: str, autoencoder: bool) -> str | None:
    for pattern, repl in _ENCODER:
        if re.match(pattern, key):
            return "encoder." + re.sub(pattern, repl, key)
    if autoencoder:
        for pattern, repl in _DECODER:
            if re.match(pattern, key):
                return "decoder." + re.sub(pattern, repl, key)
        return None
    if re.match(r"^fc\.0\.(weight|bias)$", key):
        return "head." + key.split(".")[-1]
    return None


def authors_transform():
    """The authors' per-channel scaling (their mean and std of raw counts over 2048 channels)."""
    import pandas as pd

    from .transforms import Transform

    table = pd.read_csv(STATS_CSV)
    return Transform("channel", mean=table["mean_counts"].to_numpy(), std=table["std_counts"].to_numpy())


def transform_for(config):
    """The transform an imported model is fed with: the authors' statistics for ``channel``
    (they must cover the model's channels), else None (the engine's default for the kind)."""
    if config.transform != "channel":
        return None
    transform = authors_transform()
    if transform.mean.size != config.channels:
        raise ConfigError(f"the authors' channel statistics cover {transform.mean.size} channels, the "
                          f"model {config.channels}; pass --set transform=instance")
    return transform


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe(record: dict[str, Any], config) -> dict[str, Any]:
    """The ``imported.json`` of a run: what was imported and on which assumptions."""
    return {**record, "transform": config.transform,
            "normalisation": STATS_SOURCE if config.transform == "channel" else config.transform,
            "heads": [config.heads, config.decoder_heads],
            "note": "attention heads are not stored in the weights; taken from the configuration. The "
                    "published weights were trained on the authors' cores: held-out cores of this store "
                    "that were among them are not unseen by the model."}
