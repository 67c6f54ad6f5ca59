"""csrc/symgrad_cuda_emulate.h: CUDA source compiled by g++ and run on the CPU.

Each program below includes only the emulation header, is compiled with g++ into a temporary
directory and run; it prints `key=value` lines that the tests check.  Programs are compiled
once per module and run in both thread orders (SYMGRAD_CUDA_EMULATE_ORDER), so a kernel that
is only right in one order shows up.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(GXX is None, reason="g++ not found")

CSRC = Path(__file__).resolve().parents[1] / "csrc"
ORDERS = ("forward", "reverse")

PRELUDE = r"""
#include "symgrad_cuda_emulate.h"
#define LAUNCH(k, g, b, ...) sg_emu::launch(#k, k, dim3(g), dim3(b), __VA_ARGS__)
#define SHOW(key, ...) std::printf("%s=%lld\n", key, (long long)(__VA_ARGS__))
"""

# The main program: one check per function, all printed.
MAIN = PRELUDE + r"""
__global__ void axpb(const float *x, float *y, int *writes, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        y[i] = 2.0f * x[i] + 1.0f;
        writes[i] += 1;  /* not atomic: each element must be visited by exactly one thread */
    }
}
static void check_elementwise() {
    const int n = 1000;
    float *x, *y; int *writes;
    cudaMalloc(&x, n * sizeof(float)); cudaMalloc(&y, n * sizeof(float));
    cudaMalloc(&writes, n * sizeof(int)); cudaMemset(writes, 0, n * sizeof(int));
    for (int i = 0; i < n; i++) x[i] = (float)i;
    LAUNCH(axpb, 3, 128, x, y, writes, n);
    int bad = cudaGetLastError() != cudaSuccess;
    for (int i = 0; i < n; i++) bad += writes[i] != 1 || y[i] != 2.0f * i + 1.0f;
    SHOW("elementwise_bad", bad);
    cudaFree(x); cudaFree(y); cudaFree(writes);
}

/* one partial sum per block: grid-stride loads, then a shared-memory tree */
__global__ void block_sum(const double *x, long n, double *partials) {
    __shared__ double sh[256];
    double acc = 0;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        acc += x[i];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = sh[0];
}
static void check_block_reduce() {
    const long n = 10007;
    double *x, *partials, serial = 0, total = 0;
    cudaMalloc(&x, n * sizeof(double)); cudaMalloc(&partials, 4 * sizeof(double));
    for (long i = 0; i < n; i++) serial += x[i] = (double)((i * 37) % 101) - 50;
    LAUNCH(block_sum, 4, 256, (const double *)x, n, partials);
    for (int b = 0; b < 4; b++) total += partials[b];
    SHOW("reduce_bad", (total != serial) + (cudaGetLastError() != cudaSuccess));
    SHOW("reduce_total", total);
    cudaFree(x); cudaFree(partials);
}

