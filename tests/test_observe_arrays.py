"""Finding arrays in a program's objects, and reaching them again (netdoctor.observe.arrays)."""

from __future__ import annotations

import types

import numpy as np

from netdoctor.observe.arrays import Context, Path, Root, UserTypes, discover, fingerprint, small_copy


class Net:  # defined in this file, so it counts as "the user's" class below
    def __init__(self):
        self.weights_dict = {1: np.ones((2, 2)), 2: np.zeros((1, 2))}
        self.layers = [np.arange(6.0).reshape(2, 3)]
        self.inner = types.SimpleNamespace(b=np.ones(3))
        self.name = "net"


def user_types() -> UserTypes:
    return UserTypes([__file__])


def test_discover_reaches_attributes_dicts_lists_and_namespaces():
    net = Net()
    found = discover([(Root("object", "", obj=net), net)], user_types())
    names = {f.name for f in found.values()}
    assert names == {"weights_dict[1]", "weights_dict[2]", "layers[0]", "inner.b"}
    # Each array once, keyed by identity.
    assert set(found) == {id(net.weights_dict[1]), id(net.weights_dict[2]), id(net.layers[0]), id(net.inner.b)}


def test_globals_are_named_bare_and_first_path_wins():
    net = Net()
    namespace = {"W1": net.layers[0], "net": net, "np": np, "__name__": "x"}
    found = discover(
        [(Root("object", "", obj=net), net), (Root("globals", "", obj=namespace), namespace)], user_types()
    )
    # layers[0] was reached through the model first: that is its name.
    assert found[id(net.layers[0])].name == "layers[0]"
    only_globals = discover([(Root("globals", "", obj=namespace), namespace)], user_types())
    assert only_globals[id(net.layers[0])].name == "W1"


def test_objects_of_other_libraries_are_not_entered():
    class Foreign:  # a class from a file that is not the user's
        pass

    Foreign.__module__ = "somewhere_else"
    thing = Foreign()
    thing.W = np.ones(3)
    found = discover([(Root("object", "", obj=thing), {"x": thing})], UserTypes(["/no/such/file.py"]))
    assert found == {}


def test_walk_is_bounded_in_depth_and_breadth():
    deep = {"a": {"b": {"c": {"d": {"e": np.ones(2)}}}}}
    assert discover([(Root("object", "", obj=deep), deep)], user_types()) == {}
    wide = {i: np.ones(1) for i in range(500)}
    assert len(discover([(Root("object", "", obj=wide), wide)], user_types())) <= 64


def test_paths_resolve_again_after_rebinding():
    net = Net()
    found = discover([(Root("object", "", obj=net), net)], user_types())
    path = found[id(net.weights_dict[1])].path
    net.weights_dict[1] = net.weights_dict[1] - 0.5       # the code rebinds, as `W = W - lr * g`
    again = path.array(Context(None))
    assert again is net.weights_dict[1]
    net.weights_dict.pop(1)
    assert path.array(Context(None)) is None


def test_local_roots_resolve_against_the_running_frame():
    import sys

    def train():
        W = np.ones((2, 2))
        frame = sys._getframe()
        return Path(Root("local", "W", code=frame.f_code)).array(Context(frame)), W

    seen, W = train()
    assert seen is W
    assert Path(Root("local", "W", code=train.__code__)).array(Context(sys._getframe())) is None


def test_fingerprint_sees_rebinding_and_in_place_changes():
    a = np.zeros((3, 3))
    before = fingerprint(a)
    a[1, 1] = 1e-12
    assert fingerprint(a) != before
    b = a.copy()
    assert fingerprint(b) != fingerprint(a)          # a new array, even with equal values
    big = np.zeros((300, 300))
    before = fingerprint(big)
    big -= 0.01                                      # an SGD step moves every entry
    assert fingerprint(big) != before


def test_small_copy_keeps_small_arrays_only():
    assert small_copy(np.ones(10)) is not None
    assert small_copy(np.ones(100_000)) is None
