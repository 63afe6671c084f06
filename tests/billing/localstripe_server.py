"""Start localstripe's aiohttp app on 127.0.0.1 only (its own command listens on every
interface): ``python -m tests.billing.localstripe_server PORT``."""

from __future__ import annotations

import sys

from aiohttp import web
from localstripe.server import app

if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
