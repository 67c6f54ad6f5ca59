"""Row groups: consecutive loop kernels over the same rows (a row reduction, then element-wise
work that reads its result broadcast along the row, then perhaps another reduction: softmax
written as max, exp, sum and divide; layer norm and its gradient) run as one C kernel with one
parallel loop over the rows.  Inside it each member's loop runs over the row in turn, while the
row is in that core's cache, and a reduction's result is a local variable the later members
read instead of memory.

The members keep their own buffers (an intermediate row is written and read back from L1), so
the rule that decides membership only has to make sure that rows are independent: a member
reads what an earlier member wrote only at the same row (a reduction's result) or the same
element (an element-wise result), and writes nothing an earlier member reads or writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .c import PARALLEL_MIN_WORK, collapse, merged_buffers, same_memory
from .kernels import LoopKernel
from .poly import Poly

ROW, COL = "sg_row", "sg_col"
# fewer rows than this (a static count) keep the kernels' own loops: one parallel loop over a
# handful of rows would leave cores idle
MIN_ROWS = 16


@dataclass
class Access:
    """Element (row, col) of an access is at buffer[offset + row*row_stride + col*col_stride]."""
    buffer: object
    offset: Poly
    row_stride: Poly
    col_stride: Poly

    def index(self) -> str:
        parts = [] if self.offset.is_zero() else [self.offset.c()]
        for stride, var in ((self.row_stride, ROW), (self.col_stride, COL)):
            if not stride.is_zero():
                parts.append(var if stride == Poly.const(1) else f"{var}*{stride.c()}")
        return " + ".join(parts) or "0"

    def same_place(self, other: "Access") -> bool:
        return (self.offset == other.offset and self.row_stride == other.row_stride
                and self.col_stride == other.col_stride)


@dataclass
class RowForm:
    """A loop kernel seen as rows x length: its loads and stores as Accesses."""
    kernel: LoopKernel
    rows: Poly
    length: Poly
    loads: list
    stores: list


def row_form(kernel) -> RowForm | None:
    """The kernel as a loop over rows and a loop along each row, or None where its dims do not
    collapse to that (each access must walk the leading dims as one run of rows)."""
    if not isinstance(kernel, LoopKernel) or kernel.error:
        return None
    load_views = [load.view for load in kernel.loads]
    store_views = [view for view, _ in kernel.stores]
    if kernel.reduce:
        if kernel.reduce["argmax"]:
            return None
        kept, along = list(kernel.shape), list(kernel.reduced)
        n = len(kept)
        rows, row_strides = collapse(kept, [list(v.strides[:n]) for v in load_views + store_views])
        length, col_strides = collapse(along, [list(v.strides[n:]) for v in load_views])
        col_strides += [[Poly.const(0)] for _ in store_views]
    else:
        if len(kernel.shape) < 2:
            return None
        views = load_views + store_views
        rows, row_strides = collapse(list(kernel.shape[:-1]), [list(v.strides[:-1]) for v in views])
        length, col_strides = collapse(list(kernel.shape[-1:]), [list(v.strides[-1:]) for v in views])
    if len(rows) != 1 or len(length) > 1 or (kernel.reduce and not length):
        return None
    if rows[0].is_const and rows[0].value < MIN_ROWS:
        return None
    # a map with nothing along the row (shape (rows, 1): a row's 1/sqrt(var + eps)) runs once
    # per row
    along_row = length[0] if length else Poly.const(1)
    accesses = [Access(v.buffer, v.offset, row_strides[j][0],
                       col_strides[j][0] if length else Poly.const(0))
                for j, v in enumerate(load_views + store_views)]
    return RowForm(kernel, rows[0], along_row, accesses[:len(load_views)],
                   accesses[len(load_views):])


def _per_row(form: RowForm) -> bool:
    """One value per row: a reduction's result, or a map that runs once per row."""
    return bool(form.kernel.reduce) or form.length == Poly.const(1)


