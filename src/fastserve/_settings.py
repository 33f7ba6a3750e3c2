"""The timeouts and limits of a running server, as one frozen value.

The user-facing names are the server's class attributes (werkzeug-style:
subclass the server, or assign to the class or the instance before
``serve_forever()``; their meanings are documented on
:class:`fastserve.server.BaseWSGIServer`, whose defaults are :data:`DEFAULTS`).
``serve_forever()`` reads them once into a :class:`Settings`, which the engine,
its connections, the threads and the pre-fork supervisor read instead of the
server; what is assigned to the server after that takes effect the next time
it serves.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final

from ._signals import SHUTDOWN_TIMEOUT

__all__ = ["DEFAULTS", "Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """The timeouts (seconds), rates (bytes per second) and limits of one serving run."""

    request_head_timeout: float = 10.0
    keep_alive_timeout: float = 75.0
    body_timeout: float = 20.0
    body_min_rate: float = 500.0
    preread_limit: int = 64 * 1024
    send_timeout: float = 20.0
    send_min_rate: float = 500.0
    max_content_length: int | None = None
    drain_limit: int = 1024 * 1024
    drain_timeout: float = 1.0
    linger_timeout: float = 2.0
    linger_limit: int = 64 * 1024 * 1024
    max_threads: int = 1024
    accept_backoff: float = 0.5
    promote_after: float = 0.01
    shutdown_timeout: float = SHUTDOWN_TIMEOUT

    @classmethod
    def from_server(cls, server: Any) -> Settings:
        """The values ``server`` has now: its instance or class attributes of
        the fields' names (every server class has them all; a stand-in server
        in a test may leave some out, which then keep their defaults)."""
        values: dict[str, Any] = {
            field.name: getattr(server, field.name, field.default) for field in fields(cls)
        }
        return cls(**values)


#: the defaults of the server classes' attributes
DEFAULTS: Final = Settings()
