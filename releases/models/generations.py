from __future__ import annotations

from django.db import connection, models
from django.db.models import F


class DataGeneration(models.Model):
    """A counter bumped in the same transaction as every change to a set of rows.

    Caches of rendered pages (release lists, the chart repository index) key on it: one primary-key
    read tells whether anything changed, in any process, and a change is visible exactly when its
    transaction commits. Bulk ``QuerySet.update()`` bypasses the signals that bump it.
    """

    RELEASES = "releases"
    CHARTS = "charts"

    name = models.CharField(max_length=32, primary_key=True)
    counter = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}@{self.counter}"

    @classmethod
    def bump(cls, name: str) -> None:
        if not cls.objects.filter(name=name).update(counter=F("counter") + 1):
            cls.objects.get_or_create(name=name)

    @classmethod
    def current(cls, name: str) -> int:
        # On every cached request: plain SQL, without the ORM's query building.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT counter FROM {cls._meta.db_table} WHERE name = %s", [name])
            row = cursor.fetchone()
        return row[0] if row else 0
