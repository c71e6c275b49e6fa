"""Any ``nn.Module`` as a LayerChain: trace it with torch.fx, cut where one tensor crosses.

Tracing runs ``forward`` once on symbolic values and records every call as a graph node:
torch.nn modules (``nn.Conv2d``, ``nn.LayerNorm``, ``nn.MultiheadAttention``...) stay one node
each and keep their weights; everything else (the model's own modules, ``F.relu``, ``x + y``,
``torch.flatten``) is traced through. A submodule whose forward cannot be traced (control flow
on tensor values) is kept whole, as one node, and tracing starts again; only the model's own
forward has to be traceable. A probe run on an example batch tells which values are tensors and
which operations change their inputs in place (``cuts.py`` reads both); each stretch between
two cuts becomes one layer (``layers.py``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.utils._pytree import tree_leaves

from mpsl.errors import ModelError
from mpsl.models.chain import LayerChain, guess_input_dtype
from mpsl.models.cuts import Facts, find_cuts
from mpsl.models.layers import (
    build_layer,
    check_shared_weights,
    layer_names,
    module_path,
    segments,
    store_shared_buffers_once,
)

log = logging.getLogger(__name__)

_ROOT = "model"  # the traced model's name inside the one-input wrapper
_TORCH_DIR = str(Path(torch.__file__).parent)
_FALLBACK = (
    "Declare the layers by hand instead: return mpsl.models.chain_of([(name, module), ...]) "
    "(or a LayerChain) from your function (docs/models.md, 'Your own model')"
)


def trace_chain(
    model: nn.Module,
    name: str,
    input_shape: tuple[int, ...],
    input_dtype: torch.dtype | None = None,
) -> LayerChain:
    """``model`` as a chain of its indivisible layers; the chain shares the model's tensors.

    Without ``input_dtype`` the input is int64 token ids when it feeds an ``nn.Embedding``.
    """
    if fx.Tracer().is_leaf_module(model, ""):  # one torch.nn module: one layer
        dtype = input_dtype or guess_input_dtype(model)
        return LayerChain(name, [(type(model).__name__.lower(), model)], input_shape, dtype)
    with set_mode(model, training=True):
        traced, leaves = trace_graph(model, name)
    _warn_if_mode_dependent(model, name, traced, leaves)
    dtype = input_dtype or _input_dtype(traced)
    facts = probe(traced, name, input_shape, dtype)
    parts = segments(traced.graph, find_cuts(traced.graph, facts))
    layers = [
        (n, build_layer(traced, s)) for n, s in zip(layer_names(model, parts), parts, strict=True)
    ]
    check_shared_weights(model, layers)
    store_shared_buffers_once(model, [layer for _, layer in layers])
    chain = LayerChain(name, list(layers), input_shape, dtype)
    chain.source_keys = {f"{n}.{k}": k for n, layer in layers for k in layer.state_dict()}
    log.info("traced %s into %d layers", name, len(layers))
    return chain


class _OneInput(nn.Module):
    """Calls the model with one input, so its other arguments keep their Python defaults."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)


