"""Query parameters of the staff API, validated by DRF serializers.

Every parameter a client sends goes through one of these, so a bad value is a 400 naming the
parameter, never a 500 from deep inside the ORM. The `export_sessions` command validates its
options with the same `SessionFilterParams`, so "the same filters as the API" is literal.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from sessions_app.models import AutomationError, Channel, CompletionStatus, QAStatus
from sessions_app.selectors import (
    ARCHIVE_CHOICES,
    DEFAULT_ORDERING,
    SESSION_ORDERINGS,
    ChangesCursor,
    SessionFilters,
)

MAX_SEARCH_LENGTH = 200
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 25
MAX_STATS_DAYS = 366
DEFAULT_STATS_DAYS = 30
TZ_COOKIE = "tz"
# The days a filter may name. A day becomes [its midnight, the next midnight) in the user's zone
# and then UTC (selectors.day_bounds): at the ends of Python's calendar (9999-12-31, 0001-01-01)
# that overflows, so the range stops a year short of them.
MIN_DAY = date(1900, 1, 1)
MAX_DAY = date(9998, 12, 31)


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_time_zone(name: str) -> ZoneInfo:
    """An IANA zone by name; ValueError otherwise (checked against the list, not the disk)."""
    if name not in _zone_names() and name != "UTC":
        raise ValueError(f"Unknown time zone {name!r}; use an IANA name like Europe/Paris.")
    return ZoneInfo(name)


def request_time_zone(request: Any, explicit: str = "") -> ZoneInfo:
    """The user's zone: the `tz` parameter, else the browser's `tz` cookie, else TIME_ZONE.

    Users have no stored zone; the dashboard's script sets the cookie from the browser's
    Intl zone on every page, so pages and API agree with the clock on the user's screen.
    """
    if explicit:
        return parse_time_zone(explicit)
    cookie = request.COOKIES.get(TZ_COOKIE, "") if request is not None else ""
    if cookie:
        try:
            return parse_time_zone(cookie)
        except ValueError:
            pass
    return ZoneInfo(settings.TIME_ZONE)


@extend_schema_field(OpenApiTypes.STR)
class ChoiceListField(serializers.Field):
    """Comma-separated values, each one of `choices` ("complete,incomplete")."""

    def __init__(self, *, choices: list[str], **kwargs: Any) -> None:
        self.choices = list(choices)
        kwargs.setdefault(
            "help_text", "One or more of: " + ", ".join(self.choices) + " (comma separated)."
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> tuple[str, ...]:
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected comma-separated text.")
        values = tuple(dict.fromkeys(v.strip() for v in data.split(",") if v.strip()))
        unknown = [v for v in values if v not in self.choices]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown value {unknown[0]!r}; choose from: {', '.join(self.choices)}."
            )
        return values

    def to_representation(self, value: Any) -> str:
        return ",".join(value)


class DayField(serializers.DateField):
    """A day (YYYY-MM-DD) between MIN_DAY and MAX_DAY."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["help_text"] = f"{kwargs.get('help_text', 'A day')} Between {MIN_DAY} and {MAX_DAY}."
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        if not MIN_DAY <= day <= MAX_DAY:
            raise serializers.ValidationError(f"Use a day between {MIN_DAY} and {MAX_DAY}.")
        return day


def time_zone_choices() -> list[str]:
    """Every name `parse_time_zone` accepts, sorted; "" means "the default"."""
    return ["", *sorted(_zone_names() | {"UTC"})]


# In the schema an enum (the `TimeZone` component, added by leadchat.schema), not a pattern: a
# pattern let through names such as "A" or "Moon/Base" that are then refused, so the schema
# called valid what the API answers 400 to. The enum is exactly the accepted set.
@extend_schema_field({"$ref": "#/components/schemas/TimeZone"})
class TimeZoneField(serializers.ChoiceField):
    pass


class TimeZoneParam(serializers.Serializer):
    tz = TimeZoneField(
        choices=time_zone_choices(),
        required=False,
        allow_blank=True,
        error_messages={
            "invalid_choice": 'Unknown time zone "{input}"; use an IANA name like Europe/Paris.'
        },
        help_text="IANA time zone for dates and per-day counts (default: the browser's, "
        "then the server's).",
    )


def reversed_range_message(start: date, end: date) -> str:
    return f"The start date ({start}) is after the end date ({end}): pick a start on or before it."


