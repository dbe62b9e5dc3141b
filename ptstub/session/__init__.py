"""The RSP server side of one GDB connection, in parts (see `ptstub.session.core`)."""

from ptstub.session.connection import PACKET_SIZE, SERVER_FEATURES, ConnectionState
from ptstub.session.core import Attacher, Launcher, Session
from ptstub.settings import LaunchSettings

__all__ = ["PACKET_SIZE", "SERVER_FEATURES", "Attacher", "ConnectionState", "LaunchSettings", "Launcher", "Session"]
