"""A webhook receiver in a few lines: checks each delivery's Standard Webhooks signature
and prints it as one JSON line. Its first line is the URL to deliver to.

    python examples/webhook_receiver.py [whsec_...]      # needs `pip install standardwebhooks`
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook

SECRET = sys.argv[1] if len(sys.argv) > 1 else "whsec_cmVhZG1lLXJlbGF5LXdlYmhvb2stc2VjcmV0LTMyYnk="


class Receive(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        # Raises unless signed with SECRET (the body may be XML: not parsed as JSON here).
        Webhook(SECRET).verify(body, dict(self.headers), json_parse=False)
        shown = {"verified": True, "type": self.headers["webhook-event-type"],
                 "id": self.headers["webhook-id"], "body": body.decode()}  # fmt: skip
        print(json.dumps(shown), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # no access log
        pass


server = HTTPServer(("127.0.0.1", 0), Receive)
print(f"http://127.0.0.1:{server.server_port}/hooks", flush=True)
server.serve_forever()
