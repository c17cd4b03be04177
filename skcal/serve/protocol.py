"""Label Studio's ML-backend protocol: request payloads in, response payloads out.

Label Studio talks to an ML backend over four endpoints:

``GET /health``
    ``{"status": "UP", "model_class": ...}``.
``POST /setup``
    ``{"project": "<id>.<created-timestamp>", "schema": <labelling config>,
    "hostname": ..., "access_token": ..., "extra_params": ...}``, answered
    with ``{"model_version": ...}``. Label Studio calls it when the backend
    is connected and before every prediction request, and stores the version.
``POST /predict``
    ``{"tasks": [{"id": ..., "data": {...}}, ...], "project": ...,
    "label_config": ..., "params": {...}}``, answered with ``{"results":
    [...]}``: one prediction per task, in order, each ``{"result": [{"from_name",
    "to_name", "type": "choices", "value": {"choices": [label]}}], "score",
    "model_version"}``.
``POST /webhook``
    Label Studio's project webhook (created with the backend, for all
    actions): ``{"action": "ANNOTATION_CREATED" | "ANNOTATION_UPDATED",
    "annotation": {...}, "task": {...}, "project": {...}}``,
    ``ANNOTATIONS_CREATED`` with lists, ``ANNOTATIONS_DELETED`` with
    ``"annotations": [{"id": ...}]``, ``START_TRAINING`` (the project's
    "Start training" button), and project, task and label-link events,
    which an image or text classifier has no use for.

This module turns request bodies into checked values and raises
:class:`ProtocolError` (an HTTP status and a message naming the problem) on
anything else; it changes no state, so a request it rejects changes nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from .labelconfig import LabellingConfig

#: Actions that carry annotations to learn from (or to withdraw).
ANNOTATION_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
#: Singular delete, which label-studio-ml's backends also accept.
LEGACY_DELETE_ACTION = "ANNOTATION_DELETED"
#: The project's "Start training" button: train on whatever is buffered now.
TRAIN_ACTION = "START_TRAINING"
#: Actions Label Studio sends to a project webhook that carry nothing for a classifier: acknowledged, ignored.
IGNORED_ACTIONS = (
    "PROJECT_CREATED",
    "PROJECT_UPDATED",
    "PROJECT_DELETED",
    "TASKS_CREATED",
    "TASKS_DELETED",
    "LABEL_LINK_CREATED",
    "LABEL_LINK_UPDATED",
    "LABEL_LINK_DELETED",
    "REVIEW_CREATED",
    "REVIEW_UPDATED",
    "REVIEWS_DELETED",
)
#: Largest request body read, in bytes (a few thousand tasks with long texts).
MAX_BODY_BYTES = 32 * 2**20
#: Most tasks in one /predict request.
MAX_TASKS = 10_000
#: Longest task field (text, or an image's URL or data URI), in characters.
MAX_FIELD_LENGTH = 20 * 2**20


class ProtocolError(Exception):
    """A request the backend refuses: ``status`` is the HTTP status, ``message`` says why.

    Parameters
    ----------
    status : int
        4xx for the caller's mistakes, 409 for a request that conflicts with
        the backend's state, 503 when no model can answer yet, 507 when the
        state folder cannot be written.
    message : str
        Why, for the response's body.
    headers : dict, optional
        Extra response headers (``Retry-After``).
    """

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@dataclass(frozen=True)
class SetupRequest:
    """A checked ``/setup`` body."""

    project: str | None
    label_config: str
    hostname: str | None
    access_token: str | None


@dataclass(frozen=True)
class TaskInput:
    """One task of a ``/predict`` request: its id and the value of the labelled object's field."""

    task_id: int | None
    value: str


@dataclass(frozen=True)
class PredictRequest:
    """A checked ``/predict`` body."""

    project: str | None
    label_config: str | None
    tasks: list


@dataclass(frozen=True)
class LabelEvent:
    """A change to one annotation's label.

    Attributes
    ----------
    annotation_id : int
    task_id : int or None
    label : str or None
        The class chosen; None when the annotation no longer labels the task
        (deleted, cancelled/skipped, or submitted without a choice).
    value : str or None
        The task's field for the labelled object (text, image URL), with a label.
    """

    annotation_id: int
    task_id: int | None
    label: str | None
    value: str | None

    def to_json(self) -> dict:
        """Return the event as plain values (journal rows).

        Returns
        -------
        dict
        """
        return {"annotation": self.annotation_id, "task": self.task_id, "label": self.label, "value": self.value}

    @classmethod
    def from_json(cls, row: dict) -> LabelEvent:
        """Rebuild an event from :meth:`to_json`.

        Parameters
        ----------
        row : dict

        Returns
        -------
        LabelEvent
        """
        return cls(int(row["annotation"]), row.get("task"), row.get("label"), row.get("value"))


