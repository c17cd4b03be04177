"""The loaders in scikit-learn's form: a Bunch, return_X_y, one data_home, downloads; the old forms deprecated."""

import functools
import gzip
import hashlib
import http.server
import inspect
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.utils import Bunch
from test_datasets import WORDNET_SAMPLE, write_medmnist
from test_datasets_fashion_mnist import idx_bytes, write_split
from test_datasets_sentiment import inner_tarball, sdist_bytes

from skcal import datasets
from skcal.bench import load_benchmark_data
from skcal.datasets import (
    FASHION_MNIST_CLASSES,
    VADER_SDIST,
    get_data_home,
    load_anndata,
    load_digits_images,
    load_fashion_mnist,
    load_medmnist,
    load_medmnist_npz,
    load_pbmc68k,
    load_sentiment_sentences,
    load_text_csv,
    load_wordnet_glosses,
)


@pytest.fixture
def data_home(tmp_path):
    """A data cache holding small copies of every dataset, in the layout the loaders look for."""
    rng = np.random.default_rng(0)
    home = tmp_path / "cache"
    write_split(home / "fashion-mnist", "train", rng.integers(0, 256, (12, 28, 28)), np.arange(12) % 10)
    write_split(home / "fashion-mnist", "t10k", rng.integers(0, 256, (5, 28, 28)), [9, 2, 1, 1, 6])
    (home / "wordnet").mkdir()
    (home / "wordnet" / "data.noun").write_text(WORDNET_SAMPLE)
    (home / VADER_SDIST).write_bytes(sdist_bytes(inner_tarball()))
    (home / "medmnist").mkdir()
    write_medmnist(home / "medmnist" / "dermamnist.npz", channels=3)
    return home


@pytest.fixture
def files(tmp_path):
    """A user's own files: an .h5ad, a MedMNIST .npz and a text CSV."""
    import anndata

    obs = pd.DataFrame({"cell_type": ["B", "T", "NK", "T"]}, index=[f"cell{i}" for i in range(4)])
    adata = anndata.AnnData(sp.csr_matrix(np.eye(4, 3, dtype=np.float32)), obs=obs)
    adata.var_names = ["CD19", "CD3E", "NCAM1"]
    adata.write_h5ad(tmp_path / "cells.h5ad")
    write_medmnist(tmp_path / "grey.npz")
    pd.DataFrame({"text": ["a red fox", "a blue whale", "the red sun"], "label": ["x", "y", "x"]}).to_csv(
        tmp_path / "texts.csv", index=False
    )
    return tmp_path


def every_loader(data_home, files):
    """Each loader, called the new way, by name: (the call, the extra fields it must have)."""
    return {
        "digits": (load_digits_images, ()),
        "pbmc68k": (load_pbmc68k, ("feature_names", "obs")),
        "anndata": (functools.partial(load_anndata, files / "cells.h5ad", "cell_type"), ("feature_names", "obs")),
        "medmnist_npz": (functools.partial(load_medmnist_npz, files / "grey.npz"), ()),
        "medmnist": (functools.partial(load_medmnist, "dermamnist", data_home=data_home), ()),
        "text_csv": (functools.partial(load_text_csv, files / "texts.csv"), ("frame",)),
        "wordnet": (functools.partial(load_wordnet_glosses, data_home=data_home), ("pos",)),
        "fashion_mnist": (functools.partial(load_fashion_mnist, data_home=data_home), ()),
        "sentiment": (functools.partial(load_sentiment_sentences, data_home=data_home), ("source", "rating")),
    }


LOADERS = ("digits", "pbmc68k", "anndata", "medmnist_npz", "medmnist", "text_csv", "wordnet", "fashion_mnist")


