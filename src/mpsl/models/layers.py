"""A traced graph cut into layers: one small GraphModule per segment, sharing the model's weights.

Each layer's GraphModule reaches the model's own modules and tensors by their paths in the model
(``layer1.0.conv1``), so layer ``name``'s state_dict keys are ``name.`` + the model's keys: the
chain trains the very tensors of the model it came from.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from mpsl.errors import ModelError
from mpsl.models.cuts import Cut, operations

# Names a LayerChain child cannot take: they are attributes of the chain itself.
_RESERVED = {"model_name", "input_shape", "input_dtype", "source_keys"}


@dataclass(frozen=True)
class Segment:
    """The operations of one layer, the value that enters it and the value it returns."""

    ops: list[fx.Node]
    entry: fx.Node
    exit: fx.Node


def segments(graph: fx.Graph, cuts: Sequence[Cut]) -> list[Segment]:
    """The graph's operations between consecutive cuts."""
    ops = operations(graph)
    (entry,) = (n for n in graph.nodes if n.op == "placeholder")
    (out,) = (n for n in graph.nodes if n.op == "output")
    result = out.args[0]
    assert isinstance(result, fx.Node)
    bounds = [0, *(c.position for c in cuts), len(ops)]
    exits = [*(c.value for c in cuts), result]
    found = []
    for (a, b), exit_ in zip(itertools.pairwise(bounds), exits, strict=True):
        found.append(Segment(ops[a:b], entry, exit_))
        entry = exit_
    return found


def build_layer(traced: fx.GraphModule, segment: Segment) -> fx.GraphModule:
    """One layer: the segment's operations as a GraphModule over the traced model's modules
    (the model's own, and the constants tracing made)."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {segment.entry: graph.placeholder("x")}

    def lookup(node: fx.Node) -> fx.Node:
        if node not in env:  # a parameter or buffer read: read it again here
            if node.op != "get_attr":
                raise AssertionError(f"{node} crosses a cut")
            env[node] = graph.get_attr(str(node.target))
        return env[node]

    for node in segment.ops:
        env[node] = graph.node_copy(node, lookup)
    graph.output(lookup(segment.exit))
    return fx.GraphModule(traced, graph, class_name="TracedLayer")


def check_shared_weights(model: nn.Module, layers: Sequence[tuple[str, fx.GraphModule]]) -> None:
    """Refuse a parameter (or a module's state) that two layers use: parts train apart."""
    owner: dict[int, str] = {}
    names = {id(t): k for k, t in model.named_parameters(remove_duplicate=False)}
    names |= {id(t): k for k, t in model.named_buffers(remove_duplicate=False)}
    for layer_name, layer in layers:
        own = {id(p) for p in layer.parameters()}
        own |= {id(b) for m in _called_modules(layer) for b in m.buffers()}
        for key in own:
            if key in owner and owner[key] != layer_name:
                raise ModelError(
                    f"'{names.get(key, '?')}' is used by layers {owner[key]} and {layer_name}: "
                    "weights tied across layers cannot be split (each part trains on its own "
                    "host); untie them (for Hugging Face models: tie_word_embeddings=False)"
                )
            owner[key] = layer_name


def _called_modules(layer: fx.GraphModule) -> list[nn.Module]:
    return [layer.get_submodule(str(n.target)) for n in layer.graph.nodes if n.op == "call_module"]


def store_shared_buffers_once(model: nn.Module, layers: Sequence[fx.GraphModule]) -> None:
    """A constant buffer read by several layers is saved by the first only (as in ``model``)."""
    persistent = _persistent_buffers(model)
    seen: set[int] = set()
    for layer in layers:
        for node in layer.graph.nodes:
            if node.op != "get_attr":
                continue
            path, _, leaf = str(node.target).rpartition(".")
            holder = layer.get_submodule(path)
            value = getattr(holder, leaf)
            if not isinstance(value, torch.Tensor) or isinstance(value, nn.Parameter):
                continue
            if id(value) in seen or str(node.target) not in persistent:
                holder._non_persistent_buffers_set.add(leaf)
            seen.add(id(value))


def _persistent_buffers(model: nn.Module) -> set[str]:
    return set(model.state_dict(keep_vars=True))


def layer_names(model: nn.Module, parts: Sequence[Segment]) -> list[str]:
    """A name per layer from the module paths of its operations, unique and valid as a child."""
    everywhere = Counter(p for s in parts for n in s.ops for p in _scopes(module_path(n)))
    names: list[str] = []
    for part in parts:
        name = _name(model, part.ops, everywhere).replace(".", "_") or "layer"
        if name in _RESERVED or hasattr(nn.Sequential, name):
            name += "_layer"
        unique, k = name, 2
        while unique in names:
            unique, k = f"{name}_{k}", k + 1
        names.append(unique)
    return names


def _name(model: nn.Module, ops: Sequence[fx.Node], everywhere: Counter[str]) -> str:
    paths = [p for p in (module_path(n) for n in ops) if p]
    if not paths:
        return _op_name(ops)
    prefix = _common_prefix(paths)
    here = Counter(p for n in ops for p in _scopes(module_path(n)))
    if prefix and here[prefix] == everywhere[prefix]:  # the whole module is this layer
        return prefix
    depth = len(prefix.split(".")) if prefix else 0
    children = list(dict.fromkeys(p.split(".")[depth] for p in paths if p != prefix))
    if not children:
        return prefix or _op_name(ops)
    scope = f"{prefix}." if prefix else ""
    weights = {c: _param_count(model, scope + c) for c in children}
    heaviest = [c for c in children if weights[c] == max(weights.values())]
    if len(heaviest) == 1:  # the part that matters: attn of (ln_1, attn), bn1 of (bn1, relu)
        return scope + heaviest[0]
    return f"{scope}{heaviest[0]}_{heaviest[-1]}"  # two branches alike: left_right


def module_path(node: fx.Node) -> str:
    """The module an operation belongs to ('' for the model's own forward)."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return ""
    return str(list(stack.values())[-1][0])


def _scopes(path: str) -> list[str]:
    parts = path.split(".") if path else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _common_prefix(paths: Sequence[str]) -> str:
    split = [p.split(".") for p in paths]
    common: list[str] = []
    for items in zip(*split, strict=False):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return ".".join(common)


def _param_count(model: nn.Module, path: str) -> int:
    try:
        return sum(p.numel() for p in model.get_submodule(path).parameters())
    except AttributeError:
        return 0


def _op_name(ops: Sequence[fx.Node]) -> str:
    """The first operation that is more than a shape or item lookup, as fx named it."""
    trivial = {"getattr", "getitem", "size", "dim"}
    for node in ops:
        base = re.sub(r"_\d+$", "", node.name)
        if base not in trivial:
            return base
    return re.sub(r"_\d+$", "", ops[0].name) if ops else "layer"
