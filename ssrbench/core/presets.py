"""Run sizes. Every field can be overridden from the command line; the resolved values are recorded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from .budget import PixelBudget
from .errors import ConfigError, format_validation_error
from .limits import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_IMAGES

ADVERSARIAL = ("adversarial_training", "adv_eps", "adv_step_size", "adv_steps")


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    backbone: str
    # every count has an upper bound (ssrbench.core.limits), so a hostile value is refused as the option is read
    train_images: int | None = Field(None, ge=1, le=MAX_IMAGES, description="first N training images; None = all")
    epochs_classifier: int = Field(ge=0, le=MAX_EPOCHS, description="classifier-first, stage 1 (shared by every task)")
    epochs_head: int = Field(
        ge=0, le=MAX_EPOCHS, description="classifier-first, stage 2 (task heads on the frozen backbone)"
    )
    epochs_multitask: int = Field(ge=0, le=MAX_EPOCHS)
    batch_size: int = Field(256, ge=1, le=MAX_BATCH_SIZE)
    optimizer: Literal["sgd", "adam"] = Field(
        "sgd",
        description="backbone and classifier: sgd (Nesterov, momentum 0.9) or adam (betas 0.5/0.999, as PyTorch-GAN)",
    )
    lr: float = Field(
        0.1, gt=0, description="peak learning rate of backbone and classifier (warm-up, then linear decay)"
    )
    head_lr: float = Field(2e-3, gt=0, description="peak Adam learning rate of the task heads")
    weight_decay: float = Field(5e-4, ge=0)
    eval_images: int = Field(ge=1, le=MAX_IMAGES, description="first N test images, the same for every cell")
    eval_batch_size: int = Field(250, ge=1, le=MAX_BATCH_SIZE)
    adversarial_training: Literal["none", "fgsm-rs", "pgd"] = Field(
        "none",
        description="the classifier's cross-entropy on adversarial examples: none, fgsm-rs (Wong et al. "
        "2020: random start, one step of 1.25 eps) or pgd (Madry et al. 2018); classifier-first "
        "trains its classifier so, multitask its classification term (the task loss sees the "
        "clean batch)",
    )
    adv_eps: PixelBudget = Field(8 / 255, gt=0, description="adversarial training: eps, in (0, 1]")
    adv_step_size: PixelBudget = Field(2 / 255, gt=0, description="adversarial training with pgd: step size")
    adv_steps: int = Field(7, ge=1, le=100, description="adversarial training with pgd: steps")
    base: str | None = Field(
        None,
        max_length=300,
        description="classifier-first's frozen classifier, not trained here: robustbench:NAME (a CIFAR-10 L-inf "
        "model of RobustBench's zoo, from --model-dir), an ssrbench.bases entry point or module:factory (with "
        "--base-checkpoint); the task heads train on its features",
    )
    train_precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32",
        description="training arithmetic: fp32, bf16 (autocast) or auto (bf16 on a CUDA device with "
        "bf16, else fp32); attacks and reverse attacks always run in fp32",
    )

    @model_serializer(mode="wrap")
    def _without_defaults_added_later(self, handler):
        """Standard training records no adversarial values, and the default precision none, so configs
        written before they existed stay the same."""
        out = handler(self)
        if self.adversarial_training == "none":
            for name in ADVERSARIAL:
                out.pop(name, None)
        if self.train_precision == "fp32":  # likewise for configs written before the choice existed
            out.pop("train_precision", None)
        if self.base is None:  # likewise for configs written before a base could be chosen
            out.pop("base", None)
        return out


PRESETS: dict[str, Preset] = {
    # seconds: for tests and for checking an installation
    "smoke": Preset(
        backbone="ssr_resnet8",
        train_images=512,
        epochs_classifier=1,
        epochs_head=1,
        epochs_multitask=1,
        batch_size=128,
        eval_images=64,
        eval_batch_size=64,
    ),
    # a laptop CPU: both modes of one task in about a quarter of an hour on 2 cores
    "quick": Preset(
        backbone="ssr_resnet8",
        epochs_classifier=6,
        epochs_head=4,
        epochs_multitask=4,
        eval_images=1000,
    ),
    # off the floor on a laptop CPU (issue "Off the floor"): a fast-FGSM (Wong et al. 2020) adversarially
    # trained base, 8/255. Calibrated by clean and PGD-10 accuracy of the classifier alone on the 512
    # held-out training images adversarial training keeps out (benchmarks/bench_quick_robust.py; never on
    # test images), never by what the reverse attack does on top of it (docs/results/robust.md).
    "quick-robust": Preset(
        backbone="ssr_resnet8",
        epochs_classifier=15,
        epochs_head=4,
        epochs_multitask=15,
        lr=0.2,
        eval_images=1000,
        adversarial_training="fgsm-rs",
        adv_eps=8 / 255,
    ),
    # the source report's experiment: its architecture (PyTorch-GAN's context encoder, split at the
    # bottleneck), 5 epochs per training stage, the first 2,000 test images (--eval-images 10000 for all);
    # every other value is ssrbench's default, the same as quick (docs/source-report.md)
    "seed": Preset(
        backbone="ssr_context_encoder",
        epochs_classifier=5,
        epochs_head=5,
        epochs_multitask=5,
        eval_images=2000,
    ),
    # paper scale, meant for a GPU: bf16 training there (2.1x a fp32 step of resnet18 at batch 128 on an
    # H200, benchmarks/bench_speed.py), fp32 on a CPU
    "full": Preset(
        backbone="resnet18",
        epochs_classifier=30,
        epochs_head=15,
        epochs_multitask=30,
        batch_size=128,
        lr=0.05,
        eval_images=10000,
        eval_batch_size=500,
        train_precision="auto",
    ),
    # Mao et al. 2021's setting as Croce et al. 2022 re-evaluated it, meant for one GPU: Carmon et al. 2019's RST
    # WideResNet-28-10 from RobustBench's zoo as the frozen base, contrastive heads trained on its features, the
    # first 1,000 test images; its tasks and attacks are PRESET_RUNS["mao21"]. Head epochs are ssrbench's choice
    # (no classifier is trained: the base is the published one; the backbone field is unused with a base)
    "mao21": Preset(
        backbone="resnet18",
        base="robustbench:Carmon2019Unlabeled",
        epochs_classifier=0,
        epochs_head=30,
        epochs_multitask=0,
        batch_size=128,
        eval_images=1000,
        eval_batch_size=100,
        train_precision="auto",
    ),
}

DEFAULT_PRESET = "quick"


@dataclass(frozen=True)
class PresetRun:
    """What ``run`` evaluates with a preset when --tasks, --attacks or --modes are not given."""

    tasks: tuple[str, ...] = ("inpaint",)
    attacks: tuple[str, ...] = ("fgsm", "pgd2")
    modes: tuple[str, ...] = ("multitask", "classifier-first")


PRESET_RUNS: dict[str, PresetRun] = {
    # Croce et al. 2022's protocol for Mao et al.'s defense: transfer from the static base (APGD-CE crafted on the
    # classifier, then reverse-attacked), the standard AutoAttack on the base, BPDA, and BPDA+EOT over 20 draws
    # of the randomised reverse attack; plus Mao et al.'s own defense-aware attack
    "mao21": PresetRun(
        tasks=("contrastive-mao21",),
        attacks=("apgd-ce", "autoattack", "bpda-apgd-ce", "eot-apgd-ce", "ssl-aware-mao21"),
        modes=("classifier-first",),
    ),
}


def preset_run(name: str) -> PresetRun:
    return PRESET_RUNS.get(name, PresetRun())


@dataclass(frozen=True)
class PresetField:
    """One value a preset sets, described for a front end (the command line makes an option of each)."""

    name: str
    type: type  # int, float or str (the value's type when set; a field that may be None is still an int)
    choices: tuple[str, ...] | None  # the allowed values, when there is a fixed set
    bounds: dict[str, float]  # the field's declared limits: any of "gt", "ge", "le"
    description: str


def preset_fields() -> Iterator[PresetField]:
    """Every field of ``Preset``, in declaration order, read from the model so a new field needs no other edit."""
    for name, field in Preset.model_fields.items():
        ann = field.annotation
        choices = get_args(ann) if get_origin(ann) is Literal else None
        if choices is not None:
            typ = type(choices[0])
        else:
            typ = next((a for a in get_args(ann) if a is not type(None)), ann)  # int | None -> int
        bounds = {
            b: getattr(m, b) for m in field.metadata for b in ("gt", "ge", "le") if getattr(m, b, None) is not None
        }
        yield PresetField(name, typ, choices, bounds, field.description or name.replace("_", " "))


def resolve_preset(name: str, overrides: dict[str, Any]) -> Preset:
    """The preset ``name`` with ``overrides`` (field -> value) applied and checked; a bad value is a ConfigError."""
    try:
        return Preset(**{**PRESETS[name].model_dump(), **overrides})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(f"preset {name!r} with the given options", exc)) from exc
