"""A local stand-in for the release downloads and GitLab's notes API, for scripts/validate-ci.

  python3 release_server.py ROOT PORT_FILE API_LOG

Listens on 127.0.0.1 (a free port, written to PORT_FILE once listening) and serves:
  GET  /<path>                                         files under ROOT (404 when missing)
  GET  /api/v4/projects/<id>/merge_requests/<iid>/notes    the notes posted so far (JSON)
  POST /api/v4/projects/<id>/merge_requests/<iid>/notes    a new note {"body": ...}
  PUT  /api/v4/projects/<id>/merge_requests/<iid>/notes/<n> update note n
The API wants a JOB-TOKEN or PRIVATE-TOKEN header (401 without) and appends one JSON line per
API request to API_LOG: method, path, which token header came, the body. Every file download is
logged there too ({"method": "GET", "file": path, "status": ...}).
"""

import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT, PORT_FILE, API_LOG = sys.argv[1:4]
NOTES = re.compile(r"^/api/v4/projects/[^/]+/merge_requests/\d+/notes(?:/(\d+))?$")
notes = []
lock = threading.Lock()


def log(entry):
    with lock, open(API_LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def api(self, method):
        path = self.path.split("?", 1)[0]
        match = NOTES.match(path)
        if not match:
            return False
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        token = "JOB-TOKEN" if self.headers.get("JOB-TOKEN") else "PRIVATE-TOKEN" if self.headers.get("PRIVATE-TOKEN") else None
        log({"method": method, "path": path, "token_header": token, "body": (body or {}).get("body")})
        if token is None:
            self.reply(401, '{"message":"401 Unauthorized"}')
            return True
        with lock:
            if method == "GET" and not match.group(1):
                self.reply(200, json.dumps(notes))
            elif method == "POST" and not match.group(1):
                note = {"id": 2000 + len(notes) + 1, "body": body["body"]}
                notes.append(note)
                self.reply(201, json.dumps(note))
            elif method == "PUT" and match.group(1):
                found = [n for n in notes if n["id"] == int(match.group(1))]
                if found:
                    found[0]["body"] = body["body"]
                    self.reply(200, json.dumps(found[0]))
                else:
                    self.reply(404, '{"message":"404 Not found"}')
            else:
                self.reply(405, '{"message":"405 Method Not Allowed"}')
        return True

    def do_GET(self):
        if self.api("GET"):
            return
        rel = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
        full = os.path.join(ROOT, rel)
        if rel.startswith("..") or not os.path.isfile(full):
            log({"method": "GET", "file": rel, "status": 404})
            self.reply(404, "not found\n", "text/plain")
            return
        with open(full, "rb") as f:
            data = f.read()
        log({"method": "GET", "file": rel, "status": 200})
        self.reply(200, data, "application/octet-stream")

    def do_POST(self):
        if not self.api("POST"):
            self.reply(404, '{"message":"404 Not found"}')

    def do_PUT(self):
        if not self.api("PUT"):
            self.reply(404, '{"message":"404 Not found"}')


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