/* warp shuffles over several types; block 64 = two warps, results per thread */
template <typename T>
__global__ void shuffles(T *down, T *xr, T *bcast, T *scan, T *half) {
    const int t = threadIdx.x, lane = t % 32, warp = t / 32;
    const T v = (T)(lane + 1 + 100 * warp) + (sizeof(T) == 8 ? (T)(1LL << 40) : (T)0);
    T d = v, x = v, s = v, h = v;
    for (int off = 16; off > 0; off /= 2) d += __shfl_down_sync(0xffffffffu, d, off);
    for (int m = 1; m < 32; m *= 2) x += __shfl_xor_sync(0xffffffffu, x, m);
    for (int off = 1; off < 32; off *= 2) {
        const T up = __shfl_up_sync(0xffffffffu, s, off);
        if (lane >= off) s += up;
    }
    for (int off = 8; off > 0; off /= 2) h += __shfl_down_sync(0xffffffffu, h, off, 16);
    down[t] = d; xr[t] = x; scan[t] = s; half[t] = h;
    bcast[t] = __shfl_sync(0xffffffffu, v, 5);
}
template <typename T>
static int check_shuffles_of() {
    T *down, *xr, *bcast, *scan, *half;
    cudaMalloc(&down, 64 * sizeof(T)); cudaMalloc(&xr, 64 * sizeof(T)); cudaMalloc(&bcast, 64 * sizeof(T));
    cudaMalloc(&scan, 64 * sizeof(T)); cudaMalloc(&half, 64 * sizeof(T));
    LAUNCH(shuffles<T>, 1, 64, down, xr, bcast, scan, half);
    int bad = cudaGetLastError() != cudaSuccess;
    const T big = sizeof(T) == 8 ? (T)(1LL << 40) : (T)0;
    for (int w = 0; w < 2; w++) {
        T value[32], total = 0;
        for (int l = 0; l < 32; l++) total += value[l] = (T)(l + 1 + 100 * w) + big;
        bad += down[32 * w] != total;
        T prefix = 0, halves[2] = {0, 0};
        for (int l = 0; l < 32; l++) halves[l / 16] += value[l];
        for (int l = 0; l < 32; l++) {
            prefix += value[l];
            bad += xr[32 * w + l] != total;
            bad += bcast[32 * w + l] != value[5];
            bad += scan[32 * w + l] != prefix;
        }
        bad += half[32 * w] != halves[0] || half[32 * w + 16] != halves[1];
    }
    cudaFree(down); cudaFree(xr); cudaFree(bcast); cudaFree(scan); cudaFree(half);
    return bad;
}
__global__ void votes(unsigned *ballot, int *all, int *any) {
    const int t = threadIdx.x;
    ballot[t] = __ballot_sync(0xffffffffu, t % 3 == 0);
    all[t] = __all_sync(0xffffffffu, t < 32);
    any[t] = __any_sync(0xffffffffu, t == 40);
}
static void check_shuffles() {
    SHOW("shfl_float_bad", check_shuffles_of<float>());
    SHOW("shfl_double_bad", check_shuffles_of<double>());
    SHOW("shfl_int_bad", check_shuffles_of<int>());
    SHOW("shfl_longlong_bad", check_shuffles_of<long long>());
    unsigned *ballot; int *all, *any, bad = 0;
    cudaMalloc(&ballot, 64 * sizeof(unsigned)); cudaMalloc(&all, 64 * sizeof(int)); cudaMalloc(&any, 64 * sizeof(int));
    LAUNCH(votes, 1, 64, ballot, all, any);
    for (int t = 0; t < 64; t++) {
        unsigned want = 0;
        for (int l = 0; l < 32; l++) want |= (unsigned)((32 * (t / 32) + l) % 3 == 0) << l;
        bad += ballot[t] != want || all[t] != (t < 32) || any[t] != (t >= 32);
    }
    SHOW("vote_bad", bad);
    cudaFree(ballot); cudaFree(all); cudaFree(any);
}

/* Each thread reads a neighbour's shared slot; only the barrier makes that well defined.  The
 * salt makes every launch write new values, since __shared__ outlives a launch here.
 * STEP 1: the next thread's slot (wrapping); STEP -1: the previous one's (thread 0 its own). */
template <int STEP>
__host__ __device__ int source(int t) { return STEP > 0 ? (t + STEP) % 128 : t > 0 ? t - 1 : 0; }
template <bool SYNC, int STEP>
__global__ void neighbour(int *out, int salt) {
    __shared__ int sh[128];
    const int t = threadIdx.x;
    sh[t] = salt + t;
    if (SYNC) __syncthreads();
    out[t] = sh[source<STEP>(t)];
}
template <bool SYNC, int STEP>
static int neighbour_bad(int salt) {
    int *out;
    cudaMalloc(&out, 128 * sizeof(int));
    LAUNCH((neighbour<SYNC, STEP>), 1, 128, out, salt);
    int bad = 0;
    for (int t = 0; t < 128; t++) bad += out[t] != salt + source<STEP>(t);
    cudaFree(out);
    return bad;
}
static void check_missing_barrier() {
    SHOW("barrier_next_bad", neighbour_bad<true, 1>(1000));
    SHOW("nobarrier_next_bad", neighbour_bad<false, 1>(2000));
    SHOW("barrier_prev_bad", neighbour_bad<true, -1>(3000));
    SHOW("nobarrier_prev_bad", neighbour_bad<false, -1>(4000));
}

