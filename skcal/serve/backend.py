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
  shows, and never blocks it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..estimator import ContinualActiveClassifier
from .campaign import Campaign, CampaignStateError, CampaignStore, advance, new_campaign
from .factories import resolve_factory
from .journal import AnnotationJournal
from .labelconfig import LabellingConfig, LabellingConfigError, parse_labelling_config
from .labelstudio import LabelStudioClient, LabelStudioError
from .media import MediaError, TaskValueLoader
from .model import SCORE_MODES, ServedPipeline, build_pipeline, prediction_scores
from .protocol import (
    LabelEvent,
    ProtocolError,
    annotation_event,
    parse_predict,
    parse_setup,
    parse_webhook,
    prediction,
    project_id,
    webhook_label_config,
)
from .worker import CoalescingRunner, TrainingWorker

logger = logging.getLogger(__name__)

JOURNAL_FILENAME = "journal.sqlite3"
LOCK_FILENAME = "lock"


def lock_state_dir(folder: Path) -> Any:
    """Hold an exclusive lock on a state folder for as long as the returned file stays open.

    Two backends on one folder would each train on the shared journal and
    remove each other's commits (leaving ``CURRENT`` naming a deleted one).

    Parameters
    ----------
    folder : Path

    Returns
    -------
    file object
        Close it to release the lock.

    Raises
    ------
    CampaignStateError
        When another backend (in this process or another) holds the folder.
    """
    handle = open(folder / LOCK_FILENAME, "a+b")  # noqa: SIM115 (held open: it is the lock)
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise CampaignStateError(
            f"{folder} is in use by another skcal serve backend; each backend needs a --state-dir of its own."
        ) from None
    except OSError as error:  # a file system without locks (some network file systems)
        logger.warning("skcal serve: cannot lock %s (%s); run one backend on it at a time", folder, error)
    return handle


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
        A failed round is retried this long after, or at the next annotation.

    Raises
    ------
    CampaignStateError
        When ``state_dir`` holds a campaign that cannot be loaded with this
        factory, or another backend is using it.
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
        self.loader = TaskValueLoader(label_studio)
        self._lock = threading.RLock()
        self._config_lock = threading.Lock()  # a config change waits for a webhook's journal write, and back
        self._config: LabellingConfig | None = None
        self._pipeline: ServedPipeline | None = None
        self._project: str | None = None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._state_lock = lock_state_dir(self.state_dir)
        try:
            self.journal = AnnotationJournal(self.state_dir / JOURNAL_FILENAME)
            self.store = CampaignStore(self.state_dir)
            self._campaign: Campaign = new_campaign()
            self._restore()
        except BaseException:
            self._state_lock.close()
            raise
        self.worker = TrainingWorker(self._step, retry_seconds=retry_seconds)
        self.refresher = None
        self._resynced = False
        if label_studio is not None and refresh_predictions:
            self.refresher = CoalescingRunner(self._refresh_predictions)
        if start:
            self.start()

    # -- state ---------------------------------------------------------------
    def _restore(self) -> None:
        """Load the stored project, labelling config and newest commit, if any."""
        self._project = self.journal.setting("project")
        xml = self.journal.setting("label_config")
        if xml is None:
            if self.store.current() is not None:
                raise CampaignStateError(f"{self.state_dir} has a commit but no labelling config.")
            return
        config = parse_labelling_config(xml, self.control)
        pipeline = build_pipeline(self.factory, config)
        loaded = self.store.load(pipeline.template)
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
                    self._bind_project(project)
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
            self.journal.set_setting("label_config", xml)
            if project is not None and self._project is None:
                self._bind_project(project)
            self._config, self._pipeline = config, pipeline
        self.worker.wake()
        return config

    def _bind_project(self, project: str) -> None:
        self.journal.set_setting("project", project)
        self._project = project

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
        """
        campaign = self.campaign
        with self.worker.condition:
            training, last_error = self.worker.busy, self.worker.last_error
        return {
            "status": "UP",
            "model_class": self.model_class,
            "model_version": campaign.model_version,
            "project": self._project,
            "labelling": None if self.config is None else self.config.describe(),
            "rounds": campaign.n_rounds,
            "labelled": len(campaign.ledger.order),
            "pending": len(campaign.ledger.pending),
            "train_every": self.train_every,
            "journal_events": self.journal.last_seq(),
            "training": training,
            "last_error": last_error,
            "last_refresh_error": None if self.refresher is None else self.refresher.last_error,
            "score": self.score,
        }

    def setup(self, body: dict) -> dict:
        """``POST /setup``: adopt the labelling config; answer the model version.

        Parameters
        ----------
        body : dict

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
        try:
            inputs = self.loader.load([task.value for task in request.tasks], config)
        except MediaError as error:
            raise ProtocolError(422, f"/predict: {error}") from None
        started = time.monotonic()
        probabilities = classifier.predict_proba(pipeline.features(inputs))
        labels = np.asarray(classifier.classes_)[probabilities.argmax(axis=1)]
        scores = prediction_scores(probabilities, self.score)
        version = campaign.model_version
        results = [prediction(str(label), score, config, version) for label, score in zip(labels, scores, strict=True)]
        logger.info("skcal serve: predicted %d task(s) in %.2f s", len(results), time.monotonic() - started)
        return {"results": results, "model_version": version}

    def webhook(self, body: dict) -> dict:
        """``POST /webhook``: journal annotation events (durably) and wake the training worker.

        Parameters
        ----------
        body : dict

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
                    self._bind_project(request.project)
            if request.ignored:
                return {"status": "ignored", "action": request.action}
            seq = self.journal.append(request.action, request.events) if request.events else self.journal.last_seq()
        self.worker.wake(train_now=request.train_now)
        return {"status": "accepted", "action": request.action, "events": len(request.events), "journal": seq}

    # -- the worker's step ---------------------------------------------------
    def _step(self, train_now: bool) -> None:
        """Apply new journal events; train and commit when due; publish."""
        with self._lock:
            config, pipeline, current = self._config, self._pipeline, self._campaign
        if config is None:
            return  # events wait in the journal until a labelling config is known
        pipeline.warm_up()  # load the feature model before the first request needs it
        if not self._resynced and self.label_studio is not None and self._project is not None:
            self._resynced = True
            self._resync(current, config)
        events = self.journal.events_after(current.ledger.seq)
        following, changed = advance(current, events, pipeline, self.loader, config, self.train_every, train_now)
        if changed:
            self.store.save(following, self._settings())
        with self._lock:
            if self._config is config:
                self._campaign = following
        if changed and following.n_rounds != current.n_rounds:
            logger.info("skcal serve: %s (%d labelled points)", following.model_version, len(following.ledger.order))
            if self.refresher is not None and self._project is not None:
                self.refresher.request()

    def _resync(self, current: Campaign, config: LabellingConfig) -> None:
        """Journal the differences between Label Studio's annotations and the campaign's (once, at start).

        Label Studio does not resend a webhook that failed, so annotations
        made while the backend was down would otherwise never arrive. The
        comparison uses the journal as it was before Label Studio's list was
        read; an annotation with a newer journal event (a webhook that arrived
        meanwhile) is left to that event.
        """
        before = self.journal.last_seq()
        try:
            tasks = self.label_studio.annotated_tasks(self._project)
        except LabelStudioError as error:
            logger.warning("skcal serve: cannot compare with Label Studio's annotations: %s", error)
            return
        ledger = current.ledger.copy()
        live = set()
        for seq, event in self.journal.events_after(ledger.seq):
            if seq <= before:
                ledger.apply(seq, event)
            else:
                live.add(event.annotation_id)
        known = {annotation: item.label for annotation, item in ledger.pending.items()}
        for annotation, label in ledger.labels.items():
            if annotation not in ledger.forget:
                known[annotation] = ledger.relabel.get(annotation, label)
        seen, missed = set(), []
        for task in tasks:
            annotations = task.get("annotations") if isinstance(task, dict) else None
            for annotation in annotations if isinstance(annotations, list) else []:
                try:
                    event = annotation_event(annotation, task, config, f"Label Studio's task {task.get('id')}")
                except ProtocolError as error:
                    logger.warning("skcal serve: skipping an annotation Label Studio has: %s", error.message)
                    continue
                seen.add(event.annotation_id)
                if event.annotation_id not in live and event.label != known.get(event.annotation_id):
                    missed.append(event)
        gone = [annotation for annotation in known if annotation not in seen and annotation not in live]
        missed += [LabelEvent(annotation, None, None, None) for annotation in gone]
        if missed:
            logger.info("skcal serve: %d annotation change(s) made while the backend was away", len(missed))
            self.journal.append("RESYNC", missed)

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

        Returns
        -------
        bool
            False on timeout, or when the last step failed.
        """
        done = self.worker.wait_idle(lambda: self.campaign.ledger.seq >= self.journal.last_seq(), timeout)
        if done and self.refresher is not None:
            return self.refresher.wait_idle(timeout)
        return done

    def close(self, timeout: float = 60.0) -> None:
        """Stop the worker (after its current step), close the journal and release the state folder.

        Parameters
        ----------
        timeout : float, default=60
        """
        self.worker.stop(timeout)
        if self.refresher is not None:
            self.refresher.stop()
        self.journal.close()
        self._state_lock.close()


