"""The records a leaderboard is made of: accuracies, cells, training stages, environment.

Each record validates itself against what it claims (counts, per-image flags, intervals), so a doctored
file is refused on load rather than rendered.
"""

from __future__ import annotations

import base64
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..core.budget import ReverseConfig, ThreatModel
from ..core.limits import MAX_RETRIES, MAX_THREADS
from ..core.stats import F16_MAX, pack_bits, pack_float16, unpack_bits, unpack_float16, wilson_interval

# Bounds on what a file may claim about where and how long work ran: beyond them a value is a typo or a doctoring.
EXECUTORS = ("local", "ray")  # `ssrbench run --executor`
MAX_SECONDS = 366 * 24 * 3600.0  # any duration in a leaderboard: a year

Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]


def check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinity anywhere in a free-form value (parameters, configs): JSON has no form for them,
    and Python's json reads them all the same."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}: only finite numbers belong in a leaderboard")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_finite(v, f"{where}[{i}]")


def seeded(label: str, seed: int, shown: bool = True) -> str:
    """``label (seed N)``: how every table row and message names the training seed a result comes from; ``shown``
    False (a file of one seed) leaves the label as it is."""
    return f"{label} (seed {seed})" if shown else label


class Record(BaseModel):
    # NaN and infinity have no JSON form: refusing them here means a run never writes what `show` cannot read
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Accuracy(Record):
    """Top-1 accuracy in percent on the cell's images, with a 95% Wilson interval."""

    correct: int = Field(ge=0)
    n: int = Field(ge=1)
    percent: float = Field(ge=0, le=100)
    ci95: tuple[float, float]
    per_image: str = Field(description="base64 of numpy.packbits(correct flags), in image order")

    @classmethod
    def from_flags(cls, flags) -> Accuracy:
        n, c = len(flags), int(sum(bool(f) for f in flags))
        return cls(correct=c, n=n, percent=100 * c / n, ci95=wilson_interval(c, n), per_image=pack_bits(flags))

    @model_validator(mode="after")
    def _consistent(self) -> Accuracy:
        if self.correct > self.n:
            raise ValueError(f"correct={self.correct} > n={self.n}")
        if abs(self.percent - 100 * self.correct / self.n) > 1e-6:
            raise ValueError("percent does not match correct / n")
        if len(base64.b64decode(self.per_image, validate=True)) != (self.n + 7) // 8:
            raise ValueError(f"per_image holds the wrong number of flags for n={self.n}")
        if int(unpack_bits(self.per_image, self.n).sum()) != self.correct:
            raise ValueError("per_image flags do not add up to correct")
        expected = wilson_interval(self.correct, self.n)
        if not all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(self.ci95, expected)):
            raise ValueError(
                f"ci95 {list(self.ci95)} is not the 95% Wilson interval of {self.correct}/{self.n} "
                f"({[round(v, 6) for v in expected]})"
            )
        return self

    def flags(self):
        return unpack_bits(self.per_image, self.n)


class PerImage(Record):
    """The pretext metric of every evaluated image (float16, base64: 2 bytes an image), so a detector
    built on it can be scored, and recomputed and compared across commits."""

    n: int = Field(ge=1)
    clean: str
    adversarial: str
    adversarial_reversed: str

    @classmethod
    def from_arrays(cls, clean, adversarial, adversarial_reversed) -> PerImage:
        return cls(
            n=len(clean),
            clean=pack_float16(clean),
            adversarial=pack_float16(adversarial),
            adversarial_reversed=pack_float16(adversarial_reversed),
        )

    @model_validator(mode="after")
    def _sizes(self) -> PerImage:
        for name in ("clean", "adversarial", "adversarial_reversed"):
            if not np.isfinite(self.values(name)).all():  # values() raises on a wrong length or bad base64
                raise ValueError(f"{name} holds a non-finite value: the run writes finite ones only")
        return self

    def values(self, which: str):
        return unpack_float16(getattr(self, which), self.n)