@dataclass(frozen=True)
class WebhookRequest:
    """A checked ``/webhook`` body.

    Attributes
    ----------
    action : str
    project : str or None
        The project id, as a string.
    label_config : str or None
        The project's labelling config, when the payload carries the project.
    events : list of LabelEvent
        Empty for actions that carry no annotation.
    train_now : bool
        ``START_TRAINING``: run a round on whatever is buffered.
    ignored : bool
        An action with nothing for a classifier.
    """

    action: str
    project: str | None
    label_config: str | None
    events: list
    train_now: bool = False
    ignored: bool = False


def parse_json_body(raw: bytes) -> dict:
    """Decode a request body that must be one JSON object.

    Parameters
    ----------
    raw : bytes

    Returns
    -------
    dict

    Raises
    ------
    ProtocolError
        413 for a body over :data:`MAX_BODY_BYTES`; 400 for anything but a
        UTF-8 JSON object (NaN and infinity included).
    """
    if len(raw) > MAX_BODY_BYTES:
        raise ProtocolError(413, f"the request body has {len(raw)} bytes, more than {MAX_BODY_BYTES}.")
    if not raw.strip():
        raise ProtocolError(400, "the request body is empty; expected a JSON object.")

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError(400, f"the request body is not valid JSON: {error}") from None
    except RecursionError:
        raise ProtocolError(400, "the request body is not valid JSON: it is nested too deeply.") from None
    if not isinstance(body, dict):
        raise ProtocolError(400, f"the request body is a JSON {type(body).__name__}; expected a JSON object.")
    return body


def _string(body: dict, key: str, where: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ProtocolError(422, f"{where}: '{key}' must be a non-empty string, got {_shown(value)}.")
    return value


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(422, f"{what} must be an integer, got {_shown(value)}.")
    return value


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list, str, int, float, bool, type(None))) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def project_id(value: Any, where: str) -> str | None:
    """Return the project id in a payload: ``"<id>.<timestamp>"`` (setup, predict), a number, or ``{"id": ...}``.

    Parameters
    ----------
    value : Any
        The payload's ``project`` entry.
    where : str
        The endpoint, for messages.

    Returns
    -------
    str or None
        The id as a string; None when the payload has no project.

    Raises
    ------
    ProtocolError
        422 for anything else.
    """
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        raise ProtocolError(422, f"{where}: 'project' must be a project id, got {_shown(value)}.")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.split(".", 1)[0].strip().isdigit():
        return value.split(".", 1)[0].strip()
    raise ProtocolError(422, f"{where}: 'project' must be a project id such as \"3.1700000000\", got {_shown(value)}.")


def parse_setup(body: dict) -> SetupRequest:
    """Check a ``/setup`` body.

    Parameters
    ----------
    body : dict

    Returns
    -------
    SetupRequest

    Raises
    ------
    ProtocolError
        422 without a ``schema`` string, or with a malformed ``project``.
    """
    return SetupRequest(
        project=project_id(body.get("project"), "/setup"),
        label_config=_string(body, "schema", "/setup"),
        hostname=_string(body, "hostname", "/setup", required=False),
        access_token=_string(body, "access_token", "/setup", required=False),
    )


