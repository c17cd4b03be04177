"""Finished campaigns on disk, one file each, reused by a rerun that has the same settings.

:func:`campaign_config` is everything a stored campaign must share with a
rerun; :class:`CampaignStore` writes a campaign when it ends and loads the
stored ones, after checking their configuration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..exceptions import BenchmarkInputError
from ..replay import REPLAY_STRATEGIES, LabelledSetTraining
from ..utils.io import atomic_write
from .arguments import QUERY_STRATEGIES
from .campaign import jsonable
from .methods import method_settings

if TYPE_CHECKING:
    from .data import BenchmarkData
    from .plan import BenchmarkPlan


#: Version of the campaign files; files of another version are not loaded.
CAMPAIGN_FORMAT = 1


def campaign_config(
    data: BenchmarkData,
    plan: BenchmarkPlan,
    device: str = "cpu",
    strategy: str = "entropy",
    threads: int | None = None,
) -> dict:
    """Everything a stored campaign must share with a rerun to be reused: data, sizes, network, training.

    Parameters
    ----------
    data : BenchmarkData
    plan : BenchmarkPlan
    device : str, default="cpu"
    strategy : str, default="entropy"
    threads : int, optional
        Torch CPU threads the campaigns train with
        (:func:`~skcal.bench.runners.campaign_threads`); by default this process's.

    Returns
    -------
    dict
        JSON-ready. Timings depend on the machine too, so the device and
        torch's CPU thread count are part of it.
    """
    config = {
        "dataset": data.name,
        "model": data.model,
        "n_samples": len(data.y),
        "n_test_split": None if data.y_test is None else len(data.y_test),
        "classes": data.classes,
        "pool_size": plan.pool_size if plan.pool_size is not None else data.pool_size,
        "test_size": plan.test_size if plan.test_size is not None else data.test_size,
        "n_pool": plan.n_pool,
        "n_test": plan.n_test,
        "initial_count": plan.initial_count,
        "query_count": plan.query_count,
        "n_rounds": plan.n_rounds,
        "query_strategy": QUERY_STRATEGIES[strategy].__name__,
        "estimator": data.estimator_params,
        "device": device,
        "threads": torch.get_num_threads() if threads is None else threads,
    }
    return json.loads(json.dumps(jsonable(config)))


def _differences(stored: Any, current: Any, prefix: str = "") -> list[str]:
    """Describe where two configurations differ, one ``key: stored -> now`` entry per leaf."""
    if isinstance(stored, dict) and isinstance(current, dict):
        found = []
        for key in sorted(set(stored) | set(current)):
            name = f"{prefix}{key}"
            if key not in stored:
                found.append(f"{name}: absent -> {current[key]!r}")
            elif key not in current:
                found.append(f"{name}: {stored[key]!r} -> absent")
            else:
                found.extend(_differences(stored[key], current[key], f"{name}."))
        return found
    if stored != current:
        shorten = lambda value: text if len(text := repr(value)) <= 60 else text[:57] + "..."  # noqa: E731
        return [f"{prefix.rstrip('.')}: {shorten(stored)} -> {shorten(current)}"]
    return []


class CampaignStore:
    """The finished campaigns of one dataset on disk: ``folder/<method>-seed<k>.json``, one file each.

    A file holds the configuration it was run with (:func:`campaign_config`),
    every round's record and, for seed 0, the final model's test-set
    entropies. It is written when the campaign ends, through a temporary
    file and ``os.replace``, so an interrupted run leaves only whole files.

    Parameters
    ----------
    folder : str or Path
        Typically ``<out>/<dataset>/campaigns``.
    config : dict
        The current run's :func:`campaign_config`.
    """

    def __init__(self, folder: str | Path, config: dict):
        self.folder = Path(folder)
        self.config = config

    def config_for(self, method: str) -> dict:
        """Return the configuration a campaign of ``method`` depends on.

        The AL baselines (``retrain``, ``warmstart``) ignore the settings of
        replay rounds (``round_epochs``, ``replay_size``, ``scale_lr``,
        ``replay__*``, ``stop_split`` and the ``callbacks__auto_stop__*`` of
        held-out rounds), and ``retrain``, which starts every round afresh,
        ignores ``plasticity`` too; changing those reuses their stored campaigns.

        Parameters
        ----------
        method : str
            A method name, as ``--methods`` takes it.

        Returns
        -------
        dict
            The run's configuration, less what ``method`` ignores.
        """
        replay, method_params = method_settings(method)
        strategy = REPLAY_STRATEGIES.get(replay)
        if strategy is None:
            return self.config
        if method_params:  # a baseline's own settings decide it, whatever the run's estimator parameters say
            config = {**self.config, "estimator": {**self.config.get("estimator", {}), **method_params}}
            return CampaignStore(self.folder, config).config_for(replay)
        if not issubclass(strategy, LabelledSetTraining):  # replay__* the method does not take change nothing
            own = strategy().get_params()
            estimator = {
                key: value
                for key, value in self.config.get("estimator", {}).items()
                if not key.startswith("replay__") or key.split("__", 1)[1] in own
            }
            return {**self.config, "estimator": estimator}
        ignored = ("round_epochs", "replay_size", "scale_lr", "replay__", "stop_split", "callbacks__auto_stop")
        if not strategy.keeps_weights:
            ignored += ("plasticity",)
        estimator = {
            key: value for key, value in self.config.get("estimator", {}).items() if not key.startswith(ignored)
        }
        return {**self.config, "estimator": estimator}

    def path(self, method: str, seed: int) -> Path:
        """Return the file of one campaign.

        Parameters
        ----------
        method : str
            The campaign's method.
        seed : int
            The campaign's seed.

        Returns
        -------
        Path
            ``<folder>/<method>-seed<seed>.json``.
        """
        return self.folder / f"{method}-seed{seed}.json"

    def load(self, method: str, seed: int) -> dict | None:
        """Return a stored campaign run with the current configuration, or None if there is none.

        Parameters
        ----------
        method : str
            The campaign's method.
        seed : int
            The campaign's seed.

        Returns
        -------
        dict or None
            ``format``, ``dataset``, ``method``, ``seed``, ``config``,
            ``records``, ``final_entropy``, ``written``.

        Raises
        ------
        BenchmarkInputError
            With ``parameter="out"``: the file cannot be read, is not a
            campaign file of this version, or was run with other settings
            (the message lists them).
        """
        path = self.path(method, seed)
        if not path.exists():
            return None
        advice = "delete it, rerun with --no-resume, or choose another --out"
        try:
            campaign = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise BenchmarkInputError("out", f"{path} cannot be read ({error}); {advice}.") from None
        if (
            not isinstance(campaign, dict)
            or campaign.get("format") != CAMPAIGN_FORMAT
            or campaign.get("method") != method
            or campaign.get("seed") != seed
            or not isinstance(campaign.get("records"), list)
            or not isinstance(campaign.get("config"), dict)
        ):
            raise BenchmarkInputError("out", f"{path} is not a campaign file of this skcal version; {advice}.")
        # the stored configuration is filtered the way the current one is (a later skcal may filter more)
        stored = CampaignStore(self.folder, campaign["config"]).config_for(method)
        differences = _differences(stored, self.config_for(method))
        if differences:
            shown = "; ".join(differences[:4]) + ("; ..." if len(differences) > 4 else "")
            raise BenchmarkInputError(
                "out",
                f"{path} was run with other settings than this command's (stored -> now: {shown}). "
                f"Rerun with --no-resume to replace the stored campaigns, or choose another --out.",
            )
        return campaign

    def finished(self, methods: Sequence[str], seeds: int) -> dict:
        """Load every stored campaign of ``methods`` x seeds ``0 .. seeds - 1``; check them all.

        Parameters
        ----------
        methods : sequence of str
            The methods.
        seeds : int
            Seeds per method, ``0 .. seeds - 1``.

        Returns
        -------
        dict
            ``(method, seed)`` to campaign, for those stored.

        Raises
        ------
        BenchmarkInputError
            As :meth:`load`, for the first bad file.
        """
        found = {}
        for seed in range(seeds):
            for method in methods:
                campaign = self.load(method, seed)
                if campaign is not None:
                    found[(method, seed)] = campaign
        return found

    def save(self, campaign: dict) -> Path:
        """Write a finished campaign atomically (temporary file, then ``os.replace``).

        Parameters
        ----------
        campaign : dict
            With ``method`` and ``seed``; ``format`` and ``config`` are filled in.

        Returns
        -------
        Path
            The campaign's file.
        """
        campaign = {**campaign, "format": CAMPAIGN_FORMAT, "config": self.config_for(campaign["method"])}
        path = self.path(campaign["method"], campaign["seed"])
        with atomic_write(path, prefix=f".{path.stem}-") as stream:
            stream.write(json.dumps(jsonable(campaign)).encode())
        return path