def fingerprint(backend: LabelStudioBackend) -> dict:
    """Everything a request could change, as comparable plain values (for tests and diagnostics).

    Parameters
    ----------
    backend : LabelStudioBackend

    Returns
    -------
    dict
        Model weights and history (as bytes), the ledger, pending labels,
        the journal's events, project, config and model version.
    """
    campaign = backend.campaign
    classifier: Any = campaign.classifier
    weights = history = None
    if classifier is not None:
        weights = {
            key: value.detach().cpu().numpy().tobytes() for key, value in classifier.module_.state_dict().items()
        }
        state = classifier.labelled_history_.state()
        history = (state["y"].numpy().tobytes(), state["logits"].numpy().tobytes(), state["rounds"].numpy().tobytes())
    ledger = campaign.ledger
    return {
        "weights": weights,
        "history": history,
        "order": list(ledger.order),
        "labels": dict(ledger.labels),
        "pending": {key: (item.label, item.value) for key, item in ledger.pending.items()},
        "corrections": (dict(ledger.relabel), list(ledger.forget)),
        "journal": [(seq, event.to_json()) for seq, event in backend.journal.events_after(0)],
        "project": backend._project,
        "config": None if backend.config is None else backend.config.describe(),
        "model_version": campaign.model_version,
    }


__all__ = ["LabelStudioBackend", "fingerprint"]
