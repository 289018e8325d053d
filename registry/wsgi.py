import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
application = get_wsgi_application()

# What is loaded by now (settings, models, the URLconf and the views it imports, here rather than
# at the first request) lives as long as the worker. Frozen, it is left out of the collector's full
# passes, which otherwise walk all of it every few hundred requests: a request's garbage then costs
# what the request made (a batch of 100 verified references: 0.65 -> 0.3 ms of collection).
get_resolver().url_patterns  # noqa: B018 - imported for its side effect
gc.freeze()
