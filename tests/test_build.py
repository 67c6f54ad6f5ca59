"""symgrad.build: compile C/CUDA source, cache the library on disk, load it with cffi."""
from __future__ import annotations

import math
import os
import pathlib
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from symgrad import build

pytestmark = pytest.mark.skipif(
    not (os.environ.get("CC") or any(shutil.which(c) for c in ("cc", "gcc", "clang"))),
    reason="no C compiler")

ADD1_SRC = "int add1(int x) { return x + 1; }\n"
ADD1_CDEF = "int add1(int x);"

OMP_SRC = r"""
#include <omp.h>
int add1(int x) { return x + 1; }
void axpb(float *x, long n, float a, float b) {
    #pragma omp parallel for
    for (long i = 0; i < n; i++) x[i] = a * x[i] + b;
}
int max_threads(void) { return omp_get_max_threads(); }
"""
OMP_CDEF = """
int add1(int x);
void axpb(float *x, long n, float a, float b);
int max_threads(void);
"""

SGEMM_PROTO = ("void scipy_cblas_sgemm(int order, int transA, int transB, int M, int N, int K, "
               "float alpha, const float *A, int lda, const float *B, int ldb, float beta, "
               "float *C, int ldc);")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets an empty cache of its own."""
    d = tmp_path / "cache"
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(d))
    return d


def files_for(cache, key):
    return sorted(p.name for p in cache.rglob(f"{key}*"))


def leftovers(cache):
    """Temp files (compile outputs, atomic-write temps, load aliases) that must never remain."""
    return [p for p in cache.rglob("*") if ".tmp" in p.name or ".load." in p.name]


def run_child(code, cache, *args):
    env = dict(os.environ, SYMGRAD_CACHE_DIR=str(cache))
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


CHILD_LOAD = """
import sys
from symgrad import build
lib = build.load_library(sys.argv[1], sys.argv[2])
print(lib.compiled, lib.lib.add1(41), build.compiler_runs, lib.key)
"""


def test_compile_and_call(cache):
    runs = build.compiler_runs
    L = build.load_library(OMP_SRC, OMP_CDEF)
    assert L.compiled and build.compiler_runs == runs + 1
    assert L.lib.add1(41) == 42
    x = np.arange(10_000, dtype=np.float32)
    L.lib.axpb(L.ffi.from_buffer("float[]", x), x.size, 2.0, 0.5)
    np.testing.assert_array_equal(x, 2 * np.arange(10_000, dtype=np.float32) + 0.5)
    assert L.lib.max_threads() >= 1
    # the library sits at <cache>/<key[:2]>/<key>.so, with its source and checksum beside it
    so = pathlib.Path(L.path)
    assert so == cache / L.key[:2] / f"{L.key}.so" and so.is_file()
    assert so.with_suffix(".c").read_text() == OMP_SRC
    assert so.with_suffix(".sha256").read_text().strip() == build._file_sha256(so)
    assert not leftovers(cache)


def test_cache_dir_precedence_and_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path / "a"))
    assert build.cache_dir() == tmp_path / "a"
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    monkeypatch.delenv("SYMGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_dir() == tmp_path / "xdg" / "symgrad"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert build.cache_dir() == tmp_path / "home" / ".cache" / "symgrad"


def test_an_unusable_cache_directory_is_named_in_the_error(tmp_path, monkeypatch):
    not_a_directory = tmp_path / "a file"
    not_a_directory.write_text("")
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(not_a_directory))
    with pytest.raises(build.CacheError, match="compile cache .*a file.* is not usable .*"
                                               "SYMGRAD_CACHE_DIR"):
        build.load_library("int f(void) { return 1; }", "int f(void);")
    # the key's folder cannot be made inside a file either
    monkeypatch.setattr(build, "cache_dir", lambda: not_a_directory)
    with pytest.raises(build.CacheError, match="is not usable"):
        build.load_library("int g(void) { return 2; }", "int g(void);")


def test_no_fast_math_nan_and_inf_semantics():
    assert "-ffast-math" not in build.C_FLAGS
    src = r"""
    #include <math.h>
    int is_nan(double x) { return isnan(x); }
    int self_ne(double x) { return x != x; }
    double fmax_of(double a, double b) { return fmax(a, b); }
    double inv(double x) { return 1.0 / x; }
    """
    L = build.load_library(src, "int is_nan(double); int self_ne(double); "
                                "double fmax_of(double, double); double inv(double);")
    assert L.lib.is_nan(math.nan) and L.lib.self_ne(math.nan)
    assert not L.lib.is_nan(1.0)
    assert L.lib.fmax_of(math.nan, 2.0) == 2.0
    assert L.lib.inv(0.0) == math.inf


def test_cache_hit_in_process_and_in_new_process(cache):
    first = build.load_library(ADD1_SRC, ADD1_CDEF)
    assert first.compiled
    runs = build.compiler_runs
    again = build.load_library(ADD1_SRC, ADD1_CDEF)
    assert not again.compiled and build.compiler_runs == runs
    assert (again.key, again.path) == (first.key, first.path)
    assert again.lib.add1(1) == 2
    # a fresh interpreter finds the same key and loads without running the compiler
    out = run_child(CHILD_LOAD, cache, ADD1_SRC, ADD1_CDEF).split()
    assert out == ["False", "42", "0", first.key]


def test_the_compiler_probe_key_ignores_the_cpu_clock():
    first = b"processor\t: 0\nmodel name\t: Xeon\ncpu MHz\t\t: 2100.000\nflags\t\t: avx512f\n"
    clocked = first.replace(b"2100.000", b"3400.117")
    other = first.replace(b"avx512f", b"avx2")
    assert build.cpu_signature(first + b"\n" + b"processor\t: 1\n") == build.cpu_signature(clocked)
    assert build.cpu_signature(first) != build.cpu_signature(other)


def test_key_depends_on_cdef_and_blas():
    a = build.load_library(ADD1_SRC, ADD1_CDEF)
    b = build.load_library(ADD1_SRC, "int add1(int);")  # same declaration, other text
    assert a.key != b.key and b.compiled
    if build.blas_info() is not None:
        c = build.load_library(ADD1_SRC, ADD1_CDEF, link_blas=True)
        assert c.key not in (a.key, b.key)


def test_concurrent_processes_compile_once(cache):
    # a source that takes a moment to compile, so that the four processes really overlap
    src = ADD1_SRC + "".join(
        f"double k{i}(double *x, int n) {{ double s = 0; for (int j = 0; j < n; j++) "
        f"s += x[j] * {i}.5 / (1 + x[j]); return s; }}\n" for i in range(200))
    procs = [subprocess.Popen([sys.executable, "-c", CHILD_LOAD, src, ADD1_CDEF],
                              env=dict(os.environ, SYMGRAD_CACHE_DIR=str(cache)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs.append(out.split())
    assert all(o[1] == "42" for o in outs)
    keys = {o[3] for o in outs}
    assert len(keys) == 1
    # the lock and the re-check after taking it: exactly one process ran the compiler
    assert sorted(o[0] for o in outs) == ["False", "False", "False", "True"]
    (key,) = keys
    assert files_for(cache, key) == [f"{key}.c", f"{key}.lock", f"{key}.sha256", f"{key}.so"]
    assert len(list(cache.rglob("*.so"))) == 1 and not leftovers(cache)


def test_concurrent_threads_compile_once(cache):
    runs = build.compiler_runs
    results, errors = [], []

    def work():
        try:
            results.append(build.load_library(ADD1_SRC, ADD1_CDEF))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert build.compiler_runs == runs + 1
    assert sum(L.compiled for L in results) == 1
    assert all(L.lib.add1(2) == 3 for L in results)


def test_corrupt_library_replaced_on_disk_is_rebuilt(cache):
    L = build.load_library(ADD1_SRC, ADD1_CDEF)
    so = pathlib.Path(L.path)
    # a half-written copy put in place (a new inode: this process still maps the old file safely)
    bad = so.with_name("bad")
    bad.write_bytes(so.read_bytes()[:1000])
    os.replace(bad, so)
    runs = build.compiler_runs
    R = build.load_library(ADD1_SRC, ADD1_CDEF)
    assert R.compiled and build.compiler_runs == runs + 1
    assert R.lib.add1(9) == 10
    assert so.with_suffix(".sha256").read_text().strip() == build._file_sha256(so)
    assert not build.load_library(ADD1_SRC, ADD1_CDEF).compiled
    assert not leftovers(cache)


def test_truncated_in_place_is_rebuilt(cache):
    # built by another process, so this one never mapped the file we truncate in place
    key = run_child(CHILD_LOAD, cache, ADD1_SRC, ADD1_CDEF).split()[3]
    so = cache / key[:2] / f"{key}.so"
    with open(so, "r+b") as f:
        f.truncate(so.stat().st_size // 2)
    R = build.load_library(ADD1_SRC, ADD1_CDEF)
    assert R.compiled and R.lib.add1(1) == 2


def test_missing_sidecar_is_rebuilt(cache):
    key = run_child(CHILD_LOAD, cache, ADD1_SRC, ADD1_CDEF).split()[3]
    (cache / key[:2] / f"{key}.sha256").unlink()
    R = build.load_library(ADD1_SRC, ADD1_CDEF)
    assert R.compiled and R.lib.add1(1) == 2
    assert (cache / key[:2] / f"{key}.sha256").is_file()


def test_unloadable_library_with_matching_checksum_is_rebuilt(cache):
    key = run_child(CHILD_LOAD, cache, ADD1_SRC, ADD1_CDEF).split()[3]
    so = cache / key[:2] / f"{key}.so"
    so.write_bytes(b"\x7fELF this is not a shared object" * 10)
    so.with_suffix(".sha256").write_text(build._file_sha256(so))
    R = build.load_library(ADD1_SRC, ADD1_CDEF)
    assert R.compiled and R.lib.add1(1) == 2


def test_reopen_after_replace_is_not_the_stale_handle(tmp_path):
    """glibc's dlopen matches an already-loaded library by name, so a rebuilt file at the same
    path would come back as the old mapping; build._dlopen must load the new file."""
    ffi = build._ffi_for("int which(void);")
    libs = [build.load_library(f"int which(void) {{ return {i}; }}", "int which(void);")
            for i in (1, 2)]
    target = tmp_path / "x.so"
    shutil.copyfile(libs[0].path, target)
    assert build._dlopen(ffi, target).which() == 1
    shutil.copyfile(libs[1].path, tmp_path / "y.so")
    os.replace(tmp_path / "y.so", target)
    assert build._dlopen(ffi, target).which() == 2
    assert build._dlopen(ffi, target).which() == 2
    assert not list(tmp_path.glob("*.load.*"))


def test_compile_error_keeps_source_and_leaves_nothing_partial(cache):
    src = "int broken(int x) { return x + undeclared_thing; }\n"
    runs = build.compiler_runs
    with pytest.raises(build.CompileError) as info:
        build.load_library(src, "int broken(int x);")
    msg = str(info.value)
    assert "undeclared_thing" in msg and "error" in msg
    assert build.compiler_runs == runs + 1
    kept = [p for p in cache.rglob("*.c")]
    assert len(kept) == 1 and str(kept[0]) in msg and kept[0].read_text() == src
    assert not list(cache.rglob("*.so")) and not list(cache.rglob("*.sha256"))
    assert not leftovers(cache)


def test_compile_error_message_is_trimmed():
    src = "".join(f"int f{i}(void) {{ return nope{i}; }}\n" for i in range(100))
    with pytest.raises(build.CompileError) as info:
        build.load_library(src, "int f0(void);")
    assert len(str(info.value).splitlines()) < 50 and "more lines" in str(info.value)


def test_no_compiler(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    with pytest.raises(build.NoCompilerError, match="no-such-cc") as info:
        build.load_library(ADD1_SRC, ADD1_CDEF)
    assert 'backend="numpy"' in str(info.value)
    monkeypatch.delenv("CC")
    with pytest.raises(build.NoCompilerError) as info:
        build.load_library(ADD1_SRC, ADD1_CDEF)
    msg = str(info.value)
    assert "apt-get install gcc" in msg and "xcode-select --install" in msg and "CC" in msg
    assert 'backend="numpy"' in msg
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    with pytest.raises(build.NoCompilerError, match="nvcc"):
        build.load_library('extern "C" int f(int x) { return x; }', "int f(int);",
                           language="cuda")


def test_bad_language():
    with pytest.raises(ValueError, match="language"):
        build.load_library(ADD1_SRC, ADD1_CDEF, language="fortran")


def test_link_blas_without_openblas(monkeypatch):
    monkeypatch.setattr(build, "blas_info", lambda: None)
    with pytest.raises(RuntimeError, match="pip install scipy-openblas32"):
        build.load_library(ADD1_SRC, ADD1_CDEF, link_blas=True)


@pytest.mark.skipif(build.blas_info() is None, reason="scipy-openblas32 not installed")
def test_link_blas_sgemm():
    info = build.blas_info()
    assert info["lib"] == "scipy_openblas" and info["prefix"] == "scipy_"
    assert os.path.isdir(info["include"]) and os.path.isdir(info["libdir"])
    src = SGEMM_PROTO + r"""
    /* C = A @ B for row-major A (m x k), B (k x n), through OpenBLAS */
    void matmul(const float *A, const float *B, float *C, int m, int k, int n) {
        scipy_cblas_sgemm(101, 111, 111, m, n, k, 1.0f, A, k, B, n, 0.0f, C, n);
    }
    """
    cdef = SGEMM_PROTO + "void matmul(const float *, const float *, float *, int, int, int);"
    L = build.load_library(src, cdef, link_blas=True)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 3)).astype(np.float32)
    B = rng.standard_normal((3, 4)).astype(np.float32)
    C = np.zeros((5, 4), np.float32)
    fb = L.ffi.from_buffer
    L.lib.matmul(fb("float[]", A), fb("float[]", B), fb("float[]", C), 5, 3, 4)
    np.testing.assert_allclose(C, A @ B, rtol=1e-5, atol=1e-5)
    # direct call through the handle (dlsym searches the library's dependencies), B transposed,
    # alpha/beta in play
    Bt = np.ascontiguousarray(B.T)  # (4, 3)
    C2 = np.ones((5, 4), np.float32)
    L.lib.scipy_cblas_sgemm(101, 111, 112, 5, 4, 3, 2.0, fb("float[]", A), 3,
                            fb("float[]", Bt), 3, 0.5, fb("float[]", C2), 4)
    np.testing.assert_allclose(C2, 2 * A @ B + 0.5, rtol=1e-5, atol=1e-5)


def _nvcc():
    home = os.environ.get("CUDA_HOME", "/usr/local/cuda")
    return shutil.which("nvcc") or (os.access(f"{home}/bin/nvcc", os.X_OK) or None)


@pytest.mark.slow
@pytest.mark.skipif(not _nvcc(), reason="nvcc not found")
def test_cuda_trivial_compiles_and_loads(cache):
    src = 'extern "C" int f(int x) { return x + 1; }\n'
    L = build.load_library(src, "int f(int x);", language="cuda")
    assert L.compiled and L.lib.f(41) == 42  # host code: no GPU needed
    assert pathlib.Path(L.path).with_suffix(".cu").read_text() == src
    assert not build.load_library(src, "int f(int x);", language="cuda").compiled
    with pytest.raises(build.CompileError, match="nope"):
        build.load_library('extern "C" int g(void) { return nope; }', "int g(void);",
                           language="cuda")
    assert not leftovers(cache)
