"""Keras 3 through netdoctor: the callback every fit gets, judged by the same rules.

Skipped cleanly where keras (or its torch backend) is not installed. Tiny models,
a few dozen full-batch epochs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
pytest.importorskip("torch")
keras = pytest.importorskip("keras")

import netdoctor as nd  # noqa: E402

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
Y = np.array([0, 1, 1, 0])


def model_with(output="sigmoid", units=1, hidden="tanh", loss="binary_crossentropy", lr=0.05):
    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(2,))
    h = keras.layers.Dense(8, activation=hidden, name="hidden")(inputs)
    out = keras.layers.Dense(units, activation=output, name="out")(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss)
    return model


def codes(report):
    return report.codes(at_least=nd.Severity.WARNING)


def test_a_keras_fit_is_observed_in_the_common_vocabulary():
    model = model_with()
    report = nd.diagnose(model, lambda: model.fit(X, Y, epochs=150, batch_size=4, verbose=0))
    trace = report.runs["original"]
    assert trace.info.source == "keras" and trace.info.steps == 150
    assert [(layer.name, layer.activation) for layer in trace.info.layers] == [("hidden", "tanh"), ("out", "sigmoid")]
    for quantity in ("grad_norm", "update_ratio", "weight_norm", "act_std"):
        assert trace.has(quantity, "hidden"), quantity
    assert np.isfinite(trace.series("probe_loss")[1][-1])  # the last step is recorded in full
    assert not any(f.is_error for f in report.findings), [f.code for f in report.findings]


def test_softmax_over_one_unit_is_named():
    model = model_with(output="softmax")
    report = nd.diagnose(model, lambda: model.fit(X, Y, epochs=20, batch_size=4, verbose=0))
    assert "ND703" in codes(report)


def test_from_logits_after_a_softmax_and_bce_on_logits():
    squashed = model_with(output="softmax", units=2,
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    report = nd.diagnose(squashed, lambda: squashed.fit(X, Y, epochs=20, batch_size=4, verbose=0))
    assert "ND701" in codes(report)
    logits = model_with(output="linear")
    report = nd.diagnose(logits, lambda: logits.fit(X, Y, epochs=20, batch_size=4, verbose=0))
    assert "ND702" in codes(report)


def test_the_explicit_callback_and_watch():
    model = model_with()
    import netdoctor.keras

    callback = netdoctor.keras.Callback(X, Y)
    model.fit(X, Y, epochs=15, batch_size=4, verbose=0, callbacks=[callback])
    assert callback.report.runs["original"].info.steps == 15
    with nd.watch(model) as w:
        model.fit(X, Y, epochs=10, batch_size=4, verbose=0)
    assert w.report.runs["original"].info.steps == 10


def test_seeding_reaches_keras_set_random_seed():
    from netdoctor.seeding import seeded_rngs

    def draw(run):
        with seeded_rngs(run):
            keras.utils.set_random_seed(3)  # the script's own seed
            return keras.random.normal((3,), seed=None).cpu().numpy() if hasattr(
                keras.random.normal((1,)), "cpu") else np.asarray(keras.random.normal((3,)))

    np.testing.assert_array_equal(draw(1), draw(1))
    assert not np.array_equal(draw(1), draw(2))
