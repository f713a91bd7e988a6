"""A small classic-BPF interpreter for seccomp programs (tests only).

It runs a program against one ``struct seccomp_data`` the way the kernel does, so tests can ask
"what would the kernel answer for syscall N on arch A with these arguments?" without loading the
filter anywhere. Only the instructions the kernel's seccomp checker accepts are implemented; any
other opcode raises, so a surprise in libseccomp's output cannot pass unnoticed.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000

_DATA = struct.Struct("<iIQ6Q")  # nr, arch, instruction_pointer, args[6]
_MASK32 = 0xFFFFFFFF


def errno_action(err: int) -> int:
    return SECCOMP_RET_ERRNO | err


def is_allowed(action: int) -> bool:
    return action & SECCOMP_RET_ACTION_FULL == SECCOMP_RET_ALLOW


class BpfProgram:
    def __init__(self, program: bytes) -> None:
        if len(program) % 8:
            raise ValueError("a BPF program is a whole number of 8-byte instructions")
        self.insns = list(struct.iter_unpack("=HBBI", program))

    def run(self, nr: int, arch: int, args: Sequence[int] = (), ip: int = 0) -> int:
        full_args = [*args, *([0] * (6 - len(args)))]
        data = _DATA.pack(nr, arch, ip, *full_args)
        a = x = 0
        mem = [0] * 16
        pc = 0
        while True:
            code, jt, jf, k = self.insns[pc]  # IndexError = program fell off its end
            pc += 1
            cls, src_x = code & 0x07, code & 0x08
            if cls == 0x00:  # BPF_LD: W|ABS into seccomp_data, IMM, MEM
                mode = code & 0xE0
                if code == 0x20:
                    if k % 4 or k + 4 > len(data):
                        raise ValueError(f"bad seccomp_data load at offset {k}")
                    a = struct.unpack_from("<I", data, k)[0]
                elif mode == 0x00:
                    a = k
                elif mode == 0x60:
                    a = mem[k]
                else:
                    raise ValueError(f"unsupported load 0x{code:02x}")
            elif code in (0x01, 0x61):  # BPF_LDX: IMM, MEM
                x = k if code == 0x01 else mem[k]
            elif cls in (0x02, 0x03):  # BPF_ST / BPF_STX
                mem[k] = a if cls == 0x02 else x
            elif cls == 0x04:  # BPF_ALU
                a = _alu(code & 0xF0, a, x if src_x else k)
            elif cls == 0x05:  # BPF_JMP
                op, operand = code & 0xF0, x if src_x else k
                if op == 0x00:
                    pc += k
                    continue
                taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand,
                         0x40: bool(a & operand)}[op]
                pc += jt if taken else jf
            elif cls == 0x06:  # BPF_RET
                return a if code & 0x18 == 0x10 else k
            elif code in (0x07, 0x87):  # BPF_MISC: TAX, TXA
                x, a = (a, a) if code == 0x07 else (x, x)
            else:
                raise ValueError(f"unsupported instruction 0x{code:02x}")


def _alu(op: int, a: int, b: int) -> int:
    results = {
        0x00: lambda: a + b, 0x10: lambda: a - b, 0x20: lambda: a * b,
        0x30: lambda: a // b, 0x40: lambda: a | b, 0x50: lambda: a & b,
        0x60: lambda: a << b, 0x70: lambda: a >> b, 0x80: lambda: -a,
        0x90: lambda: a % b, 0xA0: lambda: a ^ b,
    }
    return results[op]() & _MASK32
