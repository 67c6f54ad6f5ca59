"""The CUDA backend: the same schedule as the C backend, rendered as CUDA (codegen/cuda.py), built
with nvcc through the same disk cache, and run with shared tensors, optimizer state and the
workspace kept in device memory.

Per call, inputs are copied to the device and outputs back (one synchronization per step).
Shared tensors stay on the device between calls: `get_value`, the numpy and C backends fetch a
newer device value when they need it (graph.SharedValue tracks which copy is newest).

Without a GPU: `SYMGRAD_CUDA_EMULATE=1` compiles the same source with the host C++ compiler
against csrc/symgrad_cuda_emulate.h and runs it on the CPU (blocks and threads as fibers), which
is how this backend is tested where no GPU exists.  `SYMGRAD_CUDA_EMULATE=asan` adds
AddressSanitizer (the process must preload libasan).  `SYMGRAD_CUDA_DEBUG=1` (or `debug=True`)
waits for each kernel, so a fault is charged to the kernel that caused it.
"""
from __future__ import annotations

import os
import weakref

import numpy as np

from ..codegen import cuda as cuda_render
from ..errors import CudaError  # noqa: F401  (its home was here)
from .c_backend import CompiledProgram

CDEF = """
int64_t sg_workspace_size(const int64_t *dims);
int sg_run(void **args, const int64_t *dims, char *workspace, int *status, int debug,
           int *cuda_error);
int sg_cuda_device_count(int *count);
int sg_cuda_malloc(void **p, int64_t bytes);
int sg_cuda_free(void *p);
int sg_cuda_upload(void *dst, const void *src, int64_t bytes);
int sg_cuda_download(void *dst, const void *src, int64_t bytes);
int sg_cuda_zero(void *p, int64_t bytes);
int sg_cuda_synchronize(void);
const char *sg_cuda_error_string(int error);
"""


def build_language() -> str:
    """"cuda" (nvcc, for a GPU), or the CPU emulation that SYMGRAD_CUDA_EMULATE asks for."""
    mode = os.environ.get("SYMGRAD_CUDA_EMULATE", "").strip().lower()
    if mode in ("", "0", "false", "no", "off"):
        return "cuda"
    if mode == "asan":
        return "cuda-emulate-asan"
    if mode in ("1", "true", "yes", "on"):
        return "cuda-emulate"
    raise ValueError(f"SYMGRAD_CUDA_EMULATE={mode!r}: expected 1 (run the generated CUDA on the "
                     "CPU emulation), asan (the same under AddressSanitizer) or 0")


class Device:
    """The CUDA runtime calls of one loaded step library, with errors raised as CudaError."""

    def __init__(self, library):
        self.library = library  # keeps the library (and its runtime) loaded
        self.ffi, self.lib = library.ffi, library.lib
        # bound now: a buffer's finalizer may run inside any allocation, even inside cffi's
        # dlopen of the next step library, which holds the FFI's lock; looking up a lib
        # function there takes that lock again and deadlocks
        self._free = self.lib.sg_cuda_free

    def check(self, error: int, what: str):
        if error:
            text = self.ffi.string(self.lib.sg_cuda_error_string(error)).decode()
            raise CudaError(f"CUDA {what} failed: {text} (cudaError_t {error})")

    def malloc(self, nbytes: int) -> int:
        p = self.ffi.new("void **")
        self.check(self.lib.sg_cuda_malloc(p, nbytes), f"cudaMalloc of {nbytes} bytes")
        return int(self.ffi.cast("uintptr_t", p[0]))

    def pointer(self, address: int):
        return self.ffi.cast("void *", address)

    def free(self, pointer):
        """Called from finalizers: takes a ready pointer, touches no cffi lock, never raises."""
        self._free(pointer)

    def upload(self, address: int, array: np.ndarray):
        if array.nbytes:
            self.check(self.lib.sg_cuda_upload(self.ffi.cast("void *", address),
                                               self.ffi.cast("void *", array.ctypes.data),
                                               array.nbytes), "copy to the device")

    def download(self, array: np.ndarray, address: int):
        if array.nbytes:
            self.check(self.lib.sg_cuda_download(self.ffi.cast("void *", array.ctypes.data),
                                                 self.ffi.cast("void *", address),
                                                 array.nbytes), "copy from the device")

    def zero(self, address: int, nbytes: int):
        self.check(self.lib.sg_cuda_zero(self.ffi.cast("void *", address), nbytes),
                   "cudaMemset")


class DeviceBuffer:
    """Device memory that is freed when the buffer is collected."""

    def __init__(self, device: Device, nbytes: int):
        self.device, self.nbytes = device, nbytes
        self.address = device.malloc(nbytes)
        weakref.finalize(self, device.free, device.pointer(self.address))


class DeviceMirror:
    """The device copy of a shared tensor (graph.SharedValue.mirror)."""

    def __init__(self, device: Device, array: np.ndarray):
        self.buffer = DeviceBuffer(device, array.nbytes)
        self.address = self.buffer.address

    def upload(self, array: np.ndarray):
        self.buffer.device.upload(self.address, array)

    def download(self, array: np.ndarray):
        self.buffer.device.download(array, self.address)


