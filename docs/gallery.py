"""What the documentation's example gallery runs, and on which settings.

Every example in ``examples/`` is shown. Those that run in well under a minute
on two CPU cores run at build time, on their quick settings (the command-line
flags below), and their output is on the page. ``text_minilm.py`` (a
pretrained transformer: minutes on a CPU) and ``medmnist_resnet.py`` (needs a
MedMNIST download) are shown, not run.
"""

import re
from pathlib import Path

#: The examples run at build time.
EXECUTED = ("digits_modal.py", "single_cell.py")

#: Their quick settings: ``sys.argv[1:]`` by file name.
QUICK_ARGS = {"digits_modal.py": ["--rounds", "3"]}

#: sphinx-gallery's ``filename_pattern``: the examples it runs.
FILENAME_PATTERN = "/(" + "|".join(re.escape(name) for name in EXECUTED) + ")$"


def quick_argv(gallery_conf, script_vars):
    """Return ``sys.argv[1:]`` for an example the gallery runs (sphinx-gallery's ``reset_argv``)."""
    return QUICK_ARGS.get(Path(script_vars["src_file"]).name, [])
