"""Checks of the user's values that end up in files a container reads (/etc/hosts, /etc/resolv.conf, its hostname).

They are validated against the form Docker accepts, so that no value can carry a newline or a second entry into
those files (``--add-host 'x:1.2.3.4\\n6.6.6.6 bank.example'``). Called by ``engine.local.create`` for every edge.
"""

from __future__ import annotations

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument
from dockyard.ids import ASCII_ALNUM, is_label


def _q(value: str) -> str:
    """A value quoted as Go's %q would (escapes keep the message on one line)."""
    return json.dumps(value, ensure_ascii=False)

_HOSTS_CHARS = ASCII_ALNUM | frozenset("_.-")  # a name in /etc/hosts: printable, no whitespace, no comment sign


def _hostname_ok(value: str) -> bool:
    """RFC 1123 labels joined by dots: ``[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?`` each."""
    return all(len(label) <= 63 and is_label(label) for label in value.split("."))


def _hosts_name_ok(name: str) -> bool:
    return 0 < len(name) <= 253 and _HOSTS_CHARS.issuperset(name)


def hostname(value: str, what: str = "hostname") -> str:
    # the kernel keeps at most 64 bytes of a UTS hostname
    if value and (len(value) > 64 or not _hostname_ok(value)):
        raise InvalidArgument(f"invalid {what} format: {_q(value)}")
    return value


def ip_address(value: str, flag: str) -> str:
    import ipaddress  # 4 ms of imports: only when an address is given

    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidArgument(f'invalid argument {_q(value)} for "{flag}" flag: '
                              f'{_q(value)} is not an ip address') from None


def extra_host(value: str) -> str:
    """``name:ip`` (or Docker 25's ``name=ip``); the name as /etc/hosts takes it, the address parsed."""
    sep = "=" if "=" in value else ":"
    name, ok, addr = value.partition(sep)
    if not ok or not _hosts_name_ok(name):
        raise InvalidArgument(f'invalid argument {_q(value)} for "--add-host" flag: '
                              f'bad format for add-host: {_q(value)}')
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    if addr == "host-gateway":
        raise InvalidArgument(f'invalid argument {_q(value)} for "--add-host" flag: host-gateway is not supported')
    try:
        return f"{name}:{ip_address(addr, '--add-host')}"
    except InvalidArgument:
        raise InvalidArgument(f'invalid argument {_q(value)} for "--add-host" flag: '
                              f'invalid IP address in add-host: {_q(addr)}') from None


def container_values(hostname_: str, domainname: str, extra_hosts: list[str], dns: list[str]) -> list[str]:
    """Validate what ``create`` writes into the container's /etc files; returns the normalised --add-host list."""
    hostname(hostname_)
    hostname(domainname, "domainname")
    for d in dns:
        ip_address(d, "--dns")
    return [extra_host(h) for h in extra_hosts]


def userns(value: str, rootless: bool) -> None:
    """``--userns``: ``""`` and ``host`` (the engine's own user namespace: the host's for root, the user's when
    rootless), ``keep-id[:uid=N,gid=N]`` when rootless (as Podman, which refuses it for root with this message)."""
    if value in ("", "host"):
        return
    mode, _, opts = value.partition(":")
    if mode != "keep-id":
        raise InvalidArgument(f"invalid --userns {_q(value)}: supported are host and keep-id[:uid=UID,gid=GID]")
    if not rootless:
        raise InvalidArgument("keep-id is only supported in rootless mode")
    keep_id_options(opts)


def keep_id_options(opts: str) -> dict[str, int]:
    """``uid=N,gid=N`` of ``keep-id:...`` -> {"uid": N, "gid": N}."""
    from dockyard.ids import MAX_ID

    out: dict[str, int] = {}
    for item in opts.split(",") if opts else []:
        k, sep, v = item.partition("=")
        if not sep or k not in ("uid", "gid") or not v.isascii() or not v.isdigit() or int(v) > MAX_ID:
            raise InvalidArgument(f"invalid keep-id option {_q(item)}: uid=UID and gid=GID are supported")
        out[k] = int(v)
    return out