class Pretext(Record):
    """The task's own metric on the evaluated images: does the attack hurt the pretext task?"""

    metric: str
    higher_is_better: bool
    clean: float
    adversarial: float
    adversarial_reversed: float
    per_image: PerImage | None = Field(None, description="every image's value (None in files before schema 3)")

    @model_validator(mode="after")
    def _means_match(self) -> Pretext:
        """Each mean is the mean of its per-image values, to float16's precision (the values are stored as
        float16; values clipped to its range bound nothing and are skipped)."""
        if self.per_image is None:
            return self
        for name in ("clean", "adversarial", "adversarial_reversed"):
            v = self.per_image.values(name)
            if (np.abs(v) >= F16_MAX).any():
                continue
            mean, stored = float(v.mean()), getattr(self, name)
            if abs(mean - stored) > 2.0**-10 * float(np.abs(v).mean()) + 1e-6:
                raise ValueError(f"{name} {stored!r} is not the mean of its per-image values ({mean:.6g})")
        return self


class SweepPoint(Record):
    """Where a sweep point sits (``run --attack-eps`` ...): the named config it was expanded from and its
    coordinates -- for an attack its eps and steps, for a task its reverse attack's -- as numbers, so that
    curves group and order points by data, never by reading their names."""

    of: str = Field(description="the named config the sweep expanded")
    eps: float | None = Field(None, ge=0, le=1, description="the swept eps (None: the config's own)")
    steps: int | None = Field(None, ge=0, description="the swept steps (None: the config's own)")


class Component(Record):
    """A task or attack as evaluated: its identity, version, provenance and exact parameters."""

    name: str  # the named config
    kind: str  # the registered task / attack kind it instantiates
    version: str
    distribution: str
    distribution_version: str
    params: dict[str, Any]
    details: dict[str, Any] = {}
    config_file: str | None = Field(None, description="the named config's file when it is not a built-in one")
    point: SweepPoint | None = Field(None, description="a sweep point's place in its sweep (None: not swept)")

    @property
    def swept(self) -> str:
        """The named config this component is a point of (its own name when not swept)."""
        return self.point.of if self.point is not None else self.name

    @field_validator("params", "details")
    @classmethod
    def _finite(cls, value: dict[str, Any], info) -> dict[str, Any]:
        check_finite(value, info.field_name)
        return value


class RandomizedDefense(Record):
    """A randomised defense evaluated three ways (Croce et al. 2022): the cell's Adv+Rev is one fresh draw
    of the defense on images attacked through its randomness (with EOT when the attack is adaptive);
    beside it (a) the randomness fixed and known to the attacker -- one draw, re-used at every call, so
    the defense is a deterministic function it attacks exactly -- and (c) ``draws`` fresh draws of the
    defended prediction, an image counting only if every draw is correct. The worst case reads (c)."""

    draws: int = Field(ge=2, description="fresh draws of the defended prediction in (c)")
    eot_samples: int | None = Field(
        None, description="draws the adaptive attack averaged per step (None: not adaptive)"
    )
    fixed_draw: Accuracy = Field(
        description="(a) Adv+Rev with the defense's randomness fixed and known to the attacker"
    )
    all_draws: Accuracy = Field(description="(c) Adv+Rev correct in every one of the draws")
    clean_fixed_draw: Accuracy = Field(description="Clean+Rev with the fixed draw")
    clean_all_draws: Accuracy = Field(description="Clean+Rev correct in every one of the draws")


class Gate(Record):
    """A detection-gated reverse attack (the source report's future work): reverse only the images whose
    pretext score exceeds a threshold fixed on clean training images at a 5% false-positive rate."""

    threshold: float = Field(description="on the score `score` of the leaderboard's detection view (higher = flagged)")
    calibration: str = Field(description="the images that fixed it, e.g. the last 1000 training images")
    target_fpr: float = Field(gt=0, lt=1)
    calibration_flagged: float | None = Field(
        None,
        ge=0,
        le=1,
        description="the share of calibration images the "
        "threshold flags: 0 means the gate cannot fire (None before schema 5)",
    )


class Cost(Record):
    """What the defense costs, per defended image: a reverse attack on clean images, measured in the run."""

    passes_per_image: float = Field(
        ge=0,
        description="backbone image-passes (each a forward and a backward) of "
        "one reverse attack, per image: steps x views",
    )
    seconds_per_image: Seconds = Field(description="its wall-clock seconds per image on the run's device")
    attack_seconds_per_image: Seconds = Field(description="this cell's attack, seconds per image")


