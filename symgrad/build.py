"""Compile generated C/CUDA source into a shared library, cache it on disk, load it with cffi.

Cache layout (see `cache_dir`):  <cache>/<key[:2]>/<key>.so   the library
                                 <key>.c / <key>.cu           the source, for users to read
                                 <key>.sha256                 sha256 of the .so bytes
                                 <key>.lock                   per-key flock (no global lock)
The key hashes everything that changes the machine code, so a hit never needs the compiler.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.machinery
import importlib.util
import os
import pathlib
import platform
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig

import ctypes

import cffi

from .errors import CacheError, CompileError, NoCompilerError  # noqa: F401  (once defined here)


__all__ = ["CompileError", "NoCompilerError", "Library", "load_library", "cache_dir", "blas_info"]

compiler_runs = 0  # compiler invocations in this process; tests assert a cache hit leaves it alone




def _unusable_cache(path, exc: OSError) -> CacheError:
    return CacheError(f"symgrad's compile cache {path} is not usable ({exc.strerror or exc}); "
                      "point SYMGRAD_CACHE_DIR at a writable directory (a function already "
                      "compiled there still loads from a read-only one)")



# Flags for language "c", each with its reason:
C_FLAGS = [
    "-O3",                 # vectorize and unroll the generated loops
    "-march=native",       # this CPU's SIMD; safe to cache because the key records the CPU
    "-fopenmp",            # the generated kernels parallelize with `#pragma omp`
    "-fPIC", "-shared",    # we build a shared library to dlopen
    "-std=c11",            # a fixed dialect, so a compiler default change cannot change behaviour
    "-fno-math-errno",     # lets sqrt/exp etc. inline to instructions; we never read errno
    "-fno-trapping-math",  # lets the vectorizer speculate FP ops; no one installs FP trap handlers
    "-fwrapv",             # integer overflow wraps, as in numpy (else (j + 1) > j folds to true)
    # Deliberately NOT -ffast-math: it assumes no NaN/Inf, breaking isnan, fmax and inf results.
]
C_LIBS = ["-lm"]  # libm for exp/log/...; after the sources, as the linker requires
# glibc's libmvec holds SIMD versions of expf, logf, tanhf, ... (within 4 ulp, NaN/Inf kept).
# The runtime header declares them `simd` under SG_USE_MVEC, so loops calling exp vectorize
# without -ffast-math (about 5x on the sigmoid kernel here).
if platform.machine() == "x86_64" and platform.libc_ver()[0] == "glibc":
    C_FLAGS = C_FLAGS + ["-DSG_USE_MVEC=1"]
    C_LIBS = ["-lmvec"] + C_LIBS
# gcc vectorizes for 256-bit registers by default even where AVX-512 exists; 512-bit loops run
# the exp/tanh-heavy kernels about 1.5-2x faster here (ignored on CPUs without AVX-512).  With
# 512-bit vectors, gcc 12.2's straight-line (basic-block SLP) vectorizer miscompiles two small
# loops inlined together: (x * 2.0)[:, :2] of a 3x3 float64 read one element from the wrong
# place.  Loops still vectorize without it; the generated kernels' loop bodies are unchanged.
if platform.machine() == "x86_64":
    C_FLAGS = C_FLAGS + ["-mprefer-vector-width=512", "-fno-tree-slp-vectorize"]

# Flags for language "cuda": -fPIC/-fopenmp reach the host compiler; explicit gencodes
# (SASS for Ampere and Hopper, plus PTX for compute_90 so newer GPUs can JIT it) rather than
# -arch=native, which needs a GPU at build time and ties the cached file to one card.
# The shared cudart: every step library and every device pointer then belong to one runtime.
CUDA_FLAGS = ["-O3", "-std=c++17", "-Xcompiler", "-fPIC", "-shared", "--cudart=shared",
              "-gencode", "arch=compute_80,code=sm_80",
              "-gencode", "arch=compute_90,code=sm_90",
              "-gencode", "arch=compute_90,code=compute_90"]
CUDA_LIBS: list[str] = []
# Language "cuda-emulate": the same .cu source compiled by the host C++ compiler against
# csrc/symgrad_cuda_emulate.h, which runs blocks and threads on the CPU (tests without a GPU).
# -O1: these builds are many and small, and run at test sizes.
# Hidden visibility: each step library keeps its own copy of the emulator's state.
CUDA_EMULATE_FLAGS = ["-std=c++17", "-O1", "-fPIC", "-shared", "-fvisibility=hidden",
                      "-DSG_CUDA_EMULATE=1", "-x", "c++"]
ASAN_FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]


def cache_dir() -> pathlib.Path:
    """$SYMGRAD_CACHE_DIR, else $XDG_CACHE_HOME/symgrad, else ~/.cache/symgrad (mode 0700:
    these are libraries we will execute, so other users must not be able to plant them)."""
    if os.environ.get("SYMGRAD_CACHE_DIR"):
        d = pathlib.Path(os.environ["SYMGRAD_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        d = pathlib.Path(os.environ["XDG_CACHE_HOME"]) / "symgrad"
    else:
        d = pathlib.Path.home() / ".cache" / "symgrad"
    d = d.expanduser()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise _unusable_cache(d, exc) from None
    return d


def blas_info() -> dict | None:
    """Where scipy_openblas32 lives, or None when it is not installed."""
    try:
        import scipy_openblas32 as ob
    except ImportError:
        return None
    return {"include": ob.get_include_dir(), "libdir": ob.get_lib_dir(),
            "lib": ob.get_library(), "prefix": "scipy_"}


@functools.lru_cache(maxsize=None)  # the package does not move during a process
def _csrc_dir() -> pathlib.Path | None:
    """The runtime headers: package symgrad.csrc when installed, else <repo>/csrc."""
    from .resources import resource_dir
    path = resource_dir("csrc")
    return pathlib.Path(path) if path else None


def _find_compiler(kind: str, variable: str, names: tuple, fallback: str) -> list[str]:
    """The compiler the environment variable names (it may carry arguments, "ccache gcc"; never
    silently replaced), else the first of `names` on the PATH."""
    chosen = os.environ.get(variable, "").strip()
    if chosen:
        argv = shlex.split(chosen)
        exe = shutil.which(argv[0])
        if exe is None:
            raise NoCompilerError(f"{variable}={chosen!r} names a program that was not found. "
                                  f"Fix {variable} or unset it. {fallback}")
        return [exe] + argv[1:]
    for name in names:
        exe = shutil.which(name)
        if exe:
            return [exe]
    raise NoCompilerError(f"No {kind} compiler found ({variable} is unset, and no "
                          f"{', '.join(names)} on PATH). {fallback}")


def _find_c_compiler() -> list[str]:
    return _find_compiler("C", "CC", ("cc", "gcc", "clang"),
                          "Install one (Debian/Ubuntu: `apt-get install gcc`; macOS: "
                          "`xcode-select --install`) or set CC to its path. "
                          'backend="numpy" works without a C compiler.')


def _find_cxx_compiler() -> list[str]:
    return _find_compiler("C++", "CXX", ("c++", "g++", "clang++"),
                          "The CUDA emulation (SYMGRAD_CUDA_EMULATE=1) needs a C++ compiler.")


def _find_nvcc() -> list[str]:
    exe = shutil.which("nvcc")
    if exe is None:
        cand = pathlib.Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / "nvcc"
        exe = str(cand) if os.access(cand, os.X_OK) else None
    if exe is None:
        raise NoCompilerError("nvcc (the CUDA compiler) was not found on PATH or in "
                              "$CUDA_HOME/bin. Install the CUDA toolkit or set CUDA_HOME. "
                              'backend="numpy" still works.')
    return [exe]


_probe_memo: dict[tuple, str] = {}  # (compiler argv, language) -> identity string; once per process


def _compiler_identity(argv: list[str], language: str) -> str:
    k = (tuple(argv), language)
    if k not in _probe_memo:
        _probe_memo[k] = _disk_memo(argv, language)
    return _probe_memo[k]


def cpu_signature(cpuinfo: bytes) -> str:
    """The first CPU of /proc/cpuinfo, less its clock: "cpu MHz" moves with frequency scaling,
    and each new value would probe the compiler again and leave one more file."""
    first = cpuinfo.split(b"\n\n")[0].splitlines()
    return hashlib.sha256(b"\n".join(ln for ln in first
                                     if not ln.startswith(b"cpu MHz"))).hexdigest()


def _disk_memo(argv: list[str], language: str) -> str:
    """Probing runs the compiler two or three times (tens of ms, more on a busy machine), which
    would dominate a warm start in a new process.  Remember the answer on disk, keyed by what
    would change it: the compiler binary (path, size, mtime), its arguments and this CPU."""
    exe = os.path.realpath(argv[0])
    try:
        st = os.stat(exe)
        with open("/proc/cpuinfo", "rb") as f:
            cpu = cpu_signature(f.read())
    except OSError:
        return _probe(argv, language)
    sig = hashlib.sha256(repr((exe, st.st_size, st.st_mtime_ns, argv, language, cpu,
                               platform.machine())).encode()).hexdigest()
    path = cache_dir() / "probes" / f"{sig}.txt"
    try:
        remembered = path.read_text()
        if remembered.strip():
            return remembered
    except (OSError, ValueError):  # missing, or not text (a damaged entry): probe again
        pass
    identity = _probe(argv, language)
    try:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        _write_atomic(path, identity)
    except OSError:
        pass
    return identity


def _probe(argv: list[str], language: str) -> str:
    """Compiler path + `--version` + the target ISA (-march=native resolves per CPU)."""
    def run(*args):
        try:
            r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=60)
            return r.stdout if r.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""
    isa = platform.machine()
    if language == "c":
        # gcc prints what -march=native turns into, including every enabled -m feature;
        # hash it all. Compilers that cannot say (clang) fall back to the CPU's flags.
        target = run("-march=native", "-Q", "--help=target")
        if "-march=" not in target:
            try:
                with open("/proc/cpuinfo") as f:
                    target = "".join(sorted({ln for ln in f
                                             if ln.startswith(("flags", "model name"))}))
            except OSError:
                target = platform.processor()
        isa += ":" + hashlib.sha256(target.encode()).hexdigest()
    return "\0".join([os.path.realpath(argv[0]), *argv[1:], run("--version"), isa])


_headers_memo: dict[tuple, str] = {}


def _headers_digest(csrc: pathlib.Path | None) -> str:
    """The runtime headers are #included, so editing one must change the key. Re-read only when
    a header's size or mtime changed (a stat is much cheaper than hashing on every load)."""
    paths = sorted(csrc.glob("*.h")) if csrc is not None else []
    sig = tuple((p.name, st.st_size, st.st_mtime_ns) for p in paths for st in [p.stat()])
    if sig not in _headers_memo:
        h = hashlib.sha256()
        for p in paths:
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
        _headers_memo[sig] = h.hexdigest()
    return _headers_memo[sig]


