"""The documentation: docstrings of the public API, the extension page's worked code, the gallery's examples.

The site itself is built by ``make docs`` (``make test`` runs it, warnings as
errors); these tests need numpydoc only, not Sphinx.
"""

import ast
import dataclasses
import importlib.util
import inspect
import re
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc
from numpydoc.validate import ERROR_MSGS, validate

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"skcal_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


apiref = _load("apiref")
gallery = _load("gallery")

# numpydoc's checks, less those the project's style does not follow: an extended
# summary (ES01), "See Also" sections (SA01-SA04) and an "Examples" section (EX01)
# on every object; the guides and the gallery carry the examples.
SKIPPED_CHECKS = {"ES01", "SA01", "SA02", "SA03", "SA04", "EX01"}
CHECKS = sorted(set(ERROR_MSGS) - SKIPPED_CHECKS)


def _object(path):
    module_name, _, rest = path.partition(".")
    obj = importlib.import_module(module_name)
    parts = rest.split(".")
    while parts:  # the longest importable module prefix, then attributes
        try:
            obj = importlib.import_module(f"{obj.__name__}.{parts[0]}")
        except (ModuleNotFoundError, AttributeError):
            break
        parts.pop(0)
    for part in parts:
        obj = getattr(obj, part)
    return obj


def _documented_state(cls):
    """Dataclass fields that are state rather than settings: private, or documented under Attributes."""
    attributes = {name.strip() for entry in ClassDoc(cls)["Attributes"] for name in entry.name.split(",")}
    return {field.name for field in dataclasses.fields(cls) if field.name.startswith("_") or field.name in attributes}


def _accepted(path, code, message):
    """Whether a finding is the form of the object, not a documentation gap.

    - A ``typing.Protocol`` is never instantiated: its signature is typing's
      placeholder ``(*args, **kwargs)``.
    - A dataclass's fields are its ``__init__`` parameters; the result
      containers and the round's state document theirs under "Attributes".
    """
    obj = _object(path)
    if not inspect.isclass(obj) or code not in ("PR01", "PR02"):
        return False
    if typing.Protocol in obj.__mro__[1:] and getattr(obj, "_is_protocol", False):
        return True
    if dataclasses.is_dataclass(obj) and code == "PR01":
        missing = ast.literal_eval(re.search(r"\{.*\}", message).group(0))
        return set(missing) <= _documented_state(obj)
    return False


def test_numpydoc_validation_of_the_public_api():
    targets = apiref.validation_targets()
    assert len(targets) > 250  # every public module's classes, functions and methods
    findings = [
        f"{path}: {code} {message}"
        for path in targets
        for code, message in validate(path)["errors"]
        if code in CHECKS and not _accepted(path, code, message)
    ]
    assert not findings, f"{len(findings)} numpydoc findings ({', '.join(CHECKS)}):\n" + "\n".join(findings)


def test_documented_defaults_match_the_signatures():
    # "name : type, default=value" in a Parameters section, against the signature (literal values only)
    compared, mismatches = 0, []
    for path in apiref.validation_targets():
        obj = _object(path)
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):  # a property, an exception without __init__ of its own
            continue
        doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
        for entry in doc["Parameters"]:
            match = re.search(r"default\s*=\s*(.+)$", entry.type)
            if not match:
                continue
            try:
                documented = ast.literal_eval(match.group(1).strip())
            except (ValueError, SyntaxError):
                continue  # a name such as torch.nn.CrossEntropyLoss or print
            for name in (name.strip() for name in entry.name.split(",")):
                parameter = signature.parameters.get(name)
                if parameter is None or not isinstance(parameter.default, (int, float, str, tuple, type(None))):
                    continue
                compared += 1
                if documented != parameter.default:
                    mismatches.append(f"{path}({name}): documented {match.group(1)}, default {parameter.default!r}")
    assert compared > 100
    assert not mismatches, "\n".join(mismatches)


