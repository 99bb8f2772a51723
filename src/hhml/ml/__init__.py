"""Machine learning over the simulation: environments, agents, training.

Subpackages: :mod:`hhml.ml.env` (gymnasium environments), :mod:`hhml.ml.rl`
(TD3, SAC, recurrent TD3, replay buffers), :mod:`hhml.ml.training` (the Trainer).
"""
