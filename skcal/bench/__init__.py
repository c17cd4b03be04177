"""The paper's experiment: every method, the same AL campaign, speedup against standard AL.

The protocol is described in ``docs/protocol.md``: the seed round and
``retrain``/``warmstart`` rounds train until the training accuracy reaches
0.99 (at most ``max_epochs`` epochs); CAL rounds train a fixed
``round_epochs`` epochs over the new points with replay (or ``"auto"``, as
the estimator decides). Queries use entropy sampling. For every seed, all
methods start from the same random seed set and the same pool and test set.
Speedup at a labelled fraction is the cumulative training time of
``retrain`` divided by the method's, measured in the same run (and the same
ratio of samples backpropagated, which machine noise cannot touch).

Datasets (:func:`load_benchmark_data`) and the networks trained on them
(``model``):

========================  =========================================  ==============================
dataset                   pool and test set                          models (default first)
========================  =========================================  ==============================
``digits``                1797 8x8 images, 75/25 split per seed      ``cnn``, ``mlp``, ``resnet18``
``fashion-mnist``         the 60,000 training / 10,000 test images   ``mlp``, ``cnn``, ``resnet18``
``medmnist``, ``.npz``    train and test pooled, 75/25 per seed      ``cnn``, ``mlp``, ``resnet18``
``pbmc68k``, ``.h5ad``    75/25 per seed                             ``mlp`` (ACTINN)
``sentiment``             23,320 rated sentences, 75/25 per seed     ``mlp`` (on MiniLM embeddings), ``minilm``
``wordnet``               95,882 noun+verb glosses, 41 categories    ``mlp`` (on MiniLM embeddings), ``minilm``
``.csv`` (text, label)    75/25 per seed                             ``mlp`` (on TF-IDF), ``minilm``
========================  =========================================  ==============================

``quick=True`` keeps runs short: ``wordnet`` becomes the 2000-gloss,
5-category noun task on TF-IDF, ``fashion-mnist`` draws a pool of 10,000
images (tested on all 10,000 test images) and ``sentiment`` 4,000 sentences
(2,000 to test). ``minilm`` (end-to-end fine-tuning of all-MiniLM-L6-v2, the
paper's BERT setting) always works on a subsample (:data:`MINILM_SIZES`).
``pool_size``/``test_size`` subsample any dataset, stratified by class and
seeded by the campaign's seed.

Finished campaigns are stored one file each (:class:`CampaignStore`) as soon
as they end; a rerun into the same folder loads them instead of training
again, after checking that they were run with the same settings. The
campaigns still to train run here, one after another, or with
``scheduler=`` as one task each on a Dask cluster, with the same accuracies
(:mod:`skcal.bench.runners`).

Every input is checked before any training (:func:`check_arguments`,
:func:`check_device`, :func:`load_benchmark_data`, :func:`plan_benchmark`,
:func:`apply_epochs`, :meth:`CampaignStore.finished`,
:func:`prepare_output`); a bad one raises :class:`BenchmarkInputError`,
which names the argument at fault.

The package, one module per concern (the public names are importable from here too):

==============  ===========================================================================
``data``        the datasets, the networks each takes, :class:`BenchmarkData`
``networks``    each kind of data's network and training settings
``loading``     :func:`load_benchmark_data`
``arguments``   the arguments' rules and checks, the query strategies
``plan``        :class:`BenchmarkPlan`, :func:`plan_benchmark`, :func:`campaign_split`
``store``       :class:`CampaignStore`, :func:`campaign_config`
``campaign``    :class:`Campaign`, :func:`campaign_data`, :func:`run_campaign`
``runners``     local and Dask runners, :func:`open_runner`, :func:`check_scheduler`
``progress``    :class:`BenchmarkProgress`
``run``         :func:`run_benchmark`, :class:`BenchmarkResult`
``report``      :func:`summarize`, :func:`format_table`, :func:`write_results`
``plots``       the paper's figures
``cli``         the ``skcal bench`` command
==============  ===========================================================================
"""

from ..exceptions import BenchmarkInputError, CampaignFailedError
from .arguments import (
    BAYESIAN_STRATEGIES,
    QUERY_STRATEGIES,
    apply_epochs,
    check_arguments,
    check_device,
    check_strategy,
    prepare_output,
)
from .campaign import Campaign, CampaignData, RowSource, campaign_data, campaign_line, run_campaign, warm_up
from .data import (
    BUILTIN_DATASETS,
    MINILM_MAX_LENGTH,
    MINILM_QUICK_SIZES,
    MINILM_SIZES,
    MODELS,
    MODELS_BY_KIND,
    NPZ_ARRAYS,
    QUICK_SIZES,
    USER_SUFFIXES,
    WORDNET_CATEGORIES,
    BenchmarkData,
    check_model,
    check_npz,
    dataset_kind,
)
from .loading import load_benchmark_data
from .networks import AugmentedResNet18, random_flip_crop
from .plan import BenchmarkPlan, campaign_split, plan_benchmark
from .progress import BenchmarkProgress
from .report import at_budget, confidence_interval, format_table, summarize, time_to_target, write_results
from .run import BenchmarkResult, run_benchmark
from .runners import (
    CampaignRunner,
    DaskCampaignRunner,
    LocalCampaignRunner,
    campaign_threads,
    check_scheduler,
    open_runner,
    run_campaign_task,
)
from .store import CAMPAIGN_FORMAT, CampaignStore, campaign_config

__all__ = [
    "BAYESIAN_STRATEGIES",
    "BUILTIN_DATASETS",
    "CAMPAIGN_FORMAT",
    "MINILM_MAX_LENGTH",
    "MINILM_QUICK_SIZES",
    "MINILM_SIZES",
    "MODELS",
    "MODELS_BY_KIND",
    "NPZ_ARRAYS",
    "QUERY_STRATEGIES",
    "QUICK_SIZES",
    "USER_SUFFIXES",
    "WORDNET_CATEGORIES",
    "AugmentedResNet18",
    "BenchmarkData",
    "BenchmarkInputError",
    "BenchmarkPlan",
    "BenchmarkProgress",
    "BenchmarkResult",
    "Campaign",
    "CampaignData",
    "CampaignFailedError",
    "CampaignRunner",
    "CampaignStore",
    "DaskCampaignRunner",
    "LocalCampaignRunner",
    "RowSource",
    "apply_epochs",
    "at_budget",
    "campaign_config",
    "campaign_data",
    "campaign_line",
    "campaign_split",
    "campaign_threads",
    "check_arguments",
    "check_device",
    "check_model",
    "check_npz",
    "check_scheduler",
    "check_strategy",
    "confidence_interval",
    "dataset_kind",
    "format_table",
    "load_benchmark_data",
    "open_runner",
    "plan_benchmark",
    "prepare_output",
    "random_flip_crop",
    "run_benchmark",
    "run_campaign",
    "run_campaign_task",
    "summarize",
    "time_to_target",
    "warm_up",
    "write_results",
]
