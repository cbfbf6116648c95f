"""Cheap GAN health detectors over the numbers the loop already logs.

The loop calls ``Monitor.observe(step, values)`` at every log step with the averaged
statistics and ``Monitor.observe_evaluation`` after each evaluation; each returns the
``Event``\\ s that start there. An event fires once when its condition starts and
re-arms after the condition has stayed clear for ``rearm_after`` observations, so a
lasting failure is one line, not one per log step. The monitor only judges: warning,
rolling back or stopping is the loop's job (``Event.action``).

Detectors look back over a number of observations (log steps), not training steps:
with ``train.log_every=10``, 50 observations span 500 steps.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from stgan.errors import SpecError
from stgan.health_names import (
    DETECTORS,
    DIVERSITY_SCALARS,
    LOSS_AND_D_SCALARS,
    WEIGHT_SCALARS,
)
from stgan.metrics.registry import COLLAPSE_WATCH

Action = Literal["warn", "rollback", "stop"]

# The values ``observe`` reads; any may be absent, and a NaN/Inf in any is divergence
# (so is a finite blow-up of those in ``BLOWUP_WATCHED``).
WATCHED = (*LOSS_AND_D_SCALARS, *WEIGHT_SCALARS, *DIVERSITY_SCALARS, "Health/nonfinite")

# Losses whose D loss is bounded below by 0, reached only when D separates perfectly
# (the WGAN critic loss is unbounded, and near 0 means the opposite: no separation).
_ZERO_FLOOR_LOSSES = ("bce", "lsgan", "hinge")

# A median of fewer gradient norms is too noisy to call a 10x departure from it.
_MIN_MEDIAN_POINTS = 10

# The values whose finite blow-up is divergence: losses, D scores, gradient and weight
# norms and the fakes' batch diversity (G's output scale, where G's weights blowing up
# shows first). A weight norm's size comes with the model's widths (order 10-100 at He
# init), so it is measured against its own history only: never at its first observation.
BLOWUP_WATCHED = (
    *WEIGHT_SCALARS,
    "Loss/G",
    "Loss/D",
    "Loss/penalty",
    "D/real_score",
    "D/fake_score",
    "Grad/G_norm",
    "Grad/D_norm",
    "Health/fake_diversity",
)

# The smallest running scale a blow-up is measured against. The watched values of a
# healthy run are of order 1 or below (GAN losses at equilibrium 0.25-2, D scores,
# standardized diversity ~1.4, gradient norms 0.01-20 in the shipped pipelines), so with
# no history yet, or a median near 0 (a D loss at 0), a blow-up is ``blowup_factor`` x 1.
_BLOWUP_SCALE_FLOOR = 1.0
_BLOWUP_SHOWN = 3  # the blown-up values a divergence message names, the worst first


@dataclass(frozen=True)
class HealthConfig:
    """The ``health:`` section of a pipeline: what each detector does and when it fires."""

    enabled: bool = True
    # What the loop does on each failure. Divergence is unrecoverable in place (NaN
    # weights stay NaN), so its default reloads the last healthy checkpoint.
    divergence: Action = "rollback"
    overpowering: Action = "warn"
    gradients: Action = "warn"  # vanishing and exploding gradients
    collapse: Action = "warn"
    one_way: Action = "warn"
    stagnation: Action = "warn"
    # Observations during which nothing but divergence can fire: in the first few
    # hundred steps D learns to separate an untrained G, so accuracies near 1,
    # one-way losses, shifting gradient norms and a low-diversity G are all normal.
    warmup: int = 20
    # Observations over which overpowering and collapse must hold (50 x log_every=10 =
    # 500 steps): long enough that a D winning a few hundred steps and losing them again,
    # as in a healthy game, does not count.
    observations: int = 50
    # D accuracy on reals and on fakes, each averaged over the last ``observations``. A D
    # in a working game is fooled often (accuracies typically 0.5-0.8); at 0.98 on both,
    # throughout, it is almost never fooled and G's signal saturates.
    accuracy_threshold: float = 0.98
    # Mean D loss over the last ``observations`` at or below which D separates reals
    # from fakes with margin (bce, lsgan, hinge). At equilibrium (D can't tell) these losses are 1.39
    # (bce, 2 ln 2), 2 (hinge) and 0.25 (lsgan); 0.05 is a fifth of the smallest of them.
    # Ignored for wgan, whose critic loss has no floor.
    d_loss_floor: float = 0.05
    # A network's gradient norm at this factor above (exploding) or below (vanishing)
    # its running median. Norms drift over a run and the median follows; an order of
    # magnitude away from it within a few observations is a jump, not drift (in the
    # synthetic healthy series, log-normal norms with sigma 0.3, 10x is 7.7 sigma).
    gradient_factor: float = 10.0
    # Observations in the running median of each gradient norm (1000 steps at
    # log_every=10): it follows slow drift over a run but not a sudden jump.
    median_observations: int = 100
    # Consecutive observations a gradient norm must stay beyond the factor: one averaged
    # spike is a bad batch; three in a row is a trend (an explosion into NaN is caught
    # by divergence at once anyway).
    patience: int = 3
    # A loss, D score, gradient norm or fake diversity beyond this factor times its
    # running scale (the median |value| over the last ``median_observations`` observations
    # that did not blow up, at least 1) is divergence, finite or not: a learning rate of
    # 1000 takes the losses to 1e7-1e15 at once. The shipped pipelines' healthy runs
    # stay within 6x of that scale, so 1000x leaves a wide margin against false rollbacks.
    blowup_factor: float = 1000.0
    # Fake/real within-batch diversity, each averaged over the last ``observations``.
    # For standardized data two independent samples are sqrt(2) apart per element; a G that covers the
    # data comes close to the reals' value, a collapsed one heads to 0. 0.5 leaves room
    # for an under-trained G and still catches a partial collapse.
    diversity_ratio: float = 0.5
    # At evaluation: recall or coverage this far (absolute, both in [0, 1]) below their
    # best, while precision fell less than half as much, is collapse (docs/metrics.md). With
    # 64 real evaluation samples one sample moves them by 1/64; 0.2 is 13 samples
    # leaving the real manifold's coverage, well beyond the draw-to-draw noise. With
    # fewer real samples the drop must also exceed 3 binomial standard errors at p = 0.5,
    # 1.5 / sqrt(n): 0.42 for ERA5's 13 validation windows, where 3 of 13 is noise.
    recall_drop: float = 0.2
    # Observations over which a loss moving one way means the game broke down (1000
    # steps at log_every=10): healthy GAN losses oscillate within a few hundred steps.
    one_way_observations: int = 100
    # |Spearman rank correlation| of a loss with time over one_way_observations (and at
    # least half of it within each half of them). A linear drift reaches 0.9 only when it
    # spans about 7 noise standard deviations of the logged loss: a steady trend, not an
    # oscillation, a slow wander or one step change.
    one_way_correlation: float = 0.9
    # Evaluations without a better selection score (lower is better). With eval.every at
    # ~5% of a run, 10 is half the run on a plateau.
    stagnation_evals: int = 10
    # Observations a condition must stay clear before its detector can fire again, so
    # noise around a threshold does not fire at every crossing.
    rearm_after: int = 5
    # For the loop's rollback: how many times at most, and the factor on both rates.
    max_rollbacks: int = 3
    lr_factor: float = 0.5

    def validate(self, where: str) -> None:
        """Raise ``SpecError`` (one line naming the key) for an out-of-range value."""
        checks = (
            ("warmup", self.warmup >= 0, "use an integer >= 0"),
            ("observations", self.observations >= 2, "use an integer >= 2"),
            ("accuracy_threshold", 0.5 < self.accuracy_threshold <= 1, "use a value in (0.5, 1]"),
            ("d_loss_floor", self.d_loss_floor >= 0, "use a value >= 0"),
            ("gradient_factor", self.gradient_factor > 1, "use a value > 1, e.g. 10"),
            ("blowup_factor", self.blowup_factor >= 10, "use a value >= 10, e.g. 1000"),
            (
                "median_observations",
                self.median_observations >= _MIN_MEDIAN_POINTS,
                "use an integer >= 10",
            ),
            ("patience", self.patience >= 1, "use an integer >= 1"),
            ("diversity_ratio", 0 < self.diversity_ratio < 1, "use a value in (0, 1)"),
            ("recall_drop", 0 < self.recall_drop <= 1, "use a value in (0, 1]"),
            ("one_way_observations", self.one_way_observations >= 5, "use an integer >= 5"),
            (
                "one_way_correlation",
                0.5 <= self.one_way_correlation <= 1,
                "use a value in [0.5, 1]",
            ),
            ("stagnation_evals", self.stagnation_evals >= 1, "use an integer >= 1"),
            ("rearm_after", self.rearm_after >= 1, "use an integer >= 1"),
            ("max_rollbacks", self.max_rollbacks >= 0, "use an integer >= 0"),
            ("lr_factor", 0 < self.lr_factor < 1, "use a value in (0, 1), e.g. 0.5"),
        )
        for key, ok, allowed in checks:
            if not ok:
                raise SpecError(f"{where}.{key}: {getattr(self, key)!r} is out of range; {allowed}")

    def action(self, detector: str) -> str:
        """The configured action of ``detector`` (one of ``DETECTORS``)."""
        return getattr(self, "gradients" if detector.endswith("_gradients") else detector)


@dataclass(frozen=True)
class Event:
    """A detector firing: what failed, where, how badly, and what the loop should do."""

    detector: str  # one of DETECTORS
    step: int
    value: float  # the number behind the flag (see ``Monitor.scalars``)
    action: str  # warn | rollback | stop, from the config
    message: str  # one line: failure, evidence with numbers, remedies


def remedies(detector: str, loss_name: str = "hinge", d_winning: bool = True) -> list[str]:
    """The switches that address ``detector``'s failure, as ``--set`` keys.

    ``d_winning`` picks the side for ``one_way`` (D loss falling or G loss rising).
    """
    smoothing = "loss.label_smoothing=0.1"
    if loss_name != "bce":
        smoothing = f"loss.name=bce {smoothing}"
    d_too_strong = [
        "lower optim.lr_d",
        "optim.n_critic=1",
        smoothing,
        "model.discriminator.spectral_norm=true",
        "loss.r1_gamma=1",
        "loss.instance_noise=0.1",
    ]
    table = {
        "divergence": [
            "optim.grad_clip=1.0",
            "lower optim.lr_g and optim.lr_d",
            "train.precision=fp32",
            "model.discriminator.spectral_norm=true",
            "loss.gp_weight=10" if loss_name == "wgan" else "loss.r1_gamma=1",
        ],
        "overpowering": d_too_strong,
        # G's gradient vanishes when D saturates; D's when its loss is flat (hinge at 0).
        "vanishing_gradients": [
            "loss.instance_noise=0.1",
            "lower optim.lr_d",
            "loss.r1_gamma=1",
            "model.discriminator.spectral_norm=true",
        ],
        "exploding_gradients": [
            "optim.grad_clip=1.0",
            "lower optim.lr_g and optim.lr_d",
            "model.discriminator.spectral_norm=true",
            "model.generator.spectral_norm=true",
            "loss.r1_gamma=1",
        ],
        "collapse": [
            "model.discriminator.minibatch_std=true",
            "model.generator.noise_channels=8",
            "loss.name=wgan loss.gp_weight=10",
            "lower optim.lr_g",
            "loss.instance_noise=0.1",
        ],
        "one_way": d_too_strong
        if d_winning
        else ["raise optim.lr_d", "optim.n_critic=2", "model.discriminator.base_channels=64"],
        "stagnation": [
            "use best.pt (the best so far) and stop",
            "optim.schedule=cosine",
            "lower optim.lr_g and optim.lr_d",
        ],
    }
    return table[detector]


def _ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 0, ties given their average rank."""
    _, inverse, counts = np.unique(
        np.asarray(values, float), return_inverse=True, return_counts=True
    )
    first = np.cumsum(counts) - counts
    return (first + (counts - 1) / 2)[inverse]


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of ``x`` and ``y`` (ties averaged); 0 if either is constant."""
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    norm = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / norm if norm > 0 else 0.0


def batch_diversity(x: torch.Tensor) -> float:
    """Mean pairwise L2 distance between the B samples of ``x`` (B, ...), per element.

    The distance is divided by ``sqrt(numel per sample)``, so it reads as a root mean
    square difference per element (about ``sqrt(2)`` for independent standardized
    samples) and does not depend on the sample size. 0 for B < 2.
    """
    if x.shape[0] < 2:
        return 0.0
    flat = x.detach().float().flatten(1)  # (B, N)
    return float(torch.pdist(flat).mean()) / math.sqrt(flat.shape[1])


def weight_norm(module: torch.nn.Module) -> float:
    """The L2 norm of all of ``module``'s parameters together."""
    norms = [p.detach().norm() for p in module.parameters() if p.numel()]
    return float(torch.stack(norms).norm()) if norms else 0.0