struct Counters { int count; float fsum; double dsum; int winner, cas_wins, max, min; unsigned bits; unsigned long long ucount; };
__global__ void atomics(Counters *c) {
    const int gid = blockIdx.x * blockDim.x + threadIdx.x;
    atomicAdd(&c->count, 1);
    atomicAdd(&c->fsum, 0.5f);
    atomicAdd(&c->dsum, 0.25);
    atomicAdd(&c->ucount, 3ull);
    if (atomicCAS(&c->winner, -1, gid) == -1) atomicAdd(&c->cas_wins, 1);
    atomicMax(&c->max, (gid * 7919) % 1000);
    atomicMin(&c->min, (gid * 7919) % 1000 + 5);
    atomicOr(&c->bits, 1u << (gid % 32));
}
static void check_atomics(bool reverse) {
    Counters *c;
    cudaMalloc(&c, sizeof(Counters));
    *c = Counters{0, 0.0f, 0.0, -1, 0, -1, 1 << 30, 0u, 0ull};
    LAUNCH(atomics, 3, 256, c);
    int want_max = -1, want_min = 1 << 30;
    for (int g = 0; g < 768; g++) {
        want_max = g * 7919 % 1000 > want_max ? g * 7919 % 1000 : want_max;
        want_min = g * 7919 % 1000 + 5 < want_min ? g * 7919 % 1000 + 5 : want_min;
    }
    SHOW("atomic_count", c->count);
    SHOW("atomic_ucount", c->ucount);
    SHOW("atomic_fsum_x2", c->fsum * 2);
    SHOW("atomic_dsum_x4", c->dsum * 4);
    SHOW("atomic_cas_wins", c->cas_wins);
    SHOW("atomic_winner_bad", c->winner != (reverse ? 767 : 0));
    SHOW("atomic_minmax_bad", (c->max != want_max) + (c->min != want_min) + (c->bits != ~0u));
    cudaFree(c);
}

/* every thread of a 3-D grid of 3-D blocks records its coordinates */
__global__ void coords(unsigned *out) {
    const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned *o = out + 10 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
    const unsigned v[10] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y,
                            blockIdx.z, blockDim.y, blockDim.z, gridDim.y, gridDim.z};
    for (int i = 0; i < 10; i++) o[i] = v[i] + 1;
}
static void check_indices() {
    const dim3 grid(2, 3, 2), block(4, 3, 2);
    const int n = 12 * 24;
    unsigned *out;
    cudaMalloc(&out, 10 * n * sizeof(unsigned));
    cudaMemset(out, 0, 10 * n * sizeof(unsigned));
    LAUNCH(coords, grid, block, out);
    int bad = 0, i = 0;
    for (unsigned bz = 0; bz < 2; bz++) for (unsigned by = 0; by < 3; by++) for (unsigned bx = 0; bx < 2; bx++)
    for (unsigned tz = 0; tz < 2; tz++) for (unsigned ty = 0; ty < 3; ty++) for (unsigned tx = 0; tx < 4; tx++, i++) {
        const unsigned want[10] = {tx, ty, tz, bx, by, bz, 3, 2, 3, 2};
        for (int k = 0; k < 10; k++) bad += out[10 * i + k] != want[k] + 1;
    }
    SHOW("index_bad", bad);
    cudaFree(out);
}

__global__ void increment(unsigned char *p, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) p[i]++;
}
static void check_memory() {
    const int n = 1000;
    unsigned char host[n], back[n], *dev = nullptr, *empty = nullptr;
    for (int i = 0; i < n; i++) host[i] = (unsigned char)(i * 7);
    int bad = cudaMalloc(&dev, n) != cudaSuccess || (uintptr_t)dev % 256 != 0;
    bad += cudaMalloc(&empty, 0) != cudaSuccess;
    bad += cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice) != cudaSuccess;
    bad += cudaMemset(dev + 100, 0xAB, 50) != cudaSuccess;
    LAUNCH(increment, 2, 256, dev, n);
    bad += cudaMemcpy(back, dev, n, cudaMemcpyDeviceToHost) != cudaSuccess;
    for (int i = 0; i < n; i++) bad += back[i] != (unsigned char)((i >= 100 && i < 150 ? 0xAB : i * 7) + 1);
    bad += cudaMemcpy(back, dev, n, (cudaMemcpyKind)7) != cudaErrorInvalidMemcpyDirection;
    bad += cudaFree(dev) != cudaSuccess || cudaFree(empty) != cudaSuccess || cudaFree(nullptr) != cudaSuccess;
    int count = 0, device = -1;
    cudaDeviceProp prop;
    bad += cudaGetDeviceCount(&count) != cudaSuccess || count != 1;
    bad += cudaSetDevice(0) != cudaSuccess || cudaGetDevice(&device) != cudaSuccess || device != 0;
    bad += cudaGetDeviceProperties(&prop, 0) != cudaSuccess || std::strstr(prop.name, "emulation") == nullptr;
    bad += prop.warpSize != 32 || prop.maxThreadsPerBlock != 1024 || prop.sharedMemPerBlock != 48 * 1024;
    bad += prop.major != 9 || prop.multiProcessorCount < 1;
    bad += cudaGetLastError() != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess;
    SHOW("memory_bad", bad);
}

