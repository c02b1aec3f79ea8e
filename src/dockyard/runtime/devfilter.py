"""cgroup v2 device access control: the OCI ``linux.resources.devices`` rules compiled to a
BPF_PROG_TYPE_CGROUP_DEVICE program and attached to the container's cgroup.

cgroup v1 has the ``devices`` controller (``devices.allow``/``devices.deny``); cgroup v2 has none, and the kernel
instead runs the BPF programs attached to the cgroup (and its ancestors) at every mknod and open of a device node.
The program sees ``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}`` where ``access_type`` is
``(access << 16) | type`` (type 1 block, 2 char; access bits 1 mknod, 2 read, 4 write) and returns 1 to allow,
0 to deny (EPERM).

Rules are read in order with cgroup v1's meaning: a rule for all devices (type ``a`` or no type, no major/minor)
sets the default (allow or deny) and forgets the rules before it; every other rule is an exception. The program
tests the exceptions from the last to the first and returns the verdict of the first that matches, else the
default. An allow rule matches a request whose every access bit it grants; a deny rule matches a request that
asks for any access it names. Example, Docker's defaults: deny all, then allow ``c *:* m``, ``b *:* m``,
``c 1:3 rwm`` (/dev/null), ... so ``mknod /tmp/mem c 1 1`` works but opening it fails with EPERM.
"""

from __future__ import annotations

import os
import struct
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}
_ALL = 7

# struct bpf_insn opcodes used here
_LDX_MEM_W = 0x61      # dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54    # dst = (u32)dst & imm
_ALU32_RSH_K = 0x74    # dst = (u32)dst >> imm
_ALU32_MOV_X = 0xBC    # dst = (u32)src
_ALU64_MOV_K = 0xB7    # dst = imm
_JNE_K = 0x55          # if dst != imm: pc += off
_JEQ_K = 0x15          # if dst == imm: pc += off
_EXIT = 0x95
# registers: r1 = ctx; r2 = type, r3 = access, r4 = major, r5 = minor, r6 scratch, r0 = verdict
_CTX, _TYPE, _ACC, _MAJ, _MIN, _TMP = 1, 2, 3, 4, 5, 6


class DeviceRuleError(ValueError):
    pass


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _parse(rule: dict[str, Any]) -> tuple[bool, int, int | None, int | None, int]:
    """(allow, type (0 = all), major, minor (None = any), access bits) of one OCI device rule."""
    t = rule.get("type") or "a"
    if t not in ("a", "b", "c"):
        raise DeviceRuleError(f"invalid device rule type {t!r}")
    access = 0
    for ch in rule.get("access") or "rwm":
        if ch not in _ACCESS:
            raise DeviceRuleError(f"invalid device access {rule.get('access')!r}")
        access |= _ACCESS[ch]

    def num(v: Any) -> int | None:
        if v is None or v == -1:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << 32:
            raise DeviceRuleError(f"invalid device number {v!r}")
        return v

    return bool(rule.get("allow")), _TYPES.get(t, 0), num(rule.get("major")), num(rule.get("minor")), access


def effective(rules: list[dict[str, Any]]) -> tuple[bool, list[tuple[bool, int, int | None, int | None, int]]]:
    """The default verdict and the exceptions, in order, that ``rules`` leave (see the module's docstring)."""
    default = True  # no rule at all: the kernel's default, everything allowed
    out: list[tuple[bool, int, int | None, int | None, int]] = []
    for r in rules:
        allow, t, major, minor, access = _parse(r)
        if t == 0 and major is None and minor is None:
            if access == _ALL:
                default, out = allow, []
                continue
        out.append((allow, t, major, minor, access))
    return default, out


def program(rules: list[dict[str, Any]]) -> bytes:
    """The BPF instructions of the device program for ``rules`` (OCI ``linux.resources.devices``)."""
    default, exceptions = effective(rules)
    code = [
        _insn(_LDX_MEM_W, _TYPE, _CTX, 0),       # r2 = access_type
        _insn(_ALU32_MOV_X, _ACC, _TYPE),        # r3 = access_type
        _insn(_ALU32_AND_K, _TYPE, imm=0xFFFF),  # r2 = type
        _insn(_ALU32_RSH_K, _ACC, imm=16),       # r3 = access
        _insn(_LDX_MEM_W, _MAJ, _CTX, 4),        # r4 = major
        _insn(_LDX_MEM_W, _MIN, _CTX, 8),        # r5 = minor
    ]
    for allow, t, major, minor, access in reversed(exceptions):
        block: list[tuple[int, int, int, int]] = []  # (code, dst, imm, 1 if it jumps to the block's end)
        if t:
            block.append((_JNE_K, _TYPE, t, 1))
        if access != _ALL:
            block.append((_ALU32_MOV_X, _TMP, _ACC, 0))
            if allow:  # every requested bit must be granted: (access & ~granted) == 0
                block += [(_ALU32_AND_K, _TMP, _ALL & ~access, 0), (_JNE_K, _TMP, 0, 1)]
            else:      # any requested bit named: (access & named) != 0
                block += [(_ALU32_AND_K, _TMP, access, 0), (_JEQ_K, _TMP, 0, 1)]
        if major is not None:
            block.append((_JNE_K, _MAJ, major, 1))
        if minor is not None:
            block.append((_JNE_K, _MIN, minor, 1))
        block += [(_ALU64_MOV_K, 0, 1 if allow else 0, 0), (_EXIT, 0, 0, 0)]
        n = len(block)
        for i, (op, dst, imm, jumps) in enumerate(block):
            if op == _ALU32_MOV_X:
                code.append(_insn(op, dst, imm))
            elif jumps:
                code.append(_insn(op, dst, off=n - i - 1, imm=imm))
            else:
                code.append(_insn(op, dst, imm=imm))
    code += [_insn(_ALU64_MOV_K, 0, imm=1 if default else 0), _insn(_EXIT)]
    return b"".join(code)


def attach(cgroup_dir: str, rules: list[dict[str, Any]]) -> None:
    """Load the program for ``rules`` and attach it to the v2 cgroup ``cgroup_dir`` (BPF_F_ALLOW_MULTI: the
    programs of its ancestors still apply). It lives as long as the cgroup."""
    from dockyard.runtime import syscalls as S

    prog = S.bpf_prog_load(S.BPF_PROG_TYPE_CGROUP_DEVICE, program(rules), expected_attach_type=S.BPF_CGROUP_DEVICE,
                           name="dockyard_dev")
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            S.bpf_prog_attach(cg, prog, S.BPF_CGROUP_DEVICE, S.BPF_F_ALLOW_MULTI)
        finally:
            os.close(cg)
    finally:
        os.close(prog)
