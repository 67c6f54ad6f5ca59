/* symgrad_cuda_emulate.h: run CUDA source on the CPU, compiled by g++ (C++17) instead of nvcc.
 *
 * Model.  A launch runs its blocks one after another on the calling OS thread.  Each thread of
 * a block is a fiber (its own stack); a scheduler in the launching thread visits the fibers
 * round robin, and each runs until it finishes or waits at a barrier (__syncthreads, or a warp
 * barrier: __syncwarp and the two inside every __shfl_*).  A barrier opens when all unfinished
 * threads of its scope wait at it; when nothing can run and no barrier can open, that is a
 * deadlock: it is reported on stderr and as cudaErrorLaunchFailure, never as a hang.
 * __shared__ is `static thread_local`: one OS thread runs one block at a time, so exactly the
 * threads of a block share it.
 *
 * Nothing runs in parallel, so races cannot corrupt memory; instead SYMGRAD_CUDA_EMULATE_ORDER
 * (read at each launch) chooses the visiting order, `forward` (thread 0 first, the default) or
 * `reverse` (the last thread and the last block first).  A missing barrier makes a thread read
 * what another has or has not yet written depending on that order, so running tests in both
 * orders exposes it.
 *
 * Context switches use a few lines of x86_64 assembly (swapcontext makes a signal-mask syscall
 * per switch, and a reduction kernel switches several times per thread); elsewhere, or with
 * -DSG_EMU_USE_UCONTEXT, ucontext.  Under AddressSanitizer the switches are annotated.
 *
 * Everything here has hidden visibility: each shared library that includes this header has its
 * own scheduler, stacks and error state, so libraries built against different versions of it
 * can be loaded into one process. */
#ifndef SYMGRAD_CUDA_EMULATE_H
#define SYMGRAD_CUDA_EMULATE_H

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SG_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_EMU_ASAN 1
#endif
#endif
#ifdef SG_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && !defined(SG_EMU_USE_UCONTEXT)
#define SG_EMU_ASM_SWITCH 1
#else
#include <ucontext.h>
#endif

#ifndef SG_EMU_STACK_SIZE
#ifdef SG_EMU_ASAN
#define SG_EMU_STACK_SIZE (1u << 20)  /* ASan's redzones make frames several times larger */
#else
#define SG_EMU_STACK_SIZE (256u << 10)
#endif
#endif

#pragma GCC visibility push(hidden)

/* ---- qualifiers ---- */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

/* ---- built-in types and variables ---- */
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};
inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;
inline constexpr int warpSize = 32;

/* ---- math: float arguments keep float overloads, as in device code ---- */
using std::exp; using std::exp2; using std::log; using std::log2; using std::log10;
using std::log1p; using std::expm1; using std::sqrt; using std::cbrt; using std::pow;
using std::sin; using std::cos; using std::tan; using std::asin; using std::acos; using std::atan;
using std::atan2; using std::sinh; using std::cosh; using std::tanh; using std::erf;
using std::erfc; using std::fabs; using std::floor; using std::ceil; using std::round;
using std::trunc; using std::fmax; using std::fmin; using std::fmod; using std::fma;
using std::copysign; using std::isfinite; using std::isnan; using std::isinf; using std::signbit;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline long long __double_as_longlong(double d) { long long i; std::memcpy(&i, &d, 8); return i; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T> inline T __ldg(const T *p) { return *p; }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __trap() { std::abort(); }

/* ---- CUDA runtime types (numeric values are CUDA's) ---- */
#define SG_EMU_ERRORS(X)                                                              \
    X(cudaSuccess, 0, "no error")                                                     \
    X(cudaErrorInvalidValue, 1, "invalid argument")                                   \
    X(cudaErrorMemoryAllocation, 2, "out of memory")                                  \
    X(cudaErrorInvalidConfiguration, 9, "invalid configuration argument")             \
    X(cudaErrorInvalidMemcpyDirection, 21, "invalid copy direction for memcpy")       \
    X(cudaErrorNoDevice, 100, "no CUDA-capable device is detected")                   \
    X(cudaErrorInvalidDevice, 101, "invalid device ordinal")                          \
    X(cudaErrorLaunchFailure, 719, "unspecified launch failure (emulated: see stderr)")
#define SG_EMU_ENUM(name, value, text) name = value,
enum cudaError_t { SG_EMU_ERRORS(SG_EMU_ENUM) };
#undef SG_EMU_ENUM
typedef cudaError_t cudaError;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0, cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3, cudaMemcpyDefault = 4,
};

