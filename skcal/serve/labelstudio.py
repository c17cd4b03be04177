"""A small client of Label Studio's REST API, for what the backend asks of the server.

The backend calls Label Studio for two things: images stored there (an
``Image`` task's URL), and, with ``skcal serve --label-studio-url`` and
``--label-studio-token``, refreshing the project's predictions after every
round: the Data Manager action "Retrieve predictions", which makes Label
Studio call ``/predict`` for the tasks that have no prediction of the new
model version yet, then selecting that version as the project's, which the
Data Manager's prediction score and Label Studio's uncertainty sampling read.

Tokens: a personal access token (Label Studio 1.23's default; a JWT refresh
token) is exchanged at ``/api/token/refresh`` for a short-lived access token,
sent as ``Authorization: Bearer ...`` and renewed on a 401. Anything else is
taken for a legacy token, sent as ``Authorization: Token ...`` (legacy tokens
are off by default in Label Studio 1.23: ``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true``).
The token goes to this server only: a redirect elsewhere (a cloud storage's
presigned URL) is followed without it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

#: Statuses of a busy server, after which a GET is asked again, after each of these pauses (seconds).
BUSY = (500, 502, 503)
BUSY_RETRY_PAUSES = (0.5, 1.0, 2.0)


class LabelStudioError(RuntimeError):
    """Label Studio answered with an error, or could not be reached."""


class _TokenStaysHome(urllib.request.HTTPRedirectHandler):
    """Follow redirects, dropping the ``Authorization`` header on one that leaves the Label Studio server.

    urllib copies every header to the redirected request; a presigned
    storage URL would get the token (and refuse a second credential).
    """

    def __init__(self, client: LabelStudioClient):
        self.client = client

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        if redirected is not None and not self.client.owns(redirected.full_url):
            redirected.remove_header("Authorization")
        return redirected


def is_personal_access_token(token: str) -> bool:
    """Whether a token looks like a personal access token (a JWT: three base64url parts).

    Parameters
    ----------
    token : str

    Returns
    -------
    bool
    """
    parts = token.split(".")
    return len(parts) == 3 and all(parts) and token.startswith("eyJ")


class LabelStudioClient:
    """Calls a Label Studio server with an API token.

    Parameters
    ----------
    url : str
        The server's address, e.g. ``http://localhost:8080``.
    token : str or None
        A personal access token or a legacy token; None sends no credentials.
    timeout : float, default=60
        Seconds per request.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0):
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"the Label Studio URL must be http(s)://host[:port], got {url!r}.")
        self.url = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self.token = token
        self.timeout = timeout
        self._access: str | None = None
        self._lock = threading.Lock()
        self._opener = urllib.request.build_opener(_TokenStaysHome(self))

    def owns(self, url: str) -> bool:
        """Whether an absolute URL points at this server.

        Parameters
        ----------
        url : str

        Returns
        -------
        bool
        """
        return url == self.url or url.startswith(self.url + "/")

    def _absolute(self, url_or_path: str) -> str:
        if url_or_path.startswith(("http://", "https://")):
            return url_or_path
        return self.url + "/" + url_or_path.lstrip("/")

    def _authorization(self, renew: bool = False) -> dict:
        if not self.token:
            return {}
        if not is_personal_access_token(self.token):
            return {"Authorization": f"Token {self.token}"}
        with self._lock:
            if self._access is None or renew:
                answer = self._send("POST", "/api/token/refresh", {"refresh": self.token}, {}, self.timeout)
                access = json.loads(answer).get("access") if answer else None
                if not isinstance(access, str):
                    raise LabelStudioError(
                        "Label Studio did not exchange the personal access token for an access token."
                    )
                self._access = access
            return {"Authorization": f"Bearer {self._access}"}

    def _send(
        self, method: str, path: str, body: Any, headers: dict, timeout: float, limit: int | None = None
    ) -> bytes:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._absolute(path), data=data, method=method)
        for key, value in {**headers, **({"Content-Type": "application/json"} if data is not None else {})}.items():
            request.add_header(key, value)
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.read() if limit is None else response.read(limit + 1)
        except urllib.error.HTTPError as error:
            detail = error.read(500).decode(errors="replace")
            raise LabelStudioError(f"{method} {path}: HTTP {error.code} {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise LabelStudioError(f"{method} {path}: cannot reach Label Studio at {self.url}: {error}") from None

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """Send one API request with the token; return the decoded JSON answer (None if empty).

        Parameters
        ----------
        method : str
        path : str
            ``/api/...``, or an absolute URL on this server.
        body : Any, optional
            Sent as JSON.
        timeout : float, optional

        Returns
        -------
        Any

        Raises
        ------
        LabelStudioError
        """
        return self._json(self._authorised(method, path, body, timeout or self.timeout, None))

    def _authorised(self, method: str, path: str, body: Any, timeout: float, limit: int | None) -> bytes:
        for pause in (*BUSY_RETRY_PAUSES, None):
            try:
                return self._send_renewing(method, path, body, timeout, limit)
            except LabelStudioError as error:
                # Label Studio on SQLite answers 500 "database is locked" while another request writes: a
                # read can be asked again; a write is not repeated (it may have happened).
                if method != "GET" or pause is None or not any(f" HTTP {code} " in f" {error} " for code in BUSY):
                    raise
                time.sleep(pause)
        raise AssertionError("unreachable")

    def _send_renewing(self, method: str, path: str, body: Any, timeout: float, limit: int | None) -> bytes:
        try:
            return self._send(method, path, body, self._authorization(), timeout, limit)
        except LabelStudioError as error:
            if " HTTP 401 " not in f" {error} " or not self.token or not is_personal_access_token(self.token):
                raise
            return self._send(method, path, body, self._authorization(renew=True), timeout, limit)

    @staticmethod
    def _json(raw: bytes) -> Any:
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise LabelStudioError(f"Label Studio answered with something that is not JSON: {raw[:200]!r}") from None

    def get_bytes(self, url_or_path: str, limit: int, timeout: float) -> bytes:
        """Download a file from the server (an uploaded image), at most ``limit`` bytes (plus one, to tell).

        Parameters
        ----------
        url_or_path : str
        limit : int
        timeout : float

        Returns
        -------
        bytes
        """
        return self._authorised("GET", url_or_path, None, timeout, limit)

    def retrieve_predictions(self, project: str) -> Any:
        """Run the Data Manager action "Retrieve predictions" on the project's unlabelled tasks.

        Label Studio then calls the backend's ``/setup`` (learning the new
        ``model_version``) and ``/predict`` for the tasks that have no
        prediction of that version.

        Parameters
        ----------
        project : str
            The project id.

        Returns
        -------
        Any
            Label Studio's answer (``{"processed_items": ..., "detail": ...}``).
        """
        query = urllib.parse.urlencode({"id": "retrieve_tasks_predictions", "project": project})
        unlabelled = {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0}
        body = {
            "selectedItems": {"all": True, "excluded": []},
            "filters": {"conjunction": "and", "items": [unlabelled]},
        }
        return self.request("POST", f"/api/dm/actions?{query}", body)

    def annotated_tasks(self, project: str) -> list:
        """Return every task of a project that has annotations, with them (Label Studio's JSON export).

        Parameters
        ----------
        project : str

        Returns
        -------
        list of dict
            Tasks with ``id``, ``data`` and ``annotations``.
        """
        tasks = self.request("GET", f"/api/projects/{project}/export?exportType=JSON")
        if not isinstance(tasks, list):
            raise LabelStudioError(f"the export of project {project} is not a list of tasks.")
        return tasks

    def select_model_version(self, project: str, model_version: str) -> Any:
        """Make the project show and sort by predictions of ``model_version``.

        Label Studio's Data Manager scores a task (``predictions_score``) and
        its uncertainty sampling orders tasks by the predictions of the
        project's selected model version; a new ML backend selects its
        title, which no prediction carries.

        Parameters
        ----------
        project : str
        model_version : str
            Must be a version some of the project's predictions have.

        Returns
        -------
        Any
            The updated project.
        """
        return self.request("PATCH", f"/api/projects/{project}", {"model_version": model_version})


__all__ = ["LabelStudioClient", "LabelStudioError", "is_personal_access_token"]
