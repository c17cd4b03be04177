import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from skcal.bench import load_benchmark_data
from skcal.cli import main
from skcal.datasets import load_anndata, load_digits_images, load_medmnist_npz, load_text_csv


@pytest.fixture
def h5ad(tmp_path):
    import anndata

    rng = np.random.default_rng(0)
    types = np.array(["B", "T", "NK"])[rng.integers(0, 3, 240)]
    centres = rng.gamma(1.0, 2.0, size=(3, 40)) * (rng.random((3, 40)) < 0.3)
    counts = rng.poisson(centres[np.searchsorted(["B", "NK", "T"], types)])
    obs = pd.DataFrame({"cell_type": types}, index=[f"cell{i}" for i in range(len(types))])
    adata = anndata.AnnData(sp.csr_matrix(counts.astype(np.float32)), obs=obs)
    adata.layers["raw"] = adata.X.copy()
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    return path


def test_anndata_stays_sparse_and_reads_labels(h5ad):
    X, y = load_anndata(h5ad, "cell_type", return_X_y=True)
    assert sp.issparse(X) and X.shape == (240, 40) and X.dtype == np.float32
    assert set(y) == {"B", "T", "NK"}
    X_layer = load_anndata(h5ad, "cell_type", layer="raw").data
    assert (X_layer != X).nnz == 0