/* float math keeps float overloads, as in device code */
static_assert(std::is_same<decltype(exp(1.0f)), float>::value, "exp(float) is float");
static_assert(std::is_same<decltype(log1p(1.0f)), float>::value, "log1p(float) is float");
static_assert(std::is_same<decltype(fmax(1.0f, 2.0f)), float>::value, "fmax(float) is float");

int main() {
    check_elementwise();
    check_block_reduce();
    check_shuffles();
    check_missing_barrier();
    const char *order = std::getenv("SYMGRAD_CUDA_EMULATE_ORDER");
    check_atomics(order && std::strcmp(order, "reverse") == 0);
    check_indices();
    check_memory();
    SHOW("isfinite_nan", isfinite(NAN) || isfinite(INFINITY) || !isfinite(1.0f));
    return 0;
}
"""

# Launches that must fail cleanly, and launches after them that must still work.
ERRORS = PRELUDE + r"""
__global__ void set_flag(int *flag) { *flag = 1; }
__global__ void count(int *flag) { atomicAdd(flag, 1); }

/* Thread 0 waits at __syncthreads for the rest of the block, which waits at a __syncwarp that
 * needs thread 0: nothing can move. */
__global__ void deadlock(int *flag) {
    if (threadIdx.x == 0) __syncthreads();
    else __syncwarp();
    atomicAdd(flag, 1);
}

