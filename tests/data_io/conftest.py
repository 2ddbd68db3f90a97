"""Shared for the io tests: a local Nightscout site serving the recorded collections."""
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from tests.data_io.nightscout_data import ENTRIES, PROFILE, TREATMENTS


class Recorded(BaseHTTPRequestHandler):
    """Serves the recorded collections; remembers the queries; 401 without the token."""

    queries: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        type(self).queries.append((url.path, query))
        if query.get("token") != ["secret-1"]:
            self.send_response(401)
            self.end_headers()
            return
        name = url.path.rsplit("/", 1)[-1].removesuffix(".json")
        docs = {"entries": ENTRIES, "treatments": TREATMENTS, "profile": PROFILE}[name]
        if "find[date][$lt]" in query or "find[created_at][$lt]" in query:
            docs = []
        body = json.dumps(docs).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    """A Nightscout site on 127.0.0.1 answering the recorded collections (token ``secret-1``): ``.url`` and the
    ``.queries`` it received."""
    server = HTTPServer(("127.0.0.1", 0), Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorded.queries = []
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", queries=Recorded.queries)
    server.shutdown()
    server.server_close()