def _joins(group: list, form: RowForm) -> bool:
    """Whether `form` can run in the row loop of `group` (RowForms in schedule order)."""
    lengths = {str(m.length.c()) for m in group + [form] if m.length != Poly.const(1)}
    if not form.rows == group[0].rows or len(lengths) > 1:
        return False
    written = {}
    for member in group:
        for access in member.stores:
            if id(access.buffer) in written:
                return False  # written twice: a later read could not tell which
            written[id(access.buffer)] = (member, access)
    for access in form.loads:
        if id(access.buffer) not in written:
            continue
        member, store = written[id(access.buffer)]
        wanted = Access(store.buffer, store.offset, store.row_stride,
                        Poly.const(0) if _per_row(member) else store.col_stride)
        if not access.same_place(wanted):
            return False  # another row's (or another element's) value
    # What this kernel writes must not be memory an earlier member touches, except memory
    # touched only at the very addresses this kernel writes for the same row (liveness lets
    # a row's max pass its slot on to the row's sum once the max is dead).
    touched = [a for m in group for a in m.loads + m.stores]
    for out in form.stores:
        if any(same_memory(out.buffer, a.buffer) and not a.same_place(out) for a in touched):
            return False
    return True


# Members of one row group at most: each candidate is checked against the whole group, so an
# unbounded group made a 1000-kernel chain (opt_level 0) quadratic, 40 s of its compile.
MAX_MEMBERS = 32


def row_groups(kernels, excluded=frozenset()) -> list:
    """Lists of RowForms (two or more, at least one reduction) that run as one kernel each;
    kernels at the `excluded` indices (GEMM epilogues) take part in none."""
    groups, current = [], []

    def close():
        if len(current) >= 2 and any(m.kernel.reduce for m in current):
            groups.append(list(current))

    for index, kernel in enumerate(kernels):
        form = None if index in excluded else row_form(kernel)
        if form is not None and 0 < len(current) < MAX_MEMBERS and _joins(current, form):
            current.append(form)
            continue
        close()
        current = [form] if form is not None else []
    close()
    return groups


@dataclass
class RowMember:
    """What the template needs of one member: C text only."""
    name: str
    comment: str
    loads: list = field(default_factory=list)    # (ctype, var, expression)
    statements: list = field(default_factory=list)
    stores: list = field(default_factory=list)   # (ctype, buffer, index, var)
    reduce: dict | None = None
    local: str = ""                              # the reduction's result, for later members
    result_type: str = ""
    length: str = "1"                            # how far along the row it runs


def render_members(group: list, ids: dict) -> list:
    locals_of = {}  # id(buffer) -> the local holding a member's reduction result
    members = []
    for k, form in enumerate(group):
        kernel = form.kernel
        member = RowMember(kernel.name, kernel.comment(ids), statements=kernel.statements,
                           reduce=kernel.reduce, length=form.length.c())
        for load, access in zip(kernel.loads, form.loads):
            source = locals_of.get(id(access.buffer))
            member.loads.append((access.buffer.ctype, load.var, source or
                                 f"{access.buffer.name}[{access.index()}]"))
        if kernel.reduce:
            member.local = f"row_result{k}"
            member.result_type = form.stores[0].buffer.ctype
            member.stores = [(a.buffer.ctype, a.buffer.name, a.index(), member.local)
                             for a in form.stores]
            for access in form.stores:
                locals_of[id(access.buffer)] = member.local
        else:
            member.stores = [(a.buffer.ctype, a.buffer.name, a.index(), var)
                             for a, (_, var) in zip(form.stores, kernel.stores)]
        members.append(member)
    return members


def group_entry(group: list, ids: dict, index: int) -> dict:
    """The template entry of a group whose first member is kernel number `index`."""
    first = group[0].kernel
    buffers = merged_buffers(*(form.kernel for form in group))
    length = next((f.length for f in group if f.length != Poly.const(1)), Poly.const(1))
    work = (group[0].rows * length).c()
    # buffers sharing workspace memory with another of the group (a dead row max and the row's
    # sum): plain pointers, so the compiler keeps their stores in program order
    shared = {b.name for b, _ in buffers for c, _ in buffers
              if b is not c and same_memory(b, c)}
    return {"no_restrict": shared,"k": first, "name": first.name, "kind": "row_group", "code": index + 1,
            "comment": "; then ".join(f.kernel.comment(ids) for f in group),
            "buffers": buffers, "fails": False, "members": render_members(group, ids),
            "rows": group[0].rows.c(),
            "parallel": f"{work} >= {PARALLEL_MIN_WORK}", "n_members": len(group)}
