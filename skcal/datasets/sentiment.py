"""The human-rated sentences of Hutto & Gilbert (2014), read from the vaderSentiment sdist."""

from __future__ import annotations

import html
import io
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._bunch import _DEPRECATED, _deprecated_location, _result
from ._download import _download
from ._home import get_data_home

#: The sentence sets of Hutto & Gilbert (2014), by the name ``load_sentiment_sentences`` takes.
SENTIMENT_SOURCES = {
    "amazon": "amazonReviewSnippets",
    "movies": "movieReviewSnippets",
    "tweets": "tweets",
    "nyt": "nytEditorialSnippets",
}
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
#: Where PyPI serves the sdist (its stable address for source files), and the file's SHA-256.
VADER_URLS = (f"https://files.pythonhosted.org/packages/source/v/vaderSentiment/{VADER_SDIST}",)
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_TARBALL = "hutto_ICWSM_2014.tar.gz"
#: What ``data_home`` may hold, looked for in this order: the sdist, the inner tarball, either extracted.
_VADER_FORMS = (VADER_SDIST, _VADER_TARBALL, "hutto_ICWSM_2014", VADER_SDIST.removesuffix(".tar.gz"))
_VADER_PIP = "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d {folder}"
SENTIMENT_DESCR = """\
Hutto & Gilbert's human-rated sentences (VADER, ICWSM 2014)
-----------------------------------------------------------

Amazon review snippets (3,708), movie review snippets (10,605), tweets (4,200)
and New York Times editorial snippets (5,190), each rated by about 20 people
from -4 (most negative) to 4. A sentence is positive (1) if its mean rating is
above 0 and negative (0) below; the sentences rated exactly 0 are dropped,
which leaves 23,320 (10,849 negative, 12,471 positive). MIT licence; from the
vaderSentiment 3.3.2 source distribution.
"""


def load_sentiment_sentences(
    path: str | Path | None = _DEPRECATED,
    sources: str | Sequence[str] = tuple(SENTIMENT_SOURCES),
    min_abs_rating: float = 0.0,
    *,
    data_home: str | Path | None = None,
    download_if_missing: bool = True,
    return_X_y: bool = False,
) -> Bunch | tuple[list, np.ndarray]:
    """Load the human-rated sentences of Hutto & Gilbert (2014) as a binary polarity task.

    The VADER paper's ground truth: Amazon review snippets (3,708), movie
    review snippets (10,605), tweets (4,200) and New York Times editorial
    snippets (5,190), each with the mean rating of about 20 people, from -4
    to 4. It ships (MIT licence) inside the ``vaderSentiment==3.3.2`` source
    distribution as ``additional_resources/hutto_ICWSM_2014.tar.gz``; nothing
    is extracted to disk. A sentence is positive (1) if its mean rating is
    above 0 and negative (0) if below; sentences rated exactly 0 are dropped,
    which leaves 23,320. HTML entities (``&amp;``, and the NYT snippets'
    ``&amp;amp;``) are decoded.

    Parameters
    ----------
    path : str or Path, optional
        Deprecated, use ``data_home``: the sdist, the inner
        ``hutto_ICWSM_2014.tar.gz``, or a folder holding either or the
        extracted ``*_GroundTruth.txt`` files.
    sources : str or sequence of {"amazon", "movies", "tweets", "nyt"}, default=all four
        Which sets to load, concatenated in this order.
    min_abs_rating : float, default=0.0
        Keep only sentences whose mean rating is further than this from 0
        (e.g. 0.5 drops the nearly neutral ones).
    data_home : str or Path, optional
        The data cache (:func:`get_data_home` by default), which holds the
        sdist (``vaderSentiment-3.3.2.tar.gz``, where
        ``scripts/install_data.sh`` downloads it), the inner
        ``hutto_ICWSM_2014.tar.gz``, or either extracted
        (``vaderSentiment-3.3.2``, ``hutto_ICWSM_2014``).
    download_if_missing : bool, default=True
        Download the sdist from PyPI into ``data_home`` if none of them is
        there (checked against its SHA-256); False raises instead.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (list of str), ``target`` (ndarray of int64, shape (n,): 1
        positive, 0 negative), ``target_names`` (``["negative",
        "positive"]``), ``source`` (ndarray of str: the set each sentence
        comes from, ``"amazon"``, ...), ``rating`` (ndarray of float64: the
        mean human rating), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If the data is missing and cannot be downloaded; the message gives
        the ``pip download`` command.
    ValueError
        For an unknown source, or a file not in the published format (the
        message names the file and the line).
    """
    location = _deprecated_location(
        path,
        "path",
        "load_sentiment_sentences",
        data_home,
        f"pass data_home=, the folder that holds {VADER_SDIST}, {_VADER_TARBALL} or its extracted folder.",
    )
    chosen = (sources,) if isinstance(sources, str) else tuple(sources)
    unknown = sorted(set(chosen) - set(SENTIMENT_SOURCES))
    if unknown or not chosen:
        raise ValueError(f"sources must be a non-empty subset of {tuple(SENTIMENT_SOURCES)}, got {sources!r}.")
    if min_abs_rating < 0:
        raise ValueError(f"min_abs_rating must be >= 0, got {min_abs_rating}.")
    if location is None:
        home = get_data_home(data_home)
        location = next(
            (home / name for name in _VADER_FORMS if (home / name).exists()),
            home / VADER_SDIST,
        )
        if not location.exists() and download_if_missing:
            try:
                _download(VADER_URLS, location, "sha256", VADER_SHA256)
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"No VADER sentiment data in {home}. {error}. {_vader_help(location)}"
                ) from None
    if not location.exists():
        raise FileNotFoundError(f"No VADER sentiment data at {location}. {_vader_help(location)}")
    files = {f"{SENTIMENT_SOURCES[name]}_GroundTruth.txt": name for name in dict.fromkeys(chosen)}
    contents = _vader_files(location, list(files))
    texts, labels, origin, ratings = [], [], [], []
    for file_name, name in files.items():
        for text, rating in _parse_ground_truth(contents[file_name], file_name):
            if abs(rating) > min_abs_rating:
                texts.append(text)
                labels.append(int(rating > 0))
                origin.append(name)
                ratings.append(rating)
    y = np.array(labels, dtype=np.int64)
    source, rating = np.array(origin, dtype=str), np.array(ratings, dtype=np.float64)
    return _result(
        return_X_y,
        "load_sentiment_sentences",
        (texts, y, source, rating),
        "texts, y, source, rating",
        data=texts,
        target=y,
        target_names=np.array(["negative", "positive"]),
        source=source,
        rating=rating,
        DESCR=SENTIMENT_DESCR,
    )


