"""The handout's name for ``beras.optimizers``: the same classes."""

from .optimizers import Adam, BasicOptimizer, RMSProp

__all__ = ["Adam", "BasicOptimizer", "RMSProp"]
