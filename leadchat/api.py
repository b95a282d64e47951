"""Project-wide API plumbing."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus a top-level readable `error` message on every error body.

    Clients (the widget, n8n, scripts) can show `error` as it is; field errors stay alongside
    under their field names for forms.
    """
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        response.data = {"error": str(data["detail"]), "code": getattr(data["detail"], "code", "")}
    elif isinstance(data, dict):
        first = next(iter(data.items()), None)
        message = "Invalid input."
        if first is not None:
            field, errors = first
            text = errors[0] if isinstance(errors, list) and errors else errors
            message = str(text) if field == "non_field_errors" else f"{field}: {text}"
        response.data = {"error": message, "fields": data}
    elif isinstance(data, list):
        response.data = {"error": str(data[0]) if data else "Invalid input.", "fields": data}
    return response


class ErrorBodySerializer(serializers.Serializer):
    """What every error answer of every API looks like (made by `exception_handler` above)."""

    error = serializers.CharField(help_text="A readable message, safe to show as it is.")
    code = serializers.CharField(required=False)
    # A field named like Serializer.fields: DRF's metaclass takes declared fields off the class,
    # so nothing is shadowed at run time.
    fields = serializers.JSONField(  # type: ignore[assignment]
        required=False, help_text="Per-field details, when any."
    )


def error_response(description: str) -> OpenApiResponse:
    """An error answer for `extend_schema(responses=...)`."""
    return OpenApiResponse(ErrorBodySerializer, description=description)