def test_anndata_library_size_normalisation_and_log1p(h5ad):
    import anndata

    adata = anndata.read_h5ad(h5ad)
    counts = adata.X.toarray()
    X = load_anndata(adata, "cell_type", normalize=True, target_sum=100.0).data
    assert sp.issparse(X) and X.dtype == np.float32
    expected = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 100.0)
    np.testing.assert_allclose(X.toarray(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(adata.X.toarray(), counts)  # the caller's object is untouched
    adata.X = adata.X.toarray() - 1.0
    with pytest.raises(ValueError, match="non-negative counts"):
        load_anndata(adata, "cell_type", normalize=True)


def test_anndata_errors(h5ad, tmp_path):
    import anndata

    with pytest.raises(KeyError, match="no column 'celltype'.*'cell_type'"):
        load_anndata(h5ad, "celltype")
    with pytest.raises(KeyError, match="no layer 'spliced'"):
        load_anndata(h5ad, "cell_type", layer="spliced")
    with pytest.raises(FileNotFoundError):
        load_anndata(tmp_path / "none.h5ad", "cell_type")
    adata = anndata.read_h5ad(h5ad)
    adata.obs.loc[adata.obs.index[:3], "cell_type"] = np.nan
    with pytest.raises(ValueError, match="3 cells have no 'cell_type' label"):
        load_anndata(adata, "cell_type")


def test_bench_on_a_user_h5ad(h5ad, tmp_path):
    code = main(
        [
            "bench",
            "--dataset",
            str(h5ad),
            "--label-key",
            "cell_type",
            "--methods",
            "retrain,sd",
            "--budgets",
            "0.2",
            "--seeds",
            "1",
            "--max-epochs",
            "5",
            "--round-epochs",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == 0 and (tmp_path / "out" / "cells" / "table.txt").exists()


def write_medmnist(path, channels=None, labels_shape=(1,)):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 30), ("val", 5), ("test", 10)):
        shape = (n, 28, 28) if channels is None else (n, 28, 28, channels)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 4, (n, *labels_shape))
    np.savez(path, **arrays)


def test_medmnist_npz_grey_and_colour(tmp_path):
    write_medmnist(tmp_path / "grey.npz")
    X, y = load_medmnist_npz(tmp_path / "grey.npz", "test", return_X_y=True)
    assert X.shape == (10, 1, 28, 28) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert y.shape == (10,) and y.dtype == np.int64
    write_medmnist(tmp_path / "colour.npz", channels=3)
    X = load_medmnist_npz(tmp_path / "colour.npz").data
    assert X.shape == (30, 3, 28, 28)
    data = load_benchmark_data(str(tmp_path / "colour.npz"))
    assert data.X.shape == (40, 3, 28, 28) and data.estimator_params["module__in_channels"] == 3


def test_medmnist_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(KeyError, match=r"lacks \['train_labels'\]"):
        load_medmnist_npz(tmp_path / "bad.npz")
    write_medmnist(tmp_path / "multi.npz", labels_shape=(14,))
    with pytest.raises(ValueError, match="multi-label"):
        load_medmnist_npz(tmp_path / "multi.npz")
    with pytest.raises(ValueError, match="split must be"):
        load_medmnist_npz(tmp_path / "multi.npz", "validation")
    with pytest.raises(FileNotFoundError):
        load_medmnist_npz(tmp_path / "none.npz")


def test_text_csv(tmp_path):
    frame = pd.DataFrame({"text": ["a red fox", "a blue whale", "the red sun", None], "label": ["x", "y", "x", "y"]})
    frame.to_csv(tmp_path / "texts.csv", index=False)
    texts, y = load_text_csv(tmp_path / "texts.csv", return_X_y=True)
    assert texts[3] == "" and y.tolist() == ["x", "y", "x", "y"]
    data = load_benchmark_data(str(tmp_path / "texts.csv"))
    assert sp.issparse(data.X) and data.X.shape[0] == 4
    with pytest.raises(KeyError, match=r"lacks column\(s\) \['body'\]"):
        load_text_csv(tmp_path / "texts.csv", text_column="body")
    frame.assign(label=["x", None, "x", "y"]).to_csv(tmp_path / "gaps.csv", index=False)
    with pytest.raises(ValueError, match="1 rows of gaps.csv have no label"):
        load_text_csv(tmp_path / "gaps.csv")


def test_digits_images():
    X, y = load_digits_images(return_X_y=True)
    assert X.shape == (1797, 1, 8, 8) and X.max() == 1.0 and set(y) == set(range(10))


WORDNET_LINES = [  # data.noun's real layout: licence lines start with two spaces, records end in two
    "  1 This software and database is being provided to you, the LICENSEE, by",
    "  2 Princeton University under the following license.",
    "00015388 03 n 01 animal 0 002 @ 00004475 n 0000 ~ 01313093 n 0000 "
    "| a living organism characterized by voluntary movement  ",
    "01317541 05 n 01 domestic_animal 0 001 @ 00015388 n 0000 "
    '| any of various animals that have been tamed; "the dog is a domestic animal"  ',
    '02084071 05 n 02 dog 0 domestic_dog 0 001 @ 01317541 n 0000 | a member of the genus Canis; "the dog barked"  ',
    "07555863 13 n 01 food 0 001 @ 00021265 n 0000 | any solid substance that is used as a source of nourishment  ",
    "03082979 06 n 01 computer 0 001 @ 03699975 n 0000 | a machine for performing calculations automatically  ",
]
WORDNET_SAMPLE = "\n".join(WORDNET_LINES) + "\n"


def test_wordnet_glosses_from_the_real_format(tmp_path):
    from skcal.datasets import load_wordnet_glosses

    (tmp_path / "wordnet").mkdir()
    (tmp_path / "wordnet" / "data.noun").write_text(WORDNET_SAMPLE)
    texts, y = load_wordnet_glosses(data_home=tmp_path, return_X_y=True)
    assert y.tolist() == ["noun.Tops", "noun.animal", "noun.animal", "noun.food", "noun.artifact"]
    assert texts[2] == "a member of the genus Canis"  # the definition, without the usage example
    texts, y = load_wordnet_glosses(
        categories=["noun.animal", "noun.food"], max_per_category=1, random_state=0, data_home=tmp_path, return_X_y=True
    )
    assert sorted(y.tolist()) == ["noun.animal", "noun.food"]
    with pytest.raises(ValueError, match="Unknown WordNet categories"):
        load_wordnet_glosses(categories=["noun.animals"], data_home=tmp_path)
    with pytest.raises(ValueError, match="pos must be"):
        load_wordnet_glosses(pos="nouns", data_home=tmp_path)
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        load_wordnet_glosses(data_home=tmp_path / "missing")


def test_wordnet_glosses_on_the_installed_files():
    from pathlib import Path

    from skcal.datasets import load_wordnet_glosses

    if not Path("/usr/share/wordnet/data.noun").exists():
        pytest.skip("Debian's wordnet-base is not installed")
    texts, y = load_wordnet_glosses(
        categories=["noun.animal", "noun.food", "noun.plant", "noun.artifact"], data_home="/usr/share", return_X_y=True
    )
    assert len(texts) > 10_000 and set(y) == {"noun.animal", "noun.food", "noun.plant", "noun.artifact"}
    assert all(texts[:100])


def test_load_medmnist_through_the_package(tmp_path):
    pytest.importorskip("medmnist")
    from skcal.datasets import load_medmnist

    (tmp_path / "medmnist").mkdir()
    write_medmnist(tmp_path / "medmnist" / "dermamnist.npz", channels=3)
    dermamnist = load_medmnist("dermamnist", "test", data_home=tmp_path)
    X, y = dermamnist.data, dermamnist.target
    assert X.shape == (10, 3, 28, 28) and X.dtype == np.float32 and y.shape == (10,)
    np.testing.assert_array_equal(X, load_medmnist_npz(tmp_path / "medmnist" / "dermamnist.npz", "test").data)
    assert len(dermamnist.target_names) == 7 and dermamnist.target_names[4] == "melanoma"
    with pytest.raises(FileNotFoundError, match="pathmnist.npz"):
        load_medmnist("pathmnist", data_home=tmp_path, download_if_missing=False)
    with pytest.raises(ValueError, match="Unknown MedMNIST flag"):
        load_medmnist("dermmnist", data_home=tmp_path)
    with pytest.raises(ValueError, match="multi-label"):
        load_medmnist("chestmnist", data_home=tmp_path)


def test_bench_on_medmnist_from_a_data_root(tmp_path):
    pytest.importorskip("medmnist")
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 120), ("val", 10), ("test", 40)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 3, (n, 1))
    np.savez(tmp_path / "dermamnist.npz", **arrays)
    code = main(
        [
            "bench",
            "--dataset",
            "medmnist",
            "--data-root",
            str(tmp_path),
            "--methods",
            "retrain,er",
            "--budgets",
            "0.2",
            "--seeds",
            "1",
            "--max-epochs",
            "2",
            "--round-epochs",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    assert code == 0 and (tmp_path / "out" / "dermamnist" / "table.txt").exists()


def test_sparse_history_is_never_densified_whole(monkeypatch):
    from skcal import ContinualActiveClassifier
    from skcal.models import MLP

    densified = []
    original = sp.csr_matrix.toarray

    def recording_toarray(self, *args, **kwargs):
        densified.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", recording_toarray)
    X = sp.random(3000, 2000, density=0.002, format="csr", dtype=np.float32, random_state=0)
    y = np.arange(3000) % 4
    net = ContinualActiveClassifier(
        MLP,
        module__hidden=(16,),
        batch_size=64,
        replay_size=64,
        max_epochs=2,
        round_epochs=2,
        verbose=0,
        random_state=0,
    )
    net.fit(X[:2000], y[:2000]).partial_fit(X[2000:2500], y[2000:2500])
    net.predict(X[2500:])
    assert net.labelled_history_.is_sparse
    assert densified and max(densified) <= 64  # one batch at a time, never the matrix
