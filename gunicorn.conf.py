"""gunicorn's settings for Portfolio's web service.

gunicorn reads this file from its working directory: the image's CMD and docker-compose's
`web` service start it from /app, bench/load.py from the checkout. Why each value:
README.md, "Web server (gunicorn)"; the measurements: docs/performance.md, "Throughput on
2 cores". Each can be overridden from the environment.
"""

import os

# Threads in a few processes: a request spends part of its time waiting for PostgreSQL
# and Redis, when another thread of the process can run; the processes use the cores.
# 3 processes x 4 threads on 2 cores gave twice the closed-loop throughput of 3 sync
# workers (and of 5), for the same CPU per request.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A worker whose main loop stops answering for this long is killed and replaced. With
# threads the loop keeps answering during a long request (a streamed CSV export), so this
# catches a stuck process, not a slow page; pages are bounded (issue 12) and answer in
# well under a second.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# Behind the reverse proxy, connections are kept open between requests for this long.
keepalive = 5
# Recycle a process after this many requests (jittered, so not all at once): bounds what
# a process holds over time (rendered-form cache, allocator fragmentation).
max_requests = 5000
max_requests_jitter = 500
