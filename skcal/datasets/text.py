"""Text loaders: a CSV file of your own, and WordNet's glosses labelled by lexicographer category."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils import Bunch

from ._bunch import _DEPRECATED, _deprecated_location, _result
from ._home import get_data_home


def load_text_csv(
    path: str | Path, text_column: str = "text", label_column: str = "label", *, return_X_y: bool = False
) -> Bunch | tuple[list, np.ndarray]:
    """Load texts and labels from a CSV file with a text column and a label column.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    text_column : str, default="text"
        The column of texts.
    label_column : str, default="label"
        The column of labels.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (list of str, an empty cell as ``""``), ``target`` (ndarray
        of str), ``target_names`` (the labels, sorted), ``frame`` (the whole
        file, a DataFrame), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError, KeyError, ValueError
        Missing file, missing columns (the message lists the header), or empty labels.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No CSV file at {path}.")
    frame = pd.read_csv(path)
    missing = [column for column in (text_column, label_column) if column not in frame]
    if missing:
        raise KeyError(f"{path.name} lacks column(s) {missing}; its columns are {list(frame.columns)}.")
    if frame[label_column].isna().any():
        raise ValueError(f"{int(frame[label_column].isna().sum())} rows of {path.name} have no label.")
    texts = frame[text_column].fillna("").astype(str).tolist()
    y = frame[label_column].astype(str).to_numpy()
    description = f"{path.name}: {len(texts)} texts ({text_column!r}), labels {label_column!r} ({len(np.unique(y))}).\n"
    return _result(
        return_X_y,
        "load_text_csv",
        (texts, y),
        "texts, y",
        data=texts,
        target=y,
        target_names=np.unique(y),
        frame=frame,
        DESCR=description,
    )


#: WordNet 3.0's lexicographer files, by number (``lexnames(5WN)``); Debian's wordnet-base omits the file.
WORDNET_LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
WORDNET_POS = ("noun", "verb", "adj", "adv")
#: The parts of speech whose lexicographer files are semantic classes: 82,115 noun and 13,767 verb
#: synsets of WordNet 3.0 in 26 + 15 = 41 categories (adjectives and adverbs have only 3 files).
WORDNET_FULL_POS = ("noun", "verb")


#: Where Debian's ``wordnet-base`` package puts WordNet's ``data.<pos>`` files; looked in after the data cache.
WORDNET_DEBIAN_ROOT = Path("/usr/share/wordnet")


