"""Admin screens. They refuse what the models refuse (ModelForm runs ``full_clean``), drive work
only through the use cases in ``services`` (the same the API calls), and keep published rows
read-only.

One module per screen (``images``, ``charts``, ``releases``, ``environment``, ``records``,
``audits``) on the shared ``transitions`` base and ``display`` fragments; the control room
(``site``, ``controlroom``, ``pictures``, ``templatetags``) is the front page. Importing this
package registers every screen."""

from releases.admin import audits, charts, environment, images, records, releases  # noqa: F401