def nonfinite_parameters(*modules: torch.nn.Module) -> bool:
    """Whether any parameter or floating-point buffer of ``modules`` holds NaN or Inf."""
    tensors = [
        t
        for m in modules
        for t in (*m.parameters(), *m.buffers())
        if t.is_floating_point() and t.numel()
    ]
    if not tensors:
        return False
    return bool(torch.stack([~torch.isfinite(t.detach()).all() for t in tensors]).any())


@dataclass(frozen=True)
class _Finding:
    """One detector's verdict on the latest observation."""

    condition: bool
    value: float
    evidence: str = ""  # "failure (numbers)" for the message, when the condition holds
    d_winning: bool = True  # one_way only: which remedies apply


_QUIET = _Finding(False, math.nan)


def _mean(pairs: Iterable[tuple[int, float]]) -> float:
    values = [v for _, v in pairs]
    return sum(values) / len(values) if values else math.nan


def _trend(pairs: list[tuple[int, float]]) -> tuple[float, float]:
    """Rank correlation of ``(step, value)`` pairs with time, and the weaker of its two
    halves' correlations in that same direction."""
    steps, values = [s for s, _ in pairs], [v for _, v in pairs]
    rho = rank_correlation(steps, values)
    half = len(pairs) // 2
    sign = 1.0 if rho >= 0 else -1.0
    halves = (
        rank_correlation(steps[:half], values[:half]),
        rank_correlation(steps[half:], values[half:]),
    )
    return rho, min(sign * h for h in halves)


