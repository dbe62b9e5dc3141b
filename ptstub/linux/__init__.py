"""The Linux x86-64 backend: launch/attach, the all-stop engine (C helper), memory and registers.

Never imports `ptstub.rsp`: RSP syntax stays on the other side of `ptstub.target.Target`.
"""

from ptstub.linux.inferior import Inferior
from ptstub.linux.start import attach, launch

__all__ = ["Inferior", "attach", "launch"]
