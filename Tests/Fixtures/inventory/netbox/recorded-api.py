#!/usr/bin/env python3
"""Serves recorded NetBox 4.7.3 REST answers (README.md) for the inventory tests (run by the Swift test).

usage: recorded-api.py PORT DIRECTORY TOKEN
GET /api/dcim/devices/?...&offset=N answers DIRECTORY/devices-offset-N.json (offset 0 when
absent) with {base} replaced by this server's URL, after checking the token as NetBox does
(`Authorization: Token <v1>` or `Bearer nbt_<v2>`; anything else 403 with NetBox's detail).
Every request line goes to DIRECTORY/requests.log. DIRECTORY/mode switches the answers:
"garbage" (an HTML error page with status 200, as a misconfigured proxy sends), "huge"
(a 40 MiB answer).
"""
import http.server, json, os, sys, urllib.parse

port, directory, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(os.path.join(directory, "requests.log"), "a") as log:
            log.write(self.path + " " + self.headers.get("Authorization", "-").split(" ")[0] + "\n")
        auth = self.headers.get("Authorization", "")
        if auth not in ("Token " + token, "Bearer " + token):
            return self.send(403, b'{"detail":"Invalid v1 token"}')
        mode = ""
        if os.path.exists(os.path.join(directory, "mode")):
            mode = open(os.path.join(directory, "mode")).read().strip()
        if mode == "garbage":
            return self.send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
        if mode == "huge":
            return self.send(200, b'{"count":1,"next":null,"results":[' + b" " * (40 << 20) + b"]}")
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/api/dcim/devices/":
            return self.send(404, b'{"detail":"Not found."}')
        offset = urllib.parse.parse_qs(url.query).get("offset", ["0"])[0]
        name = os.path.join(directory, "devices-offset-%s.json" % offset)
        if not offset.isdigit() or not os.path.exists(name):
            return self.send(404, b'{"detail":"Not found."}')
        base = "http://127.0.0.1:%d" % port
        self.send(200, open(name).read().replace("{base}", base).encode())

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
