"""A paginator that never runs COUNT(*) over a huge table.

The admin counts the whole filtered queryset on every changelist page. At a few hundred thousand
sessions that COUNT is the slowest part of the page, and nobody needs to know whether the queue
holds 212,344 or 212,351 sessions. On PostgreSQL:

- an unfiltered list takes the planner's row estimate from `pg_class.reltuples` (no scan);
- a filtered list counts exactly up to `EXACT_COUNT_LIMIT` rows (a bounded, index-backed
  count), and beyond that asks the planner for its estimate (EXPLAIN, no execution).

SQLite (the small embedded install) counts exactly.
"""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

EXACT_COUNT_LIMIT = 10_000


class EstimatedCountPaginator(Paginator):
    #: True when `count` is an estimate (the changelist says "about N").
    estimated: bool = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        if not queryset.query.where:
            estimate = self._table_estimate(queryset)
            if estimate is not None:
                self.estimated = True
                return estimate
        # values("pk") drops the select-list annotations (error counts) from the inner query.
        capped = queryset.order_by().values("pk")[: EXACT_COUNT_LIMIT + 1].count()
        if capped <= EXACT_COUNT_LIMIT:
            return capped
        self.estimated = True
        return max(self._plan_estimate(queryset), EXACT_COUNT_LIMIT + 1)

    @staticmethod
    def _table_estimate(queryset: QuerySet) -> int | None:
        table = queryset.model._meta.db_table
        with connections[queryset.db].cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            row = cursor.fetchone()
        # reltuples is -1 on a table never analyzed (PostgreSQL 14+): fall back to counting.
        if row is None or row[0] < 0:
            return None
        estimate = int(row[0])
        # A freshly filled table that autovacuum has not analyzed yet reads as (nearly) empty;
        # a small table costs nothing to count exactly.
        if estimate < EXACT_COUNT_LIMIT:
            return None
        return estimate

    @staticmethod
    def _plan_estimate(queryset: QuerySet) -> int:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        return int(plan[0]["Plan"]["Plan Rows"])
