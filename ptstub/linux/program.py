"""Checks on a program before it is launched, so a bad path gets a clear one-line error.

The kernel would answer ENOENT, EACCES or ENOEXEC from execve in the child; checking first lets ptstub
say which of "not found", "not executable" or "not an x86-64 ELF" it is, like gdbserver's messages.
"""

from __future__ import annotations

import os

from ptstub.errors import LaunchError

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 62
MACHINE_NAMES = {3: "i386", 40: "ARM", 183: "AArch64", 243: "RISC-V", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64"}


def resolve_program(program: str) -> str:
    """Find `program` like gdbserver: a bare name is a regular file in the working directory if there
    is one (gdb.server/abspath.exp), else it is searched in PATH; raise LaunchError if absent."""
    if "/" not in program and os.path.isfile(program):
        program = os.path.join(".", program)
    if "/" not in program:
        import shutil  # here: it loads bz2 and lzma, which `ptstub --attach` never needs

        found = shutil.which(program)
        if found is None:
            raise LaunchError(f"exec: {program}: not found")  # the shell's words, as gdbserver shows them
        program = found
    if not os.path.exists(program):
        raise LaunchError(f"{program}: no such file or directory")
    if os.path.isdir(program):
        raise LaunchError(f"{program}: is a directory")
    if not os.access(program, os.X_OK):
        raise LaunchError(f"{program}: permission denied (not executable)")
    check_elf(program)
    return os.path.abspath(program)


def check_elf(path: str) -> None:
    """Accept an x86-64 ELF or a `#!` script; anything else cannot run under this backend."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError as err:
        raise LaunchError(f"{path}: cannot read: {err.strerror}") from None
    if header.startswith(b"#!"):
        return
    if not header.startswith(ELF_MAGIC):
        raise LaunchError(f"{path}: not an executable ELF file (exec format error)")
    elf_class = header[4]
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    if elf_class != 2 or machine != EM_X86_64:
        name = MACHINE_NAMES.get(machine, f"machine {machine}")
        bits = "32-bit" if elf_class == 1 else "64-bit"
        raise LaunchError(f"{path}: is a {bits} {name} ELF file; ptstub debugs x86-64 programs only")
