"""hypercorn settings shared by the Procfile (`--config python:app.hypercorn_config`) and `python -m app`.

Heroku sends SIGTERM and SIGKILLs 30 s later: 8 s to drain requests plus our own bounded shutdown stays under 20 s.
"""

import logging

worker_class = "uvloop"  # libuv's event loop: about a third more requests per second than asyncio's own here
graceful_timeout = 8.0
shutdown_timeout = 11.0  # the app's lifespan shutdown (session worker, lease, pool) is bounded tighter still
startup_timeout = 60.0
accesslog = None  # one line per request comes from app/web/middleware.py instead
errorlog = logging.getLogger("hypercorn.error")  # through our one-line stdout handler, not hypercorn's own
keep_alive_timeout = 75.0  # above the 55 s idle timeout of Heroku's router, so it, not we, closes idle connections
