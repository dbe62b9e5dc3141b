"""What GDB negotiates or sets for the connection: `qSupported`, `QStartNoAckMode`, `!`, signals to pass
or catch, and the settings of the next `vRun` (environment, working directory, shell).
"""

from __future__ import annotations

import os

from ptstub import logs
from ptstub.rsp import command_values as cmd
from ptstub.rsp import replies
from ptstub.rsp.features import negotiate, supported_reply
from ptstub.session.connection import SERVER_FEATURES

TYPE_CHECKING = False  # not `typing`'s: importing typing costs ~3 ms at start-up (ptstub.values)
if TYPE_CHECKING:
    from ptstub.session.core import Session


log = logs.logger("ptstub.rsp")


class ConnectionOptions:
    """Handlers that change connection state or launch settings."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def handle_query_supported(self, c: cmd.QuerySupported) -> bytes:
        self.s.conn.client = c.features
        self.s.conn.features = negotiate(c.features, SERVER_FEATURES)
        self.s.conn.xml_client = "i386" in c.features.xml_registers
        if self.s.regs.layout is not None and self.s.regs.layout.described != self.s.conn.xml_client:
            self.s.regs.layout = None
        self.s.apply_target_options()
        return supported_reply(SERVER_FEATURES, c.features)

    def handle_start_no_ack(self, c: cmd.StartNoAckMode) -> bytes:
        self.s.conn.no_ack = True
        return replies.ok()

    def handle_enable_extended(self, c: cmd.EnableExtendedMode) -> bytes:
        self.s.conn.extended = True
        return replies.ok()

    def handle_pass_signals(self, c: cmd.PassSignals) -> bytes:
        self.s.conn.pass_signals = frozenset(c.signals)
        for process in self.s.served():
            process.set_pass_signals(c.signals)
        return replies.ok()

    def handle_program_signals(self, c: cmd.ProgramSignals) -> bytes:
        self.s.conn.program_signals = c.signals
        return replies.ok()

    def handle_catch_syscalls(self, c: cmd.CatchSyscalls) -> bytes:
        self.s.conn.catch_syscalls = c.syscalls if c.enabled else None
        for process in self.s.served():
            process.set_options(catch_syscalls=c.enabled)
        return replies.ok()

    def handle_set_disable_randomization(self, c: cmd.SetDisableRandomization) -> bytes:
        self.s.settings.disable_randomization = c.enabled
        return replies.ok()

    def handle_set_startup_with_shell(self, c: cmd.SetStartupWithShell) -> bytes:
        self.s.settings.startup_with_shell = c.enabled
        return replies.ok()

    def handle_set_environment(self, c: cmd.SetEnvironmentVariable) -> bytes:
        self.s.settings.environment[os.fsdecode(c.name)] = os.fsdecode(c.value)
        return replies.ok()

    def handle_unset_environment(self, c: cmd.UnsetEnvironmentVariable) -> bytes:
        self.s.settings.environment.pop(os.fsdecode(c.name), None)
        return replies.ok()

    def handle_reset_environment(self, c: cmd.ResetEnvironment) -> bytes:
        self.s.settings.environment = dict(os.environ)
        return replies.ok()

    def handle_set_working_directory(self, c: cmd.SetWorkingDirectory) -> bytes:
        # `~` and `~user` are expanded, as gdbserver's fork_inferior does (gdb_tilde_expand).
        self.s.settings.working_directory = os.path.expanduser(os.fsdecode(c.path)) if c.path else None
        return replies.ok()
