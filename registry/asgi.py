import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry.settings")
django.setup(set_prefix=False)

# Django's handler, bounding the spooled request body (see releases.http.limits).
from releases.http.limits import BodyLimitASGIHandler  # noqa: E402

application = BodyLimitASGIHandler()
