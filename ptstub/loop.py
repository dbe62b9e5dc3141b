"""The connection loop: bytes from GDB to the session, stop events from the target back to GDB.

One thread does everything (ptrace requires it). While the program runs, the loop sits in the
target's `wait()` with the client socket as a wake-up fd, so a `\\x03` (Ctrl-C) is read at once and
turned into an all-stop interrupt. In non-stop mode it sits in the target's per-thread wait the same
way, answering packets while threads run and sending their stops as `%Stop` notifications between
packets. Framing and acks follow the GDB manual, "Overview", "Interrupts" and "Notification Packets".
"""

from __future__ import annotations

import _socket
import functools
import os
import select
import stat
import sys
from collections import deque
from collections.abc import Callable

from ptstub import logs
from ptstub.values import frozen

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # a structural type for mypy; at run time a plain base with the documented methods

log = logs.logger("ptstub.rsp")


class Connection(Protocol):
    """A byte stream to one GDB: a TCP or unix socket, or ptstub's stdin/stdout."""

    def fileno(self) -> int: ...

    def recv(self) -> bytes: ...

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


# The sockets are `_socket`'s, not `socket`'s: the `socket` module builds four IntEnums of ~400 members
# from its constants and imports `selectors`, ~6 ms at every stub's start, for conveniences the loop does
# not use (its `accept` is `_accept` wrapped, as `Listener.accept` does here).
class SocketConnection:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        if sock.family in (_socket.AF_INET, _socket.AF_INET6):
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, TimeoutError):
            return b""

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError) as err:
            raise ConnectionError("GDB closed the connection") from err

    def close(self) -> None:
        self.sock.close()


class StdioConnection:
    """GDB on ptstub's stdin/stdout (`target remote | ptstub - prog`)."""

    def __init__(self) -> None:
        self.rfd = sys.stdin.fileno()
        self.wfd = sys.stdout.fileno()

    def fileno(self) -> int:
        return self.rfd

    def recv(self) -> bytes:
        try:
            return os.read(self.rfd, 65536)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.wfd, view)
            except BrokenPipeError as err:
                raise ConnectionError("GDB closed the connection") from err
            view = view[n:]

    def close(self) -> None:
        pass


@frozen
class Endpoint:
    """Where to listen: TCP host/port, a unix socket path, or stdio."""

    host: str = "127.0.0.1"
    port: int = 0
    unix_path: str | None = None
    stdio: bool = False


def parse_comm(comm: str) -> Endpoint:
    """gdbserver's COMM: `host:port`, `:port` (host 127.0.0.1 by default), `-`/`stdio`, `unix:PATH`."""
    if comm in ("-", "stdio"):
        return Endpoint(stdio=True)
    if comm.startswith("unix:"):
        if len(comm) <= 5:
            raise ValueError("unix: needs a socket path")
        return Endpoint(unix_path=comm[5:])
    host, sep, port = comm.rpartition(":")
    if not sep:
        raise ValueError(f"{comm}: expected HOST:PORT, :PORT, '-' or 'stdio'")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{comm}: bad port number {port!r}")
    host = host.strip("[]") or "127.0.0.1"
    return Endpoint(host=host, port=int(port))


