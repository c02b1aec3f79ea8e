"""Live progress on a terminal: the build view (BuildKit's tty mode) and a byte bar for load/save/import.

Both draw on stderr with plain ANSI sequences (cursor up, erase line), no curses. A build's view is a *frame* of
lines redrawn in place: a header (``[+] Building 3.2s (4/6)``), one line per step with its elapsed time
(``=> [2/4] RUN make   1.3s``, ``=> CACHED [3/4] ...``) and, under each running step, its last lines of output
(``=> => # ...``). The frame is redrawn on every event (at most ~10 times a second) and by a timer, so that a
step that prints nothing still shows its time ticking.

The timer is SIGALRM (``setitimer``), not a thread: RUN steps fork the CLI process (the built-in runtime), and a
fork must not happen while a helper thread of ours may hold a lock. The handler runs in the main thread between
bytecodes (a blocking ``waitpid`` is interrupted, the handler runs, the call is retried: PEP 475); it never waits
for the frame's lock, it skips a tick when an event is being drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from typing import IO, Any

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.engine.build import BuildEvent

LOG_LINES = 6           # last lines of a running step's output shown under it (as BuildKit)
TICK = 0.1              # seconds between redraws


def use_live_view(mode: str, stream: IO[str] | None = None) -> bool:
    """The live view for ``--progress`` ``auto``/``tty`` when ``stream`` (stderr) is a terminal; plain otherwise."""
    s = stream if stream is not None else sys.stderr
    try:
        return mode in ("auto", "tty") and s.isatty()
    except (ValueError, OSError):
        return False


def _term_size(fd: int) -> tuple[int, int]:
    try:
        sz = os.get_terminal_size(fd)
        return max(sz.columns, 20), max(sz.lines, 5)
    except OSError:
        return 80, 24


class _Writer:
    """Writes whole frames to a terminal fd (after flushing the text stream that shares it)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.fd = stream.fileno()

    def write(self, text: str) -> None:
        try:
            self.stream.flush()
        except (ValueError, RuntimeError):
            pass
        data = text.encode("utf-8", "replace")
        while data:
            n = os.write(self.fd, data)
            data = data[n:]


class _Step:
    __slots__ = ("cached", "end", "failed", "logs", "number", "start", "subs", "text")

    def __init__(self, number: int, text: str, start: float) -> None:
        self.number = number
        self.text = text
        self.start = start
        self.end: float | None = None
        self.cached = False
        self.failed = False
        self.logs: deque[str] = deque(maxlen=LOG_LINES)
        self.subs: list[str] = []


class BuildView:
    """Renders a build's events as a live frame. ``event`` may be called from any thread; ``start`` and ``close``
    from the main thread (they install and remove the SIGALRM ticker)."""

    def __init__(self, stream: IO[str] | None = None, clock: Any = time.monotonic) -> None:
        self.out = _Writer(stream if stream is not None else sys.stderr)
        self.clock = clock
        self.t0 = clock()
        self.steps: dict[int, _Step] = {}
        self.warnings: list[str] = []
        self.finished = False
        self.drawn = 0                   # lines of the last frame, the cursor is just under them
        self.last_draw = 0.0
        self.lock = threading.Lock()
        self._old_handler: Any = None
        self._ticking = False

    # ---- events ---------------------------------------------------------------------------------------------
    def event(self, ev: BuildEvent) -> None:
        from dockyard.engine.build import (BuildFinished, BuildWarning, StepCached, StepDone, StepOutput,
                                           StepStarted)

        with self.lock:
            now = self.clock()
            force = False
            if isinstance(ev, StepStarted):
                for st in self.steps.values():  # steps run one after another: a new one ends the previous ones
                    if st.end is None:
                        st.end = now
                self.steps[ev.number] = _Step(ev.number, ev.text, now)
                force = True
            elif isinstance(ev, StepOutput):
                st = self.steps.get(ev.number)
                if st is not None:
                    st.logs.append(ev.text)
            elif isinstance(ev, StepCached):
                st = self.steps.get(ev.number)
                if st is not None:
                    st.cached, st.end = True, now
                force = True
            elif isinstance(ev, StepDone):
                st = self.steps.get(ev.number)
                if st is not None:
                    st.end = st.start + ev.seconds
                force = True
            elif isinstance(ev, BuildWarning):
                self.warnings.append(ev.text)
            elif isinstance(ev, BuildFinished):
                last = self.steps[max(self.steps)] if self.steps else None
                for st in self.steps.values():
                    if st.end is None:
                        st.end = now
                if last is not None:
                    last.subs = [f"naming to {t}" for t in ev.tags]
                self.finished = True
                force = True
            if force or now - self.last_draw >= TICK:
                self._draw(now)

    # ---- the ticker -----------------------------------------------------------------------------------------
    def start(self) -> None:
        import signal

        if threading.current_thread() is not threading.main_thread():
            return
        self._old_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, TICK, TICK)
        self._ticking = True
        self.tick()

    def _on_alarm(self, signum: int, frame: object) -> None:
        self.tick()

    def tick(self) -> None:
        if not self.lock.acquire(blocking=False):
            return  # an event is being drawn (maybe by the code this handler interrupted)
        try:
            self._draw(self.clock())
        except (OSError, RuntimeError, ValueError):
            pass
        finally:
            self.lock.release()

    def close(self, ok: bool = True) -> None:
        """Stop ticking and draw the final frame: every step; on failure the running step marked ERROR with its
        last lines of output; then the warnings as plain lines."""
        if self._ticking:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            signal.signal(signal.SIGALRM, self._old_handler if self._old_handler is not None else signal.SIG_DFL)
            self._ticking = False
        with self.lock:
            now = self.clock()
            for st in self.steps.values():
                if st.end is None:
                    st.end = now
                    st.failed = not ok
            self._draw(now, final=True)
            if self.warnings:
                self.out.write("".join(w + "\n" for w in self.warnings))

    # ---- drawing ----------------------------------------------------------------------------------------------
    def frame(self, now: float, width: int, height: int | None) -> list[str]:
        """The lines of the view at ``now``, each at most ``width`` columns; at most ``height`` lines (older
        finished steps are left out first), all of them when ``height`` is None."""
        steps = [self.steps[n] for n in sorted(self.steps)]
        done = sum(1 for s in steps if s.end is not None)
        head = f"[+] Building {now - self.t0:.1f}s ({done}/{len(steps)})"
        if self.finished:
            head += " FINISHED"
        blocks: list[tuple[bool, list[str]]] = []  # (finished, lines)
        for st in steps:
            secs = (st.end if st.end is not None else now) - st.start
            mark = "CACHED " if st.cached else "ERROR " if st.failed else ""
            text = st.text.removesuffix(" done")  # "writing image ... done": the time says it
            lines = [_row(f" => {mark}{text}", f"{secs:.1f}s", width)]
            lines += [_row(f" => => {s}", "0.0s", width) for s in st.subs]
            if st.end is None or st.failed:
                lines += [_cut(f" => => # {log}", width) for log in st.logs]
            blocks.append((st.end is not None and not st.failed, lines))
        total = 1 + sum(len(b[1]) for b in blocks)
        if height is not None:
            for i, (fin, lines) in enumerate(blocks):
                if total <= height:
                    break
                if fin:
                    total -= len(lines)
                    blocks[i] = (fin, [])
        out = [_cut(head, width)]
        for _, lines in blocks:
            out += lines
        if height is not None and len(out) > height:
            out = out[:1] + out[len(out) - height + 1:]
        return out

    def _draw(self, now: float, final: bool = False) -> None:
        width, height = _term_size(self.out.fd)
        lines = self.frame(now, width - 1, None if final else height - 1)
        buf = [f"\x1b[{self.drawn}A" if self.drawn else "", "\r"]
        for ln in lines:
            buf.append(ln + "\x1b[K\n")
        buf.append("\x1b[J")  # a shorter frame: erase what the longer one left below
        self.out.write("".join(buf))
        self.drawn = len(lines)
        self.last_draw = now


