"""`qXfer` objects (GDB manual, "qXfer"): target description, threads, auxv, exec file, siginfo,
libraries-svr4, osdata; and `qGetTLSAddr`. Documents are built once per stop and kept until the
state they show can change.
"""

from __future__ import annotations

import errno as errno_mod

from ptstub import logs
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.errors import ProtocolError
from ptstub.rsp.features import TransferObject
from ptstub.rsp.hexutil import parse_hex
from ptstub.session.threadlist import ThreadListDocument

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class TransferObjects:
    """The documents GDB reads with qXfer, with their per-stop caches."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.thread_list = ThreadListDocument()
        self.libraries_doc: bytes | None = None
        self.osdata: dict[str, bytes] = {}  # `info os` snapshots, taken at offset 0

    def threads_document(self, offset: int = 0) -> bytes:
        """The thread list for a request at `offset` (ptstub.session.threadlist)."""
        served = self.s.served()
        if not served:
            self.s.alive()  # raises: no process
        # non-stop: threads come and go and rename themselves while others run
        return self.thread_list.read(served, self.s.conn.features.multiprocess, offset, self.s.conn.non_stop)

    def prepare_threads_document(self) -> None:
        """Build the thread list GDB asks for next, ahead of its request."""
        served = self.s.served()
        if served:
            self.thread_list.prepare(served, self.s.conn.features.multiprocess)

    def handle_read_object(self, c: cmd.ReadObject) -> bytes:
        obj = c.object
        max_body = self.s.conn.features.packet_size - 8
        if obj is TransferObject.FEATURES:
            if c.annex != b"target.xml":
                return replies.error(errno_mod.ENOENT)
            tid = self.s.threads.select(self.s.conn.g_thread)
            document = self.s.regs.layout_for(tid).target_xml
        elif obj is TransferObject.THREADS:
            document = self.threads_document(c.offset)
        elif obj is TransferObject.AUXV:
            document = self.s.current().read_auxv()
        elif obj is TransferObject.EXEC_FILE:
            document = self.exec_file(c.annex).encode()
        elif obj is TransferObject.SIGINFO:
            tid = self.s.threads.select(self.s.conn.g_thread)
            document = self.s.process_for(tid).read_siginfo(tid)
        elif obj is TransferObject.LIBRARIES_SVR4:
            document = self.libraries_document()
        elif obj is TransferObject.OSDATA:
            table = self.osdata_document(c.annex, c.offset)
            if table is None:
                return replies.error(errno_mod.EINVAL)
            document = table
        else:
            return replies.unsupported()
        return replies.qxfer_chunk(document, c.offset, c.length, max_body)

    def handle_write_object(self, c: cmd.WriteObject) -> bytes:
        if c.object is not TransferObject.SIGINFO:
            return replies.unsupported()
        tid = self.s.threads.select(self.s.conn.g_thread)
        target = self.s.process_for(tid)
        current = bytearray(target.read_siginfo(tid))
        current[c.offset : c.offset + len(c.data)] = c.data
        target.write_siginfo(tid, bytes(current[:128]))
        return b"%x" % len(c.data)

    def osdata_document(self, annex: bytes, offset: int) -> bytes | None:
        """A table is read at offset 0 and served from that snapshot for the later chunks, like gdbserver."""
        name = annex.decode(errors="replace")
        if offset == 0 or name not in self.osdata:
            document = self.s.host.osdata(name)
            if document is None:
                return None
            self.osdata[name] = document
        return self.osdata[name]

    def exec_file(self, annex: bytes) -> str:
        if annex:
            try:
                pid = parse_hex(annex, "pid")
            except ProtocolError:
                raise ProtocolError(f"qXfer:exec-file: bad pid {annex[:20]!r}", errno_mod.EINVAL) from None
            process = self.s.group.get(pid)
            if process is None or not process.alive:
                return self.s.host.executable_of(pid)
            return str(process.executable())
        return str(self.s.current().executable())

    def libraries_document(self) -> bytes:
        if self.libraries_doc is None:
            target = self.s.current()
            main_lm, libraries = target.loaded_libraries()
            parts = [b'<library-list-svr4 version="1.0"']
            if main_lm:
                parts.append(b' main-lm="0x%x"' % main_lm)
            parts.append(b">")
            for lib in libraries:
                parts.append(
                    b'<library name="%s" lm="0x%x" l_addr="0x%x" l_ld="0x%x" lmid="0x0"/>'
                    % (_xml_escape(lib.name), lib.lm, lib.l_addr, lib.l_ld)
                )
            parts.append(b"</library-list-svr4>")
            self.libraries_doc = b"".join(parts)
        return self.libraries_doc

    def handle_tls_address(self, c: cmd.GetTlsAddress) -> bytes:
        if not self.s.host.thread_db_findable(self.s.monitor.thread_db_search_path):
            # ptstub reads TLS without libthread_db, but `monitor set libthread-db-search-path`
            # to where there is none makes gdbserver fail here, and GDB says so (no-thread-db.exp).
            return replies.error(1)
        tid = self.s.threads.select(c.thread.tid)
        return replies.tls_address(self.s.process_for(tid).tls_address(tid, c.offset, c.load_module))


def _xml_escape(name: bytes) -> bytes:
    return name.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;").replace(b'"', b"&quot;")
