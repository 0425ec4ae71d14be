"""A read-only S3 endpoint on 127.0.0.1 serving a folder (``/bucket/key`` is ``folder/bucket/key``):
enough of the protocol (HEAD, GET with a byte range) for pyarrow's S3 file system, so that
``s3://`` URIs are read for real without leaving the machine."""

from __future__ import annotations

import email.utils
import http.server
import threading
from contextlib import contextmanager
from pathlib import Path


def _handler(root: Path):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _file(self) -> Path | None:
            path = (root / self.path.split("?")[0].lstrip("/")).resolve()
            return path if path.is_file() and path.is_relative_to(root) else None

        def _head(self, status: int, length: int, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(length))
            self.send_header("Last-Modified", email.utils.formatdate(usegmt=True))
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()

        def do_HEAD(self):
            path = self._file()
            self._head(200, path.stat().st_size) if path else self._head(404, 0)

        def do_GET(self):
            path = self._file()
            if path is None:
                body = b"<Error><Code>NoSuchKey</Code></Error>"
                self._head(404, len(body))
                self.wfile.write(body)
                return
            data = path.read_bytes()
            first, last = 0, len(data) - 1
            if self.headers.get("Range"):
                start, end = self.headers["Range"].split("=")[1].split("-")
                first, last = int(start), min(int(end), last)
            chunk = data[first : last + 1]
            status = 206 if self.headers.get("Range") else 200
            self._head(status, len(chunk), {"Content-Range": f"bytes {first}-{last}/{len(data)}"})
            self.wfile.write(chunk)

    return Handler


@contextmanager
def fake_s3(root: Path):
    """Serve ``root``; yields a function giving the ``s3://`` URI of ``bucket/key`` there
    (credentials and endpoint in the URI, as pyarrow reads them)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(Path(root).resolve()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    try:
        yield lambda key: f"s3://key:secret@{key}?{query}"
    finally:
        server.shutdown()
        server.server_close()
