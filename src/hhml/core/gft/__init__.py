"""Group field theory: colored tensor models and condensate cosmology.

See ``docs/science.md``.
"""