@pytest.mark.parametrize("name", [*LOADERS, "sentiment"])
def test_every_loader_returns_a_bunch_or_x_and_y(name, data_home, files):
    if name == "medmnist":
        pytest.importorskip("medmnist")
    load, extra = every_loader(data_home, files)[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new forms warn about nothing
        bunch = load()
        X, y = load(return_X_y=True)
    assert isinstance(bunch, Bunch)
    assert {"data", "target", "target_names", "DESCR", *extra} <= set(bunch.keys())
    assert isinstance(bunch.DESCR, str) and len(bunch.DESCR) > 20
    assert len(bunch.data if isinstance(bunch.data, list) else bunch.data.shape[:1]) and len(bunch.target)
    assert set(np.unique(bunch.target).tolist()) <= set(range(len(bunch.target_names))) | set(
        bunch.target_names.tolist()
    )  # every label is a class number or one of the names
    if isinstance(X, list):
        assert X == bunch.data
    elif sp.issparse(X):
        assert (X != bunch.data).nnz == 0
    else:
        np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)
    assert dict(bunch).keys() == bunch.keys()  # a dict like any Bunch


def test_the_fields_of_each_dataset(data_home, files):
    fashion = load_fashion_mnist(split="test", data_home=data_home)
    assert fashion.target_names.tolist() == list(FASHION_MNIST_CLASSES) and fashion.target.tolist() == [9, 2, 1, 1, 6]
    sentences = load_sentiment_sentences(data_home=data_home)
    assert sentences.target_names.tolist() == ["negative", "positive"] and len(sentences.rating) == 9
    assert sentences.source.tolist()[:2] == ["amazon", "amazon"]
    cells = load_anndata(files / "cells.h5ad", "cell_type")
    assert cells.feature_names.tolist() == ["CD19", "CD3E", "NCAM1"] and cells.target_names.tolist() == ["B", "NK", "T"]
    assert cells.obs.index.tolist() == ["cell0", "cell1", "cell2", "cell3"]
    texts = load_text_csv(files / "texts.csv")
    assert texts.data == ["a red fox", "a blue whale", "the red sun"] and texts.frame.shape == (3, 2)
    glosses = load_wordnet_glosses(data_home=data_home)
    assert glosses.pos.tolist() == ["noun"] * 5 and glosses.target_names.tolist()[0] == "noun.Tops"
    assert load_digits_images().target_names.tolist() == list(range(10))


def test_every_dataset_that_lives_in_files_takes_data_home_and_nothing_else():
    folder_loaders = (load_fashion_mnist, load_medmnist, load_wordnet_glosses, load_sentiment_sentences)
    for loader in folder_loaders:
        parameters = inspect.signature(loader).parameters
        assert parameters["data_home"].kind is inspect.Parameter.KEYWORD_ONLY, loader.__name__
        assert parameters["data_home"].default is None
        for deprecated in ("root", "path"):
            assert deprecated not in parameters or parameters[deprecated].default == "deprecated", loader.__name__
    for loader in (*folder_loaders, load_digits_images, load_pbmc68k, load_anndata, load_medmnist_npz, load_text_csv):
        assert inspect.signature(loader).parameters["return_X_y"].kind is inspect.Parameter.KEYWORD_ONLY
    for loader in (load_fashion_mnist, load_medmnist, load_sentiment_sentences):  # the ones that can fetch
        assert inspect.signature(loader).parameters["download_if_missing"].default is True


def test_data_home_is_the_cache_and_the_default_is_skcal_data(data_home, monkeypatch):
    monkeypatch.setenv("SKCAL_DATA", str(data_home))
    assert get_data_home() == data_home and get_data_home("~/elsewhere").name == "elsewhere"
    assert "~" not in str(get_data_home("~/elsewhere"))
    assert len(load_fashion_mnist(split="test").target) == 5  # $SKCAL_DATA/fashion-mnist
    assert len(load_wordnet_glosses().target) == 5  # $SKCAL_DATA/wordnet first, before Debian's
    assert len(load_sentiment_sentences().target) == 9  # $SKCAL_DATA/vaderSentiment-3.3.2.tar.gz


