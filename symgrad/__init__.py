"""symgrad: a symbolic graph compiler.  Build a static graph with numpy-like ops, differentiate it
with `grad`, and compile forward, backward and updates into one native call with `function`."""
import os as _os

# OpenMP workers that spin after a parallel region (libgomp's default) take the cores from
# OpenBLAS's own threads in the GEMM that follows: a training step ran 6-15x slower here.
# Passive waiting costs microseconds per parallel region instead.  libgomp reads this when it
# loads, so it is set before any compiled library is; a user's own setting wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
from .graph import ShapeError, Tensor, print_graph, format_graph, Sym
from .api import *  # noqa: F401,F403
from .api import (abs, max, min, sum, placeholder, constant, shared, apply)  # noqa: A004
from .autodiff import grad, gradcheck, GradcheckError
from .function import Function, function, InputError
from .layers import conv2d, max_pool2d, avg_pool2d, layer_norm, scaled_dot_product_attention
from . import init, optim, random
from .random import dropout
from .params import save_params, load_params

__version__ = "0.1.0"