def task_value(task: Any, config: LabellingConfig, where: str) -> tuple[int | None, str]:
    """Return the id of a task and the value of the labelled object's field in its ``data``.

    Parameters
    ----------
    task : Any
        A task as Label Studio serialises it (``{"id": ..., "data": {...}}``).
    config : LabellingConfig
    where : str
        The endpoint and position, for messages.

    Returns
    -------
    (int or None, str)

    Raises
    ------
    ProtocolError
        422 when the task is not an object, has no ``data`` object, or its
        field is missing, not a string, not valid Unicode (a lone surrogate),
        empty (for images) or too long.
    """
    if not isinstance(task, dict):
        raise ProtocolError(422, f"{where} is a JSON {type(task).__name__}; expected a task object.")
    task_id = task.get("id")
    if task_id is not None:
        task_id = _integer(task_id, f"{where}'s 'id'")
    data = task.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(422, f"{where} (task {task_id}) has no 'data' object.")
    if config.data_key not in data:
        raise ProtocolError(
            422,
            f"{where} (task {task_id}) has no data field {config.data_key!r}, which <{config.object_type} "
            f"name={config.object_name!r}> shows; its fields are {sorted(data)[:10]}.",
        )
    value = data[config.data_key]
    if not isinstance(value, str):
        raise ProtocolError(
            422, f"{where} (task {task_id}): data field {config.data_key!r} must be a string, got {_shown(value)}."
        )
    if len(value) > MAX_FIELD_LENGTH:
        raise ProtocolError(413, f"{where} (task {task_id}): data field {config.data_key!r} is too long.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:  # a lone surrogate (JSON "\ud800"): no tokenizer takes it
            raise ProtocolError(
                422,
                f"{where} (task {task_id}): data field {config.data_key!r} is not valid Unicode text: {error.reason}.",
            ) from None
    if config.object_type == "Image" and not value.strip():
        raise ProtocolError(422, f"{where} (task {task_id}): data field {config.data_key!r} is an empty image URL.")
    return task_id, value


def parse_predict(body: dict, config: LabellingConfig) -> PredictRequest:
    """Check a ``/predict`` body against the labelling config.

    Parameters
    ----------
    body : dict
    config : LabellingConfig
        The config the backend serves (from ``/setup``, or the body's own).

    Returns
    -------
    PredictRequest
        ``tasks`` is a list of :class:`TaskInput`.

    Raises
    ------
    ProtocolError
        422 when ``tasks`` is missing, empty or not a list, or a task lacks
        the object's field; 413 for more than :data:`MAX_TASKS` tasks.
    """
    tasks = body.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise ProtocolError(422, f"/predict: 'tasks' must be a non-empty list of tasks, got {_shown(tasks)}.")
    if len(tasks) > MAX_TASKS:
        raise ProtocolError(413, f"/predict: {len(tasks)} tasks in one request; at most {MAX_TASKS}.")
    checked = [TaskInput(*task_value(task, config, f"/predict: tasks[{i}]")) for i, task in enumerate(tasks)]
    return PredictRequest(
        project=project_id(body.get("project"), "/predict"),
        label_config=_string(body, "label_config", "/predict", required=False),
        tasks=checked,
    )


def webhook_label_config(body: dict) -> str | None:
    """Return the labelling config a webhook body carries in ``project.label_config``, if any.

    Parameters
    ----------
    body : dict

    Returns
    -------
    str or None
    """
    project = body.get("project")
    if isinstance(project, dict) and isinstance(project.get("label_config"), str):
        return project["label_config"]
    return None


def parse_webhook(body: dict, config: LabellingConfig | None) -> WebhookRequest:
    """Check a ``/webhook`` body and turn its annotations into label events.

    Parameters
    ----------
    body : dict
    config : LabellingConfig or None
        The config whose ``Choices`` the annotations answer; needed only for
        actions that carry annotations with results.

    Returns
    -------
    WebhookRequest

    Raises
    ------
    ProtocolError
        400 without an ``action`` string; 422 for an unknown action, or an
        annotation payload that is malformed (missing ids, results that are
        not lists, more than one choice, a label that is not one of the
        config's classes, a task without the object's field); 409 when an
        annotation arrives and no labelling config is known.
    """
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise ProtocolError(400, f"/webhook: 'action' must be a non-empty string, got {_shown(action)}.")
    project = project_id(body.get("project"), "/webhook")
    label_config = webhook_label_config(body)
    if action in IGNORED_ACTIONS:
        return WebhookRequest(action, project, label_config, [], ignored=True)
    if action == TRAIN_ACTION:
        return WebhookRequest(action, project, label_config, [], train_now=True)
    if action == "ANNOTATIONS_DELETED" or action == LEGACY_DELETE_ACTION:
        key = "annotations" if action == "ANNOTATIONS_DELETED" else "annotation"
        entries = body.get(key)
        entries = [entries] if isinstance(entries, dict) else entries
        if not isinstance(entries, list) or not entries:
            raise ProtocolError(422, f"/webhook {action}: '{key}' must be a non-empty list of {{\"id\": ...}}.")
        events = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise ProtocolError(422, f"/webhook {action}: {key}[{i}] must be an object with an 'id'.")
            events.append(LabelEvent(_integer(entry.get("id"), f"/webhook {action}: {key}[{i}].id"), None, None, None))
        return WebhookRequest(action, project, label_config, events)
    if action not in ANNOTATION_ACTIONS:
        known = ", ".join(ANNOTATION_ACTIONS + (TRAIN_ACTION,) + IGNORED_ACTIONS)
        raise ProtocolError(422, f"/webhook: unknown action {action!r}; Label Studio's actions are {known}.")
    if config is None:
        raise ProtocolError(
            409,
            f"/webhook {action}: no labelling config is known yet (neither /setup nor the payload's project gave one).",
        )
    annotations, tasks = body.get("annotation"), body.get("task")
    if action == "ANNOTATIONS_CREATED":
        if not isinstance(annotations, list) or not annotations:
            raise ProtocolError(422, f"/webhook {action}: 'annotation' must be a non-empty list.")
        if not isinstance(tasks, list):
            raise ProtocolError(422, f"/webhook {action}: 'task' must be a list of the annotations' tasks.")
        by_id = {task["id"]: task for task in tasks if isinstance(task, dict) and _is_id(task.get("id"))}
        pairs = []
        for i, annotation in enumerate(annotations):
            task_id = annotation.get("task") if isinstance(annotation, dict) else None
            fallback = tasks[i] if i < len(tasks) else None
            task = by_id.get(task_id, fallback) if _is_id(task_id) else fallback
            pairs.append((annotation, task, f"annotation[{i}]"))
    else:
        pairs = [(annotations, tasks, "annotation")]
    events = [
        annotation_event(annotation, task, config, f"/webhook {action}: {where}") for annotation, task, where in pairs
    ]
    return WebhookRequest(action, project, label_config, events)


def annotation_event(annotation: Any, task: Any, config: LabellingConfig, where: str) -> LabelEvent:
    """Turn one annotation (and its task) into a :class:`LabelEvent`.

    An annotation that was cancelled (skipped) or has no answer for the
    config's ``Choices`` control labels nothing: its event has ``label=None``.

    Parameters
    ----------
    annotation : Any
        The annotation as Label Studio serialises it.
    task : Any
        Its task.
    config : LabellingConfig
    where : str
        For messages.

    Returns
    -------
    LabelEvent

    Raises
    ------
    ProtocolError
        422 as :func:`parse_webhook` says.
    """
    if not isinstance(annotation, dict):
        raise ProtocolError(422, f"{where} must be an annotation object, got {_shown(annotation)}.")
    annotation_id = _integer(annotation.get("id"), f"{where}.id")
    result = annotation.get("result", [])
    if result is None:
        result = []
    if not isinstance(result, list):
        raise ProtocolError(
            422, f"{where} (annotation {annotation_id}): 'result' must be a list, got {_shown(result)}."
        )
    cancelled = annotation.get("was_cancelled")
    if cancelled is not None and not isinstance(cancelled, bool):
        raise ProtocolError(
            422,
            f"{where} (annotation {annotation_id}): 'was_cancelled' must be true or false, got {_shown(cancelled)}.",
        )
    label = None
    if not cancelled:
        label = choice_label(result, config, f"{where} (annotation {annotation_id})")
    if label is None:
        task_id = annotation.get("task") if _is_id(annotation.get("task")) else None
        return LabelEvent(annotation_id, task_id, None, None)
    task_id, value = task_value(task, config, f"{where} (annotation {annotation_id})'s task")
    if task_id is None:
        task_id = annotation.get("task") if _is_id(annotation.get("task")) else None
    return LabelEvent(annotation_id, task_id, label, value)


def choice_label(result: list, config: LabellingConfig, where: str) -> str | None:
    """Return the class an annotation's result gives for the config's ``Choices`` control, or None.

    Parameters
    ----------
    result : list
        The annotation's ``result`` regions.
    config : LabellingConfig
    where : str
        For messages.

    Returns
    -------
    str or None
        None when no region answers the control.

    Raises
    ------
    ProtocolError
        422 for a malformed region of the control, several choices, or a
        label that is not one of the config's classes.
    """
    labels = []
    for i, region in enumerate(result):
        if not isinstance(region, dict):
            raise ProtocolError(422, f"{where}: result[{i}] must be an object, got {_shown(region)}.")
        if region.get("from_name") != config.control:
            continue
        value = region.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not all(isinstance(choice, str) for choice in choices):
            raise ProtocolError(
                422, f"{where}: result[{i}] for {config.control!r} must have value.choices, a list of strings."
            )
        labels.extend(choices)
    if not labels:
        return None
    if len(labels) > 1:
        raise ProtocolError(422, f"{where}: {len(labels)} choices {labels[:5]} for {config.control!r}; expected one.")
    if labels[0] not in config.classes:
        raise ProtocolError(
            422, f"{where}: label {labels[0]!r} is not one of the labelling config's choices {list(config.classes)}."
        )
    return labels[0]


def prediction(label: str, score: float, config: LabellingConfig, model_version: str) -> dict:
    """One task's prediction in Label Studio's format.

    Parameters
    ----------
    label : str
        The predicted class.
    score : float
        The task's score (the region and the prediction carry the same).
    config : LabellingConfig
    model_version : str

    Returns
    -------
    dict
    """
    score = float(score) if math.isfinite(score) else 0.0
    region = {
        "from_name": config.control,
        "to_name": config.object_name,
        "type": "choices",
        "value": {"choices": [label]},
        "score": score,
    }
    return {"result": [region], "score": score, "model_version": model_version}


__all__ = [
    "ANNOTATION_ACTIONS",
    "IGNORED_ACTIONS",
    "TRAIN_ACTION",
    "LabelEvent",
    "PredictRequest",
    "ProtocolError",
    "SetupRequest",
    "TaskInput",
    "WebhookRequest",
    "annotation_event",
    "choice_label",
    "parse_json_body",
    "parse_predict",
    "parse_setup",
    "parse_webhook",
    "prediction",
    "project_id",
    "task_value",
]