class SessionFilterParams(TimeZoneParam):
    completion = ChoiceListField(choices=CompletionStatus.values, required=False)
    archive = serializers.ChoiceField(
        choices=ARCHIVE_CHOICES,
        required=False,
        help_text="active (default), archived or all.",
    )
    trash = serializers.BooleanField(
        required=False, default=False, help_text="true: only sessions in the trash."
    )
    qa_status = ChoiceListField(choices=QAStatus.values, required=False)
    site = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)
    channel = ChoiceListField(choices=Channel.values, required=False)
    date_from = DayField(
        required=False, help_text="First day (YYYY-MM-DD, inclusive) of started_at."
    )
    date_to = DayField(required=False, help_text="Last day (YYYY-MM-DD, inclusive) of started_at.")
    has_lead = serializers.BooleanField(required=False)
    needs_human = serializers.BooleanField(
        required=False, help_text="true: only sessions whose visitor waits for a person."
    )
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_SEARCH_LENGTH,
        help_text="Words to search for: each must be in the lead name, the lead email or the "
        "transcript text (or be the session id).",
    )
    ordering = serializers.ChoiceField(
        choices=[*SESSION_ORDERINGS, *(f"-{o}" for o in SESSION_ORDERINGS)],
        required=False,
        help_text=f"A field, '-' for descending. Default {DEFAULT_ORDERING}.",
    )

    def validate_q(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("The search must not contain NUL characters.")
        return value.strip()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("date_from"), attrs.get("date_to")
        if start and end and start > end:
            raise serializers.ValidationError({"date_from": reversed_range_message(start, end)})
        return attrs


def session_filters(data: dict[str, Any], request: Any = None) -> SessionFilters:
    """Turn validated SessionFilterParams data into the selector's filters."""
    return SessionFilters(
        completion=data.get("completion") or (),
        archive=data.get("archive") or "active",
        trash=bool(data.get("trash")),
        qa_status=data.get("qa_status") or (),
        site=data.get("site"),
        channel=data.get("channel") or (),
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
        has_lead=data.get("has_lead"),
        needs_human=data.get("needs_human"),
        search=data.get("q") or "",
        ordering=data.get("ordering") or DEFAULT_ORDERING,
        tz=request_time_zone(request, data.get("tz") or ""),
    )


def validated(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """Validate a view's query parameters; raises ValidationError (a 400) when they are bad."""
    # A plain dict, not the QueryDict: DRF reads a missing boolean in "HTML form" input as
    # false, which would turn an absent `has_lead` into a filter.
    serializer = serializer_class(data=request.query_params.dict(), context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class PageParams(serializers.Serializer):
    page = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=10**6,
        default=1,
        help_text="Page number, from 1. A page past the last one is empty (see num_pages).",
    )
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE
    )


class SessionListParams(SessionFilterParams, PageParams):
    pass


class ExportParams(SessionFilterParams):
    transcript = serializers.BooleanField(
        required=False, default=False, help_text="Include each session's messages."
    )


class ChangesParams(SessionFilterParams):
    since = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        validators=[
            RegexValidator(
                r"^[0-9]{1,18}-[0-9]{1,18}$",
                "Not a cursor from this API; start again without `since`.",
            )
        ],
        help_text="The cursor of the previous answer. Without it: no rows, a cursor to start.",
    )

    def validate_since(self, value: str) -> ChangesCursor | None:
        if not value:
            return None
        try:
            return ChangesCursor.decode(value)
        except (ValueError, OverflowError):
            raise serializers.ValidationError(
                "Not a cursor from this API; start again without `since`."
            ) from None


class StatsParams(TimeZoneParam):
    date_from = DayField(required=False, help_text="First day (inclusive).")
    date_to = DayField(required=False, help_text="Last day (inclusive); today.")
    site = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        request = self.context.get("request")
        tz = request_time_zone(request, attrs.get("tz") or "")
        today = timezone.now().astimezone(tz).date()
        date_to = attrs.get("date_to") or today
        date_from = attrs.get("date_from") or date_to - timedelta(days=DEFAULT_STATS_DAYS - 1)
        if date_from > date_to:
            raise serializers.ValidationError(
                {"date_from": reversed_range_message(date_from, date_to)}
            )
        if (date_to - date_from).days + 1 > MAX_STATS_DAYS:
            raise serializers.ValidationError(
                {"date_from": f"The range is longer than {MAX_STATS_DAYS} days."}
            )
        return {**attrs, "date_from": date_from, "date_to": date_to, "zone": tz}


class ErrorListParams(PageParams):
    resolved = serializers.BooleanField(required=False)
    # A field named like Field.source: DRF's metaclass takes declared fields off the class, so
    # nothing is shadowed at run time.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=AutomationError.Source.values, required=False
    )
    session = serializers.UUIDField(required=False, help_text="A session's id.")


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as text. DRF's UUIDField also takes integers (and so `false` as UUID 0)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class BulkActionInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["archive", "unarchive", "delete", "restore"])
    ids = serializers.ListField(child=StrictUUIDField(), min_length=1, max_length=MAX_PAGE_SIZE)
