"""The public API, as the reference pages and the docstring test see it.

One list, :data:`MODULES`, says which modules have a reference page and which
of their names it documents. ``docs/conf.py`` writes ``docs/api/<module>.rst``
from it at build time, and ``tests/test_docs.py`` runs numpydoc's validation
on the same objects, so a name added to a module's ``__all__`` is documented
and checked without touching either file.

Each object is documented once, on the page of the listed module closest to
where it is defined (``skcal.replay.base.ReplayStrategy`` on ``skcal.replay``'s
page); the other pages that export it link there.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass, field
from types import ModuleType

#: The reference pages, in order: module -> the names documented, or None for
#: the module's ``__all__`` (or, for a module without one, the public classes
#: and functions it defines).
MODULES: dict[str, list[str] | None] = {
    "skcal": None,
    "skcal.replay": None,
    "skcal.plasticity": None,
    "skcal.callbacks": None,
    "skcal.query": None,
    "skcal.stopping": None,
    "skcal.simulation": None,
    "skcal.modal": None,
    "skcal.models": None,
    "skcal.datasets": None,
    "skcal.tracking": None,  # documented once it exists
    "skcal.checkpoint": None,
    "skcal.round": None,
    "skcal.processes": None,
    "skcal.history": None,
    "skcal.memory": None,
    "skcal.accelerate": None,
    "skcal.exceptions": None,
    # `skcal bench` from Python: the entry points and what they return, not the campaign machinery
    "skcal.bench": [
        "run_benchmark",
        "BenchmarkResult",
        "plan_benchmark",
        "BenchmarkPlan",
        "load_benchmark_data",
        "BenchmarkData",
        "summarize",
        "format_table",
        "write_results",
        "time_to_target",
        "CampaignStore",
    ],
    "skcal.serve": None,
}


@dataclass
class ModulePage:
    """One module's reference page."""

    name: str
    module: ModuleType
    classes: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    #: names documented on another page: name -> the full name they are documented under
    elsewhere: dict[str, str] = field(default_factory=dict)


def available_modules() -> list[str]:
    """Return the listed modules that exist (``skcal.tracking`` may not yet)."""
    return [name for name in MODULES if importlib.util.find_spec(name) is not None]


def public_names(module_name: str) -> list[str]:
    """Return the names a module's page documents (see :data:`MODULES`)."""
    module = importlib.import_module(module_name)
    names = MODULES.get(module_name)
    if names is not None:
        return list(names)
    if hasattr(module, "__all__"):
        return [name for name in module.__all__ if not name.startswith("_")]
    return [
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module_name
    ]


def _defines(module: ModuleType, name: str) -> bool:
    """Whether ``name`` is assigned at the top level of the module's own source."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return False
    return re.search(rf"^{re.escape(name)}\s*[:=]", source, re.MULTILINE) is not None


def _home(name: str, obj: object, exporters: list[str]) -> str:
    """Return the listed module whose page documents ``obj``: the one closest to where it is defined."""
    defined_in = getattr(obj, "__module__", None) if (inspect.isclass(obj) or inspect.isfunction(obj)) else None
    if defined_in:
        prefixes = [m for m in exporters if defined_in == m or defined_in.startswith(m + ".")]
        if prefixes:
            return max(prefixes, key=len)
    else:
        owners = [m for m in exporters if _defines(importlib.import_module(m), name)]
        if owners:
            return owners[0]
        # a constant re-exported from a module without a page: its deepest exporter
    return max(exporters, key=lambda m: m.count("."))


def pages() -> list[ModulePage]:
    """Return every reference page, each object placed on exactly one."""
    modules = available_modules()
    exporters: dict[int, list[str]] = {}
    for module_name in modules:
        module = importlib.import_module(module_name)
        for name in public_names(module_name):
            exporters.setdefault(id(getattr(module, name)), []).append(module_name)
    result = []
    for module_name in modules:
        module = importlib.import_module(module_name)
        page = ModulePage(module_name, module)
        for name in public_names(module_name):
            obj = getattr(module, name)
            home = _home(name, obj, exporters[id(obj)])
            if home != module_name:
                page.elsewhere[name] = f"{home}.{name}"
            elif inspect.isclass(obj) and issubclass(obj, BaseException):
                page.exceptions.append(name)
            elif inspect.isclass(obj):
                page.classes.append(name)
            elif inspect.isfunction(obj):
                page.functions.append(name)
            elif name != "__version__":
                page.data.append(name)
        result.append(page)
    return result


def is_own_member(cls: type, name: str) -> bool:
    """Whether ``cls.name`` is a public method or property written in skcal (not sklearn's or skorch's)."""
    if name.startswith("_"):
        return False
    if name.startswith("set_") and name.endswith("_request"):
        return False  # scikit-learn's metadata-routing setters, generated on every estimator class
    value = vars(cls).get(name)
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    if not inspect.isfunction(value):
        return False
    return value.__module__.split(".")[0] == "skcal"


def validation_targets() -> list[str]:
    """Return the import paths numpydoc validates: each documented class and function, and the classes' members.

    A class's members are its public methods and properties written in skcal,
    with those it inherits from skcal classes (the estimator's ``relabel``
    comes from a mixin), each checked once, on the class that defines it.
    """
    targets = []
    for page in pages():
        for name in page.classes + page.exceptions + page.functions:
            obj = getattr(page.module, name)
            targets.append(f"{obj.__module__}.{obj.__qualname__}")
            if not inspect.isclass(obj):
                continue
            for owner in obj.__mro__:
                if owner.__module__.split(".")[0] != "skcal":
                    continue
                path = f"{owner.__module__}.{owner.__qualname__}"
                targets.extend(f"{path}.{member}" for member in vars(owner) if is_own_member(owner, member))
    return list(dict.fromkeys(targets))
