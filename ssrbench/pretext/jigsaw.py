"""Jigsaw puzzles (Noroozi & Favaro 2016), a context-free network on the shared backbone.

The image is cut into a grid of tiles, each from its own cell with a random gap and jitter (so no
edge continuity gives the order away), converted to grey at random and standardised per tile (so
colour and brightness do not either). Every tile goes through the shared backbone on its own
(siamese, shared weights); the tile features are concatenated in shuffled order and a head predicts
which permutation of a fixed maximal-Hamming set was applied.

Evaluation and the reverse attack use one seeded tile draw and a fixed subset of permutations, so
they are deterministic and differentiable down to the pixels.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ..core.limits import MAX_SEED
from ..models.backbone import FeatureSpec
from ..models.bn_stats import BatchNormStats
from .base import PretextTask, TaskLoss, TaskParams
from .permutations import max_hamming_set, min_hamming_distance, set_fingerprint


class JigsawParams(TaskParams):
    grid: int = Field(3, ge=2, le=3, description="tiles per side")
    tile_size: int = Field(7, ge=2, description="tile side in pixels, cut from a cell of image_size // grid")
    tile_input: int = Field(0, ge=0, le=256, description="resize tiles to this side for the backbone; 0 = as cut")
    permutations: int = Field(64, ge=2, le=1000, description="size of the permutation set")
    permutation_seed: int = Field(0, ge=0, le=MAX_SEED)
    gray_prob: float = Field(0.3, ge=0.0, le=1.0, description="chance a training tile is made grey")
    hidden: int = Field(512, ge=1, le=16384)
    reverse_permutations: int = Field(
        16, ge=1, description="fixed subset (the first K of the set) for reverse loss and metric"
    )
    eval_seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the fixed tile draw used at evaluation")
    separate_bn_stats: bool = Field(True, description="tiles keep their own BatchNorm running statistics")
    multitask_weight: float = Field(2.0, ge=0.0)

    @model_validator(mode="after")
    def _subset_fits(self) -> JigsawParams:
        if self.reverse_permutations > self.permutations:
            raise ValueError("reverse_permutations cannot exceed permutations")
        return self


class JigsawTask(PretextTask):
    name = "jigsaw"
    version = "1"
    Params = JigsawParams
    metric_name = "perm_acc"
    higher_is_better = True

    def __init__(self, params=None):
        super().__init__(params)
        p = self.params
        self.perms = torch.from_numpy(max_hamming_set(p.grid * p.grid, p.permutations, p.permutation_seed).copy())

    # -- what the leaderboard should know -----------------------------------------------------
    def describe(self) -> dict:
        return {
            "permutation_set": set_fingerprint(self.perms.numpy()),
            "min_hamming_distance": min_hamming_distance(self.perms.numpy()),
        }

    # -- geometry ------------------------------------------------------------------------------
    def geometry(self, image_size: int) -> tuple[int, int, int]:
        """(cell, max_jitter, max_origin): the tile sits in [jitter, jitter + tile) of its cell, with
        jitter <= cell - tile - 1, so at least one pixel of every cell is never used: a gap always."""
        p = self.params
        cell = image_size // p.grid
        max_jitter = cell - p.tile_size - 1
        if max_jitter < 0:
            raise ValueError(f"tile_size {p.tile_size} leaves no gap in a {cell}-pixel cell (at most {cell - 1})")
        return cell, max_jitter, image_size - p.grid * cell

    def tile_corners(
        self, b: int, image_size: int, generator: torch.Generator | None, device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-left corners (B, T) of every tile; random per image with a generator, one fixed draw without."""
        g = self.params.grid
        cell, max_jitter, max_origin = self.geometry(image_size)
        gen = generator if generator is not None else torch.Generator().manual_seed(self.params.eval_seed)
        n = b if generator is not None else 1
        dev = gen.device
        origin = torch.randint(0, max_origin + 1, (n, 2, 1), generator=gen, device=dev)
        jitter = torch.randint(0, max_jitter + 1, (n, 2, g * g), generator=gen, device=dev)
        cells = torch.arange(g, device=dev) * cell
        base_y = cells.repeat_interleave(g)  # row-major cell order
        base_x = cells.repeat(g)
        ys = origin[:, 0] + base_y + jitter[:, 0]
        xs = origin[:, 1] + base_x + jitter[:, 1]
        return ys.to(device).expand(b, -1), xs.to(device).expand(b, -1)

    def cut_tiles(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, T, C, t, t) tiles in row-major cell order, in pixel space."""
        b, c, s, _ = x.shape
        t = self.params.tile_size
        ys, xs = self.tile_corners(b, s, generator, x.device)
        ar = torch.arange(t, device=x.device)
        rows = (ys[..., None] + ar)[..., :, None]  # B, T, t, 1
        cols = (xs[..., None] + ar)[..., None, :]  # B, T, 1, t
        bidx = torch.arange(b, device=x.device)[:, None, None, None]
        return x.permute(0, 2, 3, 1)[bidx, rows, cols].permute(0, 1, 4, 2, 3)

    def prepare(self, tiles: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Grey at random (training only), then per-tile, per-channel standardisation: no colour or
        brightness shortcut. Differentiable."""
        if generator is not None and self.params.gray_prob > 0:
            b, n = tiles.shape[:2]
            grey = (
                torch.rand(b, n, generator=generator, device=generator.device).to(tiles.device) < self.params.gray_prob
            )
            tiles = torch.where(grey[..., None, None, None], tiles.mean(2, keepdim=True).expand_as(tiles), tiles)
        mean = tiles.mean(dim=(3, 4), keepdim=True)
        var = tiles.var(dim=(3, 4), keepdim=True, unbiased=False)
        return (tiles - mean) / torch.sqrt(var + 1e-4)

    def tile_features(self, model, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, T, C): every tile through the shared backbone on its own."""
        tiles = self.prepare(self.cut_tiles(x, generator), generator)
        b, n = tiles.shape[:2]
        flat = tiles.flatten(0, 1)
        if self.params.tile_input:
            flat = F.interpolate(flat, size=(self.params.tile_input,) * 2, mode="bilinear", align_corners=False)
        flat = flat.contiguous(memory_format=torch.channels_last)
        with model.heads["tile_bn"].active(model.backbone) if self.params.separate_bn_stats else nullcontext():
            f = model.backbone.forward_head(model.task_features(flat, normalize=False), pre_logits=True)
        return f.view(b, n, -1)

    def _logits(self, model, feats: torch.Tensor, perm_idx: torch.Tensor) -> torch.Tensor:
        """Head on tiles shuffled by permutation ``perm_idx[i]`` for image i."""
        order = self.perms.to(feats.device)[perm_idx]  # B, T: position j holds tile order[j]
        shuffled = feats.gather(1, order[..., None].expand(-1, -1, feats.shape[-1]))
        return model.heads["jigsaw"](shuffled.flatten(1))

    # -- the contract ----------------------------------------------------------------------------
    def build_heads(self, spec: FeatureSpec) -> dict[str, nn.Module]:
        self.geometry(spec.image_size)  # fail early on impossible geometry
        p = self.params
        heads: dict[str, nn.Module] = {
            "jigsaw": nn.Sequential(
                nn.Linear(p.grid * p.grid * spec.channels, p.hidden),
                nn.BatchNorm1d(p.hidden),
                nn.ReLU(inplace=True),
                nn.Linear(p.hidden, p.permutations),
            )
        }
        if p.separate_bn_stats:
            heads["tile_bn"] = BatchNormStats()
        return heads

    def training_loss(self, model, x, generator):
        feats = self.tile_features(model, x, generator)
        target = torch.randint(
            0, self.params.permutations, (x.shape[0],), generator=generator, device=generator.device
        ).to(x.device)
        logits = self._logits(model, feats, target)
        return TaskLoss(F.cross_entropy(logits, target), {"perm_acc": (logits.argmax(1) == target).float().mean()})

    def _fixed_subset(self, model, x):
        feats = self.tile_features(model, x, None)
        k = self.params.reverse_permutations
        b = x.shape[0]
        target = torch.arange(k, device=x.device).repeat_interleave(b)
        logits = self._logits(model, feats.repeat(k, 1, 1), target)
        return logits, target, k

    def reverse_loss(self, model, x):
        logits, target, k = self._fixed_subset(model, x)
        return F.cross_entropy(logits, target, reduction="none").view(k, -1).mean(0)

    def pretext_metric(self, model, x):
        logits, target, k = self._fixed_subset(model, x)
        return (logits.argmax(1) == target).float().view(k, -1).mean(0)

    def preview(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images for `ssrbench peek`: the tiles as cut (with their gaps) and as fed, shuffled."""
        p = self.params
        gen = torch.Generator().manual_seed(p.eval_seed + 1)
        tiles = self.cut_tiles(x, gen)
        fed = self.prepare(tiles, gen)
        fed = (fed * 0.2 + 0.5).clamp(0, 1)  # standardised values shown around mid-grey
        order = self.perms[torch.randint(0, p.permutations, (x.shape[0],), generator=gen)]
        shuffled = fed.gather(1, order[..., None, None, None].expand_as(fed))
        return {"tiles as cut": _grid(tiles, p.grid), "tiles as fed (shuffled)": _grid(shuffled, p.grid)}


def _grid(tiles: torch.Tensor, g: int, pad: int = 1) -> torch.Tensor:
    """(B, T, C, t, t) -> (B, C, H, W) with white lines between tiles, for display."""
    b, _, c, t, _ = tiles.shape
    side = g * t + (g + 1) * pad
    out = torch.ones(b, c, side, side)
    for i in range(g * g):
        r, col = divmod(i, g)
        y, x = pad + r * (t + pad), pad + col * (t + pad)
        out[:, :, y : y + t, x : x + t] = tiles[:, i]
    return out
