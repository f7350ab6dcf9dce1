"""Training data found among a program's arrays; probe outputs (netdoctor.observe.data)."""

from __future__ import annotations

import numpy as np

from netdoctor.observe.arrays import Found, Path, Root
from netdoctor.observe.data import ProbeOutputs, as_target_matrix, find_dataset


def found(namespace):
    return [Found(Path(Root("globals", k, obj=namespace)), v) for k, v in namespace.items()]


def test_inputs_and_targets_in_columns_are_found_and_rows_looked_up():
    X = np.array([[0, 0, 1, 1], [0, 1, 0, 1]], dtype=float)     # samples in columns
    Y = np.array([[0, 1, 1, 0]], dtype=float)
    A1 = np.ones((3, 4))
    ns = dict(X=X, Y=Y, A1=A1)
    batch = X[:, [2]].T                                          # one sample, rows form
    data = find_dataset(found(ns), batch, "cols", exclude={id(A1)}, changing=set())
    assert data.X.name == "X" and data.samples == "cols"
    assert data.targets[0].name == "Y"
    assert list(data.indices_of(X.T[[3, 0]])) == [3, 0]
    assert data.indices_of(np.array([[5.0, 5.0]])) is None


def test_arrays_that_change_are_not_targets():
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, :1] > 0).astype(float)
    A2 = np.zeros((20, 1))                                       # the network's output: it changes
    ns = dict(X=X, y=y, A2=A2)
    data = find_dataset(found(ns), X[:5], "rows", exclude=set(), changing={id(A2)})
    assert [t.name for t in data.targets] == ["y"]


def test_big_batches_are_matched_by_projection():
    X = np.random.default_rng(1).normal(size=(5000, 3))
    ns = dict(X=X)
    data = find_dataset(found(ns), X[:1], "rows", exclude=set(), changing=set())
    rows = np.array([10, 4999, 7, 7])
    assert list(data.indices_of(X[rows])) == list(rows)


def test_labels_become_one_hot_only_when_asked():
    labels = np.array([0, 2, 1])
    assert as_target_matrix(labels, 3, "onehot").tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert as_target_matrix(labels, 3, "as_is").shape == (3, 1)
    assert as_target_matrix(np.array([0.5, 1.0]), 3, "onehot") is None


def test_probe_outputs_keep_the_latest_output_per_input():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    data = find_dataset(found(dict(X=X, y=y)), X[:1], "rows", exclude=set(), changing=set())
    probe = ProbeOutputs(data, data.probe_indices(), n_out=1)
    assert probe.outputs.shape == (4, 1) and np.isnan(probe.outputs).all()
    probe.update(np.array([2]), np.array([[0.3]]))
    probe.update(np.array([2]), np.array([[0.4]]))
    probe.update(np.array([0]), np.array([[0.9]]))
    assert probe.outputs[2, 0] == 0.4 and probe.outputs[0, 0] == 0.9
    assert np.isnan(probe.outputs[[1, 3]]).all()