/* lanes that have returned count as arrived at a warp barrier, as on a GPU */
__global__ void early_exit(int *out) {
    const int lane = threadIdx.x % 32;
    if (lane >= 16) return;
    int v = lane + 1;
    for (int off = 8; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    __syncthreads();
    if (lane == 0) out[threadIdx.x / 32] = v;
}

__global__ void partial_mask(int *out) {
    /* two half-warps, each shuffling among its own 16 lanes with its own mask */
    const int lane = threadIdx.x % 32;
    const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
    int v = lane;
    for (int off = 8; off > 0; off /= 2) v += __shfl_down_sync(mask, v, off, 16);
    out[threadIdx.x] = v;
}

/* writes one element past the end: AddressSanitizer must still see it inside a fiber */
__global__ void overrun(float *x, int n) {
    x[threadIdx.x] = 1.0f;
    __syncthreads();
    if (threadIdx.x == 0) x[n] = 2.0f;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "overrun") == 0) {
        float *x;
        cudaMalloc(&x, 64 * sizeof(float));
        LAUNCH(overrun, 1, 64, x, 64);
        return 0;
    }
    int *flag;
    cudaMalloc(&flag, sizeof(int));
    *flag = 0;
    LAUNCH(set_flag, 1, 2048, flag);
    SHOW("big_block_error", cudaGetLastError());
    SHOW("error_cleared", cudaGetLastError());
    LAUNCH(set_flag, 0, 32, flag);
    SHOW("zero_grid_error", cudaGetLastError());
    LAUNCH(set_flag, dim3(1, 70000), 32, flag);
    SHOW("tall_grid_error", cudaGetLastError());
    LAUNCH(set_flag, 1, dim3(1, 1, 65), flag);
    SHOW("deep_block_error", cudaGetLastError());
    SHOW("ran_anyway", *flag);
    SHOW("sync_after_config_error", cudaDeviceSynchronize());

    LAUNCH(deadlock, 3, 64, flag);
    SHOW("deadlock_peek", cudaPeekAtLastError());
    SHOW("deadlock_error", cudaGetLastError());
    SHOW("deadlock_sync", cudaDeviceSynchronize());
    SHOW("deadlock_sync_again", cudaDeviceSynchronize());
    SHOW("deadlock_flag", *flag);  /* warp 1 of block 0 finished; later blocks never ran */
    std::printf("error_string=%s\n", cudaGetErrorString(cudaErrorLaunchFailure));
    std::printf("error_name=%s\n", cudaGetErrorName(cudaErrorInvalidConfiguration));

    int out[64] = {0};
    LAUNCH(early_exit, 1, 64, out);
    SHOW("early_exit_error", cudaGetLastError());
    SHOW("early_exit_sum", out[0] + out[1]);  /* 2 * (1 + ... + 16) */
    LAUNCH(partial_mask, 1, 64, out);
    int bad = cudaGetLastError() != cudaSuccess;
    for (int w = 0; w < 2; w++) for (int h = 0; h < 2; h++) bad += out[32 * w + 16 * h] != 16 * h * 16 + 120;
    SHOW("partial_mask_bad", bad);
    /* the fibers abandoned by the deadlock are rebuilt: the emulation still works */
    *flag = 0;
    LAUNCH(count, 2, 64, flag);
    SHOW("after_deadlock", *flag + 10 * cudaGetLastError());
    cudaFree(flag);
    return 0;
}
"""


def _compile(directory: Path, name: str, sources: dict[str, str], flags=()) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for filename, text in sources.items():
        (directory / filename).write_text(text)
        paths.append(str(directory / filename))
    out = directory / name
    cmd = [GXX, "-std=c++17", "-O1", "-Wall", "-Wno-unused-function", f"-I{CSRC}", *flags,
           "-x", "c++", *paths, "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{proc.stderr}")
    return out


def _run(exe: Path, order: str | None = None, env_extra=None, check=True, args=()):
    env = dict(os.environ)
    env.pop("SYMGRAD_CUDA_EMULATE_ORDER", None)
    if order is not None:
        env["SYMGRAD_CUDA_EMULATE_ORDER"] = order
    env.update(env_extra or {})
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return values, proc


@pytest.fixture(scope="module")
def main_results(tmp_path_factory):
    exe = _compile(tmp_path_factory.mktemp("main"), "main", {"main.cu": MAIN})
    return {order: _run(exe, order)[0] for order in ORDERS}


@pytest.fixture(scope="module")
def error_results(tmp_path_factory):
    exe = _compile(tmp_path_factory.mktemp("errors"), "errors", {"errors.cu": ERRORS})
    return {order: _run(exe, order) for order in ORDERS}


@pytest.mark.parametrize("order", ORDERS)
def test_elementwise_grid_stride(main_results, order):
    assert main_results[order]["elementwise_bad"] == "0"


@pytest.mark.parametrize("order", ORDERS)
def test_block_reduction_shared_memory(main_results, order):
    r = main_results[order]
    assert r["reduce_bad"] == "0"
    assert int(r["reduce_total"]) != 0


@pytest.mark.parametrize("order", ORDERS)
def test_warp_shuffles(main_results, order):
    r = main_results[order]
    for t in ("float", "double", "int", "longlong"):
        assert r[f"shfl_{t}_bad"] == "0", t
    assert r["vote_bad"] == "0"


def test_missing_barrier_detected_by_some_order(main_results):
    for order in ORDERS:
        assert main_results[order]["barrier_next_bad"] == "0"
        assert main_results[order]["barrier_prev_bad"] == "0"
    assert any(main_results[o]["nobarrier_next_bad"] != "0" for o in ORDERS)
    # reading the previous thread's slot happens to work forward; only reverse exposes it
    assert main_results["forward"]["nobarrier_prev_bad"] == "0"
    assert main_results["reverse"]["nobarrier_prev_bad"] != "0"


@pytest.mark.parametrize("order", ORDERS)
def test_atomics(main_results, order):
    r = main_results[order]
    assert r["atomic_count"] == "768"
    assert r["atomic_ucount"] == str(3 * 768)
    assert r["atomic_fsum_x2"] == "768"
    assert r["atomic_dsum_x4"] == "768"
    assert r["atomic_cas_wins"] == "1"
    assert r["atomic_winner_bad"] == "0"
    assert r["atomic_minmax_bad"] == "0"


@pytest.mark.parametrize("order", ORDERS)
def test_3d_indices(main_results, order):
    assert main_results[order]["index_bad"] == "0"


def test_memory_and_device_queries(main_results):
    assert main_results["forward"]["memory_bad"] == "0"
    assert main_results["forward"]["isfinite_nan"] == "0"


def test_invalid_configuration(error_results):
    r, _ = error_results["forward"]
    assert r["big_block_error"] == "9"  # cudaErrorInvalidConfiguration
    assert r["error_cleared"] == "0"
    assert r["zero_grid_error"] == "9"
    assert r["tall_grid_error"] == "9"
    assert r["deep_block_error"] == "9"
    assert r["ran_anyway"] == "0"
    assert r["sync_after_config_error"] == "0"  # configuration errors are not asynchronous
    assert r["error_name"] == "cudaErrorInvalidConfiguration"


@pytest.mark.parametrize("order", ORDERS)
def test_deadlock_reported_not_hung(error_results, order):
    r, proc = error_results[order]
    assert r["deadlock_peek"] == "719"  # cudaErrorLaunchFailure
    assert r["deadlock_error"] == "719"
    assert r["deadlock_sync"] == "719"
    assert r["deadlock_sync_again"] == "0"
    assert r["deadlock_flag"] == "32"
    assert "deadlock in kernel deadlock" in proc.stderr
    assert proc.stderr.count("deadlock in kernel") == 1
    assert "launch failure" in r["error_string"]
    assert r["after_deadlock"] == "128"


@pytest.mark.parametrize("order", ORDERS)
def test_exited_lanes_and_partial_masks(error_results, order):
    r, _ = error_results[order]
    assert r["early_exit_error"] == "0"
    assert r["early_exit_sum"] == str(2 * 136)
    assert r["partial_mask_bad"] == "0"


def test_ucontext_fallback(tmp_path):
    """The portable context switch (used off x86_64) gives the same answers."""
    exe = _compile(tmp_path, "main_uc", {"main.cu": MAIN}, ["-DSG_EMU_USE_UCONTEXT"])
    for order in ORDERS:
        r, _ = _run(exe, order)
        bad = {k: v for k, v in r.items() if k.endswith("_bad") and v != "0" and "nobarrier" not in k}
        assert not bad, (order, bad)


def test_two_translation_units_in_a_shared_library(tmp_path):
    """Header-only definitions link once (no duplicate symbols) and run inside Python."""
    unit = PRELUDE + r"""
