"""The errors a compiled function raises beyond ShapeError and InputError, in one light module:
`import symgrad` exposes them (sg.KernelError, ...) without loading a compiler or a backend."""


class CompileError(RuntimeError):
    """The compiler rejected the source; the message holds its stderr and the kept source path."""


class CacheError(OSError):
    """The compile cache directory cannot be created or written."""


class NoCompilerError(RuntimeError):
    """No usable compiler; the numpy backend does not need one."""


class KernelError(IndexError, RuntimeError):
    """A kernel reported bad data at run time (a label or an index out of range).  An
    IndexError, as the numpy backend raises for the same data, and a RuntimeError."""


class CudaError(RuntimeError):
    """A CUDA runtime call or kernel launch failed, or there is no device to run on."""