# -- the old forms: still working for one release, with a FutureWarning


def test_unpacking_the_old_tuples_still_works_with_a_future_warning(data_home):
    with pytest.warns(FutureWarning, match=r"load_fashion_mnist\(\) returns a Bunch.*\(X, y, class_names\)"):
        X, y, names = load_fashion_mnist(split="test", data_home=data_home)
    assert X.shape == (5, 1, 28, 28) and y.tolist() == [9, 2, 1, 1, 6] and names == FASHION_MNIST_CLASSES
    with pytest.warns(FutureWarning, match=r"\(texts, y, source, rating\).*stops working in skcal 0.3"):
        texts, y, source, rating = load_sentiment_sentences(data_home=data_home)
    assert len(texts) == len(y) == len(source) == len(rating) == 9
    with pytest.warns(FutureWarning, match="return_X_y=True"):
        X, y = load_digits_images()
    assert X.shape == (1797, 1, 8, 8)
    with pytest.warns(FutureWarning, match="load_wordnet_glosses"):
        assert load_wordnet_glosses(data_home=data_home)[1].tolist()[0] == "noun.Tops"  # indexing too


def test_the_old_folder_arguments_still_work_with_a_future_warning(data_home):
    with pytest.warns(FutureWarning, match=r"load_fashion_mnist\(root=...\) is deprecated.*data_home="):
        fashion = load_fashion_mnist(data_home / "fashion-mnist", "test")
    assert fashion.target.tolist() == [9, 2, 1, 1, 6]
    with pytest.warns(FutureWarning, match=r"load_fashion_mnist\(root=...\)"):
        with pytest.raises(FileNotFoundError):  # the old form never downloaded, and still does not
            load_fashion_mnist(root=data_home / "nothing")
    with pytest.warns(FutureWarning, match=r"load_wordnet_glosses\(path=...\)"):
        assert len(load_wordnet_glosses(data_home / "wordnet").target) == 5
    with pytest.warns(FutureWarning, match=r"load_sentiment_sentences\(path=...\)"):
        assert len(load_sentiment_sentences(path=data_home / VADER_SDIST).target) == 9
    with pytest.raises(ValueError, match="not both"):
        load_fashion_mnist(root=data_home / "fashion-mnist", data_home=data_home)


def test_the_old_medmnist_arguments_still_work_with_a_future_warning(data_home):
    pytest.importorskip("medmnist")
    with pytest.warns(FutureWarning, match=r"load_medmnist\(root=...\)"):
        X, y = load_medmnist("dermamnist", "test", root=data_home / "medmnist", return_X_y=True)
    assert X.shape == (10, 3, 28, 28)
    with pytest.warns(FutureWarning, match=r"load_medmnist\(root=...\)"):
        with pytest.raises(FileNotFoundError, match="pathmnist.npz"):  # root= alone never downloaded
            load_medmnist("pathmnist", root=data_home / "medmnist")
    with pytest.warns(FutureWarning, match=r"load_medmnist\(download=...\).*download_if_missing"):
        with pytest.raises(FileNotFoundError, match="pathmnist.npz"):
            load_medmnist("pathmnist", data_home=data_home, download=False)


def test_the_benchmark_loads_every_dataset_the_new_way(data_home, files, monkeypatch):
    monkeypatch.setenv("SKCAL_DATA", str(data_home))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for dataset in ("digits", "fashion-mnist", str(files / "grey.npz"), str(files / "texts.csv")):
            assert len(load_benchmark_data(dataset).y)
        assert len(load_benchmark_data("sentiment").y) == 9
        assert len(load_benchmark_data(str(files / "cells.h5ad"), label_key="cell_type").y) == 4
        pytest.importorskip("medmnist")
        assert len(load_benchmark_data("medmnist", data_root=str(data_home / "medmnist")).y) == 40


# -- downloads, from a local server


