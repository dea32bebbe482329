"""Model files: optimizer state read against the optimizer's declared slots, generator
states (Dropout) saved and checked, custom_objects that cannot replace layernet's
classes, and refused loads that leave the model exactly as it was."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import layernet as ln
from layernet.registry import builtin_classes
from layernet.saving import ModelFileError, check_custom_objects, layer_from_spec


def trained(optimizer: str, dtype: str = "float32", units: int = 3) -> ln.Sequential:
    opt = ln.Adam(0.01) if optimizer == "adam" else ln.SGD(0.05, momentum=0.9)
    model = ln.Sequential(
        [
            ln.Dense(units, seed=0, dtype=dtype),
            ln.Tanh(dtype=dtype),
            ln.Dense(2, seed=1, dtype=dtype),
        ]
    )
    model.compile(opt, "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4))
    model.fit(x, x[:, :2], epochs=1, batch_size=4, verbose=0, seed=0)
    return model


def read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    head = json.loads(arrays.pop("header").tobytes())
    return head, arrays


def write(path: Path, head: dict, arrays: dict[str, np.ndarray]) -> None:
    """A file as layernet writes it, every array declared in the header."""
    head = {**head, "weights": {k: list(a.shape) for k, a in arrays.items()}}
    raw = np.frombuffer(json.dumps(head).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, header=raw, **arrays)


def tampered(tmp_path: Path, model: ln.Sequential, edit: Callable[[dict, dict], None]) -> Path:
    good = tmp_path / "good.npz"
    model.save(good)
    head, arrays = read(good)
    edit(head, arrays)
    bad = tmp_path / "bad.npz"
    write(bad, head, arrays)
    return bad


def slots(head: dict) -> list[dict]:
    return head["optimizer_state"]["slots"]


# ---------------------------------------------------------------- optimizer state
def duplicate_pair(head, arrays):
    first = slots(head)[0]
    arrays["optimizer.99"] = arrays[first["array"]].copy()
    slots(head).append({**first, "array": "optimizer.99"})


def same_array_twice(head, arrays):
    a, b = slots(head)[0], slots(head)[1]
    del arrays[b["array"]]
    b["array"] = a["array"]
    b["param"] = a["param"]
    b["slot"] = "v" if a["slot"] == "m" else "m"


def unknown_slot(head, arrays):
    slots(head)[0]["slot"] = "momentum_buffer"


def missing_slot(head, arrays):
    gone = slots(head).pop()
    del arrays[gone["array"]]


def unknown_param(head, arrays):
    slots(head)[0]["param"] = "7.nowhere.kernel"


def frozen_param(head, arrays):
    head["layers"][0]["config"]["trainable"] = False


def no_compile_entry(head, arrays):
    del head["compile"]


def no_optimizer_spec(head, arrays):
    head["compile"]["optimizer"] = None


def no_state_entry(head, arrays):
    head["optimizer_state"] = None


def array_absent(head, arrays):
    del arrays[slots(head)[0]["array"]]


def wrong_shape(head, arrays):
    member = slots(head)[0]["array"]
    arrays[member] = np.zeros((*arrays[member].shape, 1), arrays[member].dtype)


def wrong_dtype(head, arrays):
    member = slots(head)[0]["array"]
    other = np.float64 if arrays[member].dtype == np.float32 else np.float32
    arrays[member] = arrays[member].astype(other)


def stray_array(head, arrays):
    arrays["optimizer.123"] = np.zeros(3, np.float32)


def extra_key(head, arrays):
    slots(head)[0]["note"] = "x"


def non_str_slot(head, arrays):
    slots(head)[0]["slot"] = 3


def bad_iterations(head, arrays):
    head["optimizer_state"]["iterations"] = -2


def bool_iterations(head, arrays):
    head["optimizer_state"]["iterations"] = True


def not_a_dict(head, arrays):
    head["optimizer_state"] = [1, 2]


def nan_state(head, arrays):
    member = slots(head)[0]["array"]
    arrays[member] = arrays[member].copy()
    arrays[member].flat[0] = np.nan


def compile_not_a_dict(head, arrays):
    head["compile"] = "adam"


CASES = {
    duplicate_pair: r"entry \d+ \(slot '\w+' of parameter '0\.dense_\d+\.\w+'\): the same "
    r"parameter and slot appear twice",
    same_array_twice: r"is named by two entries",
    unknown_slot: r"entry 0 \(slot 'momentum_buffer' .*keeps no slot of that name \(its slots: ",
    missing_slot: r"parameter '.*' lacks the slot\(s\) \['\w+'\]",
    unknown_param: r"entry 0 \(slot '\w+' of parameter '7\.nowhere\.kernel'\): the model has no "
    r"trainable parameter of that name",
    frozen_param: r"the model has no trainable parameter of that name",
    no_compile_entry: r"optimizer state \(arrays .*\) without a compile entry",
    no_optimizer_spec: r"optimizer state \(arrays .*\) without a compile entry",
    no_state_entry: r"optimizer state: the file holds optimizer arrays .* but no 'optimizer_state'",
    array_absent: r"array 'optimizer\.\d+' is not in the file",
    wrong_shape: r"array 'optimizer\.0' has shape \(.*\), the parameter \(.*\)",
    wrong_dtype: r"array 'optimizer\.0' has dtype float\d+, the parameter float\d+",
    stray_array: r"arrays \['optimizer\.123'\] are not named by any entry",
    extra_key: r"entry 0 is malformed",
    non_str_slot: r"entry 0 is malformed",
    bad_iterations: r"malformed step count 'iterations' -2",
    bool_iterations: r"malformed step count 'iterations' True",
    not_a_dict: r"optimizer state: malformed entry",
    nan_state: r"holds NaN or inf",
    compile_not_a_dict: r"malformed compile entry 'adam'",
}


@pytest.mark.parametrize("edit", list(CASES), ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("optimizer", "dtype", "units"), [("adam", "float32", 3), ("sgd", "float64", 5)]
)
def test_optimizer_state_is_read_against_the_declared_slots(
    tmp_path, edit, optimizer, dtype, units
):
    model = trained(optimizer, dtype, units)
    if edit in (same_array_twice, missing_slot) and optimizer == "sgd":
        pytest.skip("SGD keeps one slot per parameter")
    bad = tampered(tmp_path, model, edit)
    with pytest.raises(ModelFileError, match=CASES[edit]) as info:
        ln.load_model(bad)
    assert str(bad) in str(info.value)  # the message names the file


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_untouched_optimizer_state_round_trips_exactly(tmp_path, optimizer):
    model = trained(optimizer)
    model.save(tmp_path / "m.npz")
    back = ln.load_model(tmp_path / "m.npz")
    assert back.optimizer.slot_names == model.optimizer.slot_names
    assert back.optimizer.iterations == model.optimizer.iterations
    assert back.optimizer.state.keys() == model.optimizer.state.keys()
    for key, named in model.optimizer.state.items():
        assert named.keys() == set(model.optimizer.slot_names)
        for slot, a in named.items():
            b = back.optimizer.state[key][slot]
            assert b.dtype == a.dtype and np.array_equal(a, b)


def test_a_file_without_optimizer_state_loads_with_a_fresh_one(tmp_path):
    model = trained("adam")

    def drop(head, arrays):
        head.pop("optimizer_state")
        for k in [k for k in arrays if k.startswith("optimizer.")]:
            del arrays[k]

    back = ln.load_model(tampered(tmp_path, model, drop))
    assert back.optimizer.state == {} and back.optimizer.iterations == 0


# ---------------------------------------------------------------- generator states
def dropout_model(kind: str) -> ln.Sequential:
    if kind == "plain":
        drop: ln.Layer = ln.Dropout(0.5, seed=1)
    elif kind == "noise_shape":
        drop = ln.Dropout(0.3, noise_shape=(None, 1), seed=1)
    else:  # inside a container
        drop = ln.Residual([ln.Dense(8, seed=3), ln.Dropout(0.4, seed=4)])
    model = ln.Sequential([ln.Dense(8, seed=0), drop, ln.ReLU(), ln.Dense(3, seed=2)])
    model.compile(ln.Adam(0.01), "softmax_cross_entropy", ["accuracy"])
    return model


@pytest.mark.parametrize("kind", ["plain", "noise_shape", "container"])
@pytest.mark.parametrize(("first", "total"), [(2, 4), (1, 3)])
def test_resuming_with_dropout_is_bit_exact(tmp_path, kind, first, total):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 4)).astype("float32")
    y = rng.integers(0, 3, 30)
    whole = dropout_model(kind)
    h_whole = whole.fit(x, y, epochs=total, batch_size=8, seed=5, verbose=0)
    part = dropout_model(kind)
    part.fit(x, y, epochs=first, batch_size=8, seed=5, verbose=0)
    part.save(tmp_path / "m.npz")
    resumed = ln.load_model(tmp_path / "m.npz")
    h_rest = resumed.fit(
        x, y, epochs=total, initial_epoch=resumed.epochs_completed, batch_size=8, seed=5, verbose=0
    )
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        assert a.tobytes() == b.tobytes()
    assert h_rest.history["loss"] == h_whole.history["loss"][first:]


def test_generator_states_are_in_the_header(tmp_path):
    model = dropout_model("container")
    model.build((None, 4))
    model.save(tmp_path / "m.npz")
    head, _ = read(tmp_path / "m.npz")
    assert sorted(head["random_state"]) == ["layers.1.2._rng"]  # Residual, its Dropout
    model = dropout_model("plain")
    model.build((None, 4))
    model.save(tmp_path / "m.npz")
    state = read(tmp_path / "m.npz")[0]["random_state"]["layers.1.0._rng"]
    assert state["bit_generator"] == "PCG64" and int(state["inc"]) % 2 == 1


def set_state(field, value):
    def edit(head, arrays):
        head["random_state"]["layers.1.0._rng"][field] = value

    return edit


def unknown_generator(head, arrays):
    head["random_state"]["layers.0.0._rng"] = head["random_state"]["layers.1.0._rng"]


def state_not_a_dict(head, arrays):
    head["random_state"] = ["x"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (set_state("bit_generator", "MT19937"), "malformed state of generator"),
        (set_state("state", str(1 << 128)), "malformed state of generator"),
        (set_state("state", "-5"), "malformed state of generator"),
        (set_state("state", 12), "malformed state of generator"),
        (set_state("inc", "2"), "malformed state of generator"),
        (set_state("has_uint32", 2), "malformed state of generator"),
        (set_state("uinteger", 1 << 40), "malformed state of generator"),
        (set_state("extra", 1), "malformed state of generator"),
        (unknown_generator, r"generator\(s\) \['layers\.0\.0\._rng'\] that the model's layers"),
        (state_not_a_dict, "random_state: malformed entry"),
    ],
)
def test_malformed_generator_states_are_refused(tmp_path, edit, match):
    model = dropout_model("plain")
    model.build((None, 4))
    with pytest.raises(ModelFileError, match=match):
        ln.load_model(tampered(tmp_path, model, edit))


def test_files_without_generator_states_still_load(tmp_path):
    model = dropout_model("plain")
    model.build((None, 4))
    back = ln.load_model(tampered(tmp_path, model, lambda head, arrays: head.pop("random_state")))
    assert isinstance(back.layers[1]._rng, np.random.Generator)


# ---------------------------------------------------------------- custom_objects
OWN = builtin_classes(object)


class Evil(ln.Dense):
    pass


@pytest.mark.parametrize("name", [*sorted(OWN)[:: max(1, len(OWN) // 15)], "Dense", "MSELoss"])
@pytest.mark.parametrize("prefixed", [False, True])
def test_custom_objects_cannot_replace_layernet_classes(tmp_path, name, prefixed):
    model = ln.Sequential([ln.Dense(2, seed=0)])
    model.build((None, 3))
    model.save(tmp_path / "m.npz")
    key = f"layernet>{name}" if prefixed else name
    with pytest.raises(ValueError, match=rf"'{key}' names layernet's own class {name}, which "):
        ln.load_model(tmp_path / "m.npz", custom_objects={key: Evil})
    with pytest.raises(ValueError, match="cannot replace"):
        layer_from_spec({"class_name": "layernet>Dense", "config": {"units": 2}}, {key: Evil})
    # mapping a name to layernet's own class is harmless
    check_custom_objects({key: OWN[name]}, "load_model")


@pytest.mark.parametrize(
    ("custom", "error", "match"),
    [
        ({"layernet>Mine": Evil}, ValueError, "the package 'layernet'"),
        ({"Mine": "Evil"}, TypeError, "expected str keys and classes"),
        ({3: Evil}, TypeError, "expected str keys and classes"),
        ([("Mine", Evil)], TypeError, "expected a dict of name to class"),
    ],
)
def test_custom_objects_are_checked_before_the_file_is_read(tmp_path, custom, error, match):
    with pytest.raises(error, match=match):
        ln.load_model(tmp_path / "no-such-file.npz", custom_objects=custom)


def test_old_bare_names_load_layernet_classes_only(tmp_path):
    model = ln.Sequential([ln.Dense(2, seed=0)])
    model.build((None, 3))

    def bare(head, arrays):
        head["layers"][0]["class_name"] = "Dense"

    path = tampered(tmp_path, model, bare)
    assert type(ln.load_model(path).layers[0]) is ln.Dense
    with pytest.raises(ValueError, match="cannot replace"):
        ln.load_model(path, custom_objects={"Dense": Evil})


# ---------------------------------------------------------------- refused loads
def state(model: ln.Sequential) -> tuple:
    """Everything load_weights could change: built flags, shapes, parameters, attributes."""
    layers = [
        (
            layer.built,
            layer.input_shape,
            sorted(layer.params),
            [(k, v.dtype.str, v.shape, v.tobytes()) for k, v in layer.variables().items()],
            sorted(vars(layer)),
        )
        for layer in model.layers
    ]
    return (model.built, model.input_shape, sorted(vars(model)), layers)


def refused_files(tmp_path: Path) -> dict[str, Path]:
    src = ln.Sequential([ln.Dense(3, seed=0), ln.BatchNorm(), ln.Dense(2, seed=1)])
    src.build((None, 4))
    good = tmp_path / "good.npz"
    src.save_weights(good)
    head, arrays = read(good)
    out = {}

    def variant(name, edit):
        h, a = copy.deepcopy(head), {k: v.copy() for k, v in arrays.items()}
        edit(h, a)
        out[name] = tmp_path / f"{name}.npz"
        write(out[name], h, a)

    variant("shape", lambda h, a: a.update({"layers.0.kernel": np.zeros((4, 5), "float32")}))
    variant("missing", lambda h, a: a.pop("layers.2.bias"))
    variant("unexpected", lambda h, a: a.update({"layers.1.extra": np.zeros(2, "float32")}))
    variant("nan", lambda h, a: a["layers.2.kernel"].__setitem__((0, 0), np.nan))
    variant("input_shape", lambda h, a: h["model"].update({"input_shape": [None, 5]}))
    variant("bad_input_shape", lambda h, a: h["model"].update({"input_shape": "x"}))
    variant("format", lambda h, a: h.update({"format_version": 99}))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-50])
    out["truncated"] = truncated
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04" + bytes(100))
    out["garbage"] = garbage
    other = ln.Sequential([ln.Dense(5, seed=0), ln.BatchNorm(), ln.Dense(2, seed=1)])
    other.build((None, 4))
    other.save_weights(tmp_path / "other.npz")
    out["architecture"] = tmp_path / "other.npz"
    return out


@pytest.mark.parametrize("built", [False, True])
def test_a_refused_load_weights_leaves_the_model_as_it_was(tmp_path, built):
    files = refused_files(tmp_path)
    if built:  # a built model does not read the input shape
        del files["input_shape"], files["bad_input_shape"]
    for name, path in files.items():
        model = ln.Sequential([ln.Dense(3, seed=7), ln.BatchNorm(), ln.Dense(2, seed=8)])
        if built:
            model.build((None, 4))
        before = state(model)
        with pytest.raises((ModelFileError, RuntimeError)):
            model.load_weights(path)
        assert state(model) == before, name
        assert model.built is built
        # and the model still works as before: a good file loads afterwards
        model.load_weights(tmp_path / "good.npz")
        assert model.built


def test_load_weights_into_an_unbuilt_model_still_builds_it(tmp_path):
    files = refused_files(tmp_path)
    del files
    model = ln.Sequential([ln.Dense(3, seed=7), ln.BatchNorm(), ln.Dense(2, seed=8)])
    ln.saving.load_weights(model, tmp_path / "good.npz")
    assert model.built and model.input_shape == (None, 4)
