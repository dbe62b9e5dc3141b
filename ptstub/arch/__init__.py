"""Architecture support: register numbering, the `g` packet layout and target descriptions.

Only x86-64 Linux exists (`ptstub.arch.x86_64`); its feature files (`xml/*.xml`) ship as package data.
"""

from __future__ import annotations

from ptstub.arch import x86_64

__all__ = ["x86_64"]