def _cut(text: str, width: int) -> str:
    text = text.replace("\t", " ").replace("\r", "")
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


def _row(left: str, right: str, width: int) -> str:
    """``left`` and ``right`` on one line of ``width`` columns, ``right`` aligned to the end."""
    room = width - len(right) - 1
    if room < 10:
        return _cut(left, width)
    left = _cut(left, room)
    return left.ljust(room) + " " + right


# ---- load / save / import ------------------------------------------------------------------------------------

class ByteBar:
    """``Loading [=====>      ]  12.3MB/45.6MB  8.1MB/s``, redrawn in place (at most ~10 times a second) as
    bytes go through; without a known total, the bytes and the rate only. ``close`` draws the last state and
    ends the line."""

    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None,
                 clock: Any = time.monotonic) -> None:
        self.out = _Writer(stream if stream is not None else sys.stderr)
        self.label = label
        self.total = total if total and total > 0 else None
        self.clock = clock
        self.t0 = clock()
        self.done = 0
        self.last_draw = -1.0
        self.lock = threading.Lock()
        self.closed = False

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = self.clock()
            if now - self.last_draw >= TICK:
                self._draw(now)

    def line(self, now: float, width: int) -> str:
        from dockyard.cli.humanize import human_size

        secs = max(now - self.t0, 1e-6)
        rate = f"{human_size(self.done / secs)}/s"
        if self.total is None:
            return _cut(f"{self.label}  {human_size(self.done)}  {rate}", width)
        frac = min(self.done / self.total, 1.0)
        nums = f"{human_size(self.done)}/{human_size(self.total)}  {rate}"
        bar_w = max(min(50, width - len(self.label) - len(nums) - 6), 0)
        if bar_w < 10:
            return _cut(f"{self.label}  {nums}", width)
        fill = int(frac * bar_w)
        bar = "=" * fill + (">" if fill < bar_w else "") + " " * max(bar_w - fill - 1, 0)
        return _cut(f"{self.label} [{bar}]  {nums}", width)

    def _draw(self, now: float) -> None:
        width, _ = _term_size(self.out.fd)
        self.out.write("\r" + self.line(now, width - 1) + "\x1b[K")
        self.last_draw = now

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self._draw(self.clock())
            self.out.write("\n")


class CountingReader:
    """A binary stream that counts what is read through it into a ``ByteBar`` (read/readinto/read1 only: the
    engine's readers use nothing else)."""

    def __init__(self, raw: Any, bar: ByteBar) -> None:
        self.raw = raw
        self.bar = bar

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.bar.add(len(data))
        return data  # type: ignore[no-any-return]

    def read1(self, n: int = -1) -> bytes:
        data = self.raw.read1(n) if hasattr(self.raw, "read1") else self.raw.read(n)
        self.bar.add(len(data))
        return data  # type: ignore[no-any-return]

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        self.bar.add(n or 0)
        return n  # type: ignore[no-any-return]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


class CountingWriter:
    """A binary stream that counts what is written through it into a ``ByteBar``."""

    def __init__(self, raw: Any, bar: ByteBar) -> None:
        self.raw = raw
        self.bar = bar

    def write(self, b: Any) -> int:
        n = self.raw.write(b)
        self.bar.add(len(b) if n is None else n)
        return n if n is not None else len(b)  # type: ignore[no-any-return]

    def flush(self) -> None:
        self.raw.flush()

    def fileno(self) -> int:
        return self.raw.fileno()  # type: ignore[no-any-return]

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False
