"""The layer chain inferred from arrays alone (netdoctor.observe.chain).

Each test builds the arrays a hand-written forward pass leaves behind, in one of the
ways people write them, and checks that the chain (weights, biases, layout, sample
axis, functions) comes out right — and that nothing is found where nothing holds.
"""

from __future__ import annotations

import numpy as np
import pytest

from netdoctor.observe.arrays import Context, Found, Path, Root, fingerprint
from netdoctor.observe.chain import ChainSearch, find_chain, observe
from netdoctor.observe.functions import Call

rng = np.random.default_rng(0)


def found(namespace: dict | None = None, **arrays) -> list[Found]:
    """The arrays as module globals of `namespace` (so that rebinding one there is seen)."""
    namespace = arrays if namespace is None else namespace
    return [Found(Path(Root("globals", name, obj=namespace)), a) for name, a in namespace.items()]


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def describe(spec):
    return [(l.W.name, l.b.name if l.b else None, l.weight_form, l.samples, l.function) for l in spec.layers]


def test_rows_in_out_with_stored_z_and_a():
    X = rng.normal(size=(8, 3))
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=(1, 4))
    W2, b2 = rng.normal(size=(4, 2)), rng.normal(size=2)
    z1 = X @ W1 + b1
    a1 = np.tanh(z1)
    z2 = a1 @ W2 + b2
    a2 = sigmoid(z2)
    spec = find_chain(found(X=X, W1=W1, b1=b1, z1=z1, a1=a1, W2=W2, b2=b2, z2=z2, a2=a2))
    assert describe(spec) == [("W1", "b1", "in_out", "rows", "tanh"), ("W2", "b2", "in_out", "rows", "sigmoid")]
    assert spec.input.name == "X" and spec.output.name == "a2"
    assert (spec.n_in, spec.n_out) == (3, 2)


def test_columns_out_in_with_temporary_z_and_relu():
    X = rng.normal(size=(3, 10))                       # one sample per column
    W1, b1 = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    W2 = rng.normal(size=(2, 5))
    H = np.maximum(W1 @ X + b1, 0)                     # z never stored
    Yhat = sigmoid(W2 @ H)
    spec = find_chain(found(X=X, W1=W1, b1=b1, H=H, W2=W2, Yhat=Yhat))
    assert describe(spec) == [("W1", "b1", "out_in", "cols", "relu"), ("W2", None, "out_in", "cols", "sigmoid")]


def test_x_at_w_transposed_like_a_linear_module():
    X = rng.normal(size=(6, 2))
    W = rng.normal(size=(4, 2))                        # (out, in), used as X @ W.T
    b = rng.normal(size=4)
    h = sigmoid(X @ W.T + b)
    spec = find_chain(found(X=X, W=W, b=b, h=h))
    assert describe(spec) == [("W", "b", "out_in", "rows", "sigmoid")]


def test_softmax_output_computed_inline():
    X = rng.normal(size=(7, 3))
    W, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    scores = X @ W + b
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    spec = find_chain(found(X=X, W=W, b=b, probs=probs))
    assert describe(spec) == [("W", "b", "in_out", "rows", "softmax")]


def test_a_bias_still_at_zero_is_found_by_its_name():
    X = rng.normal(size=(5, 2))
    W1, b1 = rng.normal(size=(2, 3)), np.zeros((1, 3))
    h = np.tanh(X @ W1 + b1)
    spec = find_chain(found(X=X, W1=W1, b1=b1, h=h))
    assert spec.layers[0].b is not None and spec.layers[0].b.name == "b1"


def test_user_function_pairs_link_z_to_a_whatever_it_computes():
    X = rng.normal(size=(5, 2))
    W = rng.normal(size=(2, 3))
    z = X @ W
    a = 1.7159 * np.tanh(2 / 3 * z)                    # a scaled tanh, in no catalogue
    call = Call(arg_ids=(id(z),), arg_names=("z",), args=[z.copy()], result=a.copy(), result_id=id(a))
    fake_code = (lambda v: v).__code__
    spec = find_chain(found(X=X, W=W, a=a), calls=[(fake_code, call)])
    assert spec is not None and spec.layers[0].function_code is fake_code
    assert find_chain(found(X=X, W=W, a=a)) is None     # without the call nothing proves the link


