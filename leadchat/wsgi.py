import os

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadchat.settings")

django_application: WSGIHandler = get_wsgi_application()

# Meta's webhook POSTs are answered ahead of Django's handler (the module says how, and which
# requests it leaves to Django).
from widget.channels.messenger.lane import MessengerLane  # noqa: E402 (needs the app set up)

application = MessengerLane(django_application)

# gunicorn runs no system checks: the warnings that concern a server at start-up are logged
# here too, once per worker (leadchat.W001: links and embed code would point at loopback).
from leadchat.checks import log_start_up_warnings  # noqa: E402 (needs the app set up)

log_start_up_warnings()
