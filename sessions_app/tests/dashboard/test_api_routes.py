"""The staff API's URL patterns: one move endpoint for four paths, one export view for two."""

import uuid

import pytest
import yaml
from django.urls import NoReverseMatch, resolve, reverse

from sessions_app.api.views import SessionExportApi, SessionMoveApi
from sessions_app.tests.factories import ChatSessionFactory

MOVE_PATHS = {
    "archive": "/api/sessions/{id}/archive/",
    "unarchive": "/api/sessions/{id}/unarchive/",
    "delete": "/api/sessions/{id}/delete/",
    "restore": "/api/sessions/{id}/restore/",
}


@pytest.mark.parametrize("move", MOVE_PATHS)
def test_each_move_path_is_the_one_move_endpoint_with_its_move(move):
    public_id = uuid.uuid4()
    path = MOVE_PATHS[move].format(id=public_id)
    match = resolve(path)
    assert match.func.view_class is SessionMoveApi
    assert match.view_name == "staff-api:session-move"
    assert match.kwargs == {"public_id": public_id, "action": move}
    assert reverse("staff-api:session-move", args=[public_id, move]) == path


@pytest.mark.parametrize("word", ["frobnicate", "Archive", "archived", "archive-x"])
def test_a_word_that_is_not_a_move_cannot_be_reversed(word):
    with pytest.raises(NoReverseMatch):
        reverse("staff-api:session-move", args=[uuid.uuid4(), word])


@pytest.mark.django_db
@pytest.mark.parametrize("word", ["frobnicate", "Archive", "archived", "purge"])
def test_a_word_that_is_not_a_move_gets_the_json_404(api, agent_user, word):
    session = ChatSessionFactory()
    response = api(agent_user).post(f"/api/sessions/{session.public_id}/{word}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "No such session, error or endpoint.", "code": "not_found"}


@pytest.mark.parametrize(
    ("name", "path", "file_format"),
    [
        ("export-csv", "/api/exports/sessions.csv", "csv"),
        ("export-jsonl", "/api/exports/sessions.jsonl", "jsonl"),
    ],
)
def test_both_export_paths_are_the_one_export_view_with_its_format(name, path, file_format):
    assert reverse(f"staff-api:{name}") == path
    view = resolve(path).func
    assert view.view_class is SessionExportApi
    assert view.view_initkwargs == {"file_format": file_format}


@pytest.mark.django_db
def test_schema_documents_each_move_as_its_own_operation(client):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    assert not [path for path in paths if "{action}" in path]
    documented = {
        move: paths[template.replace("{id}", "{public_id}")]["post"]
        for move, template in MOVE_PATHS.items()
    }
    assert {move: op["operationId"] for move, op in documented.items()} == {
        "archive": "sessions_archive",
        "unarchive": "sessions_unarchive",
        "delete": "sessions_delete",
        "restore": "sessions_restore",
    }
    assert documented["delete"]["summary"] == "Delete a session"
    assert documented["delete"]["description"] == (
        "Move the session to the trash (restorable until purged). "
        "Answers with the updated list row."
    )
    for op in documented.values():
        assert [(p["name"], p["in"]) for p in op["parameters"]] == [("public_id", "path")]
        assert op["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}


@pytest.mark.django_db
def test_schema_documents_each_export_with_its_own_id_and_media_type(client):
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    csv = paths["/api/exports/sessions.csv"]["get"]
    jsonl = paths["/api/exports/sessions.jsonl"]["get"]
    assert (csv["operationId"], jsonl["operationId"]) == (
        "sessions_export_csv",
        "sessions_export_jsonl",
    )
    assert (csv["summary"], jsonl["summary"]) == (
        "Export sessions as CSV",
        "Export sessions as JSON Lines",
    )
    assert "text/csv" in csv["responses"]["200"]["content"]
    assert "application/jsonl" in jsonl["responses"]["200"]["content"]