def test_single_sample_columns_as_in_per_sample_training():
    x = rng.normal(size=(2, 1))
    W1, b1 = rng.normal(size=(3, 2)), rng.normal(size=(3, 1))
    W2, b2 = rng.normal(size=(2, 3)), rng.normal(size=(2, 1))
    z1 = W1 @ x + b1
    a1 = sigmoid(z1)
    z2 = W2 @ a1 + b2
    a2 = sigmoid(z2)
    spec = find_chain(found(x=x, W1=W1, b1=b1, z1=z1, a1=a1, W2=W2, b2=b2, z2=z2, a2=a2))
    assert [l.W.name for l in spec.layers] == ["W1", "W2"]
    assert spec.samples == "cols"


def test_nothing_is_found_among_unrelated_arrays():
    arrays = {f"a{i}": rng.normal(size=(4, 4)) for i in range(6)}
    assert find_chain(found(**arrays)) is None


def test_observe_rejects_a_chain_whose_weights_moved():
    X = rng.normal(size=(6, 2))
    W, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    z = X @ W + b
    a = np.tanh(z)
    arrays = dict(X=X, W=W, b=b, z=z, a=a)
    spec = find_chain(found(arrays))
    seen = observe(spec, Context(None))
    assert seen is not None and np.allclose(seen.acts[-1], a)
    arrays["W"] = W - 0.1                              # an update after the forward pass
    assert observe(spec, Context(None)) is None


def test_search_is_incremental_and_keeps_links_while_arrays_hold():
    X = rng.normal(size=(6, 2))
    W, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    arrays = dict(X=X, W=W, b=b)
    search = ChainSearch()

    def look():
        return search.update({id(f.array): f for f in found(arrays)})

    assert look() is None
    arrays["z"] = X @ W + b                            # the forward pass advances
    arrays["a"] = np.tanh(arrays["z"])
    spec = look()
    assert spec is not None and spec.output.name == "a"
    assert look() is not None                           # nothing new: the links stay


@pytest.mark.parametrize("name, f", [("sigmoid", sigmoid), ("tanh", np.tanh), ("softplus", lambda z: np.log1p(np.exp(z)))])
def test_functions_are_named_by_value(name, f):
    X = rng.normal(size=(9, 2))
    W = rng.normal(size=(2, 3))
    z = X @ W
    spec = find_chain(found(X=X, W=W, z=z, a=f(z)))
    assert spec.layers[0].function == name


def test_fingerprints_drive_link_validity():
    X = rng.normal(size=(4, 2))
    W = rng.normal(size=(2, 2))
    z = X @ W
    a = np.tanh(z)
    arrays = dict(X=X, W=W, z=z, a=a)
    search = ChainSearch()
    search.update({id(f.array): f for f in found(arrays)})
    assert search.links
    W += 1.0                                            # changed in place: z and a are stale
    search.update({id(f.array): f for f in found(arrays)})
    assert not any(l.W.array is W for l in search.links)
    arrays["z"] = X @ W                                 # the next forward pass
    arrays["a"] = np.tanh(arrays["z"])
    spec = search.update({id(f.array): f for f in found(arrays)})
    assert spec is not None and spec.layers[0].W.array(Context(None)) is W
    assert all(fingerprint(l.W.array) == l.members[id(l.W.array)] for l in search.links)


def _discovered(obj) -> list:
    from netdoctor.observe.arrays import discover

    return list(discover([(Root("object", "", obj=obj), obj)], lambda v: v is obj).values())


