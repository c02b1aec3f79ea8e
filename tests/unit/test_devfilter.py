"""The cgroup device program generator: the emitted instructions, run by a small interpreter of the few BPF
opcodes it uses, give v1's verdicts for Docker's default rules and for edge cases (order, wildcards, access)."""

from __future__ import annotations

import struct

import pytest

from dockyard.runtime import devfilter
from dockyard.runtime.defaults import DEVICE_RULES

M, R, W = 1, 2, 4
BLOCK, CHAR = 1, 2


def run(prog: bytes, type_: int, access: int, major: int, minor: int) -> int:
    ctx = [(access << 16) | type_, major, minor]
    regs = [0] * 11
    pc = 0
    n = len(prog) // 8
    steps = 0
    while True:
        assert 0 <= pc < n, "jumped out of the program"
        steps += 1
        assert steps < 10_000
        code, regsb, off, imm = struct.unpack_from("<BBhi", prog, pc * 8)
        dst, src = regsb & 0xF, regsb >> 4
        pc += 1
        if code == 0x61:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = ctx[off // 4]
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0x54:
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x55:
            if regs[dst] != imm:
                pc += off
        elif code == 0x15:
            if regs[dst] == imm:
                pc += off
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def test_docker_defaults():
    p = devfilter.program(DEVICE_RULES)
    assert run(p, CHAR, R | W, 1, 3) == 1     # /dev/null
    assert run(p, CHAR, R, 1, 9) == 1         # /dev/urandom
    assert run(p, CHAR, R | W, 136, 4) == 1   # a pts
    assert run(p, CHAR, R, 1, 1) == 0         # /dev/mem
    assert run(p, CHAR, R, 1, 11) == 0        # /dev/kmsg
    assert run(p, BLOCK, R, 8, 0) == 0        # the host disk
    assert run(p, BLOCK, M, 8, 0) == 1        # mknod of anything is allowed (as Docker)
    assert run(p, CHAR, M, 1, 1) == 1
    assert run(p, CHAR, R | M, 10, 200) == 1  # tun


def test_no_rules_allow_everything_and_deny_all_denies_everything():
    assert run(devfilter.program([]), BLOCK, R | W, 8, 0) == 1
    p = devfilter.program([{"allow": False, "access": "rwm"}])
    assert run(p, CHAR, R, 1, 3) == 0 and run(p, BLOCK, M, 8, 0) == 0


def test_a_later_all_rule_forgets_the_earlier_rules():
    p = devfilter.program([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3},
                           {"allow": True, "access": "rwm"}, {"allow": False, "type": "b", "access": "r"}])
    assert run(p, CHAR, R, 1, 1) == 1
    assert run(p, BLOCK, W, 8, 0) == 1
    assert run(p, BLOCK, R | W, 8, 0) == 0  # deny: any named access
    assert run(p, BLOCK, R, 8, 0) == 0


def test_allow_needs_every_requested_access_and_later_rules_win():
    p = devfilter.program([{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 4, "access": "r"},
                           {"allow": False, "type": "c", "major": 4, "minor": 1, "access": "r"}])
    assert run(p, CHAR, R, 4, 0) == 1
    assert run(p, CHAR, R | W, 4, 0) == 0
    assert run(p, CHAR, R, 4, 1) == 0
    assert run(p, BLOCK, R, 4, 0) == 0


@pytest.mark.parametrize("rule", [{"type": "x"}, {"type": "c", "access": "rwx"}, {"type": "c", "major": "1"},
                                  {"type": "c", "minor": -5}, {"type": "c", "major": 1 << 32}])
def test_invalid_rules_are_refused(rule):
    with pytest.raises(devfilter.DeviceRuleError):
        devfilter.program([{"allow": True, **rule}])