class RanOn(Record):
    """Where and how long one unit of work ran (a training stage, or a model's evaluation), and how many
    times it was started: a unit whose worker died is retried, and the count says so."""

    executor: Literal[EXECUTORS] = Field(description="local, or ray")  # type: ignore[valid-type]
    node: str = Field(description="the host name (local) or Ray node address the unit ran on")
    seconds: Seconds = Field(description="the unit's wall-clock seconds on that node (the attempt that finished)")
    attempts: int = Field(
        1, ge=1, le=1 + MAX_RETRIES, description="times the unit was started: more than 1 = retried after a worker died"
    )
    threads: int | None = Field(None, ge=1, le=MAX_THREADS, description="torch CPU threads the unit ran with")
    device: str | None = Field(None, description="the unit's device: the CPU model or GPU name")
    cpu_capability: str | None = Field(
        None,
        description="the CPU kernels torch used there (AVX2, AVX512, ...): nodes of one cluster may round differently",
    )

    @model_validator(mode="after")
    def _local_runs_once(self) -> RanOn:
        if self.executor == "local" and self.attempts != 1:
            raise ValueError(f"attempts {self.attempts} with executor local: only Ray retries a unit")
        return self


class Transfer(Record):
    """A cell's attack across its defended model and the static base (the classifier trained alone,
    classifier-first's), on the same images, so that neither side of the verdict escapes an attack run only
    on the other. classifier-first cells need none: their classifier is the base."""

    to_base: Accuracy = Field(
        description="the static base on the images this cell's attack crafted against "
        "this model (through its defense when the attack is adaptive)"
    )
    from_base: Accuracy | None = Field(
        None,
        description="(b) the defended model, one draw, on the images the "
        "same attack crafted against the static base (attacks that see only the "
        "classifier; None for adaptive ones)",
    )
    from_base_all_draws: Accuracy | None = Field(
        None, description="(c) the same, correct in every draw (randomised defenses only)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Transfer:
        every, one = self.from_base_all_draws, self.from_base
        if every is not None and (one is None or every.n != one.n or (every.flags() & ~one.flags()).any()):
            raise ValueError("from_base_all_draws must be a subset of from_base, on the same images")
        for a in (one, every):
            if a is not None and a.n != self.to_base.n:
                raise ValueError(f"transfer images differ: {a.n} vs {self.to_base.n}")
        return self


class AttackSplit(Record):
    """An attack's calls split into chunks of a batch to fit in memory (``run --attack-memory``, or CUDA out of
    memory). Each chunk draws as the whole batch does, so the images are an unsplit run's: how the work was cut,
    recorded so a reader knows, not a config."""

    images_per_call: int = Field(ge=1, description="the most images one call of the attack ran on")
    reason: Literal["cuda-out-of-memory", "memory-budget"] = Field(
        description="cuda-out-of-memory: a call ran out and its chunk was halved; memory-budget: --attack-memory"
    )
    budget_bytes: int | None = Field(None, ge=1, description="the budget (memory-budget)")
    per_image_bytes: int | None = Field(
        None, ge=1, description="memory-budget: bytes autograd kept per image of the attack (the estimate)"
    )
    fixed_bytes: int | None = Field(None, ge=0, description="memory-budget: and those that do not grow with images")


class Cell(Record):
    task: Component
    mode: str
    attack: Component
    backbone: str
    dataset: str
    preset: str
    reverse: ReverseConfig  # typed from the task's TOML to here, as its sibling threat model
    reverse_randomized: bool
    clean: Accuracy
    clean_rev: Accuracy
    adv: Accuracy
    adv_rev: Accuracy
    pretext: Pretext
    model_key: str
    seconds: dict[str, Seconds]
    adaptive: bool = Field(False, description="the attack saw the defense (its Adv+Rev is the defended accuracy)")
    zero_grad_fraction: float | None = Field(
        None, ge=0, le=1, description="images whose input gradient was zero at step 1"
    )
    threat: ThreatModel | None = Field(None, description="the attack's declared threat model (None: undeclared)")
    seed: int = Field(0, description="the training and evaluation seed of this cell's model")
    weights_sha256: str | None = Field(
        None,
        description="SHA-256 of the evaluated model's weights: equal on two sides means the same model was evaluated",
    )
    randomized: RandomizedDefense | None = Field(
        None, description="a randomised defense's three evaluations (None: the defense is deterministic)"
    )
    cost: Cost | None = Field(None, description="the defense's cost per image (None in files before schema 3)")
    gate: Gate | None = Field(None, description="the detection gate of this defense (None in files before schema 3)")
    ran_on: RanOn | None = Field(None, description="where the model's evaluation ran (None in files before schema 4)")
    base_weights_sha256: str | None = Field(
        None,
        description="SHA-256 of the static base's weights (the classifier "
        "trained alone) this cell is judged against (None before schema 5)",
    )
    transfer: Transfer | None = Field(
        None,
        description="the attack across this model and its static base (None: "
        "classifier-first, whose classifier is the base, or a file before schema 5)",
    )
    split: AttackSplit | None = Field(
        None, description="the attack's calls split to fit in memory (None: every batch in one call)"
    )

    def gated_flags(self, which: str):
        """Per image, correct under the gated defense: the reversed image where the gate fires, else the
        image itself. ``which`` is "clean" or "adversarial"; None without a gate or per-image values."""
        p = self.pretext.per_image
        if self.gate is None or p is None:
            return None
        sign = -1.0 if self.pretext.higher_is_better else 1.0
        fired = sign * p.values(which) > self.gate.threshold
        plain, reversed_ = (self.clean, self.clean_rev) if which == "clean" else (self.adv, self.adv_rev)
        return fired, (fired & reversed_.flags()) | (~fired & plain.flags())

    @property
    def label(self) -> str:
        """How an error names the cell: task/mode/attack and seed."""
        return f"cell {self.task.name}/{self.mode}/{self.attack.name} seed {self.seed}"

    def accuracies(self) -> dict[str, Accuracy]:
        """Every per-image accuracy the cell records, by its field's path: all are on the cell's images."""
        out = {name: getattr(self, name) for name in ("clean", "clean_rev", "adv", "adv_rev")}
        for block in ("randomized", "transfer"):
            value = getattr(self, block)
            for name in type(value).model_fields if value is not None else ():
                if isinstance(getattr(value, name), Accuracy):
                    out[f"{block}.{name}"] = getattr(value, name)
        return out

    @field_validator("reverse")
    @classmethod
    def _finite_reverse(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_finite(value, "reverse")
        return value

    @model_validator(mode="after")
    def _same_images(self) -> Cell:
        """Every evaluation of a cell is on the same images: one length for all its per-image records."""
        n = self.clean.n
        for name, acc in self.accuracies().items():
            if acc.n != n:
                raise ValueError(
                    f"{self.label}: {name} holds {acc.n} images, clean {n}: every evaluation of a "
                    f"cell is on the same images"
                )
        p = self.pretext.per_image
        if p is not None and p.n != n:
            raise ValueError(f"{self.label}: pretext.per_image holds {p.n} images, clean {n}")
        return self

    @model_validator(mode="after")
    def _threat_matches_params(self) -> Cell:
        """The threat model is read off the attack's parameters (``Attack.threat_model``): the budget the
        cell declares is the one its attack ran with. Probes without a declared norm ("other") carry none."""
        t, params = self.threat, self.attack.params
        if t is None or t.norm == "other":
            return self
        eps, steps = params.get("eps"), params.get("steps")
        if (
            isinstance(eps, (int, float))
            and not isinstance(eps, bool)
            and not math.isclose(t.eps, eps, rel_tol=1e-9, abs_tol=1e-12)
        ):
            raise ValueError(f"{self.label}: threat.eps {t.eps!r} is not attack.params.eps {eps!r}")
        if isinstance(steps, int) and not isinstance(steps, bool) and t.steps != steps:
            raise ValueError(f"{self.label}: threat.steps {t.steps} is not attack.params.steps {steps}")
        return self

    @model_validator(mode="after")
    def _randomized_iff_the_defense_draws(self, info: ValidationInfo) -> Cell:
        """The three evaluations belong to a randomised defense, and (from schema 3, when a file says which
        schema it was written with: ``store.loads`` does) every randomised defense has them: without them
        its one lucky draw would read as a deterministic defense's result."""
        if self.randomized is not None and not self.reverse_randomized:
            raise ValueError(
                f"{self.label}: randomized holds a randomised defense's evaluations, but "
                f"reverse_randomized says the defense is deterministic"
            )
        written_with = (info.context or {}).get("schema_version")
        if self.randomized is None and self.reverse_randomized and isinstance(written_with, int) and written_with >= 3:
            raise ValueError(
                f"{self.label}: randomized is missing, but reverse_randomized says the defense draws "
                f"afresh: from schema 3 its evaluations every draw are recorded"
            )
        return self

    @model_validator(mode="after")
    def _transfer_fits(self) -> Cell:
        t = self.transfer
        if t is None:
            return self
        if t.to_base.n != self.clean.n:
            raise ValueError(f"transfer holds {t.to_base.n} images, the cell {self.clean.n}")
        if (t.from_base is not None) == self.adaptive:
            raise ValueError(
                "transfer.from_base is the attack crafted against the bare base: it belongs to "
                "attacks that see only the classifier, and to every one of them"
            )
        if (t.from_base_all_draws is not None) != (t.from_base is not None and self.randomized is not None):
            raise ValueError("transfer.from_base_all_draws belongs to a randomised defense's from_base, and only there")
        return self

    @model_validator(mode="after")
    def _draws_are_a_subset(self) -> Cell:
        r = self.randomized
        if r is not None:
            for every, one, what in (
                (r.all_draws, self.adv_rev, "Adv+Rev"),
                (r.clean_all_draws, self.clean_rev, "Clean+Rev"),
            ):
                if every.n != one.n or (every.flags() & ~one.flags()).any():
                    raise ValueError(f"{what} correct in every draw must be a subset of the single draw it includes")
        return self

    def defended_flags(self):
        """Per image, robust under the defense: every draw correct for a randomised one, else Adv+Rev."""
        return (self.randomized.all_draws if self.randomized is not None else self.adv_rev).flags()

    @classmethod
    def from_flags(cls, *, clean, clean_rev, adv, adv_rev, **fields: Any) -> Cell:
        """A cell from the per-image correctness of its four evaluations (the counts, percentages and
        intervals are derived here, never passed in)."""
        return cls(
            clean=Accuracy.from_flags(clean),
            clean_rev=Accuracy.from_flags(clean_rev),
            adv=Accuracy.from_flags(adv),
            adv_rev=Accuracy.from_flags(adv_rev),
            **fields,
        )

    @property
    def id(self) -> tuple[str, str, str, str, str, str, int]:
        return (*self.group, self.seed)

    @property
    def group(self) -> tuple[str, str, str, str, str, str]:
        """The cell without its seed: what is aggregated over seeds and matched across files."""
        return (self.task.name, self.attack.name, self.mode, self.backbone, self.dataset, self.preset)


class Detection(Record):
    """The pretext metric as a detector of attacked images (the hypothesis behind every reverse attack:
    an adversarial perturbation shows up in the self-supervised loss). Clean vs attacked, same images."""

    task: str
    mode: str
    attack: str
    seed: int = 0
    score: str = Field(description="what is thresholded: the metric, or minus it, so that higher = attacked")
    auroc: float = Field(ge=0, le=1)
    auroc_ci95: tuple[float, float]
    tpr_at_5fpr: float = Field(
        ge=0, le=1, description="attacked images flagged at the threshold that flags 5% of clean ones"
    )
    tpr_ci95: tuple[float, float]


class GatedDefense(Record):
    """Per (task, mode): the gated defense beside the ungated one -- clean accuracy, and the worst case over
    every attack (an image must survive them all). Every attack is evaluated against both."""

    task: str
    mode: str
    seed: int = 0
    threshold: float
    can_fire: bool = Field(
        description="False when the threshold flags no calibration image (or, in files that do "
        "not record that, no evaluated image at all): the gated rows would be the bare "
        "classifier's, so none is computed"
    )
    clean_flagged: float = Field(ge=0, le=100, description="% of clean test images the gate reverses")
    clean: Accuracy | None = Field(description="None when the gate cannot fire")
    clean_ungated: Accuracy
    worst_case: Accuracy | None = Field(description="None when the gate cannot fire")
    worst_case_ungated: Accuracy
    attacks: list[str]


class WorstCase(Record):
    """Per (task, mode): an image counts as robust only if it survives every attack evaluated on it."""

    task: str
    mode: str
    seed: int = 0
    attacks: list[str]
    defended: Accuracy  # per-image minimum of Adv+Rev over the attacks
    undefended: Accuracy  # per-image minimum of Adv over the attacks


class BaseSource(Record):
    """One source of attacks on the static base, and how many of its images that source alone fooled."""

    source: Literal["attacks", "autoattack", "transfer"] = Field(
        description="attacks: the run's attacks on the "
        "bare base; autoattack: standard AutoAttack on it; transfer: images crafted against its defended models"
    )
    attacks: list[str]
    accuracy: Accuracy = Field(description="the base under this source alone (an image must survive all of it)")
    decided: int = Field(ge=0, description="images this source alone fooled: every other source left them correct")


Verdict = Literal["beats its base", "worse than its base", "no significant difference"]


class VersusBase(Record):
    """Does the defense beat its static base (the classifier trained alone, classifier-first's; for
    classifier-first the very model without the reverse attack)? Both sides face the same attacks on the
    same images: the base's worst case is over the run's attacks on it, standard AutoAttack when run, and
    every image crafted against its defended models (transfer); the defense's over every attack, the base's
    images included. A randomised defense is read both ways -- one draw (b) and every draw (c) -- and the
    verdict is two-sided: it beats its base only if even (c) is significantly above, and is worse only if
    even (b) is significantly below, after Holm's correction over every verdict of the file."""

    task: str
    mode: str
    seed: int = 0
    attacks: list[str] = Field(description="the defense's worst case is over these (and the base's images)")
    base_attacks: list[str] = Field(description="every attack the base's worst case is over, transfers included")
    base_sources: list[BaseSource] = Field(default_factory=list)
    defended: Accuracy = Field(description="(c) the defended worst case, every draw correct (= (b) if deterministic)")
    defended_one_draw: Accuracy = Field(description="(b) the defended worst case under one fresh draw")
    base: Accuracy
    points: float = Field(description="(c) minus base, accuracy points")
    points_one_draw: float = Field(description="(b) minus base, accuracy points")
    p_value: float = Field(ge=0, le=1, description="exact McNemar test of (c) against the base, same images")
    p_one_draw: float = Field(ge=0, le=1, description="exact McNemar test of (b) against the base")
    randomized: bool = Field(description="the defense draws at test time: (b) and (c) differ")
    p_adjusted: float = Field(
        ge=0,
        le=1,
        description="Holm-adjusted p of the test that can decide the verdict "
        "((c) when above the base, (b) when below, else 1), over every verdict of the file",
    )
    alpha: float = Field(gt=0, le=1)
    verdict: Verdict


class BaseIdentity(Record):
    """Classifier-first's frozen classifier when ssrbench did not train it (``run --base``): which published or
    user model it is, the very file (its SHA-256 is the stage's cache key), where the task heads read its
    features, and the accuracy its publisher reports -- to set beside the cells' own Clean."""

    source: Literal["robustbench", "entry-point", "module"]
    name: str = Field(description="as --base names it: robustbench:NAME, an entry point's name, or module:factory")
    architecture: str = Field(description="the model's class")
    file: str = Field(
        description="the weights file: in RobustBench's layout (cifar10/Linf/NAME.pt, under --model-dir), or as given"
    )
    file_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    feature_layer: str = Field(description="the module whose output the task heads read (and its activation)")
    reported_clean_acc: float | None = Field(None, ge=0, le=100, description="the publisher's clean accuracy, %")
    reported_autoattack_acc: float | None = Field(
        None, ge=0, le=100, description="the publisher's AutoAttack accuracy, % (RobustBench's leaderboard)"
    )
    reported_by: str | None = Field(None, description="where the reported accuracies come from")


class TrainingRecord(Record):
    stage: str
    key: str
    cached: bool
    seconds: Seconds
    final_logs: dict[str, float]
    spec: dict[str, Any]
    weights_sha256: str | None = Field(None, description="SHA-256 of the weights this stage trained or loaded")

    trained_on: dict[str, Any] = Field(
        default_factory=dict,
        description="where the weights were trained: device, "
        "CPU capability or GPU, torch, threads, deterministic algorithms",
    )
    warnings: list[str] = Field(
        default_factory=list, description="what training found wrong with the model (e.g. catastrophic overfitting)"
    )
    ran_on: RanOn | None = Field(
        None,
        description="where this stage was trained in this run (None: loaded from the cache, or a file before schema 4)",
    )
    zoo_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the zoo file the "
        "weights were loaded from (None: trained, or from the machine's model cache)",
    )
    base: BaseIdentity | None = Field(None, description="the published or user model this stage loaded (run --base)")

    @field_validator("spec")
    @classmethod
    def _finite_spec(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_finite(value, "spec")
        return value

    @model_validator(mode="after")
    def _zoo_is_loaded(self) -> TrainingRecord:
        if self.zoo_sha256 is not None and (not self.cached or self.ran_on is not None):
            raise ValueError(
                f"stage {self.stage}: weights from the zoo were loaded, not trained in this run "
                f"(cached true, no ran_on)"
            )
        return self


class Environment(Record):
    python: str
    platform: str
    torch: str
    torchvision: str
    timm: str
    numpy: str
    pydantic: str
    device: str
    device_name: str
    threads: int = Field(ge=1, le=MAX_THREADS)
    cpu_count: int | None = Field(ge=1)
    cpu_capability: str | None = Field(
        None,
        description="the CPU kernels torch used (AVX2, AVX512, ...): they "
        "round differently, so retraining elsewhere gives other weights",
    )
    deterministic: bool = Field(False, description="torch's deterministic algorithms were enforced")


class DatasetInfo(Record):
    name: str
    fingerprint: str
    source: str
    eval_images: int
    eval_selection: str


class CascadeStage(Record):
    """One attack of a cascade (``run --cascade``): the images it ran on -- those still robust, defended or
    undefended, when its turn came -- and how many of them it fooled. No accuracy: it saw only those images."""

    attack: Component
    threat: ThreatModel | None = None
    adaptive: bool = False
    ran_on: int = Field(ge=0)
    fooled_defended: int = Field(ge=0, description="images still defended before it, not after (Adv+Rev)")
    fooled_undefended: int = Field(ge=0, description="images still correct without the defense before it, not after")
    seconds: Seconds = Field(description="its attack's wall-clock seconds, with the defended checks")
    split: AttackSplit | None = Field(None, description="its calls split to fit in memory (None: not split)")


class Cascade(Record):
    """One (task, mode) model's worst case by cascade: its attacks in ``order``, each on the images still robust,
    so ``defended`` and ``undefended`` are the grid's worst case (``WorstCase``) for a fraction of the attack
    work. What it measured on every image: Clean, Clean+Rev and the two worst cases; per attack, only counts."""

    task: Component
    mode: str
    seed: int = 0
    backbone: str
    dataset: str
    preset: str
    reverse: ReverseConfig
    reverse_randomized: bool = Field(description="the defense draws afresh at each call: defended = every draw")
    model_key: str
    weights_sha256: str | None = None
    base_weights_sha256: str | None = None
    order: Literal["cost", "given"] = Field(description="cost: cheapest first (Attack.cost); given: as listed")
    stages: list[CascadeStage] = Field(min_length=1)
    clean: Accuracy
    clean_rev: Accuracy
    defended: Accuracy = Field(description="per image: defended against every attack (the worst case)")
    undefended: Accuracy = Field(description="per image: correct under every attack without the defense")
    ran_on: RanOn | None = None

    @model_validator(mode="after")
    def _counts_add_up(self) -> Cascade:
        """What a file says each attack did must be what its worst case shows: every image starts robust, each
        attack runs on the images still robust one way or the other, and what they fooled is what was lost."""
        n = self.clean.n
        if {a.n for a in (self.clean_rev, self.defended, self.undefended)} != {n}:
            raise ValueError("a cascade's accuracies are not on the same images")
        if self.stages[0].ran_on != n:
            raise ValueError(f"its first attack ran on {self.stages[0].ran_on} of its {n} images, not on every one")
        for before, after in zip(self.stages, self.stages[1:]):
            if after.ran_on > before.ran_on:
                raise ValueError(f"{after.attack.name} ran on more images than were left by {before.attack.name}")
        for what, acc in (("defended", self.defended), ("undefended", self.undefended)):
            fooled = sum(getattr(s, f"fooled_{what}") for s in self.stages)
            if fooled != n - acc.correct:
                raise ValueError(
                    f"its attacks fooled {fooled} images {what}, but {n - acc.correct} of {n} are not robust"
                )
        return self

    @property
    def id(self) -> str:
        return f"cascade {self.task.name}/{self.mode} seed {self.seed}"
