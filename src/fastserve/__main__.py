"""``python -m fastserve [module:app] [options]``: the same as the ``fastserve`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
