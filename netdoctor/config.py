"""Every threshold netdoctor judges by, in one place.

Rules read their limits from a :class:`Thresholds` instance and copy the ones they
used into each finding's evidence, so a report always says what it compared against.
Defaults follow commonly used values for such checks (gradient-check tolerances,
the ~1e-3 update/weight ratio, Glorot/He scales); see the table in README.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    # --- measuring (probes) -------------------------------------------------
    # |pre-activation| at or above this counts as saturated for sigmoid/tanh units.
    saturation_z: float = 5.0
    # A ReLU-like unit active in fewer than this fraction of a batch counts as dead.
    dead_active_frac: float = 0.01
    # Steps recorded densely before the trace starts thinning (bounded memory).
    dense_steps: int = 2048
    # At most this many recorded steps are kept per run, however long it runs.
    max_recorded_steps: int = 4096
    # Active probes (gradient check, function identity) run at these many points in a run.
    gradcheck_points: int = 3

    # --- does the run fit? (read by every symptom rule) --------------------------
    # A run *fits* when both hold (computed once, by netdoctor.rules._common.run_fits):
    #   * its loss ends far below its start: the loss at the end (median of the last
    #     `fit_tail_frac` of the curve) is at most `fit_loss_ratio` of the loss at the start;
    #   * for a classifier, its probe-batch accuracy at the end reaches what the data allows:
    #     at least chance + `fit_accuracy_share` x (allowed - chance). Chance is the largest
    #     class's share of the probe batch. "Allowed" is 1 - e/2, e the leave-one-out error
    #     of the nearest neighbour on the probe inputs (at most twice the best achievable
    #     error, so noisy or overlapping classes allow less than 1); probe batches under
    #     `fit_knn_min_samples` inputs (XOR's four) allow 1: every distinct input can be fitted.
    # On a run that fits, symptom rules (loss at init, plateau, divergence, saturation, dead
    # units, gradient size, update size and direction, initialisation) say at most
    # "warning": what they saw did not stop the network learning. Code faults (wrong
    # gradients, wrong activation, unreachable targets, NaN) stay errors either way.
    fit_loss_ratio: float = 0.5
    fit_accuracy_share: float = 0.75
    # A run that does not fit has *learned nothing* when its loss also ends above this share
    # of its start: the failure a wrong initial scale causes (ND403 is an error only then).
    fit_stuck_ratio: float = 0.9
    fit_tail_frac: float = 0.05
    fit_knn_min_samples: int = 20
    # A probe-batch loss that repeats its exact value from one recorded step to the next
    # although the weights changed in between was not measured on the current network (its
    # outputs were kept from earlier steps). When more than this share of such step pairs
    # (at least `probe_frozen_min_pairs` of them) repeat, the probe series is *frozen*: rules
    # judge the batch loss instead, and run_fits does not read the probe accuracy.
    probe_frozen_frac: float = 0.5
    probe_frozen_min_pairs: int = 4

    # --- ND1 outputs and loss --------------------------------------------------
    # Steps ignored before output-based rules start judging (training needs a moment).
    warmup_frac: float = 0.1
    pinned_std: float = 1e-3           # output std across the probe batch below this ...
    pinned_half_band: float = 0.05     # ... or every |p - 0.5| below this (sigmoid outputs)
    pinned_checks: int = 5             # ... for this many consecutive checks
    # A pinned output only matters if the targets differ by more than this across inputs.
    target_spread_min: float = 1e-6
    # initial loss / expected (ln C, ...). Healthy Glorot-initialised 3-class nets start anywhere
    # in 0.7-2.1x ln C (random logits of std ~0.7), so the ok band is wider than 0.8-1.5.
    loss_init_ok: tuple[float, float] = (0.5, 2.0)
    # Beyond 4x the network starts out confidently wrong (e.g. N(0, 1) weights on 64 units).
    loss_init_warn: tuple[float, float] = (0.25, 4.0)
    loss_init_steps: int = 8           # batch losses averaged for the initial loss when no probe loss exists
    plateau_window_frac: float = 0.25  # last quarter of the run ...
    plateau_min_drop: float = 1e-3     # ... must lower the loss by at least 0.1 % of its start
    plateau_fit_loss: float = 0.05     # a loss already this small (relative to start) is converged, not stuck
    diverge_ratio: float = 2.0         # final loss >= 2x its minimum
    diverge_min_rise: float = 0.1      # ... and the rise is >= 10% of the initial loss (not noise near 0)
    diverge_tail_frac: float = 0.1     # "the end" of the run, for ND105: its last 10% of steps
    oscillation_sign_change: float = 0.45  # fraction of loss differences that flip sign
    oscillation_amplitude: float = 0.1     # ... with typical jumps >= 10% of the loss level
    oscillation_settle: float = 0.5        # ... unless the loss still halves over the judged stretch

    # --- ND2 gradients ---------------------------------------------------------
    vanishing_abs_mean: float = 1e-7
    vanishing_ratio: float = 1e-3      # first/last layer gradient-norm ratio ...
    vanishing_first_norm: float = 1e-4  # ... with the first layer's norm at most this
    exploding_ratio: float = 70.0
    exploding_growth: float = 2.0      # growth of the gradient norm over `exploding_window` checks
    exploding_window: int = 5
    gradcheck_error: float = 1e-2      # relative error above this: wrong gradients
    gradcheck_warn: float = 1e-4       # above this: suspicious (ReLU kinks stay below)
    gradscale_cosine: float = 0.999    # direction right (cosine above this) ...
    gradscale_factor: float = 0.05     # ... but |scale - 1| above this: right up to a factor

    # --- ND3 activations -------------------------------------------------------
    saturated_frac: float = 0.5        # layer saturated when more than half its entries are
    dead_layer_frac: float = 0.5       # layer flagged when more than half its units are dead
    activation_match_tol: float = 1e-3  # max abs error to call a function "this activation"

    # --- ND4 init and parameters -----------------------------------------------
    init_scale_ratio: tuple[float, float] = (0.5, 2.0)  # std / Glorot-or-He std
    init_scale_error_ratio: tuple[float, float] = (0.1, 10.0)
    # The rms of n weights drawn at a scale s reads s within about 1/sqrt(2n) (relative):
    # a layer is off only when the ratio is off by this many such errors beyond the bound,
    # so a 4x4 layer drawn at exactly 2x Glorot does not flip with the seed.
    init_scale_sample_z: float = 2.0
    symmetric_atol: float = 1e-12
    # Weights drawn centred on 0 share one sign by chance with probability 2**(1 - n): the
    # same-sign layers must hold this many in all, so that chance is below 1e-3 (with 8 it
    # was 1 in 128, and a randn layer of 8 weights drew all-positive on some seeds).
    same_sign_min_weights: int = 11

    # --- ND5 updates -----------------------------------------------------------
    update_ratio_warn: tuple[float, float] = (1e-4, 1e-2)
    # The upper error bound is 0.3, not 0.1: a network stuck with a large error signal (the
    # seed's double sigmoid, per-sample SGD) takes steps of ~11% of its weights at a learning
    # rate the corrected network trains well with; lr x1000 gives medians >= 1 or bursts.
    update_ratio_error: tuple[float, float] = (1e-5, 0.3)
    # Steps that change a layer's weights by 2.5x their own size or more, seen at least this
    # many times, are a learning rate far too high even if the network then saturates and the
    # later steps shrink to nothing. Healthy small nets peak below 0.4, stuck ones below 2.
    update_ratio_burst: float = 2.5
    # ND502 is an error only when the run's steps, all together, could not have moved the
    # weights by this share of their size (median ratio x steps taken while learning): small
    # steps are how per-sample SGD works, and 60,000 steps of 1e-5 can travel 0.6x the weights.
    update_travel_error: float = 0.1
    update_burst_steps: int = 2
    update_cos_min: float = 0.0        # updates should point downhill: cos(update, -grad) > 0

    # --- ND6 data ----------------------------------------------------------------
    input_scale_max: float = 10.0      # inputs with |x| typically above this are unscaled
    input_scale_min: float = 1e-3
    # Targets this close to the edge of the output range count as reachable (a sigmoid 'reaches' 0 and 1).
    target_range_tol: float = 1e-6

    # --- ND7 frameworks and model construction -----------------------------------------
    # Regression targets whose largest |value| exceeds this are unscaled; an error when the
    # loss also stayed above unscaled_target_fit of its start (the network did not fit them).
    target_scale_max: float = 100.0
    unscaled_target_fit: float = 0.5
    # Gradients never zeroed: at least this many checks after an update, and this share of
    # them still holding the previous gradient.
    stale_grad_checks: int = 3
    stale_grad_frac: float = 0.9
    # backward() seen this many times with no parameter ever changing: the step is missing.
    step_missing_backwards: int = 3

    def with_(self, **changes: Any) -> "Thresholds":
        """A copy with some thresholds changed: ``Thresholds().with_(pinned_std=1e-4)``."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown threshold(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_THRESHOLDS = Thresholds()
