"""The n8n workflow files shipped in docs/n8n/ and the README recipes that describe them.

They were imported and run by hand on n8n 2.41 (see the README); these tests keep them what the
README says they are: valid JSON, the nodes it names wired as it says, every JSON body built with
`JSON.stringify`, the README's snippets the very code in the files. The signature check itself
runs under Node (when installed) against leadchat's own signing code.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sessions_app.delivery.webhooks import serialize, signature_headers

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "n8n"
README = (ROOT / "README.md").read_text()
FILES = ["lead-receiver.json", "chat-agent.json", "error-reporter.json", "transcript-ingest.json"]
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # base64 of 24 bytes, a test value


def workflow(name):
    return json.loads((DOCS / name).read_text())


def nodes(name):
    return {node["name"]: node for node in workflow(name)["nodes"]}


def targets(flow, source, output=0):
    return [link["node"] for link in flow["connections"][source]["main"][output]]


@pytest.mark.parametrize("name", FILES)
def test_each_workflow_is_importable_json_linked_from_the_readme(name):
    flow = workflow(name)
    assert flow["name"].startswith("leadchat: ")
    names = {node["name"] for node in flow["nodes"]}
    assert len(names) == len(flow["nodes"])
    ids = [node["id"] for node in flow["nodes"]]
    assert len(set(ids)) == len(ids)
    for node in flow["nodes"]:
        assert {"id", "name", "type", "typeVersion", "position", "parameters"} <= node.keys()
    for source, kinds in flow["connections"].items():
        assert source in names
        for outputs in kinds.values():
            assert all(link["node"] in names for output in outputs for link in output)
    assert f"(docs/n8n/{name})" in README
    # `n8n import:workflow` (2.41) refuses a file without an id; one of its own per file.
    assert re.fullmatch(r"leadchat[A-Za-z]{8}", flow["id"])


def http_bodies():
    for name in FILES:
        for node in workflow(name)["nodes"]:
            if node["type"] == "n8n-nodes-base.httpRequest":
                yield name, node


def test_every_json_body_is_built_with_json_stringify():
    bodies = list(http_bodies())
    assert len(bodies) == 2
    for _name, node in bodies:
        params = node["parameters"]
        assert params["specifyBody"] == "json"
        body = params["jsonBody"]
        assert body.startswith("={{ JSON.stringify(") and body.endswith(") }}")
        # One expression, no value written into a JSON template ("{{ ... }}" inside quotes).
        assert body.count("{{") == 1
        assert not re.search(r"\"\s*\{\{", body)


def test_lead_receiver_answers_after_the_check_200_or_401():
    flow = workflow("lead-receiver.json")
    found = nodes("lead-receiver.json")
    webhook = found["Lead webhook"]["parameters"]
    assert webhook["responseMode"] == "responseNode"
    assert webhook["options"]["rawBody"] is True
    assert found["Verify signature"]["onError"] == "continueErrorOutput"
    ok, refused = targets(flow, "Verify signature", 0), targets(flow, "Verify signature", 1)
    assert ok == ["Accepted (200)"] and refused == ["Refused (401)"]
    assert found["Accepted (200)"]["parameters"]["options"]["responseCode"] == 200
    assert found["Refused (401)"]["parameters"]["options"]["responseCode"] == 401
    assert targets(flow, "Accepted (200)") == ["Your lead automation"]


def test_readme_shows_the_verification_code_of_the_shipped_workflow():
    code = nodes("lead-receiver.json")["Verify signature"]["parameters"]["jsCode"]
    assert f"```js\n{code}```" in README
    assert "NODE_FUNCTION_ALLOW_BUILTIN=crypto" in code
    assert "N8N_BLOCK_ENV_ACCESS_IN_NODE=false" in code


def test_readme_shows_the_error_reporters_body():
    body = nodes("error-reporter.json")["Report to leadchat"]["parameters"]["jsonBody"]
    assert f"```\n{body}\n```" in README
    for field in ("workflow:", "node:", "message:", "execution_id:", "execution_url:"):
        assert field in body


def test_chat_agent_is_a_public_basic_auth_chat_trigger():
    flow = workflow("chat-agent.json")
    trigger = nodes("chat-agent.json")["Chat Trigger"]
    assert trigger["type"] == "@n8n/n8n-nodes-langchain.chatTrigger"
    assert trigger["parameters"]["public"] is True
    assert trigger["parameters"]["mode"] == "webhook"
    assert trigger["parameters"]["authentication"] == "basicAuth"
    assert targets(flow, "Chat Trigger") == ["AI Agent"]
    assert flow["connections"]["Simple Memory"]["ai_memory"][0][0]["node"] == "AI Agent"


def test_transcript_ingest_posts_both_turns_in_the_ingest_shape():
    flow = workflow("transcript-ingest.json")
    node = nodes("transcript-ingest.json")["Send transcript to leadchat"]["parameters"]
    assert node["url"].endswith("/api/ingest/messages/")
    [header] = node["headerParameters"]["parameters"]
    assert header["name"] == "Authorization" and header["value"].startswith("Bearer ")
    body = node["jsonBody"]
    assert "messages: [" in body
    for field in ("channel:", "conversation_id:", "message_id:", "role:", "text:", "created_at:"):
        assert body.count(field) == 2
    assert "role: 'visitor'" in body and "role: 'ai'" in body
    assert "Send transcript to leadchat" in targets(flow, "AI Agent")


# --- the verification code itself, under Node -----------------------------------------------

NODE = shutil.which("node")
HARNESS = """
const code = require('fs').readFileSync(0, 'utf8');
const [raw, headers, secret, withRawBody] = JSON.parse(process.argv[1]);
const item = { json: { headers, body: JSON.parse(raw) } };
if (withRawBody) item.binary = { data: { data: Buffer.from(raw).toString('base64') } };
const context = { helpers: { getBinaryDataBuffer: async () => Buffer.from(raw) } };
const run = new Function('$input', '$env', 'require', `return (async () => {${code}}).call(this);`);
const env = new Proxy({}, { get: (_, name) => {
  if (secret === null) throw new Error('access to env vars denied');
  return name === 'LEADCHAT_WEBHOOK_SECRET' ? secret : undefined;
} });
run.call(context, { first: () => item }, env, require)
  .then((items) => console.log(JSON.stringify({ ok: items[0].json })))
  .catch((error) => console.log(JSON.stringify({ error: error.message })));
