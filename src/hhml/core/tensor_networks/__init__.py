"""Entanglement and tensor networks: exact and free-fermion chains, MERA, HaPPY code.

See ``docs/science.md``.
"""
