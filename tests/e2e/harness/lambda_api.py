"""A local Lambda Runtime API and Extensions API on loopback, enough to run
a real `bootstrap` (the gateway function as built for Lambda) the way Lambda
does: the runtime asks for its next invocation, posts the response; internal
extensions register and get an INVOKE event per invocation. The Lambda
service is not an AWS API moto offers; this is the documented wire protocol
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html,
runtimes-extensions-api.html), served so that the real binary can be
driven and timed: nothing of the function is replaced."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Invocation:
    def __init__(self, payload: dict):
        self.id = str(uuid.uuid4())
        self.payload = payload
        self.dispatched = None
        self.answered = None
        self.response = None
        self.error = None
        self.done = threading.Event()


class LambdaApi:
    def __init__(self):
        self.cond = threading.Condition()
        self.pending: list[Invocation] = []
        self.by_id: dict[str, Invocation] = {}
        # extension id -> queue of events and whether it waits in /next
        self.extensions: dict[str, dict] = {}
        self.first_next = None
        self.init_errors: list[str] = []
        self.shutting_down = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, body: bytes = b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/2018-06-01/runtime/invocation/next":
                    inv = api._next_invocation()
                    if inv is None:
                        return self._send(500, b'{"error":"shutting down"}')
                    headers = {
                        "Lambda-Runtime-Aws-Request-Id": inv.id,
                        "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                        "Lambda-Runtime-Invoked-Function-Arn":
                            "arn:aws:lambda:us-east-1:123456789012:function:gateway",
                        "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                    }
                    return self._send(200, json.dumps(inv.payload).encode(), headers)
                if self.path == "/2020-01-01/extension/event/next":
                    ext = self.headers.get("Lambda-Extension-Identifier", "")
                    event = api._next_extension_event(ext)
                    if event is None:
                        return self._send(403, b'{"error":"unknown extension"}')
                    return self._send(200, json.dumps(event).encode())
                self._send(404, b'{"error":"not found"}')

            def do_POST(self):
                body = self._body()
                parts = self.path.strip("/").split("/")
                if self.path == "/2020-01-01/extension/register":
                    ext = str(uuid.uuid4())
                    with api.cond:
                        api.extensions[ext] = {"name": self.headers.get("Lambda-Extension-Name"),
                                               "events": json.loads(body or b"{}").get("events", []),
                                               "queue": [], "waiting": False}
                        api.cond.notify_all()
                    return self._send(200, json.dumps({"functionName": "gateway", "functionVersion": "$LATEST",
                                                       "handler": "bootstrap"}).encode(),
                                      {"Lambda-Extension-Identifier": ext})
                if parts[:3] == ["2018-06-01", "runtime", "invocation"] and len(parts) == 5:
                    api._answer(parts[3], parts[4], body)
                    return self._send(202, b'{"status":"OK"}')
                if parts[-1] == "error":
                    with api.cond:
                        api.init_errors.append(body.decode(errors="replace"))
                    return self._send(202, b'{"status":"OK"}')
                self._send(404, b'{"error":"not found"}')

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # The function going away mid-request (stopped, killed) is
                # expected here, not worth a traceback.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        with self.cond:
            self.shutting_down = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # --- served to the function ---------------------------------------

    def _next_invocation(self):
        with self.cond:
            if self.first_next is None:
                self.first_next = time.monotonic()
            while not self.pending and not self.shutting_down:
                self.cond.wait(0.5)
            if self.shutting_down:
                return None
            inv = self.pending.pop(0)
            inv.dispatched = time.monotonic()
            for ext in self.extensions.values():
                if "INVOKE" in ext["events"]:
                    ext["queue"].append({"eventType": "INVOKE", "deadlineMs": int(time.time() * 1000) + 30_000,
                                         "requestId": inv.id,
                                         "invokedFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:gateway",
                                         "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-0-0;Sampled=0"}})
            self.cond.notify_all()
            return inv

    def _next_extension_event(self, ext_id: str):
        with self.cond:
            ext = self.extensions.get(ext_id)
            if ext is None:
                return None
            ext["waiting"] = True
            self.cond.notify_all()
            while not ext["queue"] and not self.shutting_down:
                self.cond.wait(0.5)
            ext["waiting"] = False
            if not ext["queue"]:
                return {"eventType": "SHUTDOWN", "shutdownReason": "SPINDOWN", "deadlineMs": 0}
            return ext["queue"].pop(0)

    def _answer(self, inv_id: str, kind: str, body: bytes):
        with self.cond:
            inv = self.by_id.get(inv_id)
            if inv is None:
                return
            inv.answered = time.monotonic()
            if kind == "response":
                inv.response = json.loads(body)
            else:
                inv.error = body.decode(errors="replace")
            inv.done.set()
            self.cond.notify_all()

    # --- used by tests and benchmarks --------------------------------

    def submit(self, payload: dict) -> Invocation:
        inv = Invocation(payload)
        with self.cond:
            self.by_id[inv.id] = inv
            self.pending.append(inv)
            self.cond.notify_all()
        return inv

    def invoke(self, payload: dict, timeout: float = 30.0) -> Invocation:
        """One invocation, answered (response or error) within timeout."""
        inv = self.submit(payload)
        if not inv.done.wait(timeout):
            raise TimeoutError(f"no answer to invocation {inv.id} in {timeout}s; init errors: {self.init_errors}")
        return inv

    def wait_extensions_idle(self, timeout: float = 30.0):
        """Until every extension has handled its events and waits for the
        next one: the point where Lambda would freeze the environment."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(e["waiting"] and not e["queue"] for e in self.extensions.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("extensions still busy")
                self.cond.wait(left)

    def wait_ready(self, timeout: float = 30.0):
        """Until the runtime has asked for its first invocation (end of Init)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.first_next is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the function never asked for an invocation; init errors: {self.init_errors}")
                self.cond.wait(left)
