"""Function identity: every catalogue entry is recognised as itself, and bad data never crashes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdoctor import identify
from netdoctor.config import Thresholds

TOL = Thresholds().activation_match_tol
FUNCTION_NAMES = [e.name for e in identify.FUNCTIONS]
DERIVATIVE_NAMES = [e.name for e in identify.DERIVATIVES]


def expit(x):  # written out here, as scipy's expit (netdoctor must not need scipy)
    return 1.0 / (1.0 + np.exp(-x))


def entries(role):
    return {e.name: e for e in identify.catalogue(role)}


# --- every entry is itself, and nothing else ------------------------------------------------------


ALL_ENTRIES = [("hidden", n) for n in FUNCTION_NAMES] + [("derivative", n) for n in DERIVATIVE_NAMES]


@pytest.mark.parametrize("role, name", ALL_ENTRIES)
def test_each_catalogue_entry_is_identified_as_itself(role, name):
    entry = entries(role)[name]
    found = identify.identify_callable(entry.function, role)
    assert found.identified == name
    assert found.mistake == entry.mistake
    assert found.max_err <= TOL
    assert bool(found.fix) == entry.mistake  # mistakes come with a fix
    assert list(found.candidates)[0] == name


@pytest.mark.parametrize("role", ["hidden", "derivative"])
def test_no_two_entries_are_confused(role):
    """On the evaluation grid, every pair of entries differs by several times the tolerance."""
    Z = identify.GRID_2D
    values = {}
    for e in identify.catalogue(role):
        found = identify.identify_callable(e.function, role)
        values[e.name] = found.candidates
    for name, candidates in values.items():
        others = {k: v for k, v in candidates.items() if k != name and k not in entries(role)[name].aliases}
        closest = min(others, key=others.get)
        assert others[closest] > 5 * TOL, f"{name} is within {others[closest]} of {closest}"
    assert Z.shape[1] > 1  # a grid with several units, so softmax axes differ


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_from_observed_pairs(name):
    rng = np.random.default_rng(2)
    z = 3 * rng.normal(size=(60, 4))
    a = entries("hidden")[name].function(z)
    found = identify.identify_pairs(z, a, "hidden")
    assert found.identified == name


@pytest.mark.parametrize("name", DERIVATIVE_NAMES)
def test_each_derivative_from_observed_pairs(name):
    z = 3 * np.random.default_rng(3).normal(size=200)
    found = identify.identify_pairs(z, entries("derivative")[name].function(z), "derivative")
    assert found.identified == name


# --- the seed ----------------------------------------------------------------------------------------


class SeedNetwork:
    """The seed's activation, as a method with a defaulted `type` argument."""

    def activationFunction(self, vec, type="sigmoid"):
        if type == "sigmoid":
            return 1 / (1 + expit(-vec))
        print("Please select correct output function")
        exit()


def test_the_seeds_activation_is_named_with_its_shape():
    found = identify.identify_callable(SeedNetwork().activationFunction, "hidden")
    assert found.identified == "double_sigmoid" and found.mistake
    assert found.f0 == pytest.approx(1 / (1 + expit(0.0)))  # = 2/3
    lo, hi = found.range
    assert 0.5 <= lo < 0.51 and 0.99 < hi <= 1.0
    assert "expit" in found.fix
    assert found.error_vs("sigmoid") > 0.4


def test_sigmoid_applied_twice_is_a_different_mistake():
    found = identify.identify_callable(lambda z: expit(expit(z)), "hidden")
    assert found.identified == "sigmoid_of_sigmoid"
    assert found.f0 == pytest.approx(expit(0.5))
    assert found.range[1] < expit(1.0)


# --- the many shapes of user functions -------------------------------------------------------------------


def test_function_that_only_takes_vectors():
    found = identify.identify_callable(lambda z: np.array([max(0.0, float(x)) for x in z]), "hidden")
    assert found.identified == "relu"


def test_function_returning_a_cache_tuple():
    found = identify.identify_callable(lambda Z: (np.tanh(Z), Z), "hidden")
    assert found.identified == "tanh"


def test_function_modifying_its_input_in_place():
    def relu_inplace(z):
        z[z < 0] = 0
        return z

    assert identify.identify_callable(relu_inplace, "hidden").identified == "relu"
    assert identify.GRID.min() < 0  # the module's grid was not modified


@pytest.mark.parametrize(
    "f, why",
    [
        (lambda z: 1 / 0, "ZeroDivisionError"),
        (lambda z: exit(), "SystemExit"),
        (lambda z: "text", "could not evaluate"),
        (lambda z: np.ones(3), "shape"),
        (lambda: 0, "TypeError"),
    ],
)
def test_failing_functions_never_raise(f, why):
    found = identify.identify_callable(f, "hidden")
    assert found.identified is None and not found.mistake
    assert why in found.description
    assert math.isnan(found.max_err)


