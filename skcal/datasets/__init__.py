"""Loaders for real datasets, in scikit-learn's form.

Every loader returns a :class:`~sklearn.utils.Bunch` with ``data`` (numpy
or scipy.sparse features, or a list of texts), ``target`` (numpy labels),
``target_names``, ``DESCR`` and the dataset's own extra fields; with
``return_X_y=True``, the tuple ``(data, target)``. Both are ready for
:class:`~skcal.ContinualActiveClassifier`.

Loaders of a named dataset kept in files take ``data_home``, the data cache
(:func:`get_data_home`: ``$SKCAL_DATA``, else ``~/.cache/skcal``): each
looks in its own folder under it (``fashion-mnist``, ``medmnist``,
``wordnet``; the vaderSentiment sdist lies in ``data_home`` itself), then
where a Debian or Python package installs the files, and, where the files
can be fetched, downloads them there unless ``download_if_missing=False``
(the download is checked against its published checksum).
``scripts/install_data.sh`` installs everything in advance. Loaders of
data bundled with a Python package (:func:`load_digits_images`,
:func:`load_pbmc68k`) have nothing to find; loaders of a file of your own
(:func:`load_anndata`, :func:`load_medmnist_npz`, :func:`load_text_csv`)
take that file.

Deprecated until skcal 0.3: unpacking or indexing a loader's result as the
tuple it returned before (``X, y, names = load_fashion_mnist()``), and the
folder arguments ``root=`` (:func:`load_fashion_mnist`,
:func:`load_medmnist`) and ``path=`` (:func:`load_wordnet_glosses`,
:func:`load_sentiment_sentences`), which named the dataset's own folder or
file. Both still work, with a ``FutureWarning``.
"""

from ._bunch import _TupleCompatibleBunch as _TupleCompatibleBunch  # unpickles results pickled before the split
from ._download import DOWNLOAD_TIMEOUT as DOWNLOAD_TIMEOUT
from ._download import logger as logger
from ._home import get_data_home
from .cells import PBMC68K_DESCR as PBMC68K_DESCR
from .cells import load_anndata, load_pbmc68k
from .images import DIGITS_DESCR as DIGITS_DESCR
from .images import FASHION_MNIST_CLASSES as FASHION_MNIST_CLASSES
from .images import FASHION_MNIST_DEBIAN_ROOT as FASHION_MNIST_DEBIAN_ROOT
from .images import FASHION_MNIST_DESCR as FASHION_MNIST_DESCR
from .images import FASHION_MNIST_MD5 as FASHION_MNIST_MD5
from .images import FASHION_MNIST_SPLITS as FASHION_MNIST_SPLITS
from .images import FASHION_MNIST_URLS as FASHION_MNIST_URLS
from .images import MEDMNIST_PACKAGE_ROOT as MEDMNIST_PACKAGE_ROOT
from .images import MEDMNIST_SPLITS as MEDMNIST_SPLITS
from .images import load_digits_images, load_fashion_mnist, load_medmnist, load_medmnist_npz
from .sentiment import SENTIMENT_DESCR as SENTIMENT_DESCR
from .sentiment import SENTIMENT_SOURCES as SENTIMENT_SOURCES
from .sentiment import VADER_SDIST as VADER_SDIST
from .sentiment import VADER_SHA256 as VADER_SHA256
from .sentiment import VADER_URLS as VADER_URLS
from .sentiment import load_sentiment_sentences
from .text import WORDNET_DEBIAN_ROOT as WORDNET_DEBIAN_ROOT
from .text import WORDNET_FULL_POS as WORDNET_FULL_POS
from .text import WORDNET_LEXNAMES as WORDNET_LEXNAMES
from .text import WORDNET_POS as WORDNET_POS
from .text import load_text_csv, load_wordnet_glosses

#: The functions the reference documents, in the order they were defined before the loaders were split into
#: modules. The constants above (``FASHION_MNIST_CLASSES``, ``WORDNET_FULL_POS``, ...) stay importable from here;
#: patch a loader's constant (``FASHION_MNIST_URLS``) on the module that defines it (:mod:`skcal.datasets.images`).
__all__ = [
    "get_data_home",
    "load_digits_images",
    "load_anndata",
    "load_pbmc68k",
    "load_medmnist_npz",
    "load_medmnist",
    "load_text_csv",
    "load_wordnet_glosses",
    "load_fashion_mnist",
    "load_sentiment_sentences",
]
