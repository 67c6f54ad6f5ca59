"""What ptxas says about generated kernels: registers, shared memory, stack and spills per arch.

`kernel_resources({"name": cuda_source, ...})` compiles the sources with nvcc (device code only,
SASS for each arch, `-Xptxas -v,-warn-spills,-Werror`: a spill fails) and parses ptxas's report
into one `KernelResources` per (source, kernel, arch).  The tests use it to keep every generated
kernel within a register and shared-memory budget, on machines without a GPU.

All sources go into ONE translation unit: nvcc's fixed start-up cost (front end, header
parsing) is then paid once per arch, not once per source.  Each source is wrapped in
`namespace sg_source_<name> { }` so that kernels of the same name (k0_loop_exp) do not
collide, and the namespace in each mangled name tells which source a kernel came from.  The
report is cached on disk by content, like every other build.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import pathlib
import re
import subprocess
import tempfile
import time

from .. import build

__all__ = ["HEADER", "KernelResources", "kernel_resources"]

HEADER = "symgrad_cuda.h"  # the `source` of the runtime header's own kernels (GEMM, checks)
INCLUDE = '#include "symgrad_cuda.h"'
# namespaces are prefixed: a source named like a libc function ("random") would clash
NAMESPACE = "sg_source_"
# -fatbin: device code only, so no host compiler runs (it would double the time for nothing)
FLAGS = ["-fatbin", "-std=c++17"]
PTXAS = "-v,-warn-spills"  # -v: the resource report; -warn-spills: a warning per spilling kernel
# With `werror`, ptxas's warnings (a spill, a stack it cannot size) fail the compile.  Only
# ptxas's: nvcc's `-Werror all-warnings` would also fail on the front end's host-code remarks
# (an unused variable in sg_run), which say nothing about the kernels' machine code.
WERROR = ",-Werror"

TIMEOUT = 600  # seconds for all arches; a runaway compile fails instead of hanging the tests
nvcc_runs = 0  # nvcc invocations in this process; the tests check a cache hit leaves it alone


@dataclasses.dataclass(frozen=True)
class KernelResources:
    source: str        # the key of `sources` it came from, or HEADER
    kernel: str        # readable: "k0_loop_exp", "sg_gemm_kernel<float, true, false, ...>"
    arch: str          # "sm_80"
    registers: int
    smem: int          # static shared memory, bytes
    stack: int         # stack frame, bytes
    spill_stores: int  # bytes, its own and those of the non-inlined functions it calls
    spill_loads: int
    barriers: int
    mangled: str


def kernel_resources(sources: dict[str, str], arches=("sm_80", "sm_90"), *,
                     werror: bool = True) -> list[KernelResources]:
    """Compile `sources` (name -> CUDA source that includes symgrad_cuda.h; names must be C
    identifiers) for each arch and return ptxas's numbers for every kernel.  Raises
    build.CompileError with nvcc's output if nvcc fails (with `werror`, also on a spill)."""
    for name in sources:
        if not re.fullmatch(r"[A-Za-z_]\w*", name) or name == HEADER:
            raise ValueError(f"source name {name!r} is not a C identifier")
    unit = _translation_unit(sources)
    nvcc = build._find_nvcc()
    flags = FLAGS + ["-Xptxas", PTXAS + (WERROR if werror else "")]
    key = hashlib.sha256("\0".join([
        unit, build._compiler_identity(nvcc, "cuda"), " ".join(flags), ",".join(arches),
        build._headers_digest(build._csrc_dir())]).encode()).hexdigest()
    cache = build.cache_dir() / "ptxas"
    path = cache / f"{key}.json"
    try:
        return [KernelResources(**r) for r in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        pass  # a miss (or an unreadable entry): compile
    records = []
    for arch, output in _compile(nvcc, flags, unit, arches, cache, key):
        records += _parse(output, arch, set(sources))
    cache.mkdir(mode=0o700, exist_ok=True)
    # temp file + rename: a parallel test run reads either nothing or a whole entry
    build._write_atomic(path, json.dumps([dataclasses.asdict(r) for r in records]))
    return records


def _translation_unit(sources: dict[str, str]) -> str:
    parts = [INCLUDE]  # once, outside every namespace (its include guard skips the rest)
    for name, text in sources.items():
        # The include line is blanked, not removed, and #line names the source, so nvcc's
        # messages point at "values3.cu(120)" in the source as rendered.
        body = "\n".join("" if line.strip() == INCLUDE else line for line in text.split("\n"))
        parts += [f"#define sg_run sg_run_{name}",  # extern "C" ignores namespaces: rename
                  f"#define sg_workspace_size sg_workspace_size_{name}",
                  f"namespace {NAMESPACE}{name} {{", f'#line 1 "{name}.cu"', body, "}",
                  "#undef sg_run", "#undef sg_workspace_size"]
    return "\n".join(parts) + "\n"


def _compile(nvcc, flags, unit, arches, cache, key):
    """[(arch, nvcc output)], one nvcc per arch, all running at once: on a 2-core CI runner the
    two arches take the time of one.  (One nvcc with --threads would interleave their reports.)"""
    global nvcc_runs
    with tempfile.TemporaryDirectory(prefix="sg-ptxas-") as tmp, contextlib.ExitStack() as logs:
        src = pathlib.Path(tmp, "unit.cu")
        src.write_text(unit)
        runs = []
        for arch in arches:
            num = arch.removeprefix("sm_")
            argv = nvcc + flags + ["-I", str(build._csrc_dir()), "-o", f"{src}.{arch}", "-gencode",
                                   f"arch=compute_{num},code=sm_{num}", str(src)]
            # to a file: a full pipe would stall the nvcc whose output is not being read
            log = logs.enter_context(open(f"{src}.{arch}.log", "w+"))
            runs.append((arch, log, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)))
            nvcc_runs += 1
        deadline, outputs = time.monotonic() + TIMEOUT, []
        try:
            for arch, log, proc in runs:
                try:
                    rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:  # fail, rather than hang the test run
                    rc = f"none: killed after {TIMEOUT} s"
                log.seek(0)
                outputs.append((arch, log.read(), rc))
        finally:
            for _, _, proc in runs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    for arch, output, rc in outputs:
        if rc != 0:
            cache.mkdir(mode=0o700, exist_ok=True)
            kept = cache / f"{key}.cu"  # kept so the line numbers in the message can be read
            kept.write_text(unit)
            lines = output.splitlines()  # from the first error: warnings may come first
            first = next((i for i, line in enumerate(lines) if _ERROR.search(line)), 0)
            raise build.CompileError(f"nvcc failed for {arch} (exit {rc}); source kept at "
                                     f"{kept}:\n" + "\n".join(lines[first:first + 40]))
    return [(arch, output) for arch, output, _ in outputs]


