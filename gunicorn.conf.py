# gunicorn settings for production (`gunicorn -c gunicorn.conf.py smmpanel.wsgi`).
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = "-"
# %(U)s is the path without the query string: API keys sent as `?key=` never reach the log.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss "%(a)s"'
# The error log would write a malformed request line whole, query included; this logger
# takes the query out of every error-log line and every access-log atom.
logger_class = "smmpanel.gunicorn_logging.ScrubbingLogger"
