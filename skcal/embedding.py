"""Deprecated location: the embedding helpers live in :mod:`skcal.utils.embedding`."""

from .utils.embedding import *  # noqa: F403
from .utils.embedding import __all__  # noqa: F401