def test_every_public_name_has_one_reference_page():
    homes = {}
    for page in apiref.pages():
        documented = page.classes + page.functions + page.exceptions + page.data
        assert set(documented) | set(page.elsewhere) | {"__version__"} >= set(apiref.public_names(page.name))
        for name in documented:
            homes.setdefault(id(getattr(page.module, name)), []).append(f"{page.name}.{name}")
        for name, target in page.elsewhere.items():
            assert target.rsplit(".", 1)[0] in apiref.MODULES, (page.name, name, target)
    assert all(len(names) == 1 for names in homes.values()), [names for names in homes.values() if len(names) > 1]


def test_reference_pages_leave_out_what_skcal_did_not_write():
    from skcal import ContinualActiveClassifier
    from skcal.replay import ExperienceReplay

    assert apiref.is_own_member(ContinualActiveClassifier, "partial_fit")
    assert not apiref.is_own_member(ContinualActiveClassifier, "set_fit_request")  # scikit-learn's routing
    assert not apiref.is_own_member(ExperienceReplay, "get_params")  # scikit-learn's, not in its __dict__
    targets = apiref.validation_targets()
    assert "skcal.labels.LabelChanges.relabel" in targets  # a mixin's method, checked where it is written
    assert "skcal.replay.base.ReplayStrategy.loss_with_replay" in targets
    assert not [target for target in targets if target.endswith("_request")]


def _page_code(page):
    """The ```python blocks of a markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```", (DOCS / page).read_text(), flags=re.MULTILINE | re.DOTALL)


def test_extension_page_strategy_trains_two_rounds_and_its_remedy_one():
    blocks = _page_code("extending.md")
    assert len(blocks) == 3 and "class ShareWeightedReplay" in blocks[0] and "class Perturb" in blocks[2]
    namespace = {"__name__": "extending_page"}
    exec(compile(blocks[0] + blocks[1], "docs/extending.md", "exec"), namespace)
    net = namespace["net"]
    strategies = [record["strategy"] for record in net.rounds_]
    assert strategies == ["seed", "share_weighted", "share_weighted"]
    for record in net.rounds_[1:]:
        assert record["n_new"] == 100 and record["epochs"] == 2
        assert record["samples_backpropagated"] > 2 * record["n_new"]  # the replayed points trained too
    assert np.isfinite([record["train_accuracy"] for record in net.rounds_]).all()

    module = net.module_
    before = {name: value.detach().clone() for name, value in module.state_dict().items()}
    exec(compile(blocks[2], "docs/extending.md", "exec"), namespace)
    assert [record["strategy"] for record in net.rounds_][-1] == "share_weighted" and len(net.rounds_) == 4
    assert any(not value.equal(before[name]) for name, value in net.module_.state_dict().items())

    # the strategy's own hyperparameter is checked before the round changes anything
    net.set_params(replay__strength=-1.0)
    with pytest.raises(ValueError, match="replay__strength"):
        net.partial_fit(namespace["X"][400:450], namespace["y"][400:450])
    assert len(net.rounds_) == 4


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.py")), ids=lambda path: path.name)
def test_examples_open_with_the_title_the_gallery_reads(path):
    docstring = ast.get_docstring(ast.parse(path.read_text()), clean=False)
    assert docstring, f"{path.name}: no docstring"
    title, underline = docstring.splitlines()[:2]
    assert title.strip() and set(underline) == {"="} and len(underline) >= len(title), path.name


def test_gallery_runs_examples_that_exist():
    names = {path.name for path in (ROOT / "examples").glob("*.py")}
    assert set(gallery.EXECUTED) <= names and set(gallery.QUICK_ARGS) <= set(gallery.EXECUTED)
    assert re.search(gallery.FILENAME_PATTERN, "/x/examples/digits_modal.py")
    assert not re.search(gallery.FILENAME_PATTERN, "/x/examples/text_minilm.py")
    assert gallery.quick_argv({}, {"src_file": "/x/examples/digits_modal.py"}) == ["--rounds", "3"]