class CudaProgram(CompiledProgram):
    language = "cuda"

    def __init__(self, fn, check_finite=False, debug=None):
        from .. import build
        super().__init__(fn, check_finite)
        self.build_language = build_language()
        self.debug = bool(debug) if debug is not None else \
            os.environ.get("SYMGRAD_CUDA_DEBUG", "") not in ("", "0")
        self.library = build.load_library(self.source, CDEF, language=self.build_language)
        self.device = Device(self.library)
        self.ffi, self.lib = self.library.ffi, self.library.lib
        self._args = self.ffi.new("void *[]", max(1, self.schedule.n_args))
        self._shared_args = [b.arg for b in self.schedule.args if b.kind == "shared"]
        self._io: dict = {}          # argument slot -> DeviceBuffer, grown as sizes need
        self._status = None
        self._checked_device = False
        self._constants = []         # DeviceBuffers of the large constants, uploaded once

    def render(self) -> str:
        return cuda_render.render(self.schedule, self.slots, len(self.fn.sym_slots),
                                  check_finite=self.check_finite)

    # ------------------------------------------------------------------ per call
    def _check_device(self):
        count = self.ffi.new("int *")
        error = self.lib.sg_cuda_device_count(count)
        if error or count[0] < 1:
            why = self.ffi.string(self.lib.sg_cuda_error_string(error)).decode() if error \
                else "no devices"
            raise CudaError(
                f'backend="cuda": no CUDA device to run on (cudaGetDeviceCount: {why}). The '
                "step was generated and built (fn.source shows its CUDA); set "
                "SYMGRAD_CUDA_EMULATE=1 to run it on the CPU emulation instead.")
        self._status = DeviceBuffer(self.device, 4)
        self._upload_constants()
        self._checked_device = True

    def _upload_constants(self):
        """Large constants reach the step as arguments, like the C backend's (in the source
        they made megabytes of CUDA for nvcc to parse): on the device once, at the first call."""
        for buf in self.schedule.args:
            if buf.kind == "const_arg":
                constant = DeviceBuffer(self.device, max(buf.data.nbytes, 1))
                self.device.upload(constant.address, buf.data)
                self._constants.append(constant)
                self._args[buf.arg] = self.ffi.cast("void *", constant.address)

    def _scratch(self, slot, nbytes: int) -> int:
        buf = self._io.get(slot)
        if buf is None or buf.nbytes < nbytes:
            buf = self._io[slot] = DeviceBuffer(self.device, max(nbytes, 1))
        return buf.address

    def _bind_shared(self):
        """Device copies of the shared tensors, uploaded where the host value is newer."""
        for arg, storage in zip(self._shared_args, self._storages):
            mirror = storage.mirror
            if mirror is None:  # a first device copy: the host value is the only one
                mirror = storage.mirror = DeviceMirror(self.device, storage.array)
            if storage.fresh == "host":
                mirror.upload(storage.array)
                storage.set_fresh("both")
            self._args[arg] = self.ffi.cast("void *", mirror.address)

    def run(self, arrays, dims, outs=None):
        if not self._checked_device:
            self._check_device()
        ffi, device = self.ffi, self.device
        shapes, ws_bytes = self._layout(dims)
        self._bind_shared()
        for i, array in enumerate(arrays):
            address = self._scratch(i, array.nbytes)
            device.upload(address, np.ascontiguousarray(array))
            self._args[i] = ffi.cast("void *", address)
        if outs is None:
            outs = [np.empty(shape, dtype) for shape, dtype in zip(shapes, self._out_dtypes)]
        first_out = len(arrays)
        for j, out in enumerate(outs):
            self._args[first_out + j] = ffi.cast("void *",
                                                 self._scratch(first_out + j, out.nbytes))
        workspace = self._scratch("workspace", ws_bytes)
        device.zero(self._status.address, 4)
        try:
            self._launch(dims, workspace)
        finally:
            # the device copies are the newest now, even where the step stopped part way
            for storage in self._updated:
                storage.set_fresh("device")
        for j, out in enumerate(outs):
            device.download(out, self._io[first_out + j].address)
        return outs

    def _launch(self, dims, workspace):
        ffi, device = self.ffi, self.device
        c_dims = ffi.new("int64_t[]", [int(d) for d in dims] or [0])
        cuda_error = ffi.new("int *")
        failed = self.lib.sg_run(self._args, c_dims, ffi.cast("char *", workspace),
                                 ffi.cast("int *", self._status.address), int(self.debug),
                                 cuda_error)
        if failed:
            self.lib.sg_cuda_synchronize()  # let what was launched finish before reporting
            k = self.kernels[failed - 1]
            device.check(cuda_error[0], f"kernel {k.name} ({k.node_list()})")
        device.check(self.lib.sg_cuda_synchronize(),
                     "a kernel of this step (set SYMGRAD_CUDA_DEBUG=1 to name it)")
        status = np.zeros(1, np.int32)
        device.download(status, self._status.address)
        if status[0]:
            self._raise(int(status[0]), dims)


def compile(fn, check_finite=False, debug=None):  # noqa: A001  (the backend interface's name)
    return CudaProgram(fn, check_finite=check_finite, debug=debug)

