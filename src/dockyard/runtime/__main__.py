"""The built-in runtime as an OCI runtime command, for other engines (runc's command-line shape):

    python -m dockyard.runtime [--root DIR] create --bundle B [--pid-file F] ID
    python -m dockyard.runtime [--root DIR] start ID | state ID | kill ID [SIG] | delete [--force] ID
    python -m dockyard.runtime [--root DIR] pause ID | resume ID | list
    python -m dockyard.runtime [--root DIR] exec --process P.json [--pid-file F] [--detach] ID
    python -m dockyard.runtime [--root DIR] run --bundle B ID

``--log FILE``, ``--log-format``, ``--systemd-cgroup`` are accepted for compatibility; errors go to stderr (and to
the log file as JSON lines when one is given) and the exit status is 1.
"""

from __future__ import annotations

import os
import sys


_GLOBAL_VALUED = {"--root", "--log", "--log-format", "--criu"}


def _signal(s: str) -> int:
    import signal

    if s.isdigit():
        return int(s)
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError:
        raise ValueError(f"unknown signal {s!r}") from None


def _opts(args: list[str], flags: set[str], valued: set[str]) -> tuple[dict[str, str | bool], list[str]]:
    opts: dict[str, str | bool] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        key, eq, val = a.partition("=")
        key = "--" + key.lstrip("-") if key.startswith("-") else key
        if key in valued:
            if not eq:
                i += 1
                if i >= len(args):
                    raise ValueError(f"option {key} needs a value")
                val = args[i]
            opts[key] = val
        elif key in flags:
            opts[key] = True
        elif a.startswith("-") and len(a) > 1 and not a.lstrip("-").isdigit():
            raise ValueError(f"unknown option {a}")
        else:
            rest.append(a)
        i += 1
    return opts, rest


def _write_pid(path: str | bool | None, pid: int) -> None:
    if isinstance(path, str) and path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    log: str | None = None
    try:
        n = 0
        while n < len(argv) and argv[n].startswith("-"):
            key = argv[n].split("=", 1)[0]
            n += 2 if key in _GLOBAL_VALUED and "=" not in argv[n] else 1
        gopts, _ = _opts(argv[:n], {"--systemd-cgroup", "--debug"}, _GLOBAL_VALUED)
        if n >= len(argv):
            raise ValueError("missing command (create, start, state, kill, delete, pause, resume, exec, run, list)")
        cmd, args = argv[n], argv[n + 1:]
        log = gopts.get("--log") if isinstance(gopts.get("--log"), str) else None  # type: ignore[assignment]
        root = str(gopts.get("--root") or "/run/dockyard/runtime")
        from dockyard.runtime.base import Stdio
        from dockyard.runtime.builtin import BuiltinRuntime

        rt = BuiltinRuntime(root)
        if cmd == "create":
            o, r = _opts(args, {"--no-pivot", "--no-new-keyring"}, {"--bundle", "-b", "--pid-file", "--console-socket",
                                                                     "--preserve-fds"})
            _need(r, 1, "create [--bundle B] [--pid-file F] ID")
            if str(o.get("--preserve-fds") or "0") != "0":  # every fd but stdio is closed in the container
                raise ValueError("--preserve-fds is not supported by the built-in runtime")
            pid = rt.create(r[0], str(o.get("--bundle") or o.get("-b") or "."), Stdio(0, 1, 2))
            _write_pid(o.get("--pid-file"), pid)
        elif cmd == "start":
            rt.start(_need(args, 1, "start ID")[0])
        elif cmd == "state":
            from dockyard import jsonc as json

            print(json.dumps(rt.state(_need(args, 1, "state ID")[0]), indent=2))
        elif cmd == "kill":
            o, r = _opts(args, {"--all", "-a"}, set())
            if len(r) not in (1, 2):
                raise ValueError("usage: kill [--all] ID [SIGNAL]")
            rt.kill(r[0], _signal(r[1]) if len(r) > 1 else 15, all=bool(o.get("--all") or o.get("-a")))
        elif cmd == "delete":
            o, r = _opts(args, {"--force", "-f"}, set())
            rt.delete(_need(r, 1, "delete [--force] ID")[0], force=bool(o.get("--force") or o.get("-f")))
        elif cmd in ("pause", "resume"):
            getattr(rt, cmd)(_need(args, 1, f"{cmd} ID")[0])
        elif cmd == "list":
            for cid in rt.list():
                try:
                    st = rt.state(cid)
                except Exception:  # noqa: BLE001
                    continue
                print(f"{cid}\t{st['pid']}\t{st['status']}\t{st['bundle']}")
        elif cmd == "exec":
            from dockyard import jsonc as json

            o, r = _opts(args, {"--detach", "-d", "--tty", "-t"}, {"--process", "-p", "--pid-file",
                                                                    "--console-socket", "--cwd"})
            cid = _need(r[:1], 1, "exec --process P.json ID")[0]
            if o.get("--process") or o.get("-p"):
                with open(str(o.get("--process") or o.get("-p"))) as f:
                    proc = json.load(f)
            else:
                proc = {"args": r[1:], "cwd": o.get("--cwd") or "/"}
            from dockyard.runtime import syscalls

            detach = bool(o.get("--detach") or o.get("-d"))
            if not detach:
                syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
            pid = rt.exec(cid, proc, Stdio(0, 1, 2))
            _write_pid(o.get("--pid-file"), pid)
            if not detach:
                return _wait(pid)
        elif cmd == "run":
            o, r = _opts(args, {"--detach", "-d"}, {"--bundle", "-b", "--pid-file"})
            cid = _need(r, 1, "run [--bundle B] ID")[0]
            from dockyard.runtime import syscalls

            syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
            pid = rt.create(cid, str(o.get("--bundle") or o.get("-b") or "."), Stdio(0, 1, 2))
            _write_pid(o.get("--pid-file"), pid)
            try:
                rt.start(cid)
                code = _wait(pid)
            finally:
                rt.delete(cid, force=True)
            return code
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return 0
    except Exception as e:  # noqa: BLE001 - the one place errors become an exit status
        from dockyard.errors import DockyardError

        msg = str(e) if isinstance(e, (DockyardError, ValueError)) else f"{type(e).__name__}: {e}"
        print(f"dockyard-runtime: {msg}", file=sys.stderr)
        if log:
            try:
                from dockyard import jsonc as json
                import time

                with open(log, "a") as f:
                    f.write(json.dumps({"level": "error", "msg": msg,
                                        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
            except OSError:
                pass
        return 1


def _need(args: list[str], n: int, usage: str) -> list[str]:
    if len(args) != n:
        raise ValueError(f"usage: {usage}")
    return args


def _wait(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
