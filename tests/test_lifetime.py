"""A Function's life beside threads and forked processes: freed at `del`, never pickled by
accident, usable in a child forked while another thread held its lock or a compile lock, and
profiled without undoing another thread's training."""
from __future__ import annotations

import fcntl
import gc
import os
import pickle
import sys
import threading
import weakref

import numpy as np
import pytest

import symgrad as sg
from symgrad import build

needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                                reason="needs fork()")


def _child_status(run_in_child, timeout=60.0) -> str:
    """Fork; the child runs `run_in_child()` and exits 0 if it returns True.  "ok", "failed",
    or "hung" (killed after `timeout` seconds)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = 0 if run_in_child() else 1
        finally:
            os._exit(code)
    deadline = threading.Event()
    for _ in range(int(timeout * 20)):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "ok" if os.waitstatus_to_exitcode(status) == 0 else "failed"
        deadline.wait(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "hung"


@needs_fork
def test_a_child_forked_while_a_step_held_the_lock_can_call_the_function():
    x = sg.placeholder("x", (None, 8))
    f = sg.function([x], sg.tanh(x) * 2)
    xv = np.ones((4, 8), np.float32)
    f(xv)
    with f._running:  # another thread's step in flight at the fork
        status = _child_status(lambda: np.allclose(f(xv), np.tanh(xv) * 2), timeout=20)
    assert status == "ok"


@needs_fork
def test_a_child_forked_while_a_compile_held_a_key_lock_does_not_keep_it(tmp_path):
    lock_path = tmp_path / "key.lock"
    held = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    build._held_lock_fds.add(held)  # as a compiling thread of the parent holds it
    release = os.pipe()

    def child():
        os.close(release[1])
        os.read(release[0], 1)  # the parent's compile ends
        fd = os.open(lock_path, os.O_RDWR)
        for _ in range(200):  # the key must be free now (the child's copy was closed)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                threading.Event().wait(0.05)
        return False

    result = {}
    waiter = threading.Thread(target=lambda: result.update(status=_child_status(child, 30)))
    waiter.start()
    try:
        threading.Event().wait(0.5)
    finally:
        build._held_lock_fds.discard(held)
        os.close(held)  # the parent's compile is over: its lock goes
        os.close(release[0])
        os.write(release[1], b"x")
        os.close(release[1])
    waiter.join()
    assert result["status"] == "ok"


def test_del_frees_a_function_without_the_cycle_collector():
    x = sg.placeholder("x", (None, 16))
    f = sg.function([x], sg.exp(x) + 1)
    f(np.zeros((3, 16), np.float32))
    alive = weakref.ref(f)
    gc.disable()
    try:
        del f
        assert alive() is None, "the Function is held by a reference cycle"
    finally:
        gc.enable()


def test_a_function_refuses_pickling_and_says_what_to_do():
    x = sg.placeholder("x", (2,))
    f = sg.function([x], x + 1, backend="numpy")
    with pytest.raises(TypeError, match="cannot be pickled .* build it again in the worker"):
        pickle.dumps(f)


def test_an_output_held_by_a_weak_reference_is_not_recycled():
    x = sg.placeholder("x", (None,))
    f = sg.function([x], x * 2)
    a = np.ones(1 << 18, np.float32)  # large enough to be recycled
    first = f(a)
    watch = weakref.ref(first)
    ident = id(first)
    del first
    if watch() is None:
        pytest.skip("numpy freed the array: nothing to recycle")
    second = f(a + 3)
    assert id(second) != ident  # a new array; the old one dies with the weak reference, unchanged
    assert watch() is None or np.all(watch() == 2)


def test_profile_in_one_thread_does_not_undo_steps_of_another():
    x = sg.placeholder("x", (4,))
    count = sg.shared(np.zeros((), np.float32), name="count")
    step = sg.function([x], sg.sum(x), updates=[(count, count + 1)])
    xv = np.ones(4, np.float32)
    step(xv)
    steps = 3000

    def train():
        for _ in range(steps):
            step(xv)

    trainer = threading.Thread(target=train)
    trainer.start()
    while trainer.is_alive():
        step.profile(xv, repeats=3, warmup=1)
    trainer.join()
    assert float(count.get_value()) == steps + 1


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"  # killed, not yet reaped
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_an_interrupted_compile_kills_the_whole_compiler(tmp_path):
    """Ctrl-C during a compile: the driver's children (cc1) die too, not only the driver."""
    import signal

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    pidfile = tmp_path / "grandchild"
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Interrupted):
            build._run_compiler(["sh", "-c", f"sleep 30 & echo $! > {pidfile}; wait"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if not pidfile.exists() or not pidfile.read_text().strip():
        pytest.skip("the shell had not started its child within the interval")
    grandchild = int(pidfile.read_text())
    for _ in range(100):
        if _gone(grandchild):
            break
        threading.Event().wait(0.05)
    assert _gone(grandchild)


def test_a_temp_library_of_a_killed_compile_is_swept(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMGRAD_CACHE_DIR", str(tmp_path))
    source = "int answer(void) { return 42; }\n"
    lib = build.load_library(source, "int answer(void);")
    so = tmp_path / lib.key[:2] / f"{lib.key}.so"
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)  # a pid that no process has now
    abandoned = so.with_name(f"{so.stem}.{dead}.abcd1234.tmp.so")
    abandoned.write_bytes(b"half a library")
    so.unlink()  # the next load compiles again, under the key's lock
    again = build.load_library(source, "int answer(void);")
    assert again.lib.answer() == 42 and not abandoned.exists()
