"""Entanglement and tensor networks, each checked against closed-form or published results.

Modules: :mod:`~.exact` (transverse-field Ising and XX chains, Lanczos ground states),
:mod:`~.entanglement` (reduced density matrices, entropies, Haar states, Page's formula),
:mod:`~.free_fermions` (Peschel correlation-matrix entropies), :mod:`~.central_charge`
(Calabrese–Cardy fits), :mod:`~.holography` (entanglement profile of boundary data — an
analysis tool, not a claim about gravity), :mod:`~.mera` (ternary scale-invariant MERA for
the critical Ising chain), :mod:`~.happy` / :mod:`~.mincut` / :mod:`~.stabilizer` (the
HaPPY code, Ryu–Takayanagi min-cuts, stabilizer-rank entropies). See ``docs/science.md``.
"""
