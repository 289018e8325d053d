"""Admin screens. They refuse what the models refuse (ModelForm runs ``full_clean``), drive work
only through the use cases in ``services`` (the same the API calls), and keep published rows
read-only.

One module per screen (``images``, ``charts``, ``releases``, ``environment``, ``records``,
``audits``) on the shared ``transitions`` base and ``display`` fragments; the control room
(``site``, ``controlroom``, ``pictures``, ``templatetags``) is the front page. Importing this
package registers nothing: ``register_screens`` does, once the control room's site exists
(``releases.apps.RegistryAdminConfig.ready``). Registering while this package is imported would
register on a site that the lazy ``admin.site``, whose class lives in this package, then replaces."""

from __future__ import annotations

from importlib import import_module

SCREENS = ("images", "charts", "releases", "environment", "records", "audits")


def register_screens() -> None:
    """Import each screen module, which registers its ``ModelAdmin`` on ``admin.site``."""
    for screen in SCREENS:
        import_module(f"releases.admin.{screen}")