def test_leaky_relu_of_other_slopes():
    for slope in (0.01, 0.1, 0.2):
        found = identify.identify_callable(lambda z, s=slope: np.where(z > 0, z, s * z), "hidden")
        assert found.identified == "leaky_relu"


def test_relu_derivative_with_either_convention_at_the_kink():
    for f in (lambda z: (z > 0) * 1.0, lambda z: (z >= 0) * 1.0):
        assert identify.identify_callable(f, "derivative").identified == "relu"


def test_softmax_with_samples_in_columns():
    def softmax_columns_layout(z):  # correct for code that keeps samples in columns
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)

    assert identify.identify_callable(softmax_columns_layout, "output").identified == "softmax_wrong_axis"
    assert identify.identify_callable(softmax_columns_layout, "output", samples_axis=1).identified == "softmax"
    z = np.random.default_rng(0).normal(size=(3, 10))  # 3 classes x 10 samples
    assert identify.identify_pairs(z, softmax_columns_layout(z), "output", samples_axis=1).identified == "softmax"


def test_linear_alias():
    found = identify.identify_callable(lambda z: z, "output")
    assert found.identified == "identity"
    assert found.error_vs("linear") == found.error_vs("identity") == 0.0
    assert math.isnan(found.error_vs("no such function"))


def test_unknown_role():
    with pytest.raises(ValueError, match="derivative"):
        identify.identify_callable(np.tanh, "weights")


def test_unknown_function_is_not_forced_onto_a_name():
    found = identify.identify_callable(lambda z: np.sin(z), "hidden")
    assert found.identified is None and not found.mistake
    assert "closest" in found.description
    assert found.max_err > TOL


# --- bad and scarce data ------------------------------------------------------------------------------


def test_small_noise_is_tolerated_large_noise_is_not():
    rng = np.random.default_rng(1)
    z = 4 * rng.normal(size=300)
    assert identify.identify_pairs(z, expit(z) + 1e-4 * rng.normal(size=300), "hidden").identified == "sigmoid"
    assert identify.identify_pairs(z, expit(z) + 2e-2 * rng.normal(size=300), "hidden").identified is None


def test_nan_and_inf_entries_are_ignored():
    z = np.linspace(-5, 5, 50)
    a = np.tanh(z)
    z[3], a[10], a[20] = np.nan, np.inf, np.nan
    found = identify.identify_pairs(z, a, "hidden")
    assert found.identified == "tanh"
    assert np.isfinite(found.range).all()


def test_all_nan_pairs():
    found = identify.identify_pairs(np.full(5, np.nan), np.full(5, np.nan), "hidden")
    assert found.identified is None and "finite" in found.description


@pytest.mark.parametrize("z", [np.zeros(6), np.array([1.0, 1.0]), np.array([0.5])])
def test_too_few_distinct_inputs(z):
    found = identify.identify_pairs(z, expit(z), "hidden")
    assert found.identified is None
    assert "too few" in found.description
    assert found.error_vs("sigmoid") == 0.0  # still compared, for whoever knows what was declared


def test_inputs_that_cannot_separate_candidates():
    z = np.linspace(0.1, 3, 30)  # only positive: relu, leaky relu and identity agree
    found = identify.identify_pairs(z, z, "hidden")
    assert found.identified is None and "cannot tell apart" in found.description
    assert found.error_vs("relu") == 0.0 and found.error_vs("linear") == 0.0


@pytest.mark.parametrize(
    "z, a",
    [
        (np.zeros((3, 2)), np.zeros((2, 3))),
        (np.array([]), np.array([])),
        ([["x"]], [["y"]]),
        (np.ones((2, 2, 2)), np.ones((2, 2, 2))),
        (3.0, 0.95),
    ],
)
def test_odd_arrays_never_raise(z, a):
    found = identify.identify_pairs(z, a, "hidden")
    assert found.identified is None


def test_f0_from_pairs_is_interpolated_near_zero():
    z = np.array([-0.2, -0.1, 0.1, 0.3, 1.0])
    found = identify.identify_pairs(z, expit(z), "hidden")
    assert found.f0 == pytest.approx(0.5, abs=1e-3)
    assert identify.identify_pairs(np.array([-1.0, 0.0, 1.0, 2.0]), np.tanh([-1.0, 0.0, 1.0, 2.0]), "hidden").f0 == 0.0


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=12),
    role=st.sampled_from(identify.ROLES),
)
def test_pairs_of_any_numbers_never_raise(values, role):
    z = np.array(values, dtype=np.float64)
    for a in (z[::-1].copy(), np.tanh(z), np.full_like(z, np.nan)):
        found = identify.identify_pairs(z, a, role)
        assert found.identified is None or found.identified in {e.name for e in identify.catalogue(role)}
        if len(z) >= 4 and z.size % 2 == 0:
            identify.identify_pairs(z.reshape(2, -1), a.reshape(2, -1), role)
