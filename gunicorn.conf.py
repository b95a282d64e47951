"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py leadchat.wsgi`.

Threaded workers, because a widget request waits on the network for the agent backend (up to
25 s): a thread blocked on a socket costs little, a whole sync worker per wait would starve the
server. Each thread may hold a database connection (CONN_MAX_AGE), so workers x threads must
stay under PostgreSQL's max_connections.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Above the agent backend's 25 s budget, so a slow reply is never killed mid-request.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "40"))
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (a bound on any slow leak). Not lower: a new
# worker spends about 1.5 s of a core loading Django, and at Meta's webhook rates (500/s over 2
# workers) 5,000 meant a replacement every 20 s, each a stall of the requests queued behind it
# (p99 1.6 s instead of 0.1 s, bench/messenger_intake.py).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def pre_request(worker, req):
    """Close the connection after a request the app refuses for its body (413, 411).

    The app answers without reading the body (leadchat.http.RequestBodyLimitMiddleware); left
    open, the connection would have to skip every byte of that body before the next request.
    The app cannot say so itself: gunicorn drops a Connection header set by the application.
    """
    from leadchat.http import body_refusal

    headers = dict(req.headers)  # names in upper case
    if body_refusal(
        method=req.method,
        path=req.path,
        content_length=headers.get("CONTENT-LENGTH"),
        transfer_encoding=headers.get("TRANSFER-ENCODING"),
    ):
        req.force_close()