def test_integer_settings_are_never_a_layer_whatever_they_happen_to_fit():
    # A network's sizes and its labels can fit "w * x + b" by chance: 2 * [0, 1, 1, 0] + 2
    # is the layer sizes (2, 4, 4, 2). Integers are counts, not weights.
    class Settings:
        pass

    settings = Settings()
    settings.n_out, settings.n_in = 2, 2
    settings.labels = np.array([0.0, 1.0, 1.0, 0.0])
    settings.sizes = np.array([2.0, 4.0, 4.0, 2.0])
    arrays = _discovered(settings)
    assert {f.name.rsplit(".", 1)[-1] for f in arrays} >= {"n_out", "n_in"}   # (the integers are seen)
    assert find_chain(arrays) is None
    # The same numbers held as floats make a (one-number) link: it is the integers that say no.
    settings.n_out, settings.n_in = 2.0, 2.0
    spec = find_chain(_discovered(settings))
    assert spec is not None
    assert spec.layers[0].W.name.rsplit(".", 1)[-1] in ("n_out", "n_in")



def test_a_layer_fed_one_row_for_every_sample_is_still_found():
    # Raw features in the thousands saturate the hidden sigmoids: h is the same 0/1 row for
    # the whole batch, so the output layer's z and a hold one value each.
    X = rng.uniform(600, 3500, size=(40, 2))
    # each unit's weights share one sign: no unit comes near 0 for any sample
    W1 = rng.choice([-1.0, 1.0], size=(10, 1)) * rng.uniform(0.5, 1.5, size=(10, 2))
    b1 = np.zeros(10)
    W2, b2 = rng.normal(size=(1, 10)), np.full(1, 0.3)
    z1 = X @ W1.T + b1
    h = sigmoid(z1)                                    # 1.0, or ~1e-300 varying by sample
    z2 = h @ W2.T + b2
    assert np.all(z2 == z2[0]) and h.max() > h.min()
    p = sigmoid(z2)
    fake_code = (lambda v: v).__code__
    calls = [(fake_code, Call(arg_ids=(id(z),), arg_names=("z",), args=[z.copy()], result=a.copy(), result_id=id(a)))
             for z, a in ((z1, h), (z2, p))]
    spec = find_chain(found(X=X, W1=W1, b1=b1, h=h, W2=W2, b2=b2, p=p), calls=calls)
    assert [l.W.name for l in spec.layers] == ["W1", "W2"] and spec.output.name == "p"
    # One value alone proves nothing: with an input that is itself one value throughout,
    # and no function seen computing p, the output layer is not claimed.
    ones = np.ones((40, 10))
    q = sigmoid(ones @ W2.T + b2)
    spec = find_chain(found(X=X, W1=W1, b1=b1, ones=ones, W2=W2, b2=b2, q=q))
    assert spec is None or all(l.W.name != "W2" for l in spec.layers)


def test_a_one_number_output_through_a_library_function_needs_two_values_explained():
    # One sample per step, one output unit through np.tanh (no user call to see): one
    # number matches some f(W @ h + b) by chance, so the output layer is claimed only once
    # the same arrays have explained a second, different value.
    x = rng.normal(size=(1, 1))
    W1, b1 = rng.normal(size=(6, 1)), rng.normal(size=(6, 1))
    W2, b2 = rng.normal(size=(1, 6)), rng.normal(size=(1, 1))
    arrays = dict(W1=W1, b1=b1, W2=W2, b2=b2)
    search = ChainSearch()
    fake_code = (lambda v: v).__code__

    def forward(value):
        x = np.full((1, 1), value)
        z1 = W1 @ x + b1
        h = 1 / (1 + np.exp(-z1))
        arrays.update(x=x, h=h, out=np.tanh(W2 @ h + b2))
        call = Call(arg_ids=(id(z1),), arg_names=("z",), args=[z1.copy()], result=h.copy(), result_id=id(h))
        return search.update({id(f.array): f for f in found(arrays)}, calls=[(fake_code, call)])

    first = forward(0.7)
    assert first is not None and [l.W.name for l in first.layers] == ["W1"]
    second = forward(-1.3)
    assert [l.W.name for l in second.layers] == ["W1", "W2"]
    assert second.layers[1].function == "tanh" and second.output.name == "out"
