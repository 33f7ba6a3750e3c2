"""What a benchmark cell sends: keep-alive or ``Connection: close``, a POST, the Flask app.

A scenario is named by its key, a kind followed by a connection count:
``ka32`` (keep-alive GETs over 32 connections), ``close32`` (every GET on a
new connection, ``Connection: close``), ``post32`` (keep-alive 64 KiB
POSTs), ``flask32`` (keep-alive GETs to the built-in one-route Flask app
instead of the app under test). Any count works: ``ka1``, ``ka256``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .apps import FLASK_SPEC

__all__ = ["KINDS", "POST_SIZE", "Scenario", "parse_scenarios"]

POST_SIZE: Final = 64 * 1024
KINDS: Final = {
    "ka": "keep-alive",
    "close": "Connection: close",
    "post": "64 KiB POST",
    "flask": "Flask app, keep-alive",
}
_KEY = re.compile(r"(" + "|".join(KINDS) + r")([1-9]\d*)\Z")


@dataclass(frozen=True)
class Scenario:
    """One kind of load at one concurrency."""

    kind: str
    connections: int

    @property
    def key(self) -> str:
        return f"{self.kind}{self.connections}"

    @property
    def title(self) -> str:
        conns = "1 conn" if self.connections == 1 else f"{self.connections} conns"
        return f"{KINDS[self.kind]}, {conns}"

    @property
    def close(self) -> bool:
        """Whether every request asks for ``Connection: close``."""
        return self.kind == "close"

    @property
    def body_size(self) -> int:
        return POST_SIZE if self.kind == "post" else 0

    def app_spec(self, target: str) -> str:
        """The app this scenario is served: the Flask app, or ``target``."""
        return FLASK_SPEC if self.kind == "flask" else target


def parse_scenarios(text: str) -> list[Scenario]:
    """``"ka32,close32"`` -> scenarios; :class:`ValueError` names a key that is not one."""
    scenarios = []
    for key in (k.strip() for k in text.split(",")):
        m = _KEY.match(key)
        if not m:
            raise ValueError(
                f"unknown scenario {key!r}: a kind ({', '.join(KINDS)}) and a connection"
                " count, like ka32 or close256"
            )
        scenario = Scenario(m.group(1), int(m.group(2)))
        if scenario not in scenarios:
            scenarios.append(scenario)
    return scenarios
