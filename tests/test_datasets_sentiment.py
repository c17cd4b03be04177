"""Hutto & Gilbert's (2014) human-rated sentences, from the vaderSentiment 3.3.2 sdist."""

import io
import os
import tarfile

import numpy as np
import pytest

from skcal.datasets import SENTIMENT_SOURCES, VADER_SDIST, get_data_home, load_sentiment_sentences

# The real files' layout: ID<TAB>mean rating<TAB>text, CRLF line ends, HTML entities in the text.
GROUND_TRUTH = {
    "amazonReviewSnippets_GroundTruth.txt": "1_1\t-0.9\tno picture, scrolling b/w.\r\n"
    "1_2\t0.0\trepost from january 13, 2004.\r\n"
    "1_3\t2.35\tgreat player &amp; cheap\r\n",
    "movieReviewSnippets_GroundTruth.txt": "1\t2.26666666667\tThe Rock is destined to be the 21st Century's new "
    "''Conan''\r\n2\t-3.875\tA dreadful, plodding film\r\n3\t0.4\tCaf\u00e9 scenes work",  # no final line end
    "tweets_GroundTruth.txt": "1\t2.726315789\tSo lucky &lt;3\r\n2\t-2.154639175\tDie die die\r\n",
    "nytEditorialSnippets_GroundTruth.txt": "1_1\t0.15\tEvents include sprinting &amp;amp; jumping.\r\n"
    "1_2\t-1.15\tNot a picture.\r\n",
}


def tar_bytes(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def inner_tarball(ground_truth=GROUND_TRUTH):
    files = {f"hutto_ICWSM_2014/{name}": text.encode() for name, text in ground_truth.items()}
    files["hutto_ICWSM_2014/tweets_anonDataRatings.txt"] = b"1\t2.7\t0.6\t[3, 2, 3]\r\n"
    files["hutto_ICWSM_2014/_README_.txt"] = b"FORMAT: the file is tab delimited\r\n"
    return tar_bytes(files)


def sdist_bytes(inner):
    return tar_bytes(
        {
            "vaderSentiment-3.3.2/PKG-INFO": b"Name: vaderSentiment\n",
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz": inner,
            "vaderSentiment-3.3.2/vaderSentiment/vader_lexicon.txt": b"$:\t-1.5\t0.80623\t[-1, -1]\n",
        }
    )


@pytest.fixture
def sdist(tmp_path):
    path = tmp_path / VADER_SDIST
    path.write_bytes(sdist_bytes(inner_tarball()))
    return path


def test_reads_the_sdist_as_a_binary_task(sdist):
    sentences = load_sentiment_sentences(data_home=sdist.parent)
    texts, y, source, rating = sentences.data, sentences.target, sentences.source, sentences.rating
    assert texts == [
        "no picture, scrolling b/w.",
        "great player & cheap",  # the rating-0 sentence is dropped; HTML entities decoded
        "The Rock is destined to be the 21st Century's new ''Conan''",
        "A dreadful, plodding film",
        "Caf\u00e9 scenes work",
        "So lucky <3",
        "Die die die",
        "Events include sprinting & jumping.",  # twice escaped, as in the real NYT file
        "Not a picture.",
    ]
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 1, 0, 1, 1, 0, 1, 0]
    assert source.tolist() == ["amazon"] * 2 + ["movies"] * 3 + ["tweets"] * 2 + ["nyt"] * 2
    np.testing.assert_allclose(rating, [-0.9, 2.35, 2.26666666667, -3.875, 0.4, 2.726315789, -2.154639175, 0.15, -1.15])
    assert sentences.target_names.tolist() == ["negative", "positive"] and "Hutto" in sentences.DESCR


def fields(sentences):
    return sentences.data, sentences.target, sentences.source, sentences.rating


def test_every_form_of_the_data_gives_the_same_sentences(sdist, tmp_path):
    expected = fields(load_sentiment_sentences(data_home=sdist.parent))
    inner = tmp_path / "inner" / "hutto_ICWSM_2014.tar.gz"
    inner.parent.mkdir()
    inner.write_bytes(inner_tarball())
    extracted = tmp_path / "extracted"
    with tarfile.open(sdist) as archive:
        archive.extractall(extracted, filter="data")
    sdist_folder = extracted / "vaderSentiment-3.3.2"
    with tarfile.open(sdist_folder / "additional_resources" / "hutto_ICWSM_2014.tar.gz") as archive:
        archive.extractall(tmp_path / "flat", filter="data")
    for data_home in (inner.parent, extracted, tmp_path / "flat"):  # the inner tarball, the sdist or it extracted
        got = fields(load_sentiment_sentences(data_home=data_home, download_if_missing=False))
        assert got[0] == expected[0], data_home
        for got_array, expected_array in zip(got[1:], expected[1:], strict=True):
            np.testing.assert_array_equal(got_array, expected_array)