def load_wordnet_glosses(
    path: str | Path | None = _DEPRECATED,
    pos: str | Sequence[str] = "noun",
    categories: list[str] | None = None,
    max_per_category: int | None = None,
    random_state: Any = None,
    *,
    data_home: str | Path | None = None,
    return_X_y: bool = False,
) -> Bunch | tuple[list, np.ndarray]:
    """Load WordNet glosses labelled by their lexicographer category: a real text task, offline.

    Reads WordNet's ``data.<pos>`` files (Debian's ``wordnet-base``; NLTK ships the
    same files). Each synset gives one example: the definition part of its
    gloss (before the usage examples) and its lexicographer file, e.g.
    ``noun.animal``. ``pos=WORDNET_FULL_POS`` (``("noun", "verb")``) gives the
    whole task: 95,882 glosses in 41 categories on WordNet 3.0.

    Parameters
    ----------
    path : str or Path, optional
        Deprecated, use ``data_home``: the folder holding ``data.noun`` etc. itself.
    pos : {"noun", "verb", "adj", "adv"} or sequence of them, default="noun"
        One part of speech, or several read one after the other in the given
        order (e.g. ``("noun", "verb")``).
    categories : list of str, optional
        Keep only these lexicographer files (e.g. ``["noun.animal", "noun.food"]``).
    max_per_category : int, optional
        Keep at most this many glosses per category, drawn at random.
    random_state : int, RandomState instance or None, default=None
        For ``max_per_category``.
    data_home : str or Path, optional
        The data cache; the files are read from ``data_home/wordnet``
        (``data_home="/usr/share"`` reads Debian's). By default the first of
        ``get_data_home() / "wordnet"`` and ``/usr/share/wordnet`` that has
        them.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (list of str, the glosses), ``target`` (ndarray of str, the
        lexicographer category of each), ``target_names`` (the categories
        present, sorted), ``pos`` (ndarray of str, the part of speech of
        each), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If a data file is missing (``apt-get install wordnet-base``).
    ValueError
        For an unknown ``pos`` or category, or a record without a valid
        lexicographer file number (the message names the file and line).
    """
    from sklearn.utils import check_random_state

    folder = _deprecated_location(
        path,
        "path",
        "load_wordnet_glosses",
        data_home,
        "pass data_home=, the data cache whose wordnet/ folder holds the files (data_home='/usr/share' for Debian's).",
    )
    parts = (pos,) if isinstance(pos, str) else tuple(pos)
    if not parts or any(part not in WORDNET_POS for part in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"pos must be one of {WORDNET_POS} or a sequence of distinct ones, got {pos!r}.")
    unknown = sorted(set(categories or ()) - set(WORDNET_LEXNAMES))
    if unknown:
        raise ValueError(f"Unknown WordNet categories {unknown}; they are named like {WORDNET_LEXNAMES[3:6]}.")
    if folder is not None:
        folders = [folder]
    elif data_home is not None:
        folders = [get_data_home(data_home) / "wordnet"]
    else:
        folders = [get_data_home() / "wordnet", WORDNET_DEBIAN_ROOT]
    names = [f"data.{part}" for part in parts]
    folder = next((candidate for candidate in folders if all((candidate / n).exists() for n in names)), None)
    if folder is None:
        missing = [str(candidate / name) for candidate in folders for name in names if not (candidate / name).exists()]
        raise FileNotFoundError(
            f"No WordNet data at {' or '.join(missing)}; on Debian: apt-get install wordnet-base "
            f"(or put WordNet 3.0's dict/ files in {folders[0]})."
        )
    texts, labels, parts_of_speech = [], [], []
    for part, name in zip(parts, names, strict=True):
        read = len(labels)
        _read_wordnet_data(folder / name, categories, texts, labels)
        parts_of_speech += [part] * (len(labels) - read)
    labels, parts_of_speech = np.array(labels, dtype=str), np.array(parts_of_speech, dtype=str)
    if max_per_category is not None and len(labels):
        rng = check_random_state(random_state)
        keep = np.sort(
            np.concatenate(
                [rng.permutation(np.flatnonzero(labels == label))[:max_per_category] for label in np.unique(labels)]
            )
        )
        texts, labels, parts_of_speech = [texts[i] for i in keep], labels[keep], parts_of_speech[keep]
    description = (
        f"WordNet glosses from {folder} ({', '.join(names)}): {len(texts)} definitions labelled by their "
        f"lexicographer file, {len(np.unique(labels))} categories. WordNet 3.0, Princeton University (WordNet "
        "licence).\n"
    )
    return _result(
        return_X_y,
        "load_wordnet_glosses",
        (texts, labels),
        "texts, y",
        data=texts,
        target=labels,
        target_names=np.unique(labels),
        pos=parts_of_speech,
        DESCR=description,
    )


def _read_wordnet_data(data_file: Path, categories: list[str] | None, texts: list, labels: list) -> None:
    """Append the glosses and lexicographer categories of one ``data.<pos>`` file to ``texts`` and ``labels``."""
    with open(data_file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            fields, gloss = line.split(" | ", 1)
            fields = fields.split()
            if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) >= len(WORDNET_LEXNAMES):
                raise ValueError(f"{data_file}, line {number}: no valid lexicographer file number: {line[:60]!r}")
            label = WORDNET_LEXNAMES[int(fields[1])]
            if categories and label not in categories:
                continue
            texts.append(gloss.split('; "')[0].strip())
            labels.append(label)
