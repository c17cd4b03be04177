"""A busy Label Studio (SQLite's "database is locked", answered as HTTP 500) is asked again for reads only."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from skcal.serve import labelstudio
from skcal.serve.labelstudio import LabelStudioClient, LabelStudioError


class Busy(BaseHTTPRequestHandler):
    """Answers 500 to the first ``busy`` requests, then 200 with the count of requests seen."""

    busy = 2
    seen: list = []

    def _answer(self):
        type(self).seen.append(self.command)
        if len(type(self).seen) <= type(self).busy:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"database is locked")
            return
        body = json.dumps({"requests": len(type(self).seen)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(labelstudio, "BUSY_RETRY_PAUSES", (0.01, 0.01, 0.01))
    Busy.seen, Busy.busy = [], 2
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_read_is_asked_again_while_the_server_is_busy(server):
    client = LabelStudioClient(server, "legacy-token")
    assert client.request("GET", "/api/projects/1") == {"requests": 3}
    assert Busy.seen == ["GET", "GET", "GET"]


def test_a_read_gives_up_after_the_last_pause(server):
    Busy.busy = 10
    client = LabelStudioClient(server, "legacy-token")
    with pytest.raises(LabelStudioError, match="HTTP 500"):
        client.request("GET", "/api/projects/1")
    assert len(Busy.seen) == 4  # the request and three more


def test_a_write_is_never_repeated(server):
    client = LabelStudioClient(server, "legacy-token")
    with pytest.raises(LabelStudioError, match="HTTP 500"):
        client.request("POST", "/api/projects", {"title": "x"})
    assert Busy.seen == ["POST"]
