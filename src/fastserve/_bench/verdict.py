"""Was the client or the server the limit? The rule behind a cell's missing ratio.

A load generator that is itself out of CPU measures its own speed, not the
server's. Two signs of that, from the CPU figures of a cell (in cores: CPU
seconds per wall-clock second):

1. the client kept its own threads busy: its CPU reached
   :data:`CLIENT_BUSY` of the cores its threads could use
   (``min(threads, cpus)``) - it could not have sent more;
2. the machine had no idle core left (client + server reached
   :data:`MACHINE_BUSY` of all cores) and the client used more CPU than the
   server: on a shared machine, a cheaper client would have left the server
   more.

Either makes the cell *client-bound*: its rate is a lower bound of the
server's, and the report prints no ratio for it (nor for a column whose
baseline is client-bound).
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLIENT_BUSY", "MACHINE_BUSY", "client_limit"]

CLIENT_BUSY: Final = 0.9
MACHINE_BUSY: Final = 0.9


def client_limit(
    client_cpu: float, client_threads: int, server_cpu: float | None, cpus: int
) -> str | None:
    """Why the client was the limit of a cell, or ``None`` if it was not.

    :param client_cpu: the load generator's CPU, in cores.
    :param client_threads: how many threads (or processes) it ran.
    :param server_cpu: the server's CPU in cores, ``None`` if unknown (rule 2 is then skipped).
    :param cpus: the machine's CPU count.
    """
    usable = max(1, min(client_threads, cpus))
    if client_cpu >= CLIENT_BUSY * usable:
        return f"the client used {client_cpu:.0%} of its {usable} core{'s' * (usable != 1)}"
    if (
        server_cpu is not None
        and client_cpu + server_cpu >= MACHINE_BUSY * cpus
        and client_cpu > server_cpu
    ):
        return (
            f"no idle core, and the client used more CPU ({client_cpu:.0%})"
            f" than the server ({server_cpu:.0%})"
        )
    return None
