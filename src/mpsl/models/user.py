"""Models of your own: ``path/to/file.py:function`` or ``package.module:function`` specs.

The function (or class) returns an ``nn.Module``; it gets ``num_classes`` and ``input_shape``
when it takes them. A ``LayerChain`` or any ``nn.Sequential`` is a chain as it is; any other
module is traced into one (``trace.py``). The chain is named by the spec, so whatever rebuilds
a model by its name (a deployment's members, ``load_trained``) rebuilds this one.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from mpsl.errors import ModelError
from mpsl.models.chain import UNKNOWN_SHAPE, LayerChain, guess_input_dtype
from mpsl.models.trace import set_mode, trace_chain

_FORMS = "FILE.py:FUNCTION or PACKAGE.MODULE:FUNCTION"


def is_spec(name: str) -> bool:
    """Whether ``name`` names a model of one's own rather than one of the zoo."""
    return ":" in name


def build_user_model(
    spec: str,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    seed: int | None = None,
) -> LayerChain:
    """The chain of the model ``spec`` builds; a seed makes its initial weights reproducible."""
    shape = tuple(input_shape) if input_shape is not None else None
    with torch.random.fork_rng(devices=[]):
        if seed is not None:  # before the file runs: module-level initialisation counts too
            torch.manual_seed(seed)
        with _beside(spec):
            fn = load_function(spec)
            kwargs, default_shape = _arguments(fn, spec, num_classes, shape)
            module = _call(fn, spec, kwargs)
        chain = as_chain(module, spec, shape or default_shape)
        _check_output(chain, spec, num_classes)
    return chain


def load_function(spec: str) -> Callable[..., Any]:
    """The callable ``spec`` names, from its file or module."""
    where, _, fn_name = spec.rpartition(":")
    if not where or not fn_name.isidentifier():
        raise ModelError(f"model '{spec}' is neither a zoo model nor {_FORMS}")
    module = _load_file(spec, where) if _is_path(where) else _import(spec, where)
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        what = "no function" if fn is None else "a non-callable"
        raise ModelError(
            f"model '{spec}': {where} has {what} '{fn_name}'; it defines: "
            f"{', '.join(defined) or 'nothing callable'}"
        )
    return fn


def _is_path(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _source_file(spec: str) -> Path | None:
    where = spec.rpartition(":")[0]
    return Path(where).expanduser() if where and _is_path(where) else None


@contextlib.contextmanager
def _beside(spec: str) -> Iterator[None]:
    """The model file's folder first on sys.path, as for a script: it may import its siblings."""
    path = _source_file(spec)
    if path is None:
        yield
        return
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def _load_file(spec: str, where: str) -> ModuleType:
    path = Path(where).expanduser()
    if not path.is_file():
        raise ModelError(f"model '{spec}': no file {where} (looked for {path.resolve()})")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"mpsl_user_model_{digest}"
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ModelError(f"model '{spec}': {where} is not a Python file")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up there
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelError(
            f"model '{spec}': running {where} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _import(spec: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise ModelError(
                f"model '{spec}': no module named '{exc.name}' (is its package installed, or "
                "its folder on PYTHONPATH? a file is given as path/to/file.py)"
            ) from exc
        raise ModelError(f"model '{spec}': importing {where} failed: {exc}") from exc
    except Exception as exc:
        raise ModelError(
            f"model '{spec}': importing {where} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _arguments(
    fn: Callable[..., Any],
    spec: str,
    num_classes: int | None,
    input_shape: tuple[int, ...] | None,
) -> tuple[dict[str, Any], tuple[int, ...] | None]:
    """The keyword arguments ``fn`` takes of ours, and its default input shape if any."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: pass nothing
        return {}, None
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    ours = {"num_classes": num_classes, "input_shape": input_shape}
    flags = {"num_classes": "--num-classes", "input_shape": "--input-shape"}
    kwargs: dict[str, Any] = {}
    for key, value in ours.items():
        param = params.get(key)
        accepted = takes_any or (
            param is not None and param.kind is not inspect.Parameter.POSITIONAL_ONLY
        )
        if value is not None and accepted:
            kwargs[key] = value
        elif value is None and param is not None and param.default is param.empty:
            raise ModelError(f"model '{spec}': {_name(fn)} needs {key}; give {flags[key]}")
    unknown = [
        p.name
        for p in params.values()
        if p.default is p.empty and p.name not in ours and p.kind not in _VARIADIC
    ]
    if unknown:
        raise ModelError(
            f"model '{spec}': {_name(fn)} requires {', '.join(unknown)}; MP-SL passes only "
            "num_classes and input_shape (give the others defaults)"
        )
    default = params["input_shape"].default if "input_shape" in params else None
    return kwargs, _shape_or_none(default)


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _call(fn: Callable[..., Any], spec: str, kwargs: dict[str, Any]) -> nn.Module:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        module = fn(**kwargs)
    except Exception as exc:
        raise ModelError(
            f"model '{spec}': {_name(fn)}({args}) raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(module, nn.Module):
        raise ModelError(
            f"model '{spec}': {_name(fn)}({args}) returned {type(module).__name__}; "
            "expected a torch.nn.Module"
        )
    return module


def as_chain(module: nn.Module, spec: str, input_shape: tuple[int, ...] | None) -> LayerChain:
    """``module`` as a chain named ``spec``: a Sequential as it is, anything else traced."""
    shape = input_shape or _declared_shape(module)
    if shape is None:
        raise ModelError(
            f"the input shape of model '{spec}' is unknown: give --input-shape (input_shape "
            "in the run config), a default for its function's input_shape argument, or set "
            "input_shape on the module it returns"
        )
    dtype = getattr(module, "input_dtype", None)
    dtype = dtype if isinstance(dtype, torch.dtype) else None
    if isinstance(module, LayerChain):
        module.input_shape = shape
        module.model_name = spec
        return module
    if isinstance(module, nn.Sequential):
        if len(module) == 0:
            raise ModelError(f"model '{spec}': the nn.Sequential it returned is empty")
        layers = list(module.named_children())
        return LayerChain(spec, layers, shape, dtype or guess_input_dtype(layers[0][1]))
    return trace_chain(module, spec, shape, dtype)


def _declared_shape(module: nn.Module) -> tuple[int, ...] | None:
    shape = _shape_or_none(getattr(module, "input_shape", None))
    return shape if shape != UNKNOWN_SHAPE else None


def _shape_or_none(value: object) -> tuple[int, ...] | None:
    if isinstance(value, tuple | list) and value and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _check_output(chain: LayerChain, spec: str, num_classes: int | None) -> None:
    """One example batch through the chain: one tensor out, with room for every class."""
    try:
        with set_mode(chain, training=False), torch.no_grad():
            out = chain(chain.example_input(2))
    except Exception as exc:
        shape = "x".join(map(str, (2, *chain.input_shape)))
        raise ModelError(
            f"model '{spec}' fails on an example batch of shape {shape} ({chain.input_dtype}): "
            f"{type(exc).__name__}: {exc}; is the input shape right (--input-shape)?"
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise ModelError(
            f"model '{spec}' returns {type(out).__name__}; MP-SL trains models that return one "
            "tensor (the logits)"
        )
    if num_classes is not None and (out.dim() < 2 or out.shape[-1] < num_classes):
        raise ModelError(
            f"model '{spec}' outputs shape {tuple(out.shape[1:])} per sample, but the data has "
            f"{num_classes} classes: its last dimension must be at least {num_classes} (let its "
            "function take num_classes)"
        )
