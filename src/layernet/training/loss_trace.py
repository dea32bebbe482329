r"""A model's overridden ``compute_loss``, traced once on symbolic tensors and run every step.

layernet differentiates by explicit backward rules, not by a tape over arbitrary
NumPy. So when a model subclass overrides
:meth:`~layernet.training.trainer.Trainer.compute_loss`, the trainer calls the override once on
symbolic tensors (:class:`~layernet.graph.KerasTensor`) standing for ``x``,
``y``, ``y_pred`` and ``sample_weight`` (the batch's shapes, batch axis free,
and dtypes). Every :mod:`layernet.ops` op, every loss object and every layer or
model it calls on them is recorded as a call in a :class:`~layernet.graph.Graph`
whose output is the scalar loss :math:`L`. Each step runs that graph forward on
the batch, then backward from :math:`\partial L/\partial L = 1`, which gives
:math:`\partial L/\partial \hat y` (handed to the model's own backward pass)
and adds the parameter gradients of the layers called inside it (a teacher
model, for instance). Traces are cached per input signature.

While tracing, ``model.losses`` is a list holding one symbolic scalar that
stands for the sum of the model's added losses and weight penalties (empty when
it has none), so ``loss + ops.sum(self.losses)`` trains them as Keras does; the
gradient :math:`c = \partial L/\partial(\sum \text{losses})` scales their
gradients.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..graph.executor import Graph
from ..graph.tensor import KerasTensor


def _placeholder(a: Any, name: str) -> Any:
    if a is None:
        return None
    if isinstance(a, list | tuple):
        return [_placeholder(v, f"{name}_{i}") for i, v in enumerate(a)]
    arr = np.asarray(a)
    shape = (None, *arr.shape[1:]) if arr.ndim else ()
    return KerasTensor(shape, dtype=arr.dtype, name=name)


def _leaves(s: Any) -> list[Any]:
    if s is None:
        return []
    if isinstance(s, list | tuple):
        return [leaf for v in s for leaf in _leaves(v)]
    return [s]


def _spec(a: Any) -> Any:
    if a is None:
        return None
    if isinstance(a, list | tuple):
        return tuple(_spec(v) for v in a)
    arr = np.asarray(a)
    return (arr.shape[1:] if arr.ndim else (), arr.dtype.str)


def signature(
    x: Any, y: Any, pred: Any, sw: Any, masks: Any, has_extra: bool, training: bool
) -> tuple:
    """The key a trace is cached under: shapes (batch axis left out) and dtypes of its inputs."""
    mask_spec = None if masks is None else tuple(m is not None for m in masks)
    return (_spec(x), _spec(y), _spec(pred), _spec(sw), mask_spec, has_extra, training)


def _accepts_training(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins only
        return False
    return "training" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class LossTrace:
    """One traced ``compute_loss``: its graph and which inputs stand for what.

    Parameters
    ----------
    model : Model
        The model whose ``compute_loss`` is traced.
    x, y, pred, sw : array, list of arrays or None
        A batch: inputs, targets, the model's outputs and the sample weights.
    masks : list or None
        The outputs' masks (``None`` entries for outputs without one).
    has_extra : bool
        Whether the model has added losses or weight penalties (``model.losses``
        then holds one symbolic scalar while tracing).
    training : bool

    Raises
    ------
    TypeError, ValueError
        An override that uses something that cannot be traced on symbolic
        tensors, or that does not return a scalar; the message names
        ``compute_loss``.
    """

    def __init__(
        self,
        model: Any,
        x: Any,
        y: Any,
        pred: Any,
        sw: Any,
        masks: Any,
        has_extra: bool,
        training: bool,
    ) -> None:
        owner = f"{type(model).__name__} {model.name!r}"
        self.x = _placeholder(x, "x")
        self.y = _placeholder(y, "y")
        self.pred = _placeholder(pred, "y_pred")
        self.sw = _placeholder(sw, "sample_weight")
        pred_leaves = _leaves(self.pred)
        self.masks = (
            None
            if masks is None
            else [
                None if m is None else KerasTensor(t.shape[: np.ndim(m)], "bool", name="mask")
                for m, t in zip(masks, pred_leaves, strict=True)
            ]
        )
        dtype = model._dtype().name
        self.extra = KerasTensor((), dtype, name="losses") if has_extra else None
        kwargs: dict[str, Any] = {
            "x": self.x,
            "y": self.y,
            "y_pred": self.pred,
            "sample_weight": self.sw,
        }
        if _accepts_training(model.compute_loss):
            kwargs["training"] = training
        d = model.__dict__
        d["_traced_losses"] = [] if self.extra is None else [self.extra]
        d["_traced_masks"] = self.masks
        try:
            out = model.compute_loss(**kwargs)
        except (TypeError, ValueError, AttributeError, NotImplementedError) as exc:
            raise type(exc)(
                f"{owner}: compute_loss could not be traced: layernet runs an overridden "
                f"compute_loss once on symbolic tensors (x, y, y_pred, sample_weight) to record "
                f"its derivative, so it may use only layernet.ops, Python operators, layernet "
                f"losses and calls of layers or models on them. It failed with: {exc}"
            ) from None
        finally:
            d.pop("_traced_losses", None)
            d.pop("_traced_masks", None)
        if isinstance(out, list | tuple) and len(out) == 1:
            out = out[0]
        if not isinstance(out, KerasTensor):
            if isinstance(out, int | float | np.number) or (
                isinstance(out, np.ndarray) and out.size == 1
            ):
                raise ValueError(
                    f"{owner}: compute_loss returned a constant ({float(np.asarray(out))!r}) "
                    f"that does not depend on y_pred or on any weight; nothing can be trained "
                    f"on it."
                )
            raise TypeError(
                f"{owner}: compute_loss must return a scalar loss, received "
                f"{type(out).__name__} {out!r:.80}."
            )
        if out.shape not in ((), (1,)):
            raise ValueError(
                f"{owner}: compute_loss must return a scalar loss, received a tensor of shape "
                f"{out.shape}; reduce it (layernet.ops.mean or ops.sum)."
            )
        self.output = out
        candidates = [
            *_leaves(self.x),
            *_leaves(self.y),
            *pred_leaves,
            *_leaves(self.sw),
            *[m for m in (self.masks or []) if m is not None],
            *([self.extra] if self.extra is not None else []),
        ]
        reached = _reachable(out)
        self.inputs = [t for t in candidates if id(t) in reached]
        self.graph = Graph(self.inputs, [out], f"{owner}: compute_loss")
        # the gradient of the loss is wanted at y_pred and at the added losses' stand-in
        wanted = {id(t) for t in pred_leaves} | (
            {id(self.extra)} if self.extra is not None else set()
        )
        self.graph._from_call = [
            [f or id(t) in wanted for f, t in zip(flags, node.input_tensors, strict=True)]
            for flags, node in zip(self.graph._from_call, self.graph.nodes, strict=True)
        ]
        self._pred_leaves = pred_leaves
        #: Layers with weights called inside the loss (their gradients add to the model's).
        self.layers = [n.layer for n in self.graph.nodes if n.layer.params or _has_sublayers(n)]

    def _values(
        self, x: Any, y: Any, pred: Any, sw: Any, masks: Any, extra: float
    ) -> list[np.ndarray]:
        env: dict[int, Any] = {}
        for ph, v in (
            *zip(_leaves(self.x), _leaves(x), strict=True),
            *zip(_leaves(self.y), _leaves(y), strict=True),
            *zip(self._pred_leaves, _leaves(pred), strict=True),
            *zip(_leaves(self.sw), _leaves(sw), strict=True),
        ):
            env[id(ph)] = v
        for ph, m in zip(self.masks or [], masks or [], strict=False):
            if ph is not None:
                env[id(ph)] = np.asarray(m).astype(bool)
        if self.extra is not None:
            env[id(self.extra)] = np.asarray(extra, dtype=self.extra.dtype)
        return [env[id(t)] for t in self.inputs]

    def run(
        self,
        x: Any,
        y: Any,
        pred: Any,
        sw: Any,
        masks: Any,
        extra: float,
        training: bool,
        need_grads: bool,
    ) -> tuple[float, list[np.ndarray] | None, float]:
        """Forward (and backward) on a batch.

        Returns
        -------
        z : float
            The loss.
        dys : list of ndarray or None
            :math:`\\partial L/\\partial \\hat y_k` per output (``None`` without
            ``need_grads``). The parameter gradients of the layers called inside the
            loss are added into their ``grads``.
        c : float
            :math:`\\partial L/\\partial(\\sum \\text{losses})`: the weight of the
            added losses in the loss (0 when it does not use them).
        """
        outs, tape = self.graph.forward(self._values(x, y, pred, sw, masks, extra), training)
        value = np.asarray(outs[0])
        z = float(value.reshape(-1)[0])
        if not need_grads or not np.isfinite(z):
            return z, None, 0.0
        seed = np.ones(value.shape, value.dtype if value.dtype.kind == "f" else np.float64)
        grads = self.graph.backward(tape, [seed], input_grads=False, param_grads=True)
        by_id = {id(t): g for t, g in zip(self.inputs, grads, strict=True)}
        dys = []
        for ph, p in zip(self._pred_leaves, _leaves(pred), strict=True):
            g = by_id.get(id(ph))
            dys.append(np.zeros_like(p) if g is None else np.asarray(g, dtype=p.dtype))
        c = 0.0
        g_extra = None if self.extra is None else by_id.get(id(self.extra))
        if g_extra is not None:
            c = float(np.sum(g_extra))
        return z, dys, c


def _has_sublayers(node: Any) -> bool:
    return bool(getattr(node.layer, "layers", None))


def _reachable(out: KerasTensor) -> set[int]:
    seen: set[int] = set()
    stack = [out]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if t.node is not None:
            stack.extend(t.node.parents)
    return seen