def _vader_help(location: Path) -> str:
    """How to get the VADER data into the folder of ``location``."""
    folder = location.parent if location.suffix == ".gz" else location
    return (
        f"Get the vaderSentiment sdist (MIT) that carries it with download_if_missing=True, with "
        f"`{_VADER_PIP.format(folder=folder)}` (or run scripts/install_data.sh), or pass data_home= to the folder "
        f"holding {VADER_SDIST}, {_VADER_TARBALL} or its extracted folder."
    )


def _vader_files(path: Path, names: list[str]) -> dict[str, bytes]:
    """Read the ground-truth files ``names`` from an sdist, the inner tarball or a folder."""
    if path.is_dir():
        for folder in (path, path / "hutto_ICWSM_2014", path / "additional_resources" / "hutto_ICWSM_2014"):
            if all((folder / name).is_file() for name in names):
                return {name: (folder / name).read_bytes() for name in names}
        for tarball in (path / VADER_SDIST, path / _VADER_TARBALL, path / "additional_resources" / _VADER_TARBALL):
            if tarball.is_file():
                return _vader_files(tarball, names)
        raise FileNotFoundError(f"{path} has none of {names} (nor {VADER_SDIST} or {_VADER_TARBALL}).")
    try:
        with tarfile.open(path, "r:*") as archive:
            return _vader_members(archive, names, str(path))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a readable tarball: {error}") from None


def _vader_members(archive: tarfile.TarFile, names: list[str], where: str) -> dict[str, bytes]:
    """Read ``names`` from ``archive`` (by base name), looking inside a nested ``hutto_ICWSM_2014.tar.gz`` too."""
    members = {member.name.rsplit("/", 1)[-1]: member for member in archive.getmembers() if member.isfile()}
    if all(name in members for name in names):
        return {name: _read_member(archive, members[name], where) for name in names}
    if _VADER_TARBALL in members:
        inner = _read_member(archive, members[_VADER_TARBALL], where)
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:*") as nested:
            return _vader_members(nested, names, f"{where}:{members[_VADER_TARBALL].name}")
    missing = [name for name in names if name not in members]
    raise ValueError(f"{where} has neither {missing} nor {_VADER_TARBALL}; is it the vaderSentiment 3.3.2 sdist?")


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    """Read one regular file of a tarball."""
    stream = archive.extractfile(member)
    if stream is None:
        raise ValueError(f"{where}: {member.name} is not a regular file.")
    with stream:
        return stream.read()


def _parse_ground_truth(data: bytes, name: str) -> list[tuple[str, float]]:
    """Parse a ``*_GroundTruth.txt`` file: one ``ID<TAB>MEAN-RATING<TAB>TEXT`` line per sentence."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name} is not UTF-8 text: {error}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        try:
            rating = float(fields[1]) if len(fields) == 3 else float("nan")
        except ValueError:
            rating = float("nan")
        if not -4.0 <= rating <= 4.0 or not fields[2].strip():
            raise ValueError(f"{name}, line {number}: expected ID<TAB>rating in [-4, 4]<TAB>text, got {line[:80]!r}.")
        rows.append((_unescape(fields[2].strip()), rating))
    return rows


def _unescape(text: str) -> str:
    """Decode HTML entities, twice escaped ones too (``&amp;amp;`` in the NYT snippets)."""
    for _ in range(3):
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text