class _Tracer(fx.Tracer):
    """fx's tracer, with extra leaf modules, remembering the innermost module that failed."""

    def __init__(self, leaves: set[str]) -> None:
        super().__init__()
        self.leaves = leaves
        self.failed_in: str | None = None
        # buffers as graph inputs, not constants: `self.mask[:t, :t]` traces with a symbolic t
        self.proxy_buffer_attributes = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaves or super().is_leaf_module(
            m, module_qualified_name
        )

    def call_module(
        self, m: nn.Module, forward: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:  # the innermost module sees the failure first
                self.failed_in = self.path_of_module(m)
            raise


def trace_graph(model: nn.Module, name: str) -> tuple[fx.GraphModule, set[str]]:
    """``model``'s forward as a graph of one input, and the submodules kept whole."""
    _check_one_input(model, name)
    wrapper = _OneInput(model)
    leaves: set[str] = set()
    while True:
        tracer = _Tracer(leaves)
        try:
            graph = tracer.trace(wrapper)
        except Exception as exc:
            where = tracer.failed_in
            if where is None or where == _ROOT or where in leaves:
                raise _untraceable(name, model, where, exc) from exc
            log.info("%s: keeping %s whole (%s)", name, where[len(_ROOT) + 1 :], exc)
            leaves.add(where)
            continue
        _unwrap(graph)
        _check_one_output(graph, name)
        return fx.GraphModule(model, graph), {leaf[len(_ROOT) + 1 :] for leaf in leaves}


def _check_one_input(model: nn.Module, name: str) -> None:
    params = list(inspect.signature(model.forward).parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    takes_one = any(p.kind in kinds for p in params[:1])
    required = [p.name for p in params if p.default is p.empty and p.kind not in variadic]
    if not takes_one or len(required) > 1:
        found = f"{len(required)} inputs ({', '.join(required)})" if required else "no input"
        raise ModelError(
            f"{name}: {type(model).__name__}.forward takes {found}; MP-SL splits models of one "
            "tensor input and one tensor output: wrap the model in a module whose forward(x) "
            "makes the other inputs from x or fixes them"
        )


def _unwrap(graph: fx.Graph) -> None:
    """Make module paths relative to the model, not to the wrapper around it."""
    cut = len(_ROOT) + 1
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr"):
            node.target = str(node.target)[cut:]
        stack = node.meta.get("nn_module_stack")
        if stack:
            node.meta["nn_module_stack"] = OrderedDict(
                (k, (path[cut:], kind)) for k, (path, kind) in stack.items() if path != _ROOT
            )


def _check_one_output(graph: fx.Graph, name: str) -> None:
    (out,) = (n for n in graph.nodes if n.op == "output")
    result = out.args[0]
    if isinstance(result, fx.Node):
        return
    what = (
        f"a {type(result).__name__} of {len(result)} values"
        if isinstance(result, tuple | list | dict)
        else f"a constant ({result!r})"
    )
    raise ModelError(
        f"{name}: forward returns {what}; MP-SL splits models that return one tensor (the "
        "logits): wrap the model in a module that returns only that tensor"
    )


def _untraceable(name: str, model: nn.Module, where: str | None, exc: Exception) -> ModelError:
    if where is None or where == _ROOT:
        place = f"in {type(model).__name__}.forward"
    else:
        module = model.get_submodule(where[len(_ROOT) + 1 :])
        place = f"in module '{where[len(_ROOT) + 1 :]}' ({type(module).__name__})"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(
        f"cannot trace {name} {place}{_operation(exc)}: {reason}. Tracing follows forward with "
        "symbolic tensors, so Python control flow on tensor values (if x.sum() > 0, "
        f"range(x.shape[0])) cannot be traced. {_FALLBACK}"
    )


def _operation(exc: Exception) -> str:
    """Where in the user's code tracing failed: ', at file:line `code`'."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(_TORCH_DIR) and f.filename != __file__
    ]
    if not frames:
        return ""
    f = frames[-1]
    return f", at {Path(f.filename).name}:{f.lineno} `{(f.line or '').strip()}`"


class _Probe(fx.Interpreter):
    """Runs the graph once, noting tensor values and the storages each node changes in place."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module, garbage_collect_values=False)  # keeps storages distinct
        self.facts = Facts()
        self.current: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        inputs = [t for m in n.all_input_nodes for t in _tensors(self.env[m])]
        versions = [t._version for t in inputs]
        value = super().run_node(n)
        changed = {
            s
            for t, v in zip(inputs, versions, strict=True)
            if t._version != v and (s := _storage(t)) is not None
        }
        if changed:
            self.facts.mutated[n] = changed
        if isinstance(value, torch.Tensor):
            if value.is_floating_point():
                self.facts.floating.add(n)
            if (s := _storage(value)) is not None:
                self.facts.storage[n] = s
        return value


def probe(
    traced: fx.GraphModule, name: str, input_shape: tuple[int, ...], dtype: torch.dtype
) -> Facts:
    """Run ``traced`` on an example batch of ``input_shape``; what it showed about its values."""
    if dtype.is_floating_point:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn((2, *input_shape), generator=gen, dtype=dtype)
    else:
        x = torch.zeros((2, *input_shape), dtype=dtype)
    runner = _Probe(traced)
    try:
        with set_mode(traced, training=False), torch.no_grad():
            out = runner.run(x)
    except Exception as exc:
        shape = "x".join(map(str, x.shape))
        where = module_path(runner.current) if runner.current is not None else ""
        place = f" in '{where}'" if where else ""
        reason = str(exc).strip().split("\n")[0]  # fx appends the graph node and more
        raise ModelError(
            f"{name} fails on an example batch of shape {shape} ({dtype}){place}: "
            f"{type(exc).__name__}: {reason}; is the input shape right (--input-shape)?"
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ModelError(
            f"{name}: forward returns {type(out).__name__}; MP-SL splits models that return "
            "one tensor (the logits)"
        )
    return runner.facts


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]


def _storage(t: torch.Tensor) -> int | None:
    """The address of ``t``'s memory, shared by all views of it; None where it has none."""
    if t.layout != torch.strided or t.numel() == 0:
        return None
    try:
        return int(t.untyped_storage().data_ptr())
    except (RuntimeError, NotImplementedError):
        return None


@contextlib.contextmanager
def set_mode(model: nn.Module, *, training: bool) -> Iterator[None]:
    """Every module in training (or eval) mode for a while, each module's own mode after."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for m, was in modes:
            m.training = was


def _warn_if_mode_dependent(
    model: nn.Module, name: str, traced: fx.GraphModule, leaves: set[str]
) -> None:
    """Tracing fixes ``self.training`` branches: say so when eval mode would trace otherwise."""
    wrapped = {f"{_ROOT}.{leaf}" for leaf in leaves}
    try:
        with set_mode(model, training=False):
            graph = _Tracer(wrapped).trace(_OneInput(model))
    except Exception:  # eval mode not traceable: nothing to compare
        return
    _unwrap(graph)
    if graph.python_code("self").src != traced.graph.python_code("self").src:
        log.warning(
            "%s: forward depends on self.training beyond its torch.nn modules (e.g. "
            "F.dropout(x, training=self.training)); the chain behaves as in training mode "
            "also when evaluated: use nn.Dropout modules instead",
            name,
        )


def _input_dtype(traced: fx.GraphModule) -> torch.dtype:
    """int64 token ids when the input goes straight into an embedding (or a module that starts
    with one), else float32."""
    (x,) = (n for n in traced.graph.nodes if n.op == "placeholder")
    for user in x.users:
        if user.op == "call_module":
            if guess_input_dtype(traced.get_submodule(str(user.target))) == torch.long:
                return torch.long
        elif user.target in (torch.nn.functional.embedding, torch.embedding):
            return torch.long
    return torch.float32
