"""Run sizes. Every field can be overridden from the command line; the resolved values are recorded."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    backbone: str
    train_images: int | None = Field(None, ge=1, description="first N training images; None = all")
    epochs_classifier: int = Field(ge=0, description="classifier-first, stage 1 (shared by every task)")
    epochs_head: int = Field(ge=0, description="classifier-first, stage 2 (task heads on the frozen backbone)")
    epochs_multitask: int = Field(ge=0)
    batch_size: int = Field(256, ge=1)
    optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="backbone and classifier: sgd (Nesterov, momentum 0.9) or adam (betas 0.5/0.999, as PyTorch-GAN)")
    lr: float = Field(0.1, gt=0, description="peak learning rate of backbone and classifier (warm-up, then linear decay)")
    head_lr: float = Field(2e-3, gt=0, description="peak Adam learning rate of the task heads")
    weight_decay: float = Field(5e-4, ge=0)
    eval_images: int = Field(ge=1, description="first N test images, the same for every cell")
    eval_batch_size: int = Field(250, ge=1)


PRESETS: dict[str, Preset] = {
    # seconds: for tests and for checking an installation
    "smoke": Preset(
        backbone="ssr_resnet8", train_images=512, epochs_classifier=1, epochs_head=1, epochs_multitask=1,
        batch_size=128, eval_images=64, eval_batch_size=64,
    ),
    # a laptop CPU: both modes of one task in about a quarter of an hour on 2 cores
    "quick": Preset(
        backbone="ssr_resnet8", epochs_classifier=6, epochs_head=4, epochs_multitask=4, eval_images=1000,
    ),
    # the source report's experiment: its architecture (PyTorch-GAN's context encoder, split at the
    # bottleneck), 5 epochs per training stage, the first 2,000 test images (--eval-images 10000 for all);
    # every other value is ssrbench's default, the same as quick (README: "Reproducing the report")
    "seed": Preset(
        backbone="ssr_context_encoder", epochs_classifier=5, epochs_head=5, epochs_multitask=5, eval_images=2000,
    ),
    # paper scale, meant for a GPU
    "full": Preset(
        backbone="resnet18", epochs_classifier=30, epochs_head=15, epochs_multitask=30, batch_size=128,
        lr=0.05, eval_images=10000, eval_batch_size=500,
    ),
}

DEFAULT_PRESET = "quick"
