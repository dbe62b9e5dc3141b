"""`info os` tables (`qXfer:osdata:read`), read from /proc the way gdbserver's linux-osdata does.

Each table is an `<osdata>` XML document of `<item>`s with named `<column>`s (GDB manual, "OS
Information"); GDB prints whatever columns it gets, so the column names follow gdbserver's, which
is what users and front ends (`-info-os`) know. Only the cheap tables are offered: processes,
process groups, threads, file descriptors, CPUs, kernel modules and internet sockets; the System V
IPC tables (msg, semaphores, shm) are left out (an empty `info os shm` would mislead).
"""

from __future__ import annotations

import ipaddress
import os
import pwd
from collections.abc import Callable, Iterable, Iterator

Row = list[tuple[str, object]]


def escape(text: str) -> str:
    """`&`, `<` and `>` as entities (what xml.sax.saxutils.escape does; importing that module pulls in
    urllib and http, ~50 ms on GDB's connect path, since the session imports this module)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _document(kind: str, rows: Iterable[Row]) -> bytes:
    parts = [f'<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "osdata.dtd">\n<osdata type="{kind}">\n']
    for row in rows:
        cells = "".join(f'<column name="{escape(name)}">{escape(str(value))}</column>' for name, value in row)
        parts.append(f"<item>{cells}</item>\n")
    parts.append("</osdata>\n")
    return "".join(parts).encode()


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return None


def _pids(directory: str = "/proc") -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir(directory) if name.isdigit())
    except OSError:
        return []


def _comm(pid: int) -> str:
    stat = _read(f"/proc/{pid}/stat")
    if not stat or "(" not in stat:
        return str(pid)
    return stat[stat.index("(") + 1 : stat.rindex(")")]


def _command_line(pid: int) -> str:
    raw = _read(f"/proc/{pid}/cmdline")
    if raw is None:
        return ""
    return raw.rstrip("\0").replace("\0", " ") or f"[{_comm(pid)}]"


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _core(pid: int, tid: int) -> int:
    stat = _read(f"/proc/{pid}/task/{tid}/stat")
    if not stat or ")" not in stat:
        return -1
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[36]) if len(fields) > 36 else -1  # field 39 of proc(5): the CPU it last ran on


def _processes() -> Iterator[Row]:
    for pid in _pids():
        try:
            user = _user(os.stat(f"/proc/{pid}").st_uid)
        except OSError:
            continue
        cores = sorted({c for tid in _pids(f"/proc/{pid}/task") if (c := _core(pid, tid)) >= 0})
        yield [
            ("pid", pid),
            ("user", user),
            ("command", _command_line(pid)),
            ("cores", ",".join(map(str, cores))),
        ]


def _process_groups() -> Iterator[Row]:
    entries = []
    for pid in _pids():
        try:
            entries.append((os.getpgid(pid), pid != os.getpgid(pid), pid))
        except OSError:
            continue
    for pgid, _not_leader, pid in sorted(entries):  # by group, its leader first, then by pid
        yield [("pgid", pgid), ("leader command", _comm(pgid)), ("pid", pid), ("command line", _command_line(pid))]


def _threads() -> Iterator[Row]:
    for pid in _pids():
        command = _comm(pid)
        for tid in _pids(f"/proc/{pid}/task"):
            yield [("pid", pid), ("command", command), ("tid", tid), ("core", _core(pid, tid))]


def _files() -> Iterator[Row]:
    for pid in _pids():
        command = _comm(pid)
        try:
            fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # another user's process, or gone
        for fd in fds:
            try:
                name = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                name = str(fd)
            yield [("pid", pid), ("command", command), ("file descriptor", fd), ("name", name)]


def _cpus() -> Iterator[Row]:
    row: Row = []
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "processor" and row:
            yield row
            row = []
        row.append((key, value))
    if row:
        yield row


def _modules() -> Iterator[Row]:
    for line in (_read("/proc/modules") or "").splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        name, size, uses, dependencies, status, address = fields[:6]
        yield [
            ("name", name),
            ("size", size),
            ("num uses", uses),
            ("dependencies", dependencies),
            ("status", status),
            ("address", address.removeprefix("0x")),
        ]


TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
}


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp*: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    host_order = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(host_order))


def _sockets() -> Iterator[Row]:
    for name, family, protocol in (
        ("tcp", "INET", "STREAM"),
        ("udp", "INET", "DGRAM"),
        ("tcp6", "INET6", "STREAM"),
        ("udp6", "INET6", "DGRAM"),
    ):
        for line in (_read(f"/proc/net/{name}") or "").splitlines()[1:]:
            fields = line.split()
            try:
                local, remote, state, uid = fields[1], fields[2], int(fields[3], 16), int(fields[7])
                (local_ip, local_port), (remote_ip, remote_port) = local.split(":"), remote.split(":")
                yield [
                    ("local address", _address(local_ip)),
                    ("local port", int(local_port, 16)),
                    ("remote address", _address(remote_ip)),
                    ("remote port", int(remote_port, 16)),
                    ("state", TCP_STATES.get(state, "(unknown)")),
                    ("user", _user(uid)),
                    ("family", family),
                    ("protocol", protocol),
                ]
            except (IndexError, ValueError):
                continue


# annex -> (document type, title, description, rows); the order is gdbserver's `info os` order
TABLES: dict[str, tuple[str, str, str, Callable[[], Iterable[Row]]]] = {
    "cpus": ("cpus", "CPUs", "Listing of all cpus/cores on the system", _cpus),
    "files": ("files", "File descriptors", "Listing of all file descriptors", _files),
    "modules": ("modules", "Kernel modules", "Listing of all loaded kernel modules", _modules),
    "processes": ("processes", "Processes", "Listing of all processes", _processes),
    "procgroups": ("process groups", "Process groups", "Listing of all process groups", _process_groups),
    "sockets": ("I sockets", "Sockets", "Listing of all internet-domain sockets", _sockets),
    "threads": ("threads", "Threads", "Listing of all threads", _threads),
}


def _types() -> Iterator[Row]:
    for annex, (_kind, title, description, _rows) in TABLES.items():
        yield [("Type", annex), ("Description", description), ("Title", title)]


def osdata(annex: str) -> bytes | None:
    """The document for `qXfer:osdata:read:<annex>` (empty annex: the list of types), None if unknown."""
    if annex in ("", "types"):
        return _document("types", _types())
    table = TABLES.get(annex)
    if table is None:
        return None
    kind, _title, _description, rows = table
    return _document(kind, rows())
