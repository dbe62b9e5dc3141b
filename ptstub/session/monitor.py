"""`monitor` commands (`qRcmd`), answered with gdbserver's words."""

from __future__ import annotations

from ptstub import logs
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session

log = logs.logger("ptstub.rsp")


class MonitorCommands:
    """The `monitor` commands and the one setting they keep."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.thread_db_search_path: str | None = None  # `monitor set libthread-db-search-path`

    def handle_monitor(self, c: cmd.MonitorCommand) -> list[bytes]:
        words = c.command.decode("utf-8", "replace").split()
        if words == ["exit"]:
            self.s.exit_requested = True
            self.s.finished = True
            return [replies.ok()]
        if words[:2] == ["set", "debug"] or words[:2] == ["set", "remote-debug"]:
            on = len(words) > 2 and words[2] not in ("0", "off")
            logs.set_debug(on)
            what = "Debug" if words[1] == "debug" else "Protocol debug"
            text = f"{what} output {'enabled' if on else 'disabled'}.\n"  # gdbserver's words
            return [replies.console_output(text.encode()), replies.ok()]
        if words[:2] == ["set", "debug-format"] and len(words) == 3 and words[2] in ("all", "none"):
            state = "enabled" if words[2] == "all" else "disabled"
            return [replies.console_output(f"All extra debug format options {state}.\n".encode()), replies.ok()]
        if words[:2] == ["set", "libthread-db-search-path"]:
            path = c.command.decode("utf-8", "replace").split(None, 2)[2] if len(words) > 2 else ""
            self.thread_db_search_path = path
            return [replies.console_output(f"libthread-db-search-path set to `{path}'\n".encode()), replies.ok()]
        text = (
            "The following monitor commands are supported:\n"
            "  set debug <0|1>\n    Enable general debugging messages\n"
            "  set remote-debug <0|1>\n    Enable remote protocol debugging messages\n"
            "  set debug-format all|none\n    Add additional information to debugging messages\n"
            "  set libthread-db-search-path [PATH]\n    Where to look for libthread_db\n"
            "  exit\n    Quit GDBserver\n"
        )
        if words == ["help"]:
            return [replies.console_output(text.encode()), replies.ok()]
        # gdbserver: the words, the help, and an error (GDB: "Protocol error with Rcmd").
        return [replies.console_output(("Unknown monitor command.\n\n" + text).encode()), replies.error(1)]
