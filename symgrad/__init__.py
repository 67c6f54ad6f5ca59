"""symgrad: a symbolic graph compiler.  Build a static graph with numpy-like ops, differentiate it
with `grad`, and compile forward, backward and updates into one native call with `function`."""
import os as _os

# libgomp's workers spin for a while after each parallel region (by default some 300,000 pauses,
# milliseconds here) before they sleep.  Within a step the next kernel starts microseconds later,
# so a short spin keeps them ready; between steps, or when the user's own numpy runs, they sleep
# and leave the cores.  (OpenBLAS runs single-threaded inside the step's OpenMP team, so no second
# pool competes.)  libgomp reads this when it loads, so it is set before any compiled library is;
# a user's own setting wins.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["GOMP_SPINCOUNT"] = "3000"

# the public names (re-exported on purpose)
from .graph import ShapeError, Tensor, print_graph, format_graph, Sym  # noqa: E402,F401
from .api import *  # noqa: E402,F401,F403
from .api import abs, max, min, sum, placeholder, constant, shared, apply  # noqa: E402,F401,A004
from .autodiff import grad, gradcheck, GradcheckError  # noqa: E402,F401
from .function import Function, function, InputError  # noqa: E402,F401
from .errors import (CacheError, CompileError, CudaError, KernelError,  # noqa: E402,F401
                     NoCompilerError)
from .layers import (conv2d, max_pool2d, avg_pool2d, layer_norm,  # noqa: E402,F401
                     scaled_dot_product_attention)
from . import init, optim, random  # noqa: E402,F401
from .random import dropout  # noqa: E402,F401
from .params import save_params, load_params  # noqa: E402,F401

__version__ = "0.1.0"
