"""The sigmoid written as the backprop notes' chain of gates, and what symgrad makes of it.

    python examples/sigmoid_fusion.py

Prints the forward graph as written (the chain of gates), the gradient as sg.grad builds it (it
groups the chain into one sigmoid first, so the adjoint reuses the output: g*s*(1-s)), the
optimized graph of the whole step, and the one fused C kernel of the forward and backward pass.
"""
import argparse

import numpy as np

import symgrad as sg

argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()  # --help, nothing else

x = sg.placeholder("x", ("n",))
g = sg.placeholder("g", ("n",))          # the upstream gradient
s = 1 / (1 + sg.exp(-x))                 # gates: neg, exp, add, div
loss = sg.sum(s * g)                     # a cost whose gradient w.r.t. x is g * s * (1 - s)
dx = sg.grad(loss, x)

print("== the graph as written (forward):")
sg.print_graph(s)
print("\n== the gradient as sg.grad builds it (the chain grouped first):")
sg.print_graph(dx)
step = sg.function([x, g], [s, dx])
unfused = sg.function([x, g], [s, dx], opt_level=0)
print(f"\n== the optimized graph ({len(step.kernels)} kernel(s); {len(unfused.kernels)} "
      "without the optimizer):")
print(step.graph)
print("\n== the generated C of the kernels:")
source = step.source
print(source[source.index("/* k0"):source.index("/* Workspace")])

xs = np.array([-1e4, -20.0, -1.0, 0.0, 1.0, 20.0, 1e4], np.float32)
gs = np.ones_like(xs)
s_value, dx_value = step(xs, gs)
print("x          ", xs)
print("sigmoid(x) ", s_value)
print("d/dx       ", dx_value, "(finite at |x| = 1e4: the gradient never forms inf/inf)")
print(step.report(n=1 << 24))