#ifdef SG_EMU_ASM_SWITCH
/* sg_emu_switch_v1(save, load): push the callee-saved registers (SysV ABI: rbp, rbx, r12-r15),
 * store rsp in *save, continue on the stack `load` with the registers it saved.  The MXCSR and
 * x87 control words are deliberately not switched (restoring them dominated the cost of a
 * switch): all fibers share the launching thread's floating-point modes, as device code has no
 * way to change them per thread.  A COMDAT group lets every translation unit carry a copy; the
 * linker keeps one. */
extern "C" void sg_emu_switch_v1(void **save, void *load);
__asm__(".pushsection .text.sg_emu_switch_v1,\"axG\",@progbits,sg_emu_switch_v1,comdat\n"
        ".weak sg_emu_switch_v1\n.hidden sg_emu_switch_v1\n.type sg_emu_switch_v1,@function\n"
        ".p2align 4\nsg_emu_switch_v1:\n"
        "pushq %rbp\npushq %rbx\npushq %r12\npushq %r13\npushq %r14\npushq %r15\n"
        "movq %rsp, (%rdi)\nmovq %rsi, %rsp\n"
        "popq %r15\npopq %r14\npopq %r13\npopq %r12\npopq %rbx\npopq %rbp\nret\n"
        ".size sg_emu_switch_v1, .-sg_emu_switch_v1\n.popsection\n");
#define SG_EMU_SWITCH(from, to) sg_emu_switch_v1(&(from).sp, (to).sp)
/* With CET shadow stacks enforced, the `ret` into another fiber would be a control-protection
 * fault; rdsspq reads 0 (it is a no-op) unless they are. */
inline bool sg_emu_shadow_stack_active() {
    unsigned long long ssp = 0;
    __asm__ volatile("rdsspq %0" : "+r"(ssp));
    return ssp != 0;
}
#else
#define SG_EMU_SWITCH(from, to) swapcontext(&(from).uc, &(to).uc)
#endif

