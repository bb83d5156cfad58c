"""The reference layers of nnlab: gradients against numerical ones, dropout's statistics and seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnlab.gradient_check import eval_numerical_gradient, eval_numerical_gradient_array, rel_error
from nnlab.layer_utils import affine_relu_backward, affine_relu_forward
from nnlab.layers import (
    Dropout,
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)


def hoeffding_tolerance(n: int, false_failure: float = 1e-9) -> float:
    """Deviation t of a mean of n independent [0, 1] draws with P(|mean - expectation| > t) <= false_failure."""
    return math.sqrt(math.log(2 / false_failure) / (2 * n))


def test_affine_backward_matches_numerical_gradient(rng):
    x = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dx.shape == x.shape
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: affine_forward(v, w, b)[0], x, dout)) < 1e-8
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: affine_forward(x, v, b)[0], w, dout)) < 1e-8
    assert rel_error(db, eval_numerical_gradient_array(lambda v: affine_forward(x, w, v)[0], b, dout)) < 1e-8


def test_affine_forward_flattens_each_example():
    x = np.arange(12, dtype=float).reshape(2, 2, 3)
    w = np.eye(6)[:, :2]
    out, _ = affine_forward(x, w, np.array([10.0, 20.0]))
    np.testing.assert_array_equal(out, [[10.0, 21.0], [16.0, 27.0]])


def test_relu_backward_matches_numerical_gradient(rng):
    # Keep inputs away from 0, where ReLU has no derivative and finite differences straddle the kink.
    x = rng.standard_normal((5, 7))
    x[np.abs(x) < 1e-3] = 0.5
    dout = rng.standard_normal(x.shape)
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: relu_forward(v)[0], x, dout)) < 1e-9


def test_softmax_loss_value_and_gradient(rng):
    n, c = 50, 10
    x = 0.001 * rng.standard_normal((n, c))
    y = rng.integers(c, size=n)
    loss, dx = softmax_loss(x, y)
    # Nearly uniform scores give a loss close to log(C).
    assert abs(loss - math.log(c)) < 0.01
    assert rel_error(dx, eval_numerical_gradient(lambda v: softmax_loss(v, y)[0], x, verbose=False)) < 1e-7


def test_softmax_loss_is_stable_for_huge_scores():
    loss, dx = softmax_loss(np.array([[1000.0, 0.0], [0.0, 1000.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and np.all(np.isfinite(dx))
    assert loss == pytest.approx(500.0)


def test_affine_relu_backward_matches_numerical_gradient(rng):
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((4, 6))
    b = rng.standard_normal(6)
    dout = rng.standard_normal((3, 6))
    _, cache = affine_relu_forward(x, w, b)
    dx, dw, db = affine_relu_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(lambda v: affine_relu_forward(v, w, b)[0], x, dout)) < 1e-7
    assert rel_error(dw, eval_numerical_gradient_array(lambda v: affine_relu_forward(x, v, b)[0], w, dout)) < 1e-7
    assert rel_error(db, eval_numerical_gradient_array(lambda v: affine_relu_forward(x, w, v)[0], b, dout)) < 1e-7


@pytest.mark.parametrize("p", [0.1, 0.3, 0.8, 1.0])
def test_dropout_train_mode_keeps_fraction_p_and_preserves_the_mean(p):
    """Keep fraction and mean within Hoeffding bounds; false-failure probability at most 1e-9 each.

    The test is seeded, so it is deterministic; the bound says how unlikely a failure would be for a
    correct implementation under any seed. p = 0.3 and 0.8 tell keep from drop apart (a layer
    that drops with probability p keeps 0.7 and 0.2 instead, far outside the tolerance of 0.0046).
    """
    np.random.seed(7)
    x = np.full((500, 500), 2.0)
    out, (_, mask) = dropout_forward(x, {"mode": "train", "p": p})
    kept = out != 0
    tolerance = hoeffding_tolerance(x.size)
    assert abs(kept.mean() - p) <= tolerance
    # out / (2 / p) is the kept indicator, a [0, 1] variable with mean p: same bound, scaled back.
    assert abs(out.mean() - 2.0) <= tolerance * 2.0 / p
    np.testing.assert_allclose(out[kept], 2.0 / p)
    np.testing.assert_allclose(mask[kept], 1 / p)
    assert np.all(mask[~kept] == 0)


def test_dropout_test_mode_is_the_identity(rng):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    before = x.copy()
    out, (param, mask) = dropout_forward(x, {"mode": "test", "p": 0.3})
    np.testing.assert_array_equal(out, x)
    assert out.dtype == np.float32
    assert mask is None and param["mode"] == "test"
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_shape_and_dtype_of_nd_input(dtype, rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    before = x.copy()
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.6, "seed": 1})
    assert out.shape == x.shape and out.dtype == dtype
    np.testing.assert_array_equal(x, before)


def test_dropout_seed_repeats_the_mask_and_other_seeds_differ(rng):
    x = rng.standard_normal((40, 50))
    first, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})
    again, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 3})
    other, _ = dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 4})
    np.testing.assert_array_equal(first, again)
    # Two independent masks of 2,000 units agree everywhere with probability 2**-2000.
    assert not np.array_equal(first, other)


def test_dropout_seeding_follows_the_course_convention():
    """With a seed, the mask is np.random.rand(*x.shape) < p right after np.random.seed(seed)."""
    x = np.ones((6, 7))
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.4, "seed": 123})
    np.random.seed(123)
    expected = (np.random.rand(6, 7) < 0.4) / 0.4
    np.testing.assert_array_equal(out, expected)


def test_dropout_prints_the_numbers_students_know():
    """The notebook's forward check reproduces the well-known course figures exactly."""
    np.random.seed(231)
    x = np.random.randn(500, 500) + 10
    out, _ = dropout_forward(x, {"mode": "train", "p": 0.25})
    assert out.mean() == pytest.approx(10.014059116977283, abs=1e-12)