@functools.lru_cache(maxsize=256)
def _ffi_for(cdef: str) -> cffi.FFI:
    """Parsing a cdef (pycparser) is the slowest step of a warm load; one FFI per distinct cdef is
    safe to share, since every dlopen returns its own `lib`."""
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    return ffi


def _file_sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomic(path: pathlib.Path, data: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(data)
    os.replace(tmp, path)


class Library:
    """A loaded library: `ffi` (cdef applied), `lib` (dlopen handle), `path`, `key`, `compiled`."""

    def __init__(self, ffi: cffi.FFI, lib, path: str, key: str, compiled: bool):
        self.ffi, self.lib, self.path, self.key, self.compiled = ffi, lib, path, key, compiled

    def __repr__(self):
        return f"Library({self.path!r}, compiled={self.compiled})"


# glibc's dlopen first matches by *name* against libraries already loaded, so after we rebuild a
# path this process has already opened, dlopen(path) would hand back the old mapping, even though
# os.replace gave the new file a new inode (checked: it does). For such paths we open a hard link
# with a unique name (then unlink it; the mapping survives), which glibc must load afresh.
_opened: dict[str, tuple[int, int]] = {}  # path -> (st_dev, st_ino) of the file dlopen'd there


def _dlopen(ffi, so: pathlib.Path):
    """dlopen through cffi (`ffi` with the cdef), or through ctypes when `ffi` is None (no cdef
    to parse: importing cffi's parser is most of a warm start in a new process)."""
    path, st = str(so), os.stat(so)
    ident = (st.st_dev, st.st_ino)
    if _opened.get(path, ident) == ident:  # first open, or the very file already mapped
        lib = ffi.dlopen(path) if ffi is not None else ctypes.CDLL(path)
        _opened[path] = ident
        return lib
    alias = so.with_name(f"{so.stem}.{os.getpid()}.{secrets.token_hex(4)}.load.so")
    try:
        try:
            os.link(so, alias)
        except OSError:  # a filesystem without hard links: a copy is as good
            shutil.copyfile(so, alias)
        return ffi.dlopen(str(alias)) if ffi is not None else ctypes.CDLL(str(alias))
    finally:
        alias.unlink(missing_ok=True)


def _try_load(load, so: pathlib.Path, sidecar: pathlib.Path):
    """The cached library if it is intact and loads; None means (re)build it. A missing sidecar
    counts as corrupt: it is written only after a complete library was renamed into place."""
    try:
        if sidecar.read_text().strip() != _file_sha256(so):
            return None
        return load(so)
    except (OSError, ImportError, ValueError):  # missing or damaged file, or the loader refused it
        return None


def _toolchain(language: str, link_blas: bool):
    """(compiler argv, flags, includes, libs, extension, BLAS library path) for a language."""
    csrc = _csrc_dir()
    includes = [f"-I{csrc}"] if csrc else []
    if language == "c":
        argv, flags, libs, ext = _find_c_compiler(), C_FLAGS, C_LIBS, ".c"
    elif language.startswith("cuda-emulate"):
        argv, flags, libs, ext = _find_cxx_compiler(), CUDA_EMULATE_FLAGS, ["-lm"], ".cu"
        if language == "cuda-emulate-asan":
            flags = flags + ASAN_FLAGS
    else:
        argv, flags, libs, ext = _find_nvcc(), CUDA_FLAGS, CUDA_LIBS, ".cu"
        # the toolkit's libcudart is often not on the loader path: record where it is
        cudalib = pathlib.Path(os.path.realpath(argv[0])).parent.parent / "lib64"
        if cudalib.is_dir():
            libs = [f"-L{cudalib}", "-Xlinker", f"-rpath,{cudalib}"] + libs
    blas_lib = ""
    if link_blas:
        info = blas_info()
        if info is None:
            raise RuntimeError("link_blas=True needs OpenBLAS from scipy-openblas32: "
                               "`pip install scipy-openblas32`")
        includes.append(f"-I{info['include']}")
        rpath = (["-Xlinker", f"-rpath,{info['libdir']}"] if language == "cuda"
                 else [f"-Wl,-rpath,{info['libdir']}"])
        libs = [f"-L{info['libdir']}", f"-l{info['lib']}", *rpath] + libs
        found = sorted(pathlib.Path(info["libdir"]).glob(f"lib{info['lib']}.*"))
        blas_lib = os.path.realpath(found[0] if found else info["libdir"])  # which OpenBLAS we bind
    return argv, flags, includes, libs, ext, blas_lib


LANGUAGES = ("c", "cuda", "cuda-emulate", "cuda-emulate-asan")


def load_library(source: str, cdef: str | None, *, language: str = "c",
                 link_blas: bool = False) -> Library:
    """Compile `source` (or find it in the cache) and dlopen it with `cdef` declared (through
    cffi), or with `cdef=None` through ctypes (`lib` is then a ctypes.CDLL)."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, not {language!r}")
    argv, flags, includes, libs, ext, blas_lib = _toolchain(language, link_blas)
    ffi = _ffi_for(cdef) if cdef is not None else None
    lib, so, key, compiled = _cached_build(
        source, (cdef or "", language, blas_lib), argv, flags + includes, libs, ext, language,
        lambda path: _dlopen(ffi, path))
    return Library(ffi, lib, str(so), key, compiled)


def load_extension(name: str, source: str):
    """Compile a CPython extension module `name` (its C source defines PyInit_<name>) through the
    same cache, and import it."""
    argv, flags, includes, libs, ext, _ = _toolchain("c", False)
    includes = includes + [f"-I{sysconfig.get_paths()['include']}"]

    def load(path):
        if name in sys.modules:
            return sys.modules[name]
        loader = importlib.machinery.ExtensionFileLoader(name, str(path))
        spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
        sys.modules[name] = module
        return module

    module, _, _, _ = _cached_build(source, ("python-extension", name, sys.version),
                                    argv, flags + includes, libs, ext, "c", load)
    return module


def _cached_build(source, key_extra, argv, flags, libs, ext, language, load):
    """The cache protocol: key by content, load without a lock if intact, else take the key's
    lock, look again, compile to a temp file and rename it into place atomically."""
    global compiler_runs
    import symgrad  # here, not at import time: symgrad/__init__ sets __version__ after its imports
    h = hashlib.sha256()
    # include paths stay out of the key (the same package imported from a checkout or from
    # site-packages must hit the same entry): the headers' content is hashed instead
    flags_key = [f for f in flags if not f.startswith("-I")]
    for part in (source, *key_extra, _compiler_identity(argv, language), *flags_key, *libs,
                 _headers_digest(_csrc_dir()), symgrad.__version__):
        h.update(part.encode() + b"\0")  # separator: ("ab","c") and ("a","bc") hash differently
    key = h.hexdigest()

    d = cache_dir() / key[:2]
    so, sidecar, src = d / f"{key}.so", d / f"{key}.sha256", d / f"{key}{ext}"

    lib = _try_load(load, so, sidecar)  # fast path, no lock: files only appear by atomic rename
    if lib is not None:
        return lib, so, key, False

    try:
        d.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(d / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _unusable_cache(d, exc) from None
    _held_lock_fds.add(fd)  # before the wait: a fork during it must not keep the lock either
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        lib = _try_load(load, so, sidecar)  # another process may have built it while we waited
        if lib is not None:
            return lib, so, key, False
        try:
            _compile_into(so, sidecar, src, source, argv, flags, libs, language)
        except OSError as exc:  # e.g. a directory where the entry's file goes
            raise _unusable_cache(so, exc) from None
        return load(so), so, key, True
    finally:
        _held_lock_fds.discard(fd)
        os.close(fd)  # closing releases the flock


# A flock belongs to the open file, which a forked child shares: a child forked while another
# thread compiled would keep the key locked as long as it lives (its own wait for that key
# included).  The child closes its copies; the parent's thread still holds the lock.
_held_lock_fds: set[int] = set()


def _close_inherited_locks():
    for fd in list(_held_lock_fds):
        try:
            os.close(fd)
        except OSError:
            pass
    _held_lock_fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_locks)


def _compile_into(so, sidecar, src, source, argv, flags, libs, language):
    """Compile `source` (kept at `src`) to a temp file, rename it to `so` atomically, then write
    its checksum to `sidecar` (the caller holds the key's lock)."""
    global compiler_runs
    _write_atomic(src, source)
    _sweep_abandoned(so)
    tmp = so.with_name(f"{so.stem}.{os.getpid()}.{secrets.token_hex(4)}.tmp.so")
    cmd = [*argv, *flags, "-o", str(tmp), str(src), *libs]
    try:
        compiler_runs += 1
        r = _run_compiler(cmd)
        if r.returncode != 0 or not tmp.exists():
            lines = (r.stderr or r.stdout).splitlines()
            more = f"\n... ({len(lines) - 40} more lines)" if len(lines) > 40 else ""
            msg = "\n".join(lines[:40]) + more
            raise CompileError(f"{language} compilation failed (exit {r.returncode}).\n"
                               f"command: {shlex.join(cmd)}\nsource kept at: {src}\n{msg}")
        digest = _file_sha256(tmp)
        os.replace(tmp, so)  # atomic: readers see the old file or the whole new one
    finally:
        tmp.unlink(missing_ok=True)  # never leave a partial library behind
    _write_atomic(sidecar, digest + "\n")


def _run_compiler(cmd) -> subprocess.CompletedProcess:
    """The compiler in a process group of its own, killed whole if this call is interrupted
    (Ctrl-C in a notebook): killing the driver alone leaves cc1 running, and its temp files.
    The price: a signal sent to our process group (a terminal's Ctrl-C while another thread
    compiles, a CI job's SIGTERM) no longer reaches gcc, which finishes its one file and
    exits; the temp library it leaves is swept by the next compile of that key."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _sweep_abandoned(so: pathlib.Path):
    """Temp libraries of this key left by a process that was killed while compiling (the
    caller holds the key's lock, so no live process is writing one)."""
    for tmp in so.parent.glob(f"{so.stem}.*.tmp.so"):
        pid = tmp.name[len(so.stem) + 1:].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


# ---------------------------------------------------------------------------- warm starts
# Rendering a step's source (jinja) costs more than loading its library.  A compiled function
# remembers which library its graph built, under a key of the graph and of everything that
# shapes the source, so a new process can load it without rendering.

def codegen_fingerprint() -> str:
    """Hash of the code that writes the source: templates, code generator, runtime headers."""
    return _fingerprint_memo()


@functools.lru_cache(maxsize=None)
def _fingerprint_memo() -> str:
    from .resources import resource_dir
    import symgrad
    h = hashlib.sha256(symgrad.__version__.encode())
    package = pathlib.Path(__file__).resolve().parent
    folders = [pathlib.Path(resource_dir("templates") or package), package / "codegen",
               pathlib.Path(resource_dir("csrc") or package)]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.suffix in (".j2", ".py", ".h", ".c") and path.is_file():
                h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _graph_entry(graph_key: str, library_key: str) -> str:
    """A graphs/ entry: the library's key and a check of the pair, so an entry copied or
    renamed onto another graph's name (which would load a library with other arguments and
    crash the step) reads as a miss."""
    check = hashlib.sha256(f"{graph_key}\0{library_key}".encode()).hexdigest()
    return f"{library_key} {check}\n"


def remembered_library(graph_key: str, cdef: str | None) -> Library | None:
    """The library a graph built before, loaded, if it is still in the cache and intact."""
    try:
        entry = (cache_dir() / "graphs" / graph_key).read_text()
    except (OSError, ValueError):  # missing, or not text: a miss
        return None
    key = entry.split(" ")[0]
    if entry != _graph_entry(graph_key, key):
        return None
    so = cache_dir() / key[:2] / f"{key}.so"
    ffi = _ffi_for(cdef) if cdef is not None else None
    lib = _try_load(lambda path: _dlopen(ffi, path), so, so.with_suffix(".sha256"))
    return Library(ffi, lib, str(so), key, False) if lib is not None else None


def remember_library(graph_key: str, library: Library) -> None:
    try:
        folder = cache_dir() / "graphs"
        folder.mkdir(mode=0o700, exist_ok=True)
        _write_atomic(folder / graph_key, _graph_entry(graph_key, library.key))
    except OSError:
        pass  # only a later warm start is slower


def compiler_identity() -> str:
    return _compiler_identity(_find_c_compiler(), "c")