namespace sg_emu::detail {
/* Launch-configuration errors are synchronous (cudaGetLastError); a failure while running is
 * also what the next cudaDeviceSynchronize reports, as a real asynchronous error would be. */
inline thread_local cudaError_t last_error = cudaSuccess, async_error = cudaSuccess;
inline void fail(cudaError_t e) {
    last_error = e;
    if (e == cudaErrorLaunchFailure) async_error = e;
}

enum State : unsigned char { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct Fiber {
#ifdef SG_EMU_ASM_SWITCH
    void *sp = nullptr;
#else
    ucontext_t uc;
#endif
    char *stack = nullptr;
    uint3 idx{};
    unsigned mask = 0;    /* lanes of the warp barrier it waits at */
    State state = kDone;
    bool fresh = true;    /* stack must be (re)initialised before the next entry */
};

struct Sched {
    std::vector<Fiber> fibers;      /* a fiber per thread of the largest block so far */
    std::vector<uint64_t> scratch;  /* a shuffle slot per thread */
#ifdef SG_EMU_ASM_SWITCH
    void *sp = nullptr;
#else
    ucontext_t uc;
#endif
    const void *stack_bottom = nullptr;  /* the scheduler's stack, for ASan */
    size_t stack_size = 0;
    Fiber *cur = nullptr;
    void (*run)(void *) = nullptr;  /* the kernel with its arguments bound */
    void *run_arg = nullptr;
    unsigned nthreads = 0, ndone = 0, nblockwait = 0;
    static size_t page() { return (size_t)sysconf(_SC_PAGESIZE); }
    ~Sched() {
        for (Fiber &f : fibers)
            if (f.stack) munmap(f.stack - page(), SG_EMU_STACK_SIZE + page());
    }
};
/* A plain pointer, so that fibers reach it without the guard a thread_local object with a
 * destructor costs on every access; launch_sched() creates it. */
inline thread_local Sched *sched = nullptr;
inline Sched &launch_sched() {
    static thread_local std::unique_ptr<Sched> owner;  /* unmaps the stacks at thread exit */
    if (!sched) {
        owner.reset(new Sched);
        sched = owner.get();
    }
    return *sched;
}

/* scheduler -> fiber; returns when the fiber waits or finishes */
inline void enter(Sched &s, Fiber &f) {
    s.cur = &f;
    threadIdx = f.idx;
#ifdef SG_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack, SG_EMU_STACK_SIZE);
#endif
    SG_EMU_SWITCH(s, f);
#ifdef SG_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    s.cur = nullptr;
}

/* fiber -> scheduler; returns when the scheduler resumes this fiber */
inline void leave(Sched &s, Fiber &f) {
#ifdef SG_EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, s.stack_bottom, s.stack_size);
#endif
    SG_EMU_SWITCH(f, s);
#ifdef SG_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, &s.stack_bottom, &s.stack_size);
#endif
}

/* Every fiber runs this forever, one thread of one block per pass, so a fiber and its stack
 * serve all later launches of this OS thread without being rebuilt. */
inline void fiber_main() {
    Sched &s = *sched;
#ifdef SG_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.stack_bottom, &s.stack_size);
#endif
    for (;;) {
        s.run(s.run_arg);
        s.cur->state = kDone;
        ++s.ndone;
        leave(s, *s.cur);
    }
}

inline bool init_fiber(Fiber &f) {
    const size_t page = Sched::page();
    if (!f.stack) {
        /* a PROT_NONE page below the stack turns an overflow into a fault, not corruption */
        void *p = mmap(nullptr, SG_EMU_STACK_SIZE + page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return false;
        mprotect(p, page, PROT_NONE);
        f.stack = (char *)p + page;
    }
#ifdef SG_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f.stack, SG_EMU_STACK_SIZE);  /* frames left by a deadlock */
#endif
#ifdef SG_EMU_ASM_SWITCH
    /* the frame sg_emu_switch_v1 pops: six registers, then `ret` enters fiber_main with
     * rsp = 8 (mod 16) as after a call, whose return address 0 ends backtraces */
    void **sp = (void **)(((uintptr_t)f.stack + SG_EMU_STACK_SIZE) & ~(uintptr_t)15);
    *--sp = nullptr;
    *--sp = (void *)&fiber_main;
    for (int i = 0; i < 6; i++) *--sp = nullptr;
    f.sp = sp;
#else
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = f.stack;
    f.uc.uc_stack.ss_size = SG_EMU_STACK_SIZE;
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, fiber_main, 0);
#endif
    f.fresh = false;
    return true;
}

/* the calling emulated thread's linear index in its block */
inline unsigned thread_id(const char *what) {
    if (!sched || !sched->cur) {
        std::fprintf(stderr, "symgrad_cuda_emulate: %s called outside a kernel\n", what);
        std::abort();
    }
    return (unsigned)(sched->cur - sched->fibers.data());
}

inline void wait_block() {
    thread_id("__syncthreads");
    sched->cur->state = kAtBlockBarrier;
    ++sched->nblockwait;
    leave(*sched, *sched->cur);
}

inline void wait_warp(unsigned mask) {
    const unsigned lane = thread_id("__syncwarp/__shfl_*_sync/__ballot_sync") & 31;
    sched->cur->mask = mask | 1u << lane;  /* a thread always waits for itself */
    sched->cur->state = kAtWarpBarrier;
    leave(*sched, *sched->cur);
}

/* Open every barrier whose threads have all arrived; false if none could open. */
inline bool release(Sched &s) {
    const unsigned n = s.nthreads;
    bool any = false;
    if (s.nblockwait && s.nblockwait + s.ndone == n) {
        for (unsigned i = 0; i < n; i++)
            if (s.fibers[i].state == kAtBlockBarrier) s.fibers[i].state = kReady;
        s.nblockwait = 0;
        any = true;
    }
    for (unsigned w = 0; w * 32 < n; w++) {
        Fiber *lane = &s.fibers[w * 32];
        const unsigned lanes = n - w * 32 < 32 ? n - w * 32 : 32;
        const unsigned exist = lanes == 32 ? ~0u : (1u << lanes) - 1;
        unsigned done = 0, waiting = 0;
        for (unsigned l = 0; l < lanes; l++) {
            done |= (unsigned)(lane[l].state == kDone) << l;
            waiting |= (unsigned)(lane[l].state == kAtWarpBarrier) << l;
        }
        /* lanes waiting with the same mask form one barrier; it opens when every live lane of
         * the mask is among them (lanes that do not exist or have exited count as arrived) */
        for (unsigned pending = waiting; pending;) {
            const unsigned mask = lane[__builtin_ctz(pending)].mask & exist;
            unsigned group = 0;
            for (unsigned b = pending; b; b &= b - 1)
                if ((lane[__builtin_ctz(b)].mask & exist) == mask) group |= b & -b;
            pending &= ~group;
            if (mask & ~done & ~group) continue;
            for (unsigned b = group; b; b &= b - 1) lane[__builtin_ctz(b)].state = kReady;
            any = true;
        }
    }
    return any;
}

inline void report_deadlock(Sched &s, const char *name) {
    unsigned at_block = 0, at_warp = 0, first_block = 0, first_warp = 0;
    for (unsigned i = s.nthreads; i-- > 0;) {
        if (s.fibers[i].state == kAtBlockBarrier) at_block++, first_block = i;
        if (s.fibers[i].state == kAtWarpBarrier) at_warp++, first_warp = i;
    }
    std::fprintf(stderr,
                 "symgrad_cuda_emulate: deadlock in kernel %s, block (%u,%u,%u): %u thread(s) "
                 "wait at __syncthreads (first: %u), %u at a warp barrier (__syncwarp/__shfl_*, "
                 "first: %u), %u finished; launch abandoned\n",
                 name, blockIdx.x, blockIdx.y, blockIdx.z, at_block, first_block, at_warp,
                 first_warp, s.ndone);
}

inline bool run_block(Sched &s, const char *name, bool reverse) {
    const unsigned n = s.nthreads;
    for (unsigned i = 0; i < n; i++) {
        Fiber &f = s.fibers[i];
        if (f.fresh && !init_fiber(f)) {
            std::fprintf(stderr, "symgrad_cuda_emulate: cannot map a fiber stack for %s\n", name);
            return false;
        }
        f.state = kReady;
    }
    s.ndone = s.nblockwait = 0;
    for (;;) {
        /* one round: every runnable thread runs to its next barrier or its end */
        for (unsigned k = 0; k < n; k++) {
            Fiber &f = s.fibers[reverse ? n - 1 - k : k];
            if (f.state == kReady) enter(s, f);
        }
        if (s.ndone == n) return true;
        if (!release(s)) {
            report_deadlock(s, name);
            for (unsigned i = 0; i < n; i++)
                if (s.fibers[i].state != kDone) s.fibers[i].fresh = true;  /* drop its frames */
            return false;
        }
    }
}

inline bool run_grid(Sched &s, const char *name, dim3 grid, dim3 block) {
    const unsigned n = block.x * block.y * block.z;
    /* never reallocated: a saved ucontext_t points into itself, so fibers must not move */
    if (s.fibers.capacity() < 1024) s.fibers.reserve(1024);
    if (s.fibers.size() < n) s.fibers.resize(n);
    if (s.scratch.size() < n) s.scratch.resize(n);
    for (unsigned i = 0; i < n; i++)
        s.fibers[i].idx = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
    s.nthreads = n;
    blockDim = block;
    gridDim = grid;
    const char *order = std::getenv("SYMGRAD_CUDA_EMULATE_ORDER");
    const bool reverse = order && std::strcmp(order, "reverse") == 0;
    const uint64_t gx = grid.x, gxy = gx * grid.y, nblocks = gxy * grid.z;
    for (uint64_t k = 0; k < nblocks; k++) {
        const uint64_t b = reverse ? nblocks - 1 - k : k;
        blockIdx = uint3{(unsigned)(b % gx), (unsigned)(b % gxy / gx), (unsigned)(b / gxy)};
        if (!run_block(s, name, reverse)) return false;
    }
    return true;
}

/* Every lane publishes its value, the warp meets, each reads the lane source(lane) names (-1 or
 * a lane the block does not have: its own value), and the warp meets again before the slots
 * can be overwritten. */
template <class T, class F>
inline T shuffle(unsigned mask, T v, F source) {
    static_assert(std::is_arithmetic<T>::value && sizeof(T) <= 8, "shuffle of an unsupported type");
    const unsigned tid = thread_id("__shfl_*_sync"), lane = tid & 31;
    const int src = source(lane);
    uint64_t *slots = &sched->scratch[tid - lane];
    std::memcpy(&slots[lane], &v, sizeof(T));
    wait_warp(mask);
    T r = v;
    if (src >= 0 && tid - lane + (unsigned)src < sched->nthreads)
        std::memcpy(&r, &slots[src], sizeof(T));
    wait_warp(mask);
    return r;
}

template <class T, class F>
inline T atomic_update(T *p, F f) {
    T old, want;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do want = f(old);
    while (!__atomic_compare_exchange(p, &old, &want, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
}  // namespace sg_emu::detail

namespace sg_emu {
template <class... P, class... A>
void launch(const char *name, void (*kernel)(P...), dim3 grid, dim3 block, A &&...args) {
    const uint64_t threads = (uint64_t)block.x * block.y * block.z;
    if (threads < 1 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 0x7fffffffu || grid.y > 65535 ||
        grid.z > 65535) {
        detail::fail(cudaErrorInvalidConfiguration);
        return;
    }
#ifdef SG_EMU_ASM_SWITCH
    if (sg_emu_shadow_stack_active()) {
        std::fprintf(stderr, "symgrad_cuda_emulate: CET shadow stacks are enforced; rebuild with "
                             "-DSG_EMU_USE_UCONTEXT to run %s\n", name);
        detail::fail(cudaErrorLaunchFailure);
        return;
    }
#endif
    detail::Sched &s = detail::launch_sched();
    if (s.cur) {  /* the fibers running this kernel are the ones a nested launch would reuse */
        std::fprintf(stderr, "symgrad_cuda_emulate: %s launched from inside a kernel\n", name);
        detail::fail(cudaErrorLaunchFailure);
        return;
    }
    /* converted once; by-value kernel parameters still give each thread its own copy */
    std::tuple<P...> params(std::forward<A>(args)...);
    auto body = [&] { std::apply(kernel, params); };
    s.run = [](void *b) { (*static_cast<decltype(body) *>(b))(); };
    s.run_arg = &body;
    if (!detail::run_grid(s, name, grid, block)) detail::fail(cudaErrorLaunchFailure);
}
}  // namespace sg_emu

/* ---- synchronisation and warp operations (device side) ---- */
inline void __syncthreads() { sg_emu::detail::wait_block(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { sg_emu::detail::wait_warp(mask); }

/* width splits the warp into segments of `width` lanes (a power of two), as in CUDA */
template <class T>
inline T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    return sg_emu::detail::shuffle(mask, v, [=](unsigned lane) {
        return (int)(lane & ~(width - 1)) + (src_lane & (width - 1));
    });
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return sg_emu::detail::shuffle(mask, v, [=](unsigned lane) {
        return lane % width + delta < (unsigned)width ? (int)(lane + delta) : -1;
    });
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return sg_emu::detail::shuffle(mask, v, [=](unsigned lane) {
        return lane % width >= delta ? (int)(lane - delta) : -1;
    });
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return sg_emu::detail::shuffle(mask, v, [=](unsigned lane) {
        const unsigned src = lane ^ (unsigned)(lane_mask & 31);
        return src < (lane & ~(width - 1)) + width ? (int)src : -1;  /* not a later segment */
    });
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    const unsigned tid = sg_emu::detail::thread_id("__ballot_sync"), base = tid & ~31u;
    sg_emu::detail::Sched &s = *sg_emu::detail::sched;
    s.scratch[tid] = pred != 0;
    sg_emu::detail::wait_warp(mask);
    unsigned bits = 0;
    for (unsigned l = 0; l < 32 && base + l < s.nthreads; l++)
        if (mask >> l & 1 && s.scratch[base + l]) bits |= 1u << l;
    sg_emu::detail::wait_warp(mask);
    return bits;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) {
    return (__ballot_sync(mask, pred) | ~mask) == ~0u;
}

/* ---- atomics: gcc builtins, so they stay atomic if blocks ever run on several OS threads;
 * relaxed ordering, as CUDA's ---- */
#define SG_EMU_ATOMIC_INT(T)                                                                  \
    inline T atomicAdd(T *p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }    \
    inline T atomicSub(T *p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }    \
    inline T atomicExch(T *p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }  \
    inline T atomicOr(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }      \
    inline T atomicAnd(T *p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }    \
    inline T atomicXor(T *p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }    \
    inline T atomicCAS(T *p, T compare, T v) {                                              \
        __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED); \
        return compare;                                                                     \
    }
SG_EMU_ATOMIC_INT(int)
SG_EMU_ATOMIC_INT(unsigned)
SG_EMU_ATOMIC_INT(unsigned long long)
#undef SG_EMU_ATOMIC_INT
#define SG_EMU_ATOMIC_MINMAX(T)                                                               \
    inline T atomicMax(T *p, T v) {                                                         \
        return sg_emu::detail::atomic_update(p, [v](T old) { return old < v ? v : old; }); \
    }                                                                                       \
    inline T atomicMin(T *p, T v) {                                                         \
        return sg_emu::detail::atomic_update(p, [v](T old) { return v < old ? v : old; }); \
    }
SG_EMU_ATOMIC_MINMAX(int)
SG_EMU_ATOMIC_MINMAX(unsigned)
SG_EMU_ATOMIC_MINMAX(long long)
SG_EMU_ATOMIC_MINMAX(unsigned long long)
#undef SG_EMU_ATOMIC_MINMAX
inline float atomicAdd(float *p, float v) {
    return sg_emu::detail::atomic_update(p, [v](float old) { return old + v; });
}
inline double atomicAdd(double *p, double v) {
    return sg_emu::detail::atomic_update(p, [v](double old) { return old + v; });
}
inline float atomicExch(float *p, float v) {
    float old;
    __atomic_exchange(p, &v, &old, __ATOMIC_RELAXED);
    return old;
}

/* ---- host runtime ---- */
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock;
    int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3];
    int multiProcessorCount, major, minor;
};

#define SG_EMU_NAME(name, value, text) case name: return #name;
#define SG_EMU_TEXT(name, value, text) case name: return text;
inline const char *cudaGetErrorName(cudaError_t e) {
    switch (e) { SG_EMU_ERRORS(SG_EMU_NAME) }
    return "cudaErrorUnknown";
}
inline const char *cudaGetErrorString(cudaError_t e) {
    switch (e) { SG_EMU_ERRORS(SG_EMU_TEXT) }
    return "unrecognized error code";
}
#undef SG_EMU_NAME
#undef SG_EMU_TEXT
inline cudaError_t cudaGetLastError() {
    const cudaError_t e = sg_emu::detail::last_error;
    sg_emu::detail::last_error = cudaSuccess;
    return e;
}
inline cudaError_t cudaPeekAtLastError() { return sg_emu::detail::last_error; }
inline cudaError_t cudaDeviceSynchronize() {  /* launches are synchronous already */
    const cudaError_t e = sg_emu::detail::async_error;
    sg_emu::detail::async_error = cudaSuccess;
    return e;
}
inline cudaError_t cudaDeviceReset() { return cudaSuccess; }
inline cudaError_t cudaMalloc(void **p, size_t n) {
    if (!p) return cudaErrorInvalidValue;
    *p = nullptr;
    /* exactly n bytes (not rounded up), so AddressSanitizer sees overruns */
    if (posix_memalign(p, 256, n ? n : 1) == 0) return cudaSuccess;
    *p = nullptr;
    return sg_emu::detail::last_error = cudaErrorMemoryAllocation;
}
template <class T>
inline cudaError_t cudaMalloc(T **p, size_t n) { return cudaMalloc((void **)p, n); }
inline cudaError_t cudaFree(void *p) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind kind) {
    if ((unsigned)kind > cudaMemcpyDefault) return cudaErrorInvalidMemcpyDirection;
    if (n && (!dst || !src)) return cudaErrorInvalidValue;
    if (n) std::memmove(dst, src, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void *p, int value, size_t n) {
    if (n && !p) return cudaErrorInvalidValue;
    if (n) std::memset(p, value, n);
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int *count) {
    if (!count) return cudaErrorInvalidValue;
    *count = 1;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int dev) {
    return dev == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}
inline cudaError_t cudaGetDevice(int *dev) {
    if (!dev) return cudaErrorInvalidValue;
    *dev = 0;
    return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int dev) {
    if (!prop) return cudaErrorInvalidValue;
    if (dev != 0) return cudaErrorInvalidDevice;
    /* 2 multiprocessors: blocks run one at a time, so grids sized from this stay small */
    *prop = cudaDeviceProp{"symgrad CPU emulation",
                           (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE),
                           48 << 10, 65536, 32, 1024, {1024, 1024, 64},
                           {0x7fffffff, 65535, 65535}, 2, 9, 0};
    return cudaSuccess;
}

#pragma GCC visibility pop
#endif /* SYMGRAD_CUDA_EMULATE_H */