class Server:
    """An HTTP server on 127.0.0.1 serving a folder; counts the requests it answers."""

    def __init__(self, folder):
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def published_fashion_mnist(folder):
    """Write the test split as Zalando publishes it (gzipped IDX); return each file's MD5."""
    folder.mkdir()
    images = np.random.default_rng(1).integers(0, 256, (7, 28, 28), dtype=np.uint8)
    digests = {}
    for name, array in (("t10k-images-idx3-ubyte.gz", images), ("t10k-labels-idx1-ubyte.gz", np.arange(7))):
        data = gzip.compress(idx_bytes(array))
        (folder / name).write_bytes(data)
        digests[name] = hashlib.md5(data).hexdigest()
    return images, digests


def test_fashion_mnist_downloads_a_missing_split_once(tmp_path, monkeypatch):
    images, digests = published_fashion_mnist(tmp_path / "site")
    with Server(tmp_path / "site") as server:
        monkeypatch.setattr(datasets.images, "FASHION_MNIST_URLS", (server.url + "gone/", server.url))
        monkeypatch.setattr(datasets.images, "FASHION_MNIST_MD5", digests)
        with pytest.raises(FileNotFoundError, match="download_if_missing=True"):
            load_fashion_mnist(split="test", data_home=tmp_path / "cache", download_if_missing=False)
        assert server.requests == []
        fashion = load_fashion_mnist(split="test", data_home=tmp_path / "cache")
        np.testing.assert_allclose(fashion.data[:, 0], images / 255.0, rtol=1e-6)
        assert fashion.target.tolist() == list(range(7))
        assert sorted(path.name for path in (tmp_path / "cache" / "fashion-mnist").iterdir()) == sorted(digests)
        assert len(server.requests) == 4  # each file: the first URL fails (404), the second answers
        load_fashion_mnist(split="test", data_home=tmp_path / "cache")
        assert len(server.requests) == 4  # read from the cache, not downloaded again


def test_a_download_with_the_wrong_checksum_is_not_kept(tmp_path, monkeypatch):
    _, digests = published_fashion_mnist(tmp_path / "site")
    with Server(tmp_path / "site") as server:
        monkeypatch.setattr(datasets.images, "FASHION_MNIST_URLS", (server.url,))
        monkeypatch.setattr(datasets.images, "FASHION_MNIST_MD5", {name: "0" * 32 for name in digests})
        with pytest.raises(FileNotFoundError, match=f"md5 {digests['t10k-images-idx3-ubyte.gz']}, expected 0000"):
            load_fashion_mnist(split="test", data_home=tmp_path / "cache")
    assert list((tmp_path / "cache" / "fashion-mnist").iterdir()) == []  # no partial or corrupt file left


def test_the_sentiment_sdist_is_downloaded_into_data_home(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    sdist = sdist_bytes(inner_tarball())
    (tmp_path / "site" / VADER_SDIST).write_bytes(sdist)
    with Server(tmp_path / "site") as server:
        monkeypatch.setattr(datasets.sentiment, "VADER_URLS", (server.url + VADER_SDIST,))
        monkeypatch.setattr(datasets.sentiment, "VADER_SHA256", hashlib.sha256(sdist).hexdigest())
        with pytest.raises(FileNotFoundError, match="pip download"):
            load_sentiment_sentences(data_home=tmp_path / "cache", download_if_missing=False)
        sentences = load_sentiment_sentences(data_home=tmp_path / "cache")
        assert len(sentences.data) == 9 and (tmp_path / "cache" / VADER_SDIST).read_bytes() == sdist
        assert server.requests == [f"/{VADER_SDIST}"]
        monkeypatch.setattr(datasets.sentiment, "VADER_URLS", (server.url + "missing.tar.gz",))
        with pytest.raises(FileNotFoundError, match="404"):
            load_sentiment_sentences(data_home=tmp_path / "elsewhere")
