"""Recipes: task + model + trainer + defaults, assembled once for the CLI, demo and benchmarks.

Every recipe implements the protocol of :mod:`attnkit.recipes.base` and is registered there:
``get(name)``, ``names()`` and ``recipe_for(checkpoint)`` find them. The built-in ones are
``dates``, ``times`` and ``pairs`` (``seq2seq``), ``lm``, ``translate``, ``prices``
(``price_train``), ``classify``, ``vision`` and ``caption``.
"""

from . import builtin, seq2seq  # builtin: registers the built-in recipes
from .base import Job, Options, Prediction, Recipe, get, names, recipe_for, register

__all__ = [
    "Job",
    "Options",
    "Prediction",
    "Recipe",
    "builtin",
    "get",
    "names",
    "recipe_for",
    "register",
    "seq2seq",
]