class Listener:
    """A listening socket, kept open across clients in --multi mode."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        if endpoint.unix_path:
            self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            if os.path.exists(endpoint.unix_path) and stat.S_ISSOCK(os.stat(endpoint.unix_path).st_mode):
                os.unlink(endpoint.unix_path)
            old = os.umask(0o177)  # the socket file is created 0600: only its owner may debug
            try:
                self.sock.bind(endpoint.unix_path)
            finally:
                os.umask(old)
        else:
            family = _socket.AF_INET6 if ":" in endpoint.host else _socket.AF_INET
            self.sock = _socket.socket(family, _socket.SOCK_STREAM)
            self.sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            self.sock.bind((endpoint.host, endpoint.port))
        self.sock.listen(1)  # created close-on-exec (SOCK_CLOEXEC, PEP 446): the program never inherits it

    @property
    def port(self) -> int:
        if self.endpoint.unix_path:
            return 0
        return int(self.sock.getsockname()[1])

    def accept(self) -> tuple[SocketConnection, str, int]:
        conn, addr = self._accept()
        if isinstance(addr, tuple):
            return SocketConnection(conn), str(addr[0]), int(addr[1])
        return SocketConnection(conn), "unix", 0

    def _accept(self) -> tuple[_socket.socket, object]:
        """A blocking, close-on-exec socket for the next client, and its address."""
        fd, addr = self.sock._accept()
        sock = self.sock
        return _socket.socket(sock.family, sock.type, sock.proto, fd), addr

    def refuse_pending(self) -> None:
        """Answer clients that connect while one is being served, then close them (one GDB at a time)."""
        if not select.select([self.sock], [], [], 0)[0]:
            return  # the common case, checked at every resume: keep it to one cheap syscall
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    extra, _ = self._accept()
                except BlockingIOError:
                    return
                try:
                    extra.sendall(b"$E.ptstub is already serving another GDB connection#%02x" % _REFUSAL_SUM)
                except OSError:
                    pass
                extra.close()
                print("ptstub: refused a second connection while one is active", file=sys.stderr)
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()
        if self.endpoint.unix_path:
            try:
                os.unlink(self.endpoint.unix_path)
            except OSError:
                pass


class ServerSession(Protocol):
    """What the loop needs from `ptstub.session.Session`."""

    @property
    def running(self) -> bool: ...

    @property
    def no_ack(self) -> bool: ...

    def handle_packet(self, body: bytes) -> list[bytes]: ...

    def wait_for_stop(self, wake_fd: int) -> bytes | None: ...

    def prepare_for_requests(self) -> None: ...

    def interrupt(self) -> None: ...

    @property
    def finished(self) -> bool: ...

    @property
    def non_stop(self) -> bool: ...

    def next_notification(self, wake_fd: int) -> bytes | None: ...


def serve_connection(
    session: ServerSession,
    conn: Connection,
    remote_debug: Callable[[str, bytes], None] | None = None,
    listener: Listener | None = None,
) -> None:
    """Serve one GDB until it detaches, kills, disconnects or the session finishes."""
    recv, send = conn.recv, conn.send
    if type(conn) is SocketConnection:
        # The socket's own methods, with no Python frame per request: the errors the wrappers catch
        # (ConnectionResetError, BrokenPipeError) are ConnectionErrors already, which end the loop too,
        # and a TimeoutError (ETIMEDOUT on a dead peer) becomes one here.
        recv, send = functools.partial(conn.sock.recv, 65536), conn.sock.sendall
    # While the program runs, the wait wakes for GDB's socket and for the listening one, through an
    # epoll set (the engine's wait takes one extra fd): a second GDB hears "already serving" at once.
    # While GDB sits at a stop, only its socket is read, as gdbserver does: a second client waits.
    watch = None
    if listener is not None:
        watch = select.epoll()
        watch.register(conn.fileno(), select.EPOLLIN)
        watch.register(listener.sock.fileno(), select.EPOLLIN)
    try:
        wake_fd = conn.fileno() if watch is None else watch.fileno()
        _serve(session, conn, recv, send, remote_debug, listener, wake_fd)
    except TimeoutError as err:
        raise ConnectionError("GDB's connection timed out") from err
    finally:
        if watch is not None:
            watch.close()


def _serve(
    session: ServerSession,
    conn: Connection,
    recv: Callable[[], bytes],
    send: Callable[[bytes], None],
    remote_debug: Callable[[str, bytes], None] | None,
    listener: Listener | None,
    wake_fd: int,
) -> None:
    """The loop of `serve_connection`: each request answered in order, each stop sent as it comes;
    `wake_fd` wakes the wait for a running program."""
    # Imported here, not at the top: `Listener` is all the CLI needs before `Listening on port`, and the
    # framing module (its values and tables) then loads while GDB starts.
    from ptstub.rsp.framing import PacketReader, encode_notification, encode_packet, framed_reply

    reader = PacketReader()
    send_reply = _sender(conn, remote_debug, encode_packet)
    last_reply = b""
    queued: deque[bytes] = deque()
    take_packet, handle_packet = reader.take_packet, session.handle_packet
    while not session.finished:
        if session.running or session.non_stop:
            sent = _send_event(session, conn, send_reply, remote_debug, listener, wake_fd, encode_notification)
            if sent is not None:
                last_reply = sent or last_reply
                continue
        data = recv()
        if not data:
            raise ConnectionError("GDB closed the connection")
        body = take_packet(data)
        if body is not None:  # the common case: one whole request
            if not session.no_ack:
                send(b"+")
            if remote_debug:
                remote_debug("getpkt", body)
            if not queued and not session.running:
                # Answered at once: GDB waits for each reply before it sends the next request.
                for reply in handle_packet(body):
                    framed = framed_reply(reply) if type(reply) is bytes else None
                    if remote_debug or framed is None:
                        last_reply = send_reply(reply)
                    else:
                        send(framed)
                        last_reply = reply
                continue
            queued.append(body)
        else:
            _queue_frames(session, reader.feed(data), queued, send, remote_debug, last_reply, encode_packet)
        while queued and not session.running and not session.finished:
            for reply in handle_packet(queued.popleft()):
                last_reply = send_reply(reply)


def _send_event(
    session: ServerSession,
    conn: Connection,
    send_reply: Callable[[bytes], bytes],
    remote_debug: Callable[[str, bytes], None] | None,
    listener: Listener | None,
    wake_fd: int,
    encode_notification: Callable[[bytes], bytes],
) -> bytes | None:
    """While the program runs: wait for its stop and send the reply (returned), or a non-stop `%Stop`
    notification (b"" returned); a second client's knock is answered (b""). None: GDB sent something."""
    if session.running:
        reply = session.wait_for_stop(wake_fd)
        if reply is not None:
            send_reply(reply)
            session.prepare_for_requests()  # off the critical path: GDB is reading the stop now
            return reply
        if listener is not None and not select.select([conn], [], [], 0)[0]:
            listener.refuse_pending()  # woken by a second client, not by GDB
            return b""
        return None
    # Non-stop: threads run while GDB talks to us; their stops go out as `%Stop` notifications.
    note = session.next_notification(conn.fileno())
    if note is None:
        return None
    if remote_debug:
        remote_debug("notif", note)
    conn.send(encode_notification(note))
    return b""