class Monitor:
    """Watches a run's logged statistics and evaluations; returns events as they start.

    Parameters
    ----------
    config
        Thresholds, observation counts and the action of each detector.
    loss_name
        The adversarial loss (``loss.name``): whether D loss near 0 means overpowering
        (not for wgan), and which remedies apply.
    """

    def __init__(self, config: HealthConfig, loss_name: str = "hinge") -> None:
        self.config = config
        self.loss_name = loss_name
        self._keep = max(
            config.observations, config.one_way_observations, config.median_observations
        )
        self._history: dict[str, deque[tuple[int, float]]] = {}
        self._streaks: dict[str, int] = {}  # "G/exploding" -> consecutive observations
        # |value| of each BLOWUP_WATCHED key at the observations where it did not blow up
        self._scales: dict[str, deque[float]] = {}
        self._seen = 0  # observations since the start or the last rollback
        self._active = dict.fromkeys(DETECTORS, False)
        self._clear = dict.fromkeys(DETECTORS, 0)
        self._values = dict.fromkeys(DETECTORS, math.nan)
        # why collapse holds, by source ("diversity", "recall"); "" when it does not
        self._collapse_why = {"diversity": "", "recall": ""}
        self._best_score = math.inf
        self._best_step = -1
        self._evals_since_best = 0
        self._recall_refs: dict[str, list[float]] = {}  # tag -> [best value, precision then]

    # -- the loop's API ------------------------------------------------------------------

    def observe(self, step: int, values: Mapping[str, float]) -> list[Event]:
        """Take one log step's averaged statistics; return the events that start here.

        ``values`` may hold any of ``WATCHED`` (others are ignored). Divergence fires
        at once; the other detectors only after ``warmup`` observations.
        """
        if not self.config.enabled:
            return []
        seen = {k: float(values[k]) for k in WATCHED if k in values}
        self._seen += 1
        blown = self._blown(seen)
        divergence = self._divergence(seen, blown)
        self._record_scales(seen, blown)
        for key, value in seen.items():
            if math.isfinite(value):
                self._record(key, step, value)
        if "D/real_acc" in seen and "D/fake_acc" in seen:
            self._record("D/min_acc", step, min(seen["D/real_acc"], seen["D/fake_acc"]))
        vanishing, exploding = self._gradients(seen)
        findings = {
            "overpowering": self._overpowering(),
            "vanishing_gradients": vanishing,
            "exploding_gradients": exploding,
            "collapse": self._diversity(),
            "one_way": self._one_way(),
        }
        if self._seen <= self.config.warmup:
            findings = {d: _Finding(False, f.value) for d, f in findings.items()}
        diversity = findings["collapse"]
        self._collapse_why["diversity"] = diversity.evidence if diversity.condition else ""
        findings["collapse"] = self._collapse(diversity.value)
        events = self._update("divergence", step, divergence)
        for detector, finding in findings.items():
            events += self._update(detector, step, finding)
        return events

    def observe_evaluation(
        self,
        step: int,
        metrics: Mapping[str, float],
        score: float,
        real_samples: int | None = None,
    ) -> list[Event]:
        """Take one evaluation: ``Metrics/<var>/<metric>`` scalars, the selection
        ``score`` (lower is better) and the number of real samples behind recall and
        coverage; return the stagnation and collapse events."""
        if not self.config.enabled:
            return []
        recall = self._recall(metrics, real_samples)
        self._collapse_why["recall"] = recall.evidence if recall.condition else ""
        collapse = self._collapse(recall.value if recall.condition else self._values["collapse"])
        events = self._update("stagnation", step, self._stagnation(step, float(score)))
        # the event carries the recall drop; the logged value stays the diversity ratio
        return events + self._update("collapse", step, collapse, record=False)

    def scalars(self) -> dict[str, float]:
        """``Health/<detector>`` (1.0 active, 0.0 not) for every detector, and
        ``Health/<detector>/value`` (the number behind it) where one is known yet."""
        if not self.config.enabled:
            return {}
        out: dict[str, float] = {}
        for detector in DETECTORS:
            out[f"Health/{detector}"] = 1.0 if self._active[detector] else 0.0
            if math.isfinite(self._values[detector]):
                out[f"Health/{detector}/value"] = self._values[detector]
        return out

    def reset_after_rollback(self) -> None:
        """Forget the recent observations, streaks and alarms, and warm up again.

        The best score and the recall references survive: they describe checkpoints,
        which a rollback does not change; so do the running scales of the blow-up check,
        which hold only observations from before the blow-up. The stagnation count restarts, so that a
        rollback on stagnation (rates lowered) gets ``stagnation_evals`` new chances.
        """
        self._history.clear()
        self._streaks.clear()
        self._seen = 0
        self._active = dict.fromkeys(DETECTORS, False)
        self._clear = dict.fromkeys(DETECTORS, 0)
        self._values = dict.fromkeys(DETECTORS, math.nan)
        self._collapse_why = {"diversity": "", "recall": ""}
        self._evals_since_best = 0

    def state_dict(self) -> dict:
        """The monitor's state as plain data (lists, dicts, numbers), for checkpoints."""
        return {
            "history": {k: [list(p) for p in v] for k, v in self._history.items()},
            "streaks": dict(self._streaks),
            "scales": {k: list(v) for k, v in self._scales.items()},
            "seen": self._seen,
            "active": dict(self._active),
            "clear": dict(self._clear),
            "values": dict(self._values),
            "collapse_why": dict(self._collapse_why),
            "best_score": self._best_score,
            "best_step": self._best_step,
            "evals_since_best": self._evals_since_best,
            "recall_refs": {k: list(v) for k, v in self._recall_refs.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._history = {
            k: deque(((int(s), float(v)) for s, v in pairs), maxlen=self._keep)
            for k, pairs in state["history"].items()
        }
        self._streaks = {k: int(v) for k, v in state["streaks"].items()}
        self._scales = {  # absent from checkpoints written before the blow-up check
            k: deque((float(v) for v in values), maxlen=self.config.median_observations)
            for k, values in state.get("scales", {}).items()
        }
        self._seen = int(state["seen"])
        self._active = {d: bool(state["active"][d]) for d in DETECTORS}
        self._clear = {d: int(state["clear"][d]) for d in DETECTORS}
        self._values = {d: float(state["values"][d]) for d in DETECTORS}
        self._collapse_why = {k: str(v) for k, v in state["collapse_why"].items()}
        self._best_score = float(state["best_score"])
        self._best_step = int(state["best_step"])
        self._evals_since_best = int(state["evals_since_best"])
        self._recall_refs = {k: [float(x) for x in v] for k, v in state["recall_refs"].items()}

    # -- bookkeeping -----------------------------------------------------------------------

    def _record(self, key: str, step: int, value: float) -> None:
        self._history.setdefault(key, deque(maxlen=self._keep)).append((step, value))

    def _last(self, key: str, n: int) -> list[tuple[int, float]]:
        """The last ``n`` finite ``(step, value)`` pairs of ``key`` (fewer if not yet seen)."""
        history = self._history.get(key, ())
        return list(history)[-n:]

    def _update(
        self, detector: str, step: int, finding: _Finding, record: bool = True
    ) -> list[Event]:
        """Advance ``detector``'s alarm; an event when it goes from quiet to active.

        ``record`` makes ``finding.value`` the detector's logged value.
        """
        if record:
            self._values[detector] = finding.value
        if not finding.condition:
            if self._active[detector]:
                self._clear[detector] += 1
                if self._clear[detector] >= self.config.rearm_after:
                    self._active[detector] = False
            return []
        self._clear[detector] = 0
        if self._active[detector]:
            return []
        self._active[detector] = True
        fixes = remedies(detector, self.loss_name, finding.d_winning)
        message = f"{finding.evidence}; try {', '.join(fixes)}"
        action = self.config.action(detector)
        return [Event(detector, int(step), float(finding.value), action, message)]

    # -- the detectors ------------------------------------------------------------------

    def _scale(self, key: str) -> float:
        """The running scale of ``key``: median |value| before now, at least the floor."""
        history = self._scales.get(key, ())
        median = float(np.median(list(history))) if history else 0.0
        return max(median, _BLOWUP_SCALE_FLOOR)

    def _blown(self, seen: dict[str, float]) -> dict[str, float]:
        """``{key: value / running scale}`` for each finite watched value beyond
        ``blowup_factor`` times its running scale."""
        ratios = {
            key: abs(seen[key]) / self._scale(key)
            for key in BLOWUP_WATCHED
            if key in seen
            and math.isfinite(seen[key])
            and (key not in WEIGHT_SCALARS or self._scales.get(key))
        }
        return {k: r for k, r in ratios.items() if r > self.config.blowup_factor}

    def _record_scales(self, seen: dict[str, float], blown: dict[str, float]) -> None:
        """Add this observation's |values| to the running scales, except those that blew up."""
        for key in BLOWUP_WATCHED:
            if key in seen and key not in blown and math.isfinite(seen[key]):
                history = self._scales.setdefault(
                    key, deque(maxlen=self.config.median_observations)
                )
                history.append(abs(seen[key]))

    def _divergence(self, seen: dict[str, float], blown: dict[str, float]) -> _Finding:
        """NaN/Inf in any watched value or parameter, or a finite blow-up (``_blown``)."""
        bad = [k for k, v in seen.items() if not math.isfinite(v) and k != "Health/nonfinite"]
        flag = seen.get("Health/nonfinite", 0.0)
        if not math.isfinite(flag) or flag >= 0.5:
            bad.append("parameters")
        parts = [f"NaN/Inf in {', '.join(bad)}"] if bad else []
        if blown:
            worst = sorted(blown, key=blown.__getitem__, reverse=True)
            shown = [
                f"{key} {seen[key]:.3g} is {blown[key]:.3g}x its running scale "
                f"{self._scale(key):.3g}"
                for key in worst[:_BLOWUP_SHOWN]
            ]
            more = f" and {len(worst) - _BLOWUP_SHOWN} more" if len(worst) > _BLOWUP_SHOWN else ""
            parts.append(f"finite blow-up: {', '.join(shown)}{more}")
        evidence = f"divergence ({'; '.join(parts)})"
        return _Finding(bool(parts), float(len(bad) + len(blown)), evidence)

    def _overpowering(self) -> _Finding:
        """D accuracy on reals and fakes near 1, or D loss near 0, over ``observations``.

        The value is the lower of the two mean accuracies, or the mean D loss where the
        loop reports no accuracies.
        """
        cfg, n = self.config, self.config.observations
        real, fake = self._last("D/real_acc", n), self._last("D/fake_acc", n)
        losses = self._last("Loss/D", n)
        loss = _mean(losses)
        by_loss = (
            self.loss_name in _ZERO_FLOOR_LOSSES
            and len(losses) == cfg.observations
            and loss <= cfg.d_loss_floor
        )
        if not (real and fake):
            evidence = f"D overpowering G ({self._span(losses)}D loss {loss:.3g})"
            return _Finding(by_loss, loss, evidence)
        acc_real, acc_fake = _mean(real), _mean(fake)
        value = min(acc_real, acc_fake)
        full = len(real) == cfg.observations and len(fake) == cfg.observations
        by_accuracy = full and value >= cfg.accuracy_threshold
        grad = self._last("Grad/G_norm", 1)
        g_norm = f"; G grad norm {grad[0][1]:.3g}" if grad else ""
        evidence = (
            f"D overpowering G ({self._span(real)}D accuracy {acc_real:.3g} real, "
            f"{acc_fake:.3g} fake; D loss {loss:.3g}{g_norm})"
        )
        return _Finding(by_accuracy or by_loss, value, evidence)

    @staticmethod
    def _span(pairs: list[tuple[int, float]]) -> str:
        return f"over steps {pairs[0][0]}-{pairs[-1][0]}: " if pairs else ""

    def _gradients(self, seen: dict[str, float]) -> tuple[_Finding, _Finding]:
        """Vanishing and exploding: each network's norm against its running median."""
        cfg = self.config
        ratios: dict[str, float] = {}
        for net in ("G", "D"):
            key = f"Grad/{net}_norm"
            before = self._last(key, cfg.median_observations + 1)[:-1]  # the median excludes now
            if key not in seen or not math.isfinite(seen[key]) or len(before) < _MIN_MEDIAN_POINTS:
                continue
            median = float(np.median([v for _, v in before]))
            if median > 0:
                ratios[net] = seen[key] / median
        return self._gradient_finding(ratios, "vanishing"), self._gradient_finding(
            ratios, "exploding"
        )

    def _gradient_finding(self, ratios: dict[str, float], kind: str) -> _Finding:
        """``kind`` (vanishing | exploding) holds for a network ``patience`` times in a row."""
        factor = self.config.gradient_factor
        flagged = []
        for net, ratio in ratios.items():
            beyond = ratio <= 1 / factor if kind == "vanishing" else ratio >= factor
            streak = self._streaks.get(f"{net}/{kind}", 0) + 1 if beyond else 0
            self._streaks[f"{net}/{kind}"] = streak
            if streak >= self.config.patience:
                flagged.append(net)
        if not ratios:
            return _QUIET
        pick = min if kind == "vanishing" else max
        value = pick(ratios.values())
        parts = [
            f"Grad/{net}_norm {self._last(f'Grad/{net}_norm', 1)[0][1]:.3g} is "
            f"{ratios[net]:.3g}x its running median"
            for net in flagged
        ]
        evidence = (
            f"{kind} {' and '.join(flagged)} gradients ({'; '.join(parts)}, "
            f"{self.config.patience} observations in a row)"
        )
        return _Finding(bool(flagged), value, evidence)

    def _diversity(self) -> _Finding:
        cfg = self.config
        real = self._last("Health/real_diversity", cfg.observations)
        fake = self._last("Health/fake_diversity", cfg.observations)
        real_mean, fake_mean = _mean(real), _mean(fake)
        if not (real and fake) or real_mean <= 0:
            return _QUIET
        ratio = fake_mean / real_mean
        full = len(real) == cfg.observations and len(fake) == cfg.observations
        evidence = (
            f"mode collapse ({self._span(fake)}fake batch diversity {fake_mean:.3g} is "
            f"{ratio:.2f}x the real {real_mean:.3g})"
        )
        return _Finding(full and ratio < cfg.diversity_ratio, ratio, evidence)

    def _collapse(self, value: float) -> _Finding:
        """Collapse holds while either the diversity or the recall condition does."""
        reasons = [why for why in self._collapse_why.values() if why]
        return _Finding(bool(reasons), value, reasons[0] if reasons else "")

    def _one_way(self) -> _Finding:
        """A loss moving one way through ``one_way_observations``: its rank correlation
        with time reaches ``one_way_correlation`` and each half of them moves the same way
        (at half that correlation), so a single step change followed by a plateau, which
        correlates strongly but is flat in both halves, does not count."""
        cfg = self.config
        found = []
        for key in ("Loss/D", "Loss/G"):
            pairs = self._last(key, cfg.one_way_observations)
            if len(pairs) < cfg.one_way_observations:
                continue
            rho, weaker_half = _trend(pairs)
            holds = (
                abs(rho) >= cfg.one_way_correlation and weaker_half >= cfg.one_way_correlation / 2
            )
            found.append((holds, abs(rho), rho, key, pairs))
        if not found:
            return _QUIET
        holds, _, rho, key, pairs = max(found, key=lambda f: f[:2])
        direction = "rising" if rho > 0 else "falling"
        d_winning = (key == "Loss/D") != (rho > 0)  # D loss falling or G loss rising
        evidence = (
            f"one-way losses ({key} {direction} over steps {pairs[0][0]}-{pairs[-1][0]}, "
            f"{pairs[0][1]:.3g} -> {pairs[-1][1]:.3g}, rank correlation {rho:.2f}; healthy "
            f"losses oscillate: {'D' if d_winning else 'G'} is winning)"
        )
        return _Finding(holds, rho, evidence, d_winning)

    def _stagnation(self, step: int, score: float) -> _Finding:
        if math.isfinite(score) and score < self._best_score:
            self._best_score, self._best_step, self._evals_since_best = score, step, 0
        else:
            self._evals_since_best += 1
        count = self._evals_since_best
        evidence = (
            f"stagnation (no better score in {count} evaluations; best "
            f"{self._best_score:.4g} at step {self._best_step})"
        )
        return _Finding(count >= self.config.stagnation_evals, float(count), evidence)

    def _recall(self, metrics: Mapping[str, float], real_samples: int | None) -> _Finding:
        """Recall or coverage fallen by ``recall_drop`` (and by 3 binomial standard errors
        of ``real_samples``) from its best, precision holding."""
        noise = 1.5 / math.sqrt(real_samples) if real_samples else 0.0
        threshold = max(self.config.recall_drop, noise)
        worst = _QUIET
        for tag, value in metrics.items():
            prefix, _, name = tag.rpartition("/")
            precision = metrics.get(f"{prefix}/precision", math.nan)
            if name not in COLLAPSE_WATCH or not math.isfinite(value + precision):
                continue
            best, precision_then = self._recall_refs.setdefault(tag, [value, precision])
            if value > best:
                self._recall_refs[tag] = [value, precision]
                continue
            drop = best - value
            holding = precision >= precision_then - self.config.recall_drop / 2
            if drop >= threshold and holding and not drop <= worst.value:
                evidence = (
                    f"mode collapse ({tag} fell {best:.3g} -> {value:.3g} while "
                    f"{prefix}/precision is {precision:.3g})"
                )
                worst = _Finding(True, drop, evidence)
        return worst