def test_dropout_without_seed_draws_a_new_mask_each_call(rng):
    x = rng.standard_normal((30, 30))
    first, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    second, _ = dropout_forward(x, {"mode": "train", "p": 0.5})
    assert not np.array_equal(first, second)


def test_dropout_draws_every_element_independently():
    """No row or column of the mask is repeated: each element gets its own draw."""
    out, _ = dropout_forward(np.ones((200, 100)), {"mode": "train", "p": 0.5, "seed": 0})
    # Two independent rows of 100 units agree with probability 2**-100; columns of 200, 2**-200.
    assert len({row.tobytes() for row in out}) == 200
    assert len({col.tobytes() for col in out.T}) == 100


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_backward_matches_numerical_gradient(p, rng):
    x = rng.standard_normal((10, 10)) + 10
    dout = rng.standard_normal(x.shape)
    param = {"mode": "train", "p": p, "seed": 123}
    _, cache = dropout_forward(x, param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: dropout_forward(v, param)[0], x, dout)
    assert rel_error(dx, dx_num) < 1e-9


def test_dropout_backward_in_test_mode_passes_the_gradient_through(rng):
    x = rng.standard_normal((4, 5))
    dout = rng.standard_normal((4, 5))
    _, cache = dropout_forward(x, {"mode": "test", "p": 0.5})
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


@pytest.mark.parametrize("p", [0, -0.1, 1.5, float("nan"), "0.5", None, True])
def test_dropout_rejects_a_bad_keep_probability(p):
    with pytest.raises(ValueError, match=r"KEEPING.*got " + repr(p).replace("(", r"\(").replace(")", r"\)")):
        dropout_forward(np.ones(3), {"mode": "train", "p": p})


def test_dropout_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="'eval'"):
        dropout_forward(np.ones(3), {"mode": "eval", "p": 0.5})


def test_dropout_layer_object_wraps_the_functions(rng):
    x = rng.standard_normal((20, 30))
    layer = Dropout(keep_prob=0.7, seed=5)
    out = layer.forward(x)
    expected, _ = dropout_forward(x, {"mode": "train", "p": 0.7, "seed": 5})
    np.testing.assert_array_equal(out, expected)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dout), dout * (expected != 0) / 0.7)
    np.testing.assert_array_equal(layer.forward(x, train=False), x)
    with pytest.raises(RuntimeError):
        Dropout(keep_prob=0.5).backward(dout)
    with pytest.raises(ValueError):
        Dropout(keep_prob=0)


@pytest.mark.parametrize("value", [0.2, 0.5, 0.8])
def test_dropout_layer_refuses_a_positional_probability_naming_both_conventions(value):
    """The book's habit Dropout(0.2) (drop 20%) must not silently become keep 20%."""
    with pytest.raises(TypeError) as raised:
        Dropout(value)
    message = str(raised.value)
    assert "KEEPING" in message and "DROPPING" in message and "dropout_ratio" in message
    assert f"Dropout(keep_prob=1 - {value!r})" in message


def test_dropout_layer_refuses_the_books_keyword_with_the_keep_probability_to_use():
    with pytest.raises(TypeError, match=r"Dropout\(keep_prob=1 - 0\.2\)"):
        Dropout(dropout_ratio=0.2)
    with pytest.raises(TypeError, match="rate"):
        Dropout(rate=0.2)


def test_dropout_layer_keeps_the_named_fraction(rng):
    """keep_prob=0.8 keeps about 80% of the units (false failure below 1e-9 by Hoeffding's bound)."""
    x = rng.standard_normal((200, 250)) + 10  # no exact zeros, so a zero output means a dropped unit
    kept = Dropout(keep_prob=0.8).forward(x) != 0
    assert abs(kept.mean() - 0.8) <= hoeffding_tolerance(x.size)
    assert Dropout().keep_prob == 0.5
