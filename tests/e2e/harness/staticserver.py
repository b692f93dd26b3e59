"""A plain file server over the registry's storage root: the "CDN" that
distribution's redirect middleware sends blob downloads to. It needs no
Authorization, like a real registry's CDN or presigned URL."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class StaticServer:
    def __init__(self, port: int, root: str):
        self.port = port
        self.bytes_served = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def copyfile(self, source, outputfile):
                data = source.read()
                with outer._lock:
                    outer.bytes_served += len(data)
                outputfile.write(data)

        handler = functools.partial(Handler, directory=root)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def take_count(self) -> int:
        """Bytes served since the last call."""
        with self._lock:
            n, self.bytes_served = self.bytes_served, 0
            return n

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
