"""hypercorn settings shared by the Procfile (`--config python:app.hypercorn_config`) and `python -m app`.

Heroku sends SIGTERM and SIGKILLs 30 s later: 8 s to drain requests plus our own bounded shutdown stays under 20 s.

Slow and idle clients (hypercorn 0.18 has these timers, no others):
- `keep_alive_timeout` is one timer for a connection that has no request in progress: from its opening, and from the
  end of each response, until a whole request head (request line and headers) has arrived. It closes idle keep-alive
  connections and connections that send half a request head and stop (slowloris). It is above the 90 s for which
  Heroku's router keeps an idle connection to a dyno open, so the router, not we, closes idle connections: closing one
  just as the router sends a request on it would fail that request. Deployed, clients reach the app only through
  such a router, which reads their request heads itself.
- Request heads are at most `h11_max_incomplete_size` bytes; bodies are bounded in size and time by the app
  (app/web/body.py), which answers 413 or 408 and closes the connection.
- `read_timeout` closes a connection on which the client has sent nothing for that long, in any state. It must stay
  above the longest silence of a healthy client: the page's live event stream (GET /events) sends for up to
  STREAM_SECONDS (app/web/page.py) while the browser sends nothing, and the browser reconnects 2 s after it ends.
"""

import logging

worker_class = "uvloop"  # libuv's event loop: about a third more requests per second than asyncio's own here
graceful_timeout = 8.0
shutdown_timeout = 11.0  # the app's lifespan shutdown (session worker, lease, pool) is bounded tighter still
startup_timeout = 60.0
accesslog = None  # one line per request comes from app/web/middleware.py instead
errorlog = logging.getLogger("hypercorn.error")  # through our one-line stdout handler, not hypercorn's own
keep_alive_timeout = 100.0
read_timeout = 330  # seconds; STREAM_SECONDS (300) and the browser's 2 s before it reconnects, with a margin
h11_max_incomplete_size = 16 * 1024  # bytes of request line and headers (hypercorn's default, stated)