__global__ void UNIT_kernel(float *x, int n) {
    __shared__ float sh[64];
    float v = threadIdx.x < (unsigned)n ? x[threadIdx.x] : 0.0f;
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) x[0] = sh[0] + sh[1];
}
extern "C" int UNIT_sum(float *x, int n) {
    LAUNCH(UNIT_kernel, 1, 64, x, n);
    return (int)cudaGetLastError();
}
"""
    sources = {"a.cu": unit.replace("UNIT", "a"), "b.cu": unit.replace("UNIT", "b")}
    lib = _compile(tmp_path, "libtwo.so", sources, ["-fPIC", "-shared"])
    dll = ctypes.CDLL(str(lib))
    for fn in (dll.a_sum, dll.b_sum, dll.a_sum):
        buf = (ctypes.c_float * 64)(*range(64))
        assert fn(buf, 64) == 0
        assert buf[0] == sum(range(64))
    # the scheduler is private to the library (another one may use another header version)
    for symbol in ("_ZN6sg_emu6detail5schedE", "threadIdx", "sg_emu_switch_v1"):
        assert not hasattr(dll, symbol), symbol


def test_address_sanitizer(tmp_path):
    """The fiber switches are annotated: ASan runs the kernels, a deadlock included, without
    false reports."""
    flags = ["-fsanitize=address", "-fno-omit-frame-pointer"]
    env = {"ASAN_OPTIONS": "detect_leaks=0"}
    try:  # ASan itself must work here (libasan installed, its shadow memory mappable)
        probe = _compile(tmp_path, "probe", {"probe.cc": "int main() { return 0; }"}, flags)
        _run(probe, None, env)
    except (RuntimeError, AssertionError) as exc:
        pytest.skip(f"AddressSanitizer unusable here: {exc}")
    main = _compile(tmp_path, "main_asan", {"main.cu": MAIN}, flags)
    errors = _compile(tmp_path, "errors_asan", {"errors.cu": ERRORS}, flags)
    serial = sum((i * 37) % 101 - 50 for i in range(10007))
    for order in ORDERS:
        r, proc = _run(main, order, env)
        assert "AddressSanitizer" not in proc.stderr
        bad = {k: v for k, v in r.items() if k.endswith("_bad") and v != "0" and "nobarrier" not in k}
        assert not bad, (order, bad)
        assert r["reduce_total"] == str(serial)
        r, proc = _run(errors, order, env)
        assert "AddressSanitizer" not in proc.stderr
        assert r["deadlock_error"] == "719" and r["after_deadlock"] == "128"
    # ...while a real overrun in a kernel is still caught, with the kernel in the trace
    _, proc = _run(errors, None, env, check=False, args=["overrun"])
    assert proc.returncode != 0
    assert "heap-buffer-overflow" in proc.stderr and "overrun" in proc.stderr
