"""Gradient check on code netdoctor did not write.

The code claims gradients in one of two ways:

* **gradient arrays** it keeps (``self.dW[l]``): compared as they are, so a wrong
  formula and a wrong constant factor both show;
* **its updates** (``W -= lr * ...`` with no gradient kept): the change ``-dW`` is
  the gradient times an unknown learning rate, so the rate is fitted (on the
  output layer, whose gradient is rarely the broken one) and each layer is compared
  after dividing by it; a negative fitted rate means the updates go uphill. This
  holds for plain gradient descent only: when no parameter's change is a multiple
  of its gradient while the changes keep the gradient's signs (Adam, RMSprop and
  momentum bend every update that way), no check is made.

The truth is the gradient of the network's own forward pass, rebuilt from its
arrays (:mod:`.rebuild`), under the standard losses (MSE, BCE, CE; summed or
averaged). The loss, the reduction and the target encoding that explain the code's
gradients best are chosen; then :func:`netdoctor.gradcheck.check` measures the
claimed gradients against central finite differences of that loss, entry by entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .rebuild import LOSS_KINDS, REDUCTIONS, Rebuilt, cosine_and_scale, flat, nearest_reduction

GRADCHECK_H = 1e-5
GRADCHECK_ENTRIES = 32
# Finite differences on this many entries per parameter must agree with the rebuilt
# backprop (relative error below VALIDATE_TOL) before backprop serves as the truth.
VALIDATE_ENTRIES = 4
VALIDATE_TOL = 1e-4
# The rebuilt forward pass must reproduce the observed output this closely.
REPRODUCE_RTOL = 1e-6
# Updates stand in for gradients only under plain gradient descent, where a correctly
# computed parameter changes by exactly -lr * g: its cosine with the true gradient is at
# least this, all by the same learning rate. A bug rarely touches every parameter, while
# Adam, RMSprop and momentum bend every one. Fewer than PLAIN_STEP_MIN_SIZE such entries
# prove nothing (a single number's change is always a multiple of its gradient).
PLAIN_STEP_COS = 0.999
PLAIN_STEP_MIN_SIZE = 3
PLAIN_STEP_RATE_TOL = 1e-3
# Adam, RMSprop and momentum bend every parameter's update but keep most entries' signs
# (measured on an Adam spiral net: 0.90 of them at step 2, 0.70 at step 512); a backprop
# bug that bends every layer leaves the signs at chance (0.48-0.50 on a scalar-broadcast
# gradient), so the line sits between.
ADAPTIVE_SIGN_SHARE = 0.65
PREFERRED_LOSS = {"sigmoid": "bce", "softmax": "ce", "identity": "mse", "tanh": "mse", "linear": "mse"}


@dataclass
class Batch:
    X: np.ndarray                         # rows form
    out: np.ndarray | None                # the output the code computed for X (rows form), to verify
    targets: dict[str, np.ndarray]        # encoding name -> Y (rows form)


@dataclass
class Claim:
    mode: str                             # "gradients" or "updates"
    arrays: list[np.ndarray | None]       # per parameter, user shapes (None: not claimed)


def check_step(
    rebuilt: Rebuilt,
    params: Sequence[np.ndarray],
    names: Sequence[tuple[str, str, str]],
    batches: Sequence[Batch],
    claim: Claim,
    *,
    step: int,
    kinds: Sequence[str] | None = None,
    reduction: str | None = None,
) -> dict[str, Any] | None:
    """The "gradcheck" event payload for one step, or None when it cannot be done.

    `params` are copies of the parameters *before* the step (user shapes, in the
    chain's order), `names` (layer, "weight"|"bias", the user's name) for each.
    `kinds` and `reduction`, when given, fix the loss instead of choosing it.
    """
    base = rebuilt.from_user(params)
    out_index = _output_weight_index(rebuilt)
    output_fn = rebuilt.functions[-1].name
    best = None
    explained: list[tuple] = []   # (score, batch, encoding, kind, true gradients): every candidate
    for batch in batches:
        if not _reproduces(rebuilt, base, batch):
            continue
        for encoding, Y in batch.targets.items():
            for kind in (kinds or LOSS_KINDS):
                if kind in ("bce", "ce") and not kinds and not _probabilities(Y):
                    continue   # (cross-entropy takes targets in [0, 1]: a code with others minimises no such loss)
                true = rebuilt.gradients(base, batch.X, Y, kind)
                if not true:
                    continue
                true_user = rebuilt.to_user(true)
                score = _agreement(claim, true_user, out_index)
                if not math.isfinite(score):
                    continue
                explained.append((round(score, 6), batch, encoding, kind, true_user))
                prefer = 1 if PREFERRED_LOSS.get(output_fn) == kind else 0
                key = (round(score, 6), prefer, encoding == "as_is")
                if best is None or key > best[0]:
                    best = (key, batch, encoding, Y, kind, true_user)
    if best is None:
        return None
    _, batch, encoding, Y, kind, true_sum = best
    rivals = _rival_losses(claim, best, explained)
    # No parameter's change is a multiple of its gradient, yet the changes keep the
    # gradient's signs: an adaptive or momentum optimizer (Adam, RMSprop ...), whose update
    # is not -lr * g and cannot stand in for the gradient. The loss, reduction and targets
    # are still chosen (the observer needs them), but the comparison is no verdict: its
    # numbers are left out rather than reported as a mismatch. (Wrong backprop that bends
    # every layer scrambles the signs too, and is still checked.)
    adaptive = (claim.mode == "updates" and not _plain_descent(claim.arrays, true_sum)
                and _signs_follow(claim.arrays, true_sum))
    n = batch.X.shape[0]
    k = np.broadcast(rebuilt.forward(base, batch.X[:1])[1][-1], Y[:1]).shape[1]

    claimed = list(claim.arrays)
    lr_fit = None
    if claim.mode == "gradients":
        pairs = [(c, t) for c, t in zip(claimed, true_sum) if c is not None]
        _, scale = cosine_and_scale(flat([c for c, _ in pairs]), flat([t for _, t in pairs]))
        reduction = reduction or nearest_reduction(kind, scale, n, k) or "mean"
    else:
        reduction = "mean"   # the learning rate absorbs any constant factor
        factor = REDUCTIONS[reduction](n, k)
        lr_fit = _fit_rate(claimed, [t * factor for t in true_sum], out_index)
        if lr_fit is None:
            return None
        claimed = [None if c is None else c / abs(lr_fit) for c in claimed]

    l2 = _weight_decay(params, names, claimed, [t * REDUCTIONS[reduction](n, k) for t in true_sum]) \
        if claim.mode == "gradients" else None
    if l2 is not None:
        # The code adds L2 regularisation (dW += reg * W): judge the rest as the loss's gradient.
        claimed = [c - l2 * np.asarray(p, dtype=np.float64) if c is not None and role == "weight" else c
                   for c, p, (_, role, _) in zip(claimed, params, names)]
    checks = _compare(rebuilt, params, batch, Y, kind, reduction, claimed, true_sum, n, k, step)
    rows = []
    for (layer, role, name), c, claimed_one in zip(names, checks, claimed):
        if claimed_one is None:
            continue  # not claimed (e.g. a parameter the code never updates)
        rows.append({
            "layer": layer, "param": role, "name": name,
            "rel_err": float(c.rel_err), "cosine": float(c.cosine),
            "scale": float(c.scale), "n_checked": int(c.n_checked),
        })
    if not rows:
        return None
    payload: dict[str, Any] = {
        "loss_kind": kind,
        "reduction": reduction,
        "h": GRADCHECK_H,
        "n_samples": int(n),
        "claimed": claim.mode,
        "targets": encoding,
        "params": rows,
    }
    if rivals:
        # Another loss explains the gradients' direction as well and gives them another size
        # (one sample through one sigmoid unit: MSE's and BCE's gradients differ by the factor
        # o(1 - o) alone). The scale read here is then the choice's, not the code's.
        payload["loss_ambiguous"] = sorted({kind, *rivals})
    if lr_fit is not None:
        payload["lr_fit"] = float(lr_fit)
    if l2 is not None:
        payload["l2_fit"] = float(l2)
    if adaptive:
        for row in rows:
            row.update(rel_err=math.nan, cosine=math.nan, scale=math.nan)
        payload["not_checked"] = ("the updates are not -lr * gradient (an adaptive or momentum optimizer): "
                                  "gradients cannot be checked from them")
    return payload


def _rival_losses(claim: Claim, best: tuple, explained: list[tuple]) -> list[str]:
    """The other losses that explain the claimed gradients' direction exactly as well on the
    same samples and targets, but not their size (a scale differing by more than 1%)."""
    if claim.mode != "gradients":
        return []   # (updates: the learning rate absorbs any size)
    (score, _, _), batch, encoding, _, kind, true_best = best
    claimed = [c for c in claim.arrays if c is not None]

    def size(true_user) -> float:
        _, scale = cosine_and_scale(flat(claimed), flat([t for c, t in zip(claim.arrays, true_user) if c is not None]))
        return abs(scale)

    mine = size(true_best)
    rivals = []
    for other_score, other_batch, other_encoding, other_kind, true_other in explained:
        if other_kind == kind or other_score != score or other_batch is not batch or other_encoding != encoding:
            continue
        theirs = size(true_other)
        if math.isfinite(mine) and math.isfinite(theirs) and mine > 0 and theirs > 0 \
                and max(mine, theirs) / min(mine, theirs) > 1.01:
            rivals.append(other_kind)
    return rivals


def _probabilities(Y: np.ndarray) -> bool:
    Y = np.asarray(Y, dtype=np.float64)
    return bool(np.all((Y >= 0) & (Y <= 1)))


def _weight_decay(params, names, claimed, true) -> float | None:
    """The L2 strength reg with claimed == true + reg * W on every weight, if the code adds one.

    Fitted by least squares over the weights together; accepted only when it explains the
    difference (what is left is under 1e-3 of the gradients) and the difference is real.
    """
    num = den = left = total = diff = 0.0
    pairs = [(np.asarray(c, dtype=np.float64), np.asarray(t, dtype=np.float64), np.asarray(p, dtype=np.float64))
             for c, t, p, (_, role, _) in zip(claimed, true, params, names)
             if c is not None and role == "weight" and np.shape(c) == np.shape(p)]
    if not pairs:
        return None
    for c, t, W in pairs:
        d = (c - t).reshape(-1)
        w = W.reshape(-1)
        num += float(d @ w)
        den += float(w @ w)
        total += float(c.reshape(-1) @ c.reshape(-1))
        diff += float(d @ d)
    if not (den > 0 and total > 0 and math.isfinite(num)) or num <= 0:
        return None
    reg = num / den
    for c, t, W in pairs:
        r = (c - t - reg * W).reshape(-1)
        left += float(r @ r)
    if diff <= 1e-8 * total or left > 1e-6 * total:
        return None   # nothing to explain, or an L2 term does not explain it
    return reg


def _compare(rebuilt, params, batch, Y, kind, reduction, claimed, true_sum, n, k, step) -> list:
    """Claimed vs true gradients, one ParamCheck per parameter.

    The truth is the rebuilt network's backprop (exact, every entry) once central
    finite differences of the loss agree with it on a few entries of every
    parameter; if they do not (a function backprop cannot follow), finite
    differences themselves are the truth, on a sample of entries.
    """
    from .. import gradcheck

    factor = REDUCTIONS[reduction](n, k)
    true = [t * factor for t in true_sum]
    work = [np.array(p, dtype=np.float64, copy=True) for p in params]

    def loss_fn() -> float:
        return rebuilt.loss(rebuilt.from_user(work), batch.X, Y, kind, reduction)

    rng = np.random.default_rng(step)
    validation = gradcheck.check(work, loss_fn, true, h=GRADCHECK_H, max_entries=VALIDATE_ENTRIES, rng=rng)
    if all(not (c.rel_err > VALIDATE_TOL) for c in validation):   # NaN (both flat) passes too
        return [_param_check(c, t, v.n_checked) for c, t, v in zip(claimed, true, validation)]
    return gradcheck.check(
        work, loss_fn, [c if c is not None else np.full(p.shape, np.nan) for c, p in zip(claimed, work)],
        h=GRADCHECK_H, max_entries=GRADCHECK_ENTRIES, rng=rng,
    )


def _param_check(claimed: np.ndarray | None, true: np.ndarray, validated: int):
    """rel_err / cosine / scale of a claimed gradient against the (validated) true one."""
    from ..gradcheck import ParamCheck

    if claimed is None:
        return ParamCheck(math.nan, math.nan, math.nan, 0)
    g = np.asarray(claimed, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    if not (np.isfinite(g).all() and np.isfinite(t).all()):
        return ParamCheck(math.nan, math.nan, math.nan, g.size)
    gn, tn = float(np.linalg.norm(g)), float(np.linalg.norm(t))
    rel_err = float(np.linalg.norm(g - t)) / max(gn + tn, 1e-300)
    if gn == 0 and tn == 0:
        return ParamCheck(rel_err, 1.0, 1.0, g.size)
    cos, scale = cosine_and_scale(g, t)
    return ParamCheck(rel_err, cos, scale, g.size)


def _output_weight_index(rebuilt: Rebuilt) -> int:
    index = 0
    for layer in rebuilt.spec.layers[:-1]:
        index += 2 if layer.b is not None else 1
    return index


def _reproduces(rebuilt: Rebuilt, params, batch: Batch) -> bool:
    """Whether the rebuilt network gives the output the code computed (else it is not the same net)."""
    if batch.out is None:
        return True
    _, acts = rebuilt.forward(params, batch.X)
    out = acts[-1]
    if out.shape != batch.out.shape:
        return False
    with np.errstate(all="ignore"):
        scale = max(float(np.max(np.abs(batch.out))), 1e-12)
        return bool(np.max(np.abs(out - batch.out)) <= REPRODUCE_RTOL * scale + 1e-12)


def _agreement(claim: Claim, true_user: list[np.ndarray], out_index: int) -> float:
    """How well a candidate truth explains the claim: a cosine (scale-free)."""
    if claim.mode == "updates":
        # Only the output layer: the hidden ones may be the broken part.
        c = claim.arrays[out_index]
        if c is not None:
            cos, _ = cosine_and_scale(flat([c]), flat([true_user[out_index]]))
            if math.isfinite(cos):
                return abs(cos)
    pairs = [(c, t) for c, t in zip(claim.arrays, true_user) if c is not None]
    if not pairs:
        return math.nan
    cos, _ = cosine_and_scale(flat([c for c, _ in pairs]), flat([t for _, t in pairs]))
    # Direction only: a sign (descent direction kept instead of the gradient, or an update
    # going uphill) is judged after the loss is chosen.
    return abs(cos)


def _plain_descent(claimed: Sequence[np.ndarray | None], true: Sequence[np.ndarray]) -> bool:
    """Whether the updates show plain gradient descent: parameters whose change is a multiple
    of their gradient (cosine >= PLAIN_STEP_COS), by one and the same factor (the learning
    rate), holding at least PLAIN_STEP_MIN_SIZE entries between them. One two-entry vector
    can line up with its gradient by chance under Adam; several parameters sharing the rate
    do not."""
    plain = []   # (entries, scale)
    for c, t in zip(claimed, true):
        if c is None:
            continue
        cos, scale = cosine_and_scale(flat([c]), flat([t]))
        if math.isfinite(cos) and math.isfinite(scale) and abs(cos) >= PLAIN_STEP_COS and scale != 0:
            plain.append((int(np.size(c)), scale))
    for _, scale in plain:
        shared = sum(n for n, other in plain if abs(other - scale) <= PLAIN_STEP_RATE_TOL * abs(scale))
        if shared >= PLAIN_STEP_MIN_SIZE:
            return True
    return False


def _signs_follow(claimed: Sequence[np.ndarray | None], true: Sequence[np.ndarray]) -> bool:
    """Whether the updates keep the gradient's sign in at least ADAPTIVE_SIGN_SHARE of the
    entries where the gradient is not ~0 (either sign overall: uphill updates count too)."""
    agree = total = 0
    for c, t in zip(claimed, true):
        if c is None:
            continue
        c, t = np.asarray(c, dtype=np.float64).ravel(), np.asarray(t, dtype=np.float64).ravel()
        if c.shape != t.shape:
            continue
        scale = float(np.max(np.abs(t))) if t.size else 0.0
        keep = np.abs(t) > 1e-6 * scale
        agree += int(np.sum(np.sign(c[keep]) == np.sign(t[keep])))
        total += int(keep.sum())
    if total == 0:
        return False
    share = agree / total
    return max(share, 1 - share) >= ADAPTIVE_SIGN_SHARE


def _shared_rate(claimed, fits) -> float | None:
    """The learning rate that several parameters show exactly (change = -rate * gradient, at
    cosine >= PLAIN_STEP_COS, at least PLAIN_STEP_MIN_SIZE entries between them): the most
    entries win. Such agreement is no accident, while any one layer, the output layer too,
    may be the broken one (a weight gradient formed from the wrong activations)."""
    exact = [(int(np.size(claimed[i])), scale) for i, cos, scale in fits
             if abs(cos) >= PLAIN_STEP_COS and scale != 0]
    best = None
    for _, scale in exact:
        group = [(n, other) for n, other in exact if abs(other - scale) <= PLAIN_STEP_RATE_TOL * abs(scale)]
        entries = sum(n for n, _ in group)
        if entries >= PLAIN_STEP_MIN_SIZE and (best is None or entries > best[0]):
            best = (entries, float(np.median([other for _, other in group])))
    return None if best is None else best[1]


def _fit_rate(claimed: list[np.ndarray | None], true: list[np.ndarray], out_index: int) -> float | None:
    """The learning rate that turns true gradients into the code's updates (-dW = lr * g)."""
    fits = []
    for i, (c, t) in enumerate(zip(claimed, true)):
        if c is None:
            continue
        cos, scale = cosine_and_scale(flat([c]), flat([t]))
        if math.isfinite(cos) and math.isfinite(scale):
            fits.append((i, cos, scale))
    if not fits:
        return None
    shared = _shared_rate(claimed, fits)
    if shared is not None:
        return shared
    out = next((f for f in fits if f[0] == out_index), None)
    if out is not None and abs(out[1]) > 0.9:
        return out[2]
    good = [scale for _, cos, scale in fits if abs(cos) > 0.9]
    if good:
        return float(np.median(good))
    return out[2] if out is not None else fits[-1][2]
