"""The stat reloader: compare file signatures every ``interval`` seconds.

Only directories are listed again, and only when their mtime changed (the
cached :class:`~._scan._Scan`); :class:`~._loop._ScanningLoop`'s defaults are
this loop's whole behaviour.
"""

from __future__ import annotations

from ._loop import _ScanningLoop


class StatReloaderLoop(_ScanningLoop):
    """Poll file signatures every ``interval`` seconds."""

    name = "stat"
