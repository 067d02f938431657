"""``python -m dmux_async``: the same entry point as the ``dmux`` command."""

from dmux_async.client import main

raise SystemExit(main())
