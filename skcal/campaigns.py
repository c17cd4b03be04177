"""Shim: the campaigns and their runners moved to :mod:`skcal.bench`; every name keeps working from here.

Shims of this kind: ``skcal.campaigns`` (this module: :mod:`skcal.bench.campaign`,
:mod:`skcal.bench.runners`, :mod:`skcal.bench.progress`) and ``skcal.plots``
(:mod:`skcal.bench.plots`).
"""

from .bench.campaign import Campaign, CampaignData, RowSource, campaign_line, run_campaign, warm_up
from .bench.progress import BenchmarkProgress
from .bench.runners import (
    CampaignRunner,
    DaskCampaignRunner,
    LocalCampaignRunner,
    campaign_threads,
    check_scheduler,
    open_runner,
    run_campaign_task,
)
from .exceptions import BenchmarkInputError, CampaignFailedError

__all__ = [
    "BenchmarkInputError",
    "BenchmarkProgress",
    "Campaign",
    "CampaignData",
    "CampaignFailedError",
    "CampaignRunner",
    "DaskCampaignRunner",
    "LocalCampaignRunner",
    "RowSource",
    "campaign_line",
    "campaign_threads",
    "check_scheduler",
    "open_runner",
    "run_campaign",
    "run_campaign_task",
    "warm_up",
]
