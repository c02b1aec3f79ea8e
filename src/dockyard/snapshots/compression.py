"""Decompress a layer stream by its magic bytes, hashing the *uncompressed* bytes on the way (the diff_id).

Layers come as plain tar, gzip (Docker's default), zstd (``zstd`` CLI required), or, rarely, bzip2/xz (stdlib).
``open_layer(stream)`` returns a reader whose ``read()`` gives tar bytes and whose ``hexdigest()``/``size`` describe
all bytes read through it; ``drain()`` reads to EOF so that trailing bytes after the tar's end are hashed too.
"""

from __future__ import annotations

import hashlib
import io
import queue
import subprocess
import threading
import zlib
from typing import BinaryIO

from dockyard.errors import CorruptContent, NotImplementedYet

CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


def detect(head: bytes) -> str:
    """"gzip", "zstd", "bzip2", "xz" or "tar" (anything else) from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "tar"


class _Raw:
    """The source stream with the already-peeked head put back in front."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self.head = head
        self.src = src
        # read1: whatever is available (a pipe, a socket) rather than waiting for a whole chunk
        self._read = getattr(src, "read1", None) or src.read

    def read(self, n: int) -> bytes:
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self._read(n)


class _GzipDecoder:
    def __init__(self, raw: _Raw) -> None:
        self.raw = raw
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.eof = False

    def read(self, n: int) -> bytes:
        while not self.eof:
            if self.d.unconsumed_tail:
                out = self.d.decompress(self.d.unconsumed_tail, n)
            else:
                if self.d.eof:  # multi-member gzip: start the next member with the leftover bytes
                    rest = self.d.unused_data or self.raw.read(CHUNK)
                    if not rest:
                        self.eof = True
                        break
                    self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out = self._feed(rest, n)
                else:
                    data = self.raw.read(CHUNK)
                    if not data:
                        raise CorruptContent("unexpected end of gzip stream")
                    out = self._feed(data, n)
            if out:
                return out
        return b""

    def _feed(self, data: bytes, n: int) -> bytes:
        try:
            return self.d.decompress(data, n)
        except zlib.error as e:
            raise CorruptContent(f"invalid gzip data: {e}") from None


class _StdlibDecoder:
    def __init__(self, raw: _Raw, kind: str) -> None:
        import bz2
        import lzma

        self.raw = raw
        self.d = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
        self.kind = kind

    def read(self, n: int) -> bytes:
        while True:
            if self.d.eof:
                return b""
            data = b"" if self.d.needs_input is False else self.raw.read(CHUNK)
            if self.d.needs_input and not data:
                raise CorruptContent(f"unexpected end of {self.kind} stream")
            try:
                out = self.d.decompress(data, n)
            except (OSError, EOFError, ValueError) as e:
                raise CorruptContent(f"invalid {self.kind} data: {e}") from None
            if out:
                return out


class _ZstdDecoder:
    """``zstd -dc`` in a child process; a thread feeds it the compressed stream."""

    def __init__(self, raw: _Raw) -> None:
        from dockyard import libexec

        exe = libexec.system_dep("zstd")
        if exe is None:
            raise NotImplementedYet(libexec.missing_message("zstd"))
        self.proc = subprocess.Popen([exe, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.error: BaseException | None = None
        self.feeder = threading.Thread(target=self._feed, args=(raw,), daemon=True)
        self.feeder.start()
        self.done = False

    def _feed(self, raw: _Raw) -> None:
        assert self.proc.stdin is not None
        try:
            while data := raw.read(CHUNK):
                self.proc.stdin.write(data)
        except BrokenPipeError:
            pass
        except BaseException as e:  # the reader reports it
            self.error = e
        finally:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def read(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        if self.done:
            return b""
        out = self.proc.stdout.read1(n) if hasattr(self.proc.stdout, "read1") else self.proc.stdout.read(n)
        if out:
            return out
        self.done = True
        self.feeder.join()
        err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
        rc = self.proc.wait()
        if self.error is not None:
            raise self.error
        if rc != 0:
            raise CorruptContent(f"invalid zstd data: {err or f'zstd exited with status {rc}'}")
        return b""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self.feeder.join(timeout=5)


class LayerReader(io.RawIOBase):
    """Uncompressed tar bytes of a layer stream, hashed as they are read.

    Reading, decompressing and hashing run in a helper thread one chunk ahead of the consumer (zlib, bz2, lzma
    and hashlib release the GIL), so decompression overlaps with writing files."""

    _EOF = object()

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        head = b""
        while len(head) < 8:  # raw streams may return short reads
            more = src.read(8 - len(head))
            if not more:
                break
            head += more
        self.compression = detect(head)
        raw = _Raw(head, src)
        self._dec: _Raw | _GzipDecoder | _StdlibDecoder | _ZstdDecoder
        if self.compression == "gzip":
            self._dec = _GzipDecoder(raw)
        elif self.compression == "zstd":
            self._dec = _ZstdDecoder(raw)
        elif self.compression in ("bzip2", "xz"):
            self._dec = _StdlibDecoder(raw, self.compression)
        else:
            self._dec = raw
        self._h = hashlib.sha256()
        self.size = 0
        self._q: queue.Queue[object] = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._produce, daemon=True, name="layer-decoder")
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._dec.read(CHUNK)
                if not chunk:
                    break
                self._h.update(chunk)
                self.size += len(chunk)
                self._put(chunk)
            self._put(self._EOF)
        except BaseException as e:
            self._put(e)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while chunk := self.read(CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        if not self._buf:
            if self._done:
                return b""
            item = self._q.get()
            if item is self._EOF:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._buf = memoryview(item)  # type: ignore[arg-type]
        out = bytes(self._buf[:n])
        self._buf = self._buf[n:]
        return out

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        out = self.read(len(b))
        b[: len(out)] = out
        return len(out)

    def drain(self) -> None:
        """Read (and hash) everything left, e.g. the zero blocks after the tar's end marker."""
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        assert self._done, "the digest is known only after the whole stream was read"
        return self._h.hexdigest()

    def digest(self) -> str:
        return "sha256:" + self.hexdigest()

    def close(self) -> None:
        if not self.closed:
            self._stop.set()
            if isinstance(self._dec, _ZstdDecoder):
                self._dec.close()  # unblocks the producer if it waits on zstd's output
            self._thread.join()
        super().close()


def open_layer(src: BinaryIO) -> LayerReader:
    return LayerReader(src)
