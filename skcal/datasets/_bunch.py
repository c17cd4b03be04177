"""What the loaders return: a Bunch that still unpacks as the old tuple, and the deprecated folder arguments."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

#: The release in which the deprecated call forms stop working.
_REMOVED_IN = "0.3"
#: The default of a deprecated argument: anything else passed means the caller used it.
_DEPRECATED = "deprecated"


class _TupleCompatibleBunch(Bunch):
    """A Bunch that also unpacks and indexes as the tuple its loader returned before, with a FutureWarning.

    Nothing iterated over a loader's result as a dict before it was a
    Bunch, so iterating yields the old tuple's items (``X, y = load_...()``)
    and an integer index picks one (``load_...()[1]``). ``keys()``,
    ``items()``, ``dict(bunch)`` and attribute access are a plain Bunch's.
    """

    def __init__(self, loader: str, legacy: tuple, legacy_names: str, **fields: Any):
        super().__init__(**fields)
        self.__dict__["_legacy"] = (loader, legacy, legacy_names)

    def _legacy_tuple(self, stacklevel: int) -> tuple:
        loader, legacy, names = self.__dict__["_legacy"]
        warnings.warn(
            f"{loader}() returns a Bunch: unpacking or indexing it as the tuple ({names}) is deprecated and stops "
            f"working in skcal {_REMOVED_IN}; use its fields (.data, .target, ...) or return_X_y=True.",
            FutureWarning,
            stacklevel=stacklevel + 1,
        )
        return legacy

    def __iter__(self):
        if "_legacy" not in self.__dict__:  # unpickled: a plain Bunch
            return super().__iter__()
        return iter(self._legacy_tuple(stacklevel=2))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and "_legacy" in self.__dict__:
            return self._legacy_tuple(stacklevel=2)[key]
        return super().__getitem__(key)


def _result(
    return_X_y: bool, loader: str, legacy: tuple, legacy_names: str, **fields: Any
) -> Bunch | tuple[Any, np.ndarray]:
    """Return ``(data, target)`` with ``return_X_y``, else the Bunch of ``fields`` (unpacking as ``legacy``)."""
    if return_X_y:
        return fields["data"], fields["target"]
    return _TupleCompatibleBunch(loader, legacy, legacy_names, **fields)


def _deprecated_location(value: Any, name: str, loader: str, data_home: Any, replacement: str) -> Path | None:
    """Return the folder or file a deprecated ``root=``/``path=`` named (None if not given), with a FutureWarning."""
    if isinstance(value, str) and value == _DEPRECATED:
        return None
    if data_home is not None:
        raise ValueError(f"{loader}() takes data_home= or the deprecated {name}=, not both.")
    warnings.warn(
        f"{loader}({name}=...) is deprecated and stops working in skcal {_REMOVED_IN}; {replacement}",
        FutureWarning,
        stacklevel=3,
    )
    return None if value is None else Path(value).expanduser()
