"""Saving and loading shared tensors (parameters, optimizer state) as .npz files.

    sg.save_params("model.npz", [W1, b1, W2, b2])           # keyed by each tensor's name
    sg.load_params("model.npz", [W1, b1, W2, b2])           # set_value in place, checked

The file is a plain numpy .npz (`np.load(path)` reads it), one array per tensor, keyed by the
tensor's name.  Loading sets the values in place, so functions already compiled over these tensors
see the loaded values with no rebuild.
"""
from __future__ import annotations

import collections
import os
import tempfile
import zipfile

import numpy as np

from .graph import ShapeError, Tensor
from .optim import STATE_SLOTS

__all__ = ["save_params", "load_params", "LoadResult"]

LoadResult = collections.namedtuple("LoadResult", "loaded missing unexpected")
LoadResult.__doc__ = """What `load_params` did: the names it loaded, the params' names the file
lacks and the file's names no param has (the last two are empty when strict=True)."""


def _describe(t):
    return f"shared tensor of shape {tuple(t.shape)} {t.dtype.name}"


def _named(params, who):
    """[(name, tensor)] from a list of named shared tensors or a {name: shared} dict; names are
    non-empty and unique."""
    if isinstance(params, Tensor):
        params = [params]
    if isinstance(params, dict):
        items = []
        for key, t in params.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"{who}: dict keys must be non-empty strings, got {key!r}")
            items.append((key, t, f"params[{key!r}]"))
    else:
        items = [(getattr(t, "name", None), t, f"params[{i}]") for i, t in enumerate(params)]
    out, where, seen_ids = [], {}, {}
    for name, t, label in items:
        if not isinstance(t, Tensor) or t.op != "shared":
            kind = t.op if isinstance(t, Tensor) else type(t).__name__
            raise TypeError(f"{who}: {label} must be a shared tensor, got {kind}")
        if not name:
            raise ValueError(f"{who}: {label} ({_describe(t)}) has no name; name it with "
                             "sg.shared(value, name=...) or pass a {name: tensor} dict")
        if t.id in seen_ids:
            raise ValueError(f"{who}: {label} is the same tensor as {seen_ids[t.id]} "
                             f"({name!r}); pass each tensor once")
        if name in where:
            hint = ("; two optimizers' state: give each its own prefix, "
                    "sg.optim.adam(..., name='head')") \
                if name.rpartition(".")[2] in STATE_SLOTS else ""
            raise ValueError(f"{who}: duplicate name {name!r}: {where[name]} and {label} are "
                             "different tensors with the same name; give them unique names "
                             "(or pass a {name: tensor} dict)" + hint)
        seen_ids[t.id] = label
        where[name] = label
        out.append((name, t))
    return out


def save_params(path, params):
    """Write the values of `params` (named shared tensors, or a {name: shared} dict) to the .npz
    file `path` (".npz" is appended when missing, as `np.savez` does), keyed by name.  The file
    is written to a temporary name and renamed, so a crash never leaves a half-written file.
    Returns the path written."""
    named = _named(params, "save_params")
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):  # else mkstemp's error would name its temporary file
        raise FileNotFoundError(f"save_params: no directory {directory!r} to write {path!r} in")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED,
                                                       allowZip64=True) as zf:
            # written member by member (not np.savez(**arrays)): a tensor named "file" or
            # "allow_pickle" would collide with np.savez's own arguments
            for name, t in named:
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, t.attr["storage"].array,
                                              allow_pickle=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as np.savez would create it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def load_params(path, params, strict=True):
    """Set `params` (named shared tensors, or a {name: shared} dict) in place from the .npz file
    written by `save_params`.

    Every array is checked before any value is set (a failed load changes nothing): its shape
    must equal the param's (`sg.ShapeError`) and its dtype too (`TypeError`), both naming the
    param.  With `strict=True` (the default) the file's names and the params' names must be the
    same set (`ValueError` listing the missing and unexpected names); with `strict=False` params
    missing from the file keep their values and extra arrays are ignored.  Returns a
    `LoadResult(loaded, missing, unexpected)` of names."""
    named = _named(params, "load_params")
    path = os.fspath(path)
    if not os.path.exists(path) and not path.endswith(".npz") and os.path.exists(path + ".npz"):
        path += ".npz"
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"load_params: {path} is a single .npy array, not an .npz of "
                         "named arrays (write one with sg.save_params)")
    with data:
        keys = list(data.files)
        names = [name for name, _ in named]
        missing = [n for n in names if n not in data.files]
        unexpected = [k for k in keys if k not in set(names)]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing from the file: {', '.join(map(repr, missing))}")
            if unexpected:
                parts.append(f"in the file but not among the params: "
                             f"{', '.join(map(repr, unexpected))}")
            raise ValueError(f"load_params({path!r}): " + "; ".join(parts) +
                           " (strict=False loads the names that match)")
        staged = []
        for name, t in named:
            if name not in data.files:
                continue
            value = data[name]
            storage = t.attr["storage"]
            target = storage.array
            if value.shape != target.shape:
                raise ShapeError(f"load_params: param {name!r} has shape {target.shape} but the "
                                 f"file's array has shape {value.shape}")
            if value.dtype != target.dtype:
                raise TypeError(f"load_params: param {name!r} is {target.dtype.name} but the "
                                f"file's array is {value.dtype.name}")
            staged.append((name, storage, value))
    for _, storage, value in staged:
        storage.overwrite(value)
    return LoadResult([n for n, _, _ in staged], missing, unexpected)
