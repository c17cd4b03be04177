"""WordNet glosses at full size: nouns and verbs together, 41 lexicographer categories."""

import os
from pathlib import Path

import numpy as np
import pytest

from skcal.datasets import WORDNET_FULL_POS, load_wordnet_glosses

HEADER = [
    "  1 This software and database is being provided to you, the LICENSEE, by",
    "  2 Princeton University under the following license.",
]
NOUNS = HEADER + [  # data.noun's real layout: records end in two spaces
    "00015388 03 n 01 animal 0 002 @ 00004475 n 0000 ~ 01313093 n 0000 "
    "| a living organism characterized by voluntary movement  ",
    '02084071 05 n 02 dog 0 domestic_dog 0 001 @ 01317541 n 0000 | a member of the genus Canis; "the dog barked"  ',
    "07555863 13 n 01 food 0 001 @ 00021265 n 0000 | any solid substance that is used as a source of nourishment  ",
]
VERBS = HEADER + [  # data.verb's: verb frames ("02 + 02 00 + 08 00") before the gloss
    "00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 002 * 00005041 v 0000 "
    "+ 03110323 a 0301 02 + 02 00 + 08 00 "
    '| draw air into, and expel out of, the lungs; "I can breathe better when the air is clean"  ',
    "00200242 30 v 01 debug 0 002 @ 00199659 v 0000 + 06574334 n 0101 01 + 08 00 "
    '| locate and correct errors in a computer program code; "debug this program"  ',
    "01835496 38 v 01 travel 0 001 @ 01831531 v 0000 01 + 01 00 | change location; move, travel, or proceed  ",
]


@pytest.fixture
def wordnet(tmp_path):
    """A data cache whose wordnet/ folder holds data.noun and data.verb."""
    (tmp_path / "wordnet").mkdir()
    (tmp_path / "wordnet" / "data.noun").write_text("\n".join(NOUNS) + "\n")
    (tmp_path / "wordnet" / "data.verb").write_text("\n".join(VERBS) + "\n")
    return tmp_path


def test_nouns_and_verbs_together(wordnet):
    texts, y = load_wordnet_glosses(pos=WORDNET_FULL_POS, data_home=wordnet, return_X_y=True)
    assert y.tolist() == ["noun.Tops", "noun.animal", "noun.food", "verb.body", "verb.change", "verb.motion"]
    assert texts[3] == "draw air into, and expel out of, the lungs" and texts[4].endswith("computer program code")
    texts, y = load_wordnet_glosses(pos=["verb", "noun"], data_home=wordnet, return_X_y=True)
    assert y.tolist()[:3] == ["verb.body", "verb.change", "verb.motion"] and len(y) == 6


def test_the_default_is_still_nouns_alone(wordnet):
    texts, y = load_wordnet_glosses(data_home=wordnet, return_X_y=True)
    assert y.tolist() == ["noun.Tops", "noun.animal", "noun.food"]
    assert texts[1] == "a member of the genus Canis"
    assert load_wordnet_glosses(pos="verb", data_home=wordnet).target.tolist() == [
        "verb.body",
        "verb.change",
        "verb.motion",
    ]


def test_categories_and_sampling_across_parts_of_speech(wordnet):
    _, y = load_wordnet_glosses(
        pos=WORDNET_FULL_POS, categories=["noun.animal", "verb.motion"], data_home=wordnet, return_X_y=True
    )
    assert y.tolist() == ["noun.animal", "verb.motion"]
    _, y = load_wordnet_glosses(
        pos=WORDNET_FULL_POS, max_per_category=1, random_state=0, data_home=wordnet, return_X_y=True
    )
    assert sorted(y.tolist()) == sorted(set(y.tolist())) and len(y) == 6
    texts, y = load_wordnet_glosses(categories=["verb.motion"], max_per_category=5, data_home=wordnet, return_X_y=True)
    assert texts == [] and len(y) == 0  # no verbs read: an empty result, not an error


def test_errors(wordnet):
    (wordnet / "wordnet" / "data.verb").unlink()
    with pytest.raises(FileNotFoundError, match="data.verb.*wordnet-base"):
        load_wordnet_glosses(pos=WORDNET_FULL_POS, data_home=wordnet)
    for pos in ((), ("noun", "noun"), ("noun", "verbs"), "nouns"):
        with pytest.raises(ValueError, match="pos must be one of"):
            load_wordnet_glosses(pos=pos, data_home=wordnet)
    (wordnet / "wordnet" / "data.verb").write_text(
        "\n".join(VERBS[:3] + ["00002325 x9 v 01 respire 1 000 | undergo  "]) + "\n"
    )
    with pytest.raises(ValueError, match=r"data.verb, line 4: no valid lexicographer file number"):
        load_wordnet_glosses(pos="verb", data_home=wordnet)
    (wordnet / "wordnet" / "data.verb").write_text("00002325 45 v 01 respire 1 000 | undergo  \n")
    with pytest.raises(ValueError, match="line 1: no valid lexicographer"):
        load_wordnet_glosses(pos="verb", data_home=wordnet)


def test_the_installed_wordnet_at_full_size():
    root = Path("/usr/share/wordnet")
    if not (root / "data.verb").exists():
        if os.environ.get("SKCAL_REQUIRE_DATA"):
            pytest.fail("Debian's wordnet-base is not installed; run scripts/install_data.sh")
        pytest.skip("Debian's wordnet-base is not installed; scripts/install_data.sh installs it")
    texts, y = load_wordnet_glosses(pos=WORDNET_FULL_POS, data_home="/usr/share", return_X_y=True)
    assert len(texts) == len(y) == 95_882 and all(texts)
    labels, counts = np.unique(y, return_counts=True)
    assert len(labels) == 41 and sum(label.startswith("noun.") for label in labels) == 26
    assert sum(counts[np.char.startswith(labels, "noun.")]) == 82_115
    assert dict(zip(labels, counts, strict=True))["verb.motion"] > 1000 and counts.min() >= 1
