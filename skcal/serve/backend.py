"""The ML backend: protocol handlers over a durable, continually trained campaign.

:class:`LabelStudioBackend` answers Label Studio's four calls with plain
dicts (the HTTP app in :mod:`skcal.serve.app` only moves JSON). Every
handler checks its payload completely before it changes anything, and
refuses with a :class:`~skcal.serve.protocol.ProtocolError` (HTTP status and
message) otherwise.

- ``/setup`` reads the labelling config, builds the model pipeline with the
  factory (the config's choices are the classes, declared up front) and
  answers the current ``model_version``. The backend serves one project: a
  second one, or a config with other classes once labels arrived, is a 409.
- ``/webhook`` turns annotation events into label events, appends them to
  the journal (durable before the answer goes out) and wakes the training
  worker. It never trains in the request.
- The worker (:class:`~skcal.serve.worker.TrainingWorker`) applies the
  journal to the campaign: corrections, and a CAL round once ``train_every``
  new labels wait (the first is the seed round), on a copy; then commits it
  (:class:`~skcal.serve.campaign.CampaignStore`) and publishes it, and the
  ``model_version`` moves. With a Label Studio client, it then asks Label
  Studio to retrieve the new predictions and selects the new version, and at
  start it journals the annotations Label Studio has that the backend missed
  while it was down (Label Studio does not resend failed webhooks).
- ``/predict`` reads the last published campaign: a round in progress never
  shows, and never blocks it. Tasks are predicted ``predict_batch`` at a
  time (memory stays bounded), and requests larger than that one at a time,
  so that a short request is never stuck behind several huge ones.

Faults (:mod:`~skcal.serve.faults`) show in ``/health`` while they last: a
journal that cannot be written (a webhook answered 507: its labels are not
acknowledged, and come back from Label Studio once the journal can be written
again, where a Label Studio token is configured), a commit that cannot be
written, a failing round (retried with back-off), images set aside, and
Label Studio out of reach.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..estimator import ContinualActiveClassifier
from .campaign import Campaign, CampaignStateError, CorruptCommitError, advance, new_campaign, new_campaign_id
from .factories import resolve_factory
from .faults import FaultBoard, StorageError, storage_error
from .health import health_report
from .journal import AnnotationJournal
from .labelconfig import LabellingConfig, LabellingConfigError, parse_labelling_config
from .labelstudio import LabelStudioClient, LabelStudioError
from .media import TaskValueLoader
from .memory import release_free_memory
from .model import SCORE_MODES, ServedPipeline, build_pipeline
from .predictor import Predictor
from .protocol import (
    ProtocolError,
    parse_predict,
    parse_setup,
    parse_webhook,
    project_id,
    webhook_label_config,
)
from .reconcile import missed_events
from .statedir import fingerprint, lock_state_dir
from .store import CampaignStore
from .worker import CoalescingRunner, TrainingWorker

logger = logging.getLogger(__name__)

JOURNAL_FILENAME = "journal.sqlite3"


class LabelStudioBackend:
    """A Label Studio ML backend whose model learns in CAL rounds as annotations arrive.

    Parameters
    ----------
    factory : callable or str
        ``factory(config)`` (or ``factory()``) returning a scikit-learn
        ``Pipeline`` ending in a ``ContinualActiveClassifier``, or its name
        (a built-in name or ``package.module:function``, see
        :func:`skcal.serve.factories.resolve_factory`).
    state_dir : str or Path
        Holds the journal of acknowledged label events and the committed
        campaign; a backend started on the same folder resumes.
    train_every : int, default=10
        A round runs once this many new labels wait (the first is the seed round).
    score : {"confidence", "margin", "entropy"}, default="confidence"
        What a prediction's ``score`` is (:func:`~skcal.serve.model.prediction_scores`).
    control : str, optional
        The ``Choices`` control to answer, when the config has several.
    label_studio : LabelStudioClient, optional
        Fetches images stored in Label Studio and, with ``refresh_predictions``,
        retrieves predictions after each round.
    refresh_predictions : bool, default=True
        With ``label_studio``: after each round, run Label Studio's "Retrieve
        predictions" action on the project.
    start : bool, default=True
        Start the training worker (and replay the journal) now.
    retry_seconds : float, default=30
        A failed round is retried this long after; each further failure in a
        row doubles the wait, up to ``max_retry_seconds``.
    max_retry_seconds : float, default=300
        The longest wait between retries.
    predict_batch : int, default=256
        Tasks loaded and predicted at a time; larger requests run one at a time.
    fetch_workers : int, default=8
        Images fetched at once.

    Raises
    ------
    CampaignStateError
        When ``state_dir`` holds a campaign that cannot be loaded with this
        factory, or another backend is using it. (A corrupt commit is moved
        aside and the campaign rebuilt from the journal.)
    """

    model_class = ContinualActiveClassifier.__name__

    def __init__(
        self,
        factory: Callable,
        state_dir: str | Path,
        train_every: int = 10,
        score: str = "confidence",
        control: str | None = None,
        label_studio: LabelStudioClient | None = None,
        refresh_predictions: bool = True,
        start: bool = True,
        retry_seconds: float = 30.0,
        max_retry_seconds: float = 300.0,
        predict_batch: int = 256,
        fetch_workers: int = 8,
    ):
        if isinstance(train_every, bool) or not isinstance(train_every, int) or train_every < 1:
            raise ValueError(f"train_every must be a whole number of at least 1, got {train_every!r}.")
        if score not in SCORE_MODES:
            raise ValueError(f"score must be one of {sorted(SCORE_MODES)}, got {score!r}.")
        self.factory = resolve_factory(factory)
        self.state_dir = Path(state_dir)
        self.train_every = train_every
        self.score = score
        self.control = control
        self.label_studio = label_studio
        self.loader = TaskValueLoader(label_studio, workers=fetch_workers)
        self.predictor = Predictor(self.loader, score, predict_batch)
        self.faults = FaultBoard()
        self.labels_refused = 0  # label events answered 507 since start
        self._lock = threading.RLock()
        self._config_lock = threading.Lock()  # a config change waits for a webhook's journal write, and back
        self._config: LabellingConfig | None = None
        self._pipeline: ServedPipeline | None = None
        self._project: str | None = None
        self._uncommitted: tuple[Campaign, Campaign] | None = None  # (trained, its base) whose commit failed
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._state_lock = lock_state_dir(self.state_dir)
        try:
            self.journal = AnnotationJournal(self.state_dir / JOURNAL_FILENAME)
            self.store = CampaignStore(self.state_dir)
            self._restore()
        except BaseException:
            self._state_lock.close()
            raise
        self.worker = TrainingWorker(self._step, retry_seconds=retry_seconds, max_retry_seconds=max_retry_seconds)
        self.refresher = None
        self._resync_due = label_studio is not None  # at start, and after webhooks were refused
        if label_studio is not None and refresh_predictions:
            self.refresher = CoalescingRunner(self._refresh_predictions)
        if start:
            self.start()

    # -- state ---------------------------------------------------------------
    def _restore(self) -> None:
        """Load the stored project, labelling config, campaign id and newest commit, if any.

        The campaign id is stored in the journal when the state folder is
        new, so the model version is the same across restarts before the
        seed round commits. A corrupt commit is moved aside and the campaign
        rebuilt from the journal, under a new id (its model is a new one).
        """
        self._project = self.journal.setting("project")
        campaign_id = self.journal.setting("campaign_id")
        if campaign_id is None:
            campaign_id = new_campaign_id()
            self.journal.set_setting("campaign_id", campaign_id)
        self._campaign: Campaign = new_campaign(campaign_id)
        xml = self.journal.setting("label_config")
        if xml is None:
            if self.store.commits.is_dir() and any(self.store.commits.iterdir()):
                raise CampaignStateError(f"{self.state_dir} has a commit but no labelling config.")
            return
        config = parse_labelling_config(xml, self.control)
        pipeline = build_pipeline(self.factory, config)
        try:
            loaded = self.store.load(pipeline.template)
        except CorruptCommitError as error:
            loaded = None
            moved = self.store.quarantine()
            campaign_id = new_campaign_id()
            self.journal.set_setting("campaign_id", campaign_id)
            self._campaign = new_campaign(campaign_id)
            message = f"{error} Moved it to {moved}; rebuilding the campaign from the journal."
            logger.error("skcal serve: %s", message)
            self.faults.note("commit", message)
        if loaded is not None:
            campaign, stored = loaded
            if list(stored.get("classes", config.classes)) != list(config.classes):
                raise CampaignStateError(
                    f"{self.state_dir}'s campaign has classes {stored.get('classes')}, the stored config "
                    f"{list(config.classes)}."
                )
            self._campaign = campaign
        self.store.remove_stale()
        self._config, self._pipeline = config, pipeline

    def start(self) -> None:
        """Start the training worker; it replays journal events newer than the last commit."""
        self.worker.start()
        self.worker.wake()

    def warm_up(self) -> None:
        """Load the feature model now, if the labelling config is known (before the port opens)."""
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.warm_up()

    @property
    def ready(self) -> bool:
        """Whether ``/predict`` can answer without loading a model first."""
        pipeline = self.pipeline
        return pipeline is not None and pipeline.is_warm

    @property
    def pipeline(self) -> ServedPipeline | None:
        """The model pipeline of the labelling config in use, once known."""
        with self._lock:
            return self._pipeline

    @property
    def project(self) -> str | None:
        """The Label Studio project this backend serves, once known."""
        with self._lock:
            return self._project

    @property
    def campaign(self) -> Campaign:
        """The last published campaign (what ``/predict`` answers from)."""
        with self._lock:
            return self._campaign

    @property
    def config(self) -> LabellingConfig | None:
        """The labelling config in use, once known."""
        with self._lock:
            return self._config

    @property
    def model_version(self) -> str:
        """The published campaign's model version."""
        return self.campaign.model_version

    def _settings(self) -> dict:
        return {"project": self._project, "classes": list(self._config.classes) if self._config else None}

    def _has_labels(self) -> bool:
        campaign = self._campaign
        return bool(campaign.ledger.order or campaign.ledger.pending or self.journal.last_seq())

    def _parse_config(self, xml: str, where: str) -> LabellingConfig:
        """Parse a labelling config for this backend's control; 422 when it cannot be served."""
        try:
            return parse_labelling_config(xml, self.control)
        except LabellingConfigError as error:
            raise ProtocolError(422, f"{where}: {error}") from None

    def _adopt(self, xml: str, project: str | None, where: str) -> LabellingConfig:
        """Use a labelling config (and bind the project); 409 if it conflicts with the campaign."""
        config = self._parse_config(xml, where)
        with self._config_lock, self._lock:
            self._check_project(project, where)
            current = self._config
            if current is not None and current.describe() == config.describe():
                if project is not None and self._project is None:
                    self._bind_project(project, where)
                return current
            if current is not None and self._has_labels():
                raise ProtocolError(
                    409,
                    f"{where}: the labelling config changed ({current.describe()} -> {config.describe()}) after "
                    f"labels arrived; this campaign in {self.state_dir} keeps the first one. Start skcal serve with "
                    "a new --state-dir to begin a campaign for the new config.",
                )
            try:
                pipeline = build_pipeline(self.factory, config)
            except (TypeError, ValueError) as error:
                raise ProtocolError(500, f"{where}: the model factory failed: {error}") from None
            self._journal_setting("label_config", xml, where)
            if project is not None and self._project is None:
                self._bind_project(project, where)
            self._config, self._pipeline = config, pipeline
        self.worker.wake()
        return config

    def _bind_project(self, project: str, where: str) -> None:
        self._journal_setting("project", project, where)
        self._project = project

    def _journal_setting(self, key: str, value: str, where: str) -> None:
        """Store a setting in the journal; 507 naming the storage fault if it cannot be written."""
        try:
            self.journal.set_setting(key, value)
        except StorageError as error:
            self.faults.report("journal", str(error))
            raise ProtocolError(507, f"{where}: {error}. Nothing was changed; free space or make "
                                f"{self.state_dir} writable.") from None  # fmt: skip

    def _check_project(self, project: str | None, where: str) -> None:
        if project is not None and self._project is not None and project != self._project:
            raise ProtocolError(
                409,
                f"{where}: this backend serves Label Studio project {self._project} (state in {self.state_dir}); "
                f"project {project} needs a skcal serve of its own.",
            )

    # -- protocol handlers ---------------------------------------------------
    def health(self) -> dict:
        """``GET /health``: status and what the backend is doing.

        Returns
        -------
        dict
            The JSON answer: ``status``, ``ready``, ``rounds``, ``labelled``,
            ``training``, ``pending``, ``last_error``, faults, memory and more.
        """
        return health_report(self)

    def setup(self, body: dict) -> dict:
        """``POST /setup``: adopt the labelling config; answer the model version.

        Parameters
        ----------
        body : dict
            The request's JSON (Label Studio's ``schema``, ``project``, ...).

        Returns
        -------
        dict
            ``{"model_version": ...}``.

        Raises
        ------
        ProtocolError
        """
        request = parse_setup(body)
        self._adopt(request.label_config, request.project, "/setup")
        if request.hostname and self.label_studio is None:
            with self._lock:
                try:
                    self.loader.client = LabelStudioClient(request.hostname, request.access_token)
                except ValueError:
                    logger.warning("skcal serve: /setup sent an unusable hostname %r", request.hostname)
        return {"model_version": self.model_version}

    def predict(self, body: dict) -> dict:
        """``POST /predict``: one prediction per task, from the last committed model.

        Parameters
        ----------
        body : dict
            The request's JSON: ``tasks``, and the project's labelling config.

        Returns
        -------
        dict
            ``{"results": [...], "model_version": ...}``.

        Raises
        ------
        ProtocolError
            4xx for a bad payload; 409 for another project; 503 before the
            seed round (no model yet).
        """
        config = self.config
        if config is None:
            xml = body.get("label_config")
            if not isinstance(xml, str):
                raise ProtocolError(
                    409, "/predict: no labelling config yet: call /setup first, or send 'label_config'."
                )
            parse_predict(body, self._parse_config(xml, "/predict"))  # refuse a bad body before adopting anything
            config = self._adopt(xml, project_id(body.get("project"), "/predict"), "/predict")
        request = parse_predict(body, config)
        with self._lock:
            self._check_project(request.project, "/predict")
            campaign, pipeline = self._campaign, self._pipeline
        classifier = campaign.classifier
        if classifier is None:
            raise ProtocolError(
                503,
                f"/predict: no model yet: the seed round runs once {self.train_every} labels have arrived "
                f"({len(campaign.ledger.pending)} so far).",
            )
        return self.predictor.predict(campaign, pipeline, config, request.tasks)

    def webhook(self, body: dict) -> dict:
        """``POST /webhook``: journal annotation events (durably) and wake the training worker.

        Parameters
        ----------
        body : dict
            The event's JSON (``action``, ``annotation``, ``task``, ...).

        Returns
        -------
        dict
            ``{"status": "accepted" | "ignored", ...}``.

        Raises
        ------
        ProtocolError
        """
        config = self.config
        xml = webhook_label_config(body)
        if config is None and xml is not None and body.get("action") not in (None, "PROJECT_DELETED"):
            parse_webhook(body, self._parse_config(xml, "/webhook"))  # refuse a bad body before adopting anything
            config = self._adopt(xml, project_id(body.get("project"), "/webhook"), "/webhook")
        request = parse_webhook(body, config)
        with self._config_lock:  # /setup cannot change the config between this check and the journal write
            if self.config is not config:  # it changed while the body was checked: check it again
                request = parse_webhook(body, self.config)
            with self._lock:
                self._check_project(request.project, "/webhook")
                if request.project is not None and self._project is None and not request.ignored:
                    self._bind_project(request.project, "/webhook")
            if request.ignored:
                return {"status": "ignored", "action": request.action}
            try:
                seq = self.journal.append(request.action, request.events) if request.events else None
            except StorageError as error:
                raise self._refused(request.action, len(request.events), error) from None
        if request.events and self.faults.clear("journal", note="a webhook was journalled"):
            logger.info("skcal serve: the journal can be written again")
            self.worker.retry_soon()
        self.worker.wake(train_now=request.train_now)
        if seq is None:
            seq = self.journal.last_seq()
        return {"status": "accepted", "action": request.action, "events": len(request.events), "journal": seq}

    def _refused(self, action: str, n_events: int, error: StorageError) -> ProtocolError:
        """Record that a webhook's events could not be journalled, and answer 507."""
        with self._lock:
            self.labels_refused += n_events
        self.faults.report("journal", str(error))
        self._resync_due = self.label_studio is not None
        self.worker.wake()  # the worker probes the journal, with back-off, and heals once it can be written
        healing = (
            "they come back from Label Studio's annotations once the journal can be written again"
            if self.label_studio is not None
            else "Label Studio does not resend webhooks: once space is back, restart skcal serve with "
            "--label-studio-url and --label-studio-token to recover them, or save the annotations again"
        )
        return ProtocolError(
            507, f"/webhook {action}: {error}. The {n_events} label event(s) were not recorded; {healing}."
        )

    # -- the worker's step ---------------------------------------------------
    def _step(self, train_now: bool) -> None:
        """Apply new journal events; train and commit when due; publish. Faults go to ``/health``."""
        if self.faults.active("journal"):
            try:
                self.journal.probe()  # raises while the journal still cannot be written: the worker backs off
            except StorageError as error:
                self.faults.report("journal", str(error))
                raise
            if self.faults.clear("journal", note="the journal can be written again"):
                logger.info("skcal serve: the journal can be written again")
        try:
            self._advance(train_now)
        except Exception as error:
            fault = storage_error(error, "run the training step")
            if fault is None:
                self.faults.report("training", f"{type(error).__name__}: {error}")
                raise
            self.faults.report("storage", str(fault))
            raise fault from error
        else:
            self.faults.clear("training", note="a round succeeded")
            self.faults.clear("storage", note="the state folder can be written again")

    def _advance(self, train_now: bool) -> None:
        with self._lock:
            config, pipeline, current = self._config, self._pipeline, self._campaign
        if config is None:
            return  # events wait in the journal until a labelling config is known
        pipeline.warm_up()  # load the feature model before the first request needs it
        if self._resync_due and self.label_studio is not None and self._project is not None:
            self._resync(current, config)
        if self._uncommitted is not None:
            trained, base = self._uncommitted
            if base is current and self._config is config:  # trained already, only its commit failed:
                self._commit(trained, current)  # retry the commit alone, training nothing while it fails
                self._publish(config, current, trained)
                current = trained
            self._uncommitted = None
        events = self.journal.events_after(current.ledger.seq)
        following, changed = advance(current, events, pipeline, self.loader, config, self.train_every, train_now)
        if changed:
            self._commit(following, current)
        self._publish(config, current, following)

    def _commit(self, campaign: Campaign, base: Campaign) -> None:
        """Commit ``campaign``; when the state folder cannot be written, keep it to retry its commit alone."""
        try:
            self.store.save(campaign, self._settings())
        except Exception as error:
            fault = storage_error(error, f"commit {campaign.model_version}")
            if fault is None:
                raise
            self._uncommitted = (campaign, base)
            raise fault from error

    def _publish(self, config: LabellingConfig, current: Campaign, following: Campaign) -> None:
        with self._lock:
            if self._config is config:
                self._campaign = following
        self._report_set_aside(following)
        if following.n_rounds != current.n_rounds:
            release_free_memory()
            logger.info("skcal serve: %s (%d labelled points)", following.model_version, len(following.ledger.order))
            if self.refresher is not None and self._project is not None:
                self.refresher.request()

    def _report_set_aside(self, campaign: Campaign) -> None:
        set_aside = campaign.ledger.set_aside
        if not set_aside:
            self.faults.clear("images", note="every annotated image loaded")
            return
        annotation, error = next(iter(set_aside.items()))
        self.faults.report(
            "images",
            f"{len(set_aside)} annotated image(s) could not be loaded and wait for a later round, e.g. "
            f"annotation {annotation}: {error}",
        )

    def _resync(self, current: Campaign, config: LabellingConfig) -> None:
        """Journal the differences between Label Studio's annotations and the campaign's (see reconcile)."""
        before = self.journal.last_seq()
        try:
            tasks = self.label_studio.annotated_tasks(self._project)
        except LabelStudioError as error:
            logger.warning("skcal serve: cannot compare with Label Studio's annotations: %s", error)
            self.faults.report("label_studio", f"cannot read Label Studio's annotations: {error}")
            return  # tried again at the next step
        missed = missed_events(self.journal, current.ledger, before, tasks, config)
        if missed:
            logger.info("skcal serve: %d annotation change(s) Label Studio has that the backend missed", len(missed))
            self.journal.append("RESYNC", missed)
        self._resync_due = False
        self.faults.clear("label_studio", note="Label Studio's annotations were read")

    def _refresh_predictions(self) -> None:
        """Have Label Studio fetch the new version's predictions, then sort by them."""
        version, started = self.model_version, time.monotonic()
        self.label_studio.retrieve_predictions(self._project)
        self.label_studio.select_model_version(self._project, version)
        logger.info("skcal serve: Label Studio has %s's predictions (%.1f s)", version, time.monotonic() - started)

    def wait_until_idle(self, timeout: float = 120.0) -> bool:
        """Wait until every journal event is applied and no step is running (for tests and shutdown).

        Parameters
        ----------
        timeout : float, default=120
            Seconds to wait at most.

        Returns
        -------
        bool
            False on timeout, or when the last step failed.
        """
        done = self.worker.wait_idle(lambda: self.campaign.ledger.seq >= self.journal.last_seq(), timeout)
        if done and self.refresher is not None:
            return self.refresher.wait_idle(timeout)
        return done

    def close(self, timeout: float = 60.0) -> bool:
        """Stop the worker after its step (the round in progress commits); close the journal; release the folder.

        Parameters
        ----------
        timeout : float, default=60
            At most this long for the step in progress; a round still running
            then is abandoned (its labels stay in the journal and train at
            the next start; commits are atomic, so none is left half written).

        Returns
        -------
        bool
            True when the worker finished; False when its step was abandoned.
        """
        finished = self.worker.stop(timeout)
        if self.refresher is not None:
            self.refresher.stop(min(timeout, 10.0))
        if finished:
            self.journal.close()
        self._state_lock.close()
        return finished


__all__ = ["LabelStudioBackend", "fingerprint"]