def _queue_frames(
    session: ServerSession,
    frames: list[object],
    queued: deque[bytes],
    send: Callable[[bytes], None],
    remote_debug: Callable[[str, bytes], None] | None,
    last_reply: bytes,
    encode_packet: Callable[..., bytes],
) -> None:
    """The slow path: frames of a chunk that was not exactly one request (several requests, a `\x03`, a
    bad checksum, a `-`): requests are queued, the rest answered here."""
    from ptstub.rsp.framing import BadPacket, InterruptRequest, Nack, Packet

    for frame in frames:
        if type(frame) is Packet:  # first: nearly every frame is a packet
            if not session.no_ack:
                send(b"+")
            if remote_debug:
                remote_debug("getpkt", frame.body)
            queued.append(frame.body)
        elif type(frame) is InterruptRequest:
            if not session.non_stop:
                session.interrupt()  # kept for the next resume when nothing runs yet
        elif type(frame) is BadPacket:
            log.debug("bad packet %r", frame)
            if not session.no_ack:
                send(b"-")
        elif type(frame) is Nack and last_reply:
            send(encode_packet(last_reply))


# Run-length encoding in Python costs ~20 ns a byte; above this size sending the bytes as they are is
# cheaper than compressing them on loopback (GDB reads up to 64 KiB of memory per `m` from us).
RUN_LENGTH_LIMIT = 4096


def _sender(
    conn: Connection, remote_debug: Callable[[str, bytes], None] | None, encode_packet: Callable[..., bytes]
) -> Callable[[bytes], bytes]:
    """`send(body)`: frame a reply body, log it for --remote-debug, send it; returns the body."""

    def send(body: bytes) -> bytes:
        if remote_debug:
            remote_debug("putpkt", body)
        conn.send(encode_packet(body, run_length=len(body) <= RUN_LENGTH_LIMIT))
        return body

    return send


_REFUSAL_SUM = sum(b"E.ptstub is already serving another GDB connection") & 0xFF