"""


def verify(body, headers, *, secret=SECRET, raw_body=True):
    code = nodes("lead-receiver.json")["Verify signature"]["parameters"]["jsCode"]
    result = subprocess.run(
        [NODE, "-e", HARNESS, json.dumps([body, headers, secret, raw_body])],
        input=code,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(result.stdout)


# CI installs Node (.ci/run), so there a missing one fails these tests instead of skipping them.
needs_node = pytest.mark.skipif(
    NODE is None and os.environ.get("CI", "").lower() != "true",
    reason="Node.js is not installed",
)


def signed(payload, secret=SECRET):
    body = serialize(payload)
    return body, signature_headers(secrets=[secret], event_id="evt_1", body=body)


@needs_node
def test_code_node_accepts_leadchats_signature():
    body, headers = signed({"type": "lead.captured", "event_id": "evt_1", "data": {"é": '"\n'}})
    assert verify(body, headers) == {"ok": json.loads(body)}


@needs_node
def test_code_node_accepts_during_a_rotation_with_either_secret():
    other = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
    body = serialize({"type": "webhook.test"})
    headers = signature_headers(secrets=[other, SECRET], event_id="evt_2", body=body)
    assert "ok" in verify(body, headers)


@needs_node
def test_code_node_refuses_a_wrong_signature_or_a_changed_body():
    body, headers = signed({"type": "lead.captured"}, secret="whsec_" + "A" * 32)
    assert verify(body, headers) == {"error": "Invalid webhook signature"}
    body, headers = signed({"type": "lead.captured"})
    assert verify(body.replace("captured", "capturez"), headers) == {
        "error": "Invalid webhook signature"
    }


@needs_node
def test_code_node_names_what_is_missing():
    body, headers = signed({"type": "lead.captured"})
    missing_raw = verify(body, headers, raw_body=False)["error"]
    assert "Raw Body" in missing_raw
    env_blocked = verify(body, headers, secret=None)["error"]
    assert "N8N_BLOCK_ENV_ACCESS_IN_NODE=false" in env_blocked
    stale = dict(headers, **{"webhook-timestamp": "1000"})
    assert "too old" in verify(body, stale)["error"]