def test_sources_and_rating_threshold(sdist):
    texts, y, source, _ = fields(load_sentiment_sentences(sources=("tweets", "amazon"), data_home=sdist.parent))
    assert source.tolist() == ["tweets", "tweets", "amazon", "amazon"] and texts[0] == "So lucky <3"
    texts, _, source, _ = fields(load_sentiment_sentences(sources="movies", data_home=sdist.parent))
    assert set(source) == {"movies"} and len(texts) == 3
    rating = load_sentiment_sentences(min_abs_rating=1.0, data_home=sdist.parent).rating
    assert np.all(np.abs(rating) > 1.0) and len(rating) == 6
    with pytest.raises(ValueError, match="sources must be a non-empty subset"):
        load_sentiment_sentences(sources=("amazon", "imdb"), data_home=sdist.parent)
    with pytest.raises(ValueError, match="sources must be"):
        load_sentiment_sentences(sources=(), data_home=sdist.parent)
    with pytest.raises(ValueError, match="min_abs_rating"):
        load_sentiment_sentences(min_abs_rating=-1, data_home=sdist.parent)


def test_default_path_is_the_data_cache(sdist, tmp_path, monkeypatch):
    monkeypatch.setenv("SKCAL_DATA", str(tmp_path))
    assert get_data_home() == tmp_path
    assert len(load_sentiment_sentences().data) == 9
    monkeypatch.setenv("SKCAL_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as error:
        load_sentiment_sentences(download_if_missing=False)
    message = str(error.value)
    assert "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d" in message
    assert str(tmp_path / "empty") in message and "install_data.sh" in message


def test_missing_and_corrupt_data(sdist, tmp_path):
    with pytest.raises(FileNotFoundError, match="vaderSentiment==3.3.2"):
        load_sentiment_sentences(data_home=tmp_path / "nothing", download_if_missing=False)
    (tmp_path / "empty" / "hutto_ICWSM_2014").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="has none of"):
        load_sentiment_sentences(data_home=tmp_path / "empty")
    truncated = tmp_path / "truncated" / VADER_SDIST
    truncated.parent.mkdir()
    truncated.write_bytes(sdist.read_bytes()[: sdist.stat().st_size // 2])
    with pytest.raises(ValueError, match=f"{truncated}.*not a readable tarball"):
        load_sentiment_sentences(data_home=truncated.parent)
    other = tmp_path / "other" / VADER_SDIST
    other.parent.mkdir()
    other.write_bytes(tar_bytes({"pkg/setup.py": b""}))
    with pytest.raises(ValueError, match="is it the vaderSentiment 3.3.2 sdist"):
        load_sentiment_sentences(data_home=other.parent)


@pytest.mark.parametrize(
    "line, problem",
    [("3\t9.5\ttoo high", "rating"), ("3\t1.5", "no text"), ("3\tgood\tnot a number", "rating"), ("3\t1.0\t ", "")],
)
def test_malformed_lines_name_the_file_and_line(tmp_path, line, problem):
    bad = dict(GROUND_TRUTH)
    bad["tweets_GroundTruth.txt"] += line + "\r\n"
    (tmp_path / VADER_SDIST).write_bytes(sdist_bytes(inner_tarball(bad)))
    with pytest.raises(ValueError, match=r"tweets_GroundTruth.txt, line 3: expected ID<TAB>rating"):
        load_sentiment_sentences(data_home=tmp_path)
    assert len(load_sentiment_sentences(sources="nyt", data_home=tmp_path).data) == 2  # the other files are fine


def test_non_utf8_text(tmp_path):
    folder = tmp_path / "hutto_ICWSM_2014"
    folder.mkdir()
    for name, text in GROUND_TRUTH.items():
        (folder / name).write_bytes(text.encode("utf-16") if name.startswith("nyt") else text.encode())
    with pytest.raises(ValueError, match="nytEditorialSnippets_GroundTruth.txt is not UTF-8"):
        load_sentiment_sentences(data_home=tmp_path)


def test_the_installed_sdist():
    path = get_data_home() / VADER_SDIST
    if not path.exists():
        if os.environ.get("SKCAL_REQUIRE_DATA"):
            pytest.fail(f"No {path}; run scripts/install_data.sh")
        pytest.skip(f"No {path}; scripts/install_data.sh downloads it")
    raw = {}  # counted straight from the tarball, independently of the loader
    with tarfile.open(path) as sdist:
        inner = sdist.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
        for name, stem in SENTIMENT_SOURCES.items():
            lines = archive.extractfile(f"hutto_ICWSM_2014/{stem}_GroundTruth.txt").read().splitlines()
            raw[name] = [float(line.split(b"\t")[1]) for line in lines if line.strip()]
    assert {name: len(ratings) for name, ratings in raw.items()} == {
        "amazon": 3708,
        "movies": 10605,
        "tweets": 4200,
        "nyt": 5190,
    }
    texts, y, source, rating = fields(load_sentiment_sentences(download_if_missing=False))
    for name, ratings in raw.items():
        assert (source == name).sum() == sum(value != 0 for value in ratings)
    assert len(texts) == len(y) == len(rating) == 23_320 and all(texts)
    assert np.bincount(y).tolist() == [10_849, 12_471]
    assert np.all(rating != 0) and np.all(np.abs(rating) <= 4) and np.array_equal(y, (rating > 0).astype(int))
    assert not any("&amp;" in text or "&lt;" in text for text in texts)
    assert "Skadden, Arps, Slate, Meagher & Flom, the huge New York law firm" in " ".join(texts)
