"""Bounded capture of a command's output: keeps the head and the tail, counts what it dropped.

A step may print gigabytes (`yes`); the policy needs the start (the command's first reaction) and the end
(the error that stopped it), and memory must stay flat whatever the command does.
"""

from __future__ import annotations

import struct


class CappedOutput:
    def __init__(self, max_bytes: int) -> None:
        self.head_limit = max_bytes // 2
        self.tail_limit = max_bytes - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def append(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            # Trim lazily (at twice the limit) so a flood costs amortised O(1) per byte.
            if len(self.tail) > 2 * self.tail_limit + 4096:
                del self.tail[: len(self.tail) - self.tail_limit - 4096]

    def last(self, count: int) -> bytes:
        """The last `count` bytes seen (enough to spot the end-of-command sentinel)."""
        if len(self.tail) >= count:
            return bytes(self.tail[-count:])
        return bytes((self.head + self.tail)[-count:])

    def drop_last(self, count: int) -> None:
        """Remove the sentinel once found, so it never reaches the policy."""
        self.total -= count
        from_tail = min(count, len(self.tail))
        del self.tail[len(self.tail) - from_tail :]
        if count > from_tail:
            del self.head[len(self.head) - (count - from_tail) :]

    @property
    def truncated(self) -> bool:
        return self.total - len(self.head) > self.tail_limit

    def text(self) -> str:
        tail = self.tail[-self.tail_limit :] if self.tail_limit else b""
        if not self.truncated:
            return (self.head + self.tail).decode("utf-8", errors="replace")
        omitted = self.total - len(self.head) - len(tail)
        head = self.head.decode("utf-8", errors="replace")
        return f"{head}\n[... {omitted} bytes of output omitted ...]\n{bytes(tail).decode('utf-8', errors='replace')}"


def demultiplex(frames: bytearray, data: bytes, output: CappedOutput) -> None:
    """Docker frames non-tty exec streams: an 8-byte header (stream, 0, 0, 0, big-endian size), then the payload.

    `frames` carries an incomplete frame over to the next call."""
    frames += data
    offset = 0
    while len(frames) - offset >= 8:
        size = struct.unpack_from(">I", frames, offset + 4)[0]
        if len(frames) - offset - 8 < size:
            break
        output.append(bytes(frames[offset + 8 : offset + 8 + size]))
        offset += 8 + size
    del frames[:offset]
