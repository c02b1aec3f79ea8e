import hashlib
import io
import os
import threading

import pytest

from dockyard.content.store import ContentStore
from dockyard.errors import CorruptContent, InvalidArgument, NotFound
from dockyard.state.db import Store


def dig(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def cs(tmp_path):
    return ContentStore(Store(root=str(tmp_path)))


def tmp_files(cs: ContentStore) -> list[str]:
    return [n for n in os.listdir(cs.store.tmp) if n.startswith("ingest-")] if os.path.isdir(cs.store.tmp) else []


def test_ingest_and_read_back(cs):
    data = b"hello world\n" * 1000
    d, n = cs.ingest(io.BytesIO(data))
    assert d == dig(data) and n == len(data)
    assert cs.has(d)
    assert cs.size(d) == len(data)
    assert cs.read_bytes(d) == data
    assert cs.path(d).endswith("/content/blobs/sha256/" + d[7:])
    assert list(cs.digests()) == [d]
    assert tmp_files(cs) == []
    assert cs.verify(d)


def test_expected_digest_and_size_ok(cs):
    data = b"abc"
    assert cs.ingest(io.BytesIO(data), dig(data), 3) == (dig(data), 3)
    assert cs.put_bytes(data, dig(data)) == dig(data)


def test_digest_mismatch_leaves_nothing(cs):
    with pytest.raises(CorruptContent, match="digest mismatch"):
        cs.ingest(io.BytesIO(b"evil"), dig(b"good"))
    assert not cs.has(dig(b"good")) and not cs.has(dig(b"evil"))
    assert list(cs.digests()) == []
    assert tmp_files(cs) == []


@pytest.mark.parametrize("size", [2, 10])
def test_size_mismatch_leaves_nothing(cs, size):
    with pytest.raises(CorruptContent, match="size mismatch"):
        cs.ingest(io.BytesIO(b"12345"), expected_size=size)
    assert list(cs.digests()) == [] and tmp_files(cs) == []


def test_missing_blob(cs):
    d = dig(b"nope")
    assert not cs.has(d)
    with pytest.raises(NotFound, match=f"blob {d} not found"):
        cs.open(d)
    with pytest.raises(NotFound):
        cs.size(d)
    cs.remove(d)  # missing is fine


def test_invalid_digest(cs):
    with pytest.raises(InvalidArgument):
        cs.path("sha256:../../etc/passwd")
    with pytest.raises(InvalidArgument):
        cs.ingest(io.BytesIO(b""), "md5:abc")


def test_remove(cs):
    d = cs.put_bytes(b"x")
    cs.remove(d)
    assert not cs.has(d) and list(cs.digests()) == []


def test_ingest_existing_is_idempotent(cs):
    d1 = cs.put_bytes(b"same")
    d2 = cs.put_bytes(b"same")
    assert d1 == d2 and cs.read_bytes(d1) == b"same" and tmp_files(cs) == []


class SlowReader(io.RawIOBase):
    """Yields data in small pieces, waiting on a barrier once so two ingests overlap."""

    def __init__(self, data: bytes, barrier: threading.Barrier) -> None:
        self.buf = io.BytesIO(data)
        self.barrier = barrier
        self.first = True

    def read(self, n: int = -1) -> bytes:
        if self.first:
            self.first = False
            self.barrier.wait(timeout=10)
        return self.buf.read(min(n if n > 0 else 4096, 4096))


def test_concurrent_ingest_of_same_blob(cs):
    data = os.urandom(300_000)
    barrier = threading.Barrier(4)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(cs.ingest(SlowReader(data, barrier), dig(data), len(data)))
        except Exception as e:  # pragma: no cover - reported by the assert below
            results.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [(dig(data), len(data))] * 4
    assert cs.read_bytes(dig(data)) == data
    assert tmp_files(cs) == []


def test_cleanup_tmp_removes_dead_ingest_only(cs):
    os.makedirs(cs.store.tmp, exist_ok=True)
    dead = os.path.join(cs.store.tmp, "ingest-dead")
    open(dead, "wb").close()
    other = os.path.join(cs.store.tmp, "unrelated")
    open(other, "wb").close()
    assert cs.cleanup_tmp() == [dead]
    assert not os.path.exists(dead) and os.path.exists(other)