_ERROR = re.compile(r"\berror\b|\bfatal\b")
_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_PROPS = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")


def _parse(output: str, arch: str, names: set[str]) -> list[KernelResources]:
    """ptxas -v prints, per entry function: "Compiling entry function 'M' for 'sm_80'", then
    "Function properties for M" with the next line's stack/spill bytes, then "Used N registers,
    used B barriers, S bytes smem, ...".  After that come "Function properties" of the device
    functions it calls that could not be inlined (CUDA's own __internal_accurate_pow): their
    spills happen when the kernel runs, so they count as the kernel's."""
    records, entry, props, own = [], None, None, (0, 0, 0)
    for line in output.splitlines():
        if m := _ENTRY.search(line):
            entry, own = m.group(1), (0, 0, 0)
            if m.group(2) != arch:
                raise build.CompileError(f"ptxas compiled {entry} for {m.group(2)}, not {arch}")
        elif m := _PROPS.search(line):
            props = m.group(1)
        elif (m := _FRAME.search(line)) and props is not None:
            numbers = tuple(int(g) for g in m.groups())
            if props == entry:
                own = numbers
            elif records:  # a callee of the kernel reported just before
                r = records[-1]
                records[-1] = dataclasses.replace(r, spill_stores=r.spill_stores + numbers[1],
                                                  spill_loads=r.spill_loads + numbers[2])
            props = None
        elif (m := _USED.search(line)) and entry is not None:
            smem = re.search(r"(\d+) bytes smem", line)
            barriers = re.search(r"used (\d+) barriers", line)
            source, kernel = _demangle(entry, names)
            records.append(KernelResources(
                source, kernel, arch, int(m.group(1)), int(smem.group(1)) if smem else 0,
                *own, int(barriers.group(1)) if barriers else 0, entry))
            entry = None
    return records


# Itanium codes of the builtin types our kernels' template arguments use
_TYPES = {"f": "float", "d": "double", "i": "int", "j": "unsigned", "l": "long", "b": "bool",
          "m": "unsigned long", "x": "long long", "y": "unsigned long long", "c": "char"}


def _demangle(mangled: str, names: set[str]) -> tuple[str, str]:
    """(source, readable name) of an entry function: _ZN17sg_source_values011k0_loop_expEPdPKd
    -> ("values0", "k0_loop_exp"); _Z14sg_gemm_kernelIfLb1ELb0E8sg_storeIfEEv... ->
    (HEADER, "sg_gemm_kernel<float, true, false, sg_store<float>>").  Only the name and its
    template arguments are decoded (a small subset of the Itanium ABI: what our kernels use);
    anything else keeps the mangled name.  A header template instantiated with a type from a
    source's namespace belongs to that source."""
    if not mangled.startswith("_Z"):
        return HEADER, mangled  # extern "C"
    found = []  # the sources whose namespace appears anywhere in the name
    try:
        name, _ = _name(mangled, 2, names, found)
    except (IndexError, ValueError):
        return HEADER, mangled
    return (found[0] if found else HEADER), name


def _name(s, pos, names, found):
    """A (possibly nested, possibly templated) name at s[pos:]: (text, position after it)."""
    nested = s[pos] == "N"
    pos, parts = pos + nested, []
    while s[pos].isdigit():
        n = re.match(r"\d+", s[pos:]).group()
        pos += len(n)
        part, pos = s[pos:pos + int(n)], pos + int(n)
        if part.startswith(NAMESPACE) and part[len(NAMESPACE):] in names:
            found.append(part[len(NAMESPACE):])  # the source's own namespace: not shown
        else:
            parts.append(part)
        if s[pos] == "I":
            args, pos = [], pos + 1
            while s[pos] != "E":
                arg, pos = _template_arg(s, pos, names, found)
                args.append(arg)
            parts[-1] += "<" + ", ".join(args) + ">"
            pos += 1
        if not nested:
            break
    if nested:
        if s[pos] != "E":
            raise ValueError(s)
        pos += 1
    return "::".join(parts), pos


def _template_arg(s, pos, names, found):
    if m := re.match(r"L([a-z])(n?\d+)E", s[pos:]):  # a literal: Lb1E, Li4E
        kind, value = m.group(1), m.group(2).replace("n", "-")
        text = ("true" if value == "1" else "false") if kind == "b" else value
        return text, pos + len(m.group())
    if s[pos] in "PK":  # pointer to, const
        inner, end = _template_arg(s, pos + 1, names, found)
        return (inner + " *" if s[pos] == "P" else "const " + inner), end
    if s[pos] in _TYPES:
        return _TYPES[s[pos]], pos + 1
    if s[pos] == "N" or s[pos].isdigit():
        return _name(s, pos, names, found)
    raise ValueError(s)
