"""A byte-counting TCP relay in front of pullgate. Clients talk to the
relay; the relay connects to pullgate from its own loopback source address
(so the tests know the client address pullgate sees) and counts every byte
pullgate sends back: the proof that no blob crossed the gateway."""

import socket
import threading


class Relay:
    def __init__(self, listen_port: int, target_port: int, source_ip: str):
        self.listen_port = listen_port
        self.target_port = target_port
        self.source_ip = source_ip
        self.downstream_bytes = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", listen_port))
        self._sock.listen(128)
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopping = True
        try:
            self._sock.close()
        except OSError:
            pass

    def take_count(self) -> int:
        with self._lock:
            n, self.downstream_bytes = self.downstream_bytes, 0
            return n

    def _accept(self):
        while not self._stopping:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket):
        upstream = socket.socket()
        try:
            upstream.bind((self.source_ip, 0))
            upstream.connect(("127.0.0.1", self.target_port))
        except OSError:
            client.close()
            upstream.close()
            return
        up = threading.Thread(target=pipe, args=(client, upstream), daemon=True)
        up.start()
        pipe(upstream, client, self._count)
        up.join(timeout=5)
        client.close()
        upstream.close()

    def _count(self, data: bytes):
        with self._lock:
            self.downstream_bytes += len(data)


def pipe(src: socket.socket, dst: socket.socket, on_data=None):
    """Copies src to dst until either side closes, showing each chunk to
    on_data first; then shuts both down so the other direction ends too."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if on_data is not None:
                on_data(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
