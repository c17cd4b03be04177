"""Deprecated location: the network helpers live in :mod:`skcal.utils.network`."""

from .utils.network import *  # noqa: F403
from .utils.network import __all__  # noqa: F401
