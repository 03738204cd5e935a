"""The stream of a `docker exec`, whatever transport `DOCKER_HOST` names (unix socket, tcp, tcp + TLS, ssh).

docker-py's `exec_start(socket=True)` hands back a different object per transport; these two functions are all the
rest of the runtime needs, so no code reads a private attribute of any of them.
"""

from __future__ import annotations

import os
import select
import socket
from typing import Any


def open_stream(raw: Any) -> Any:
    """The exec stream docker-py hands back, as an object with `sendall`, `recv`, `shutdown`, `close`, `fileno`.

    What `exec_start(socket=True)` returns depends on `DOCKER_HOST`: a `socket.SocketIO` (unix socket, plain tcp),
    an `ssl.SSLSocket` (tcp with TLS) or a paramiko `Channel` (ssh). The last two already are such objects; a
    SocketIO gets a socket of its own over a duplicate of its descriptor (no private attribute is read)."""
    if all(hasattr(raw, name) for name in ("sendall", "recv", "fileno")):
        return raw
    stream = socket.socket(fileno=os.dup(raw.fileno()))
    raw.close()
    return stream


def readable(stream: Any, timeout: float) -> bool:
    """Whether `recv` will not block; TLS may hold decrypted bytes that `select` on the descriptor cannot see."""
    pending = getattr(stream, "pending", None)
    if callable(pending) and pending() > 0:
        return True
    return bool(select.select([stream], [], [], timeout)[0])
