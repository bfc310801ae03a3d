"""The OpenAPI document is true and the server robust, as schemathesis finds them.

Schemathesis reads `/api/openapi.json` from the running server and, for every operation, sends
requests made from the document: its examples first (they name the demo's datasets, so requests
reach the 200 answers and not only the 404s), then the boundaries of each parameter (repeated
query parameters too), then random valid and invalid requests. Each answer must keep the document:
no 5xx, a documented status code, content type and headers, and a body that fits the documented
schema.

It runs as schemathesis' own command line, which reports each failure with a `curl` line that
reproduces it. (Its pytest plugin, `schemathesis.pytest.from_fixture`, fails on pytest 9.2, which
no longer has the node attribute it rewrites.) Generation is deterministic, so a failure comes
back on every run; the examples per operation keep the run well under a minute on two cores. One
worker: Hypothesis, under schemathesis' threads, can fail on its own lambda descriptions.

After it, hand-picked requests that once answered 500 or plain text, and errors whose message must
say what was wrong.
"""

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]

# As a schemathesis.toml: the same requests on every run, no example database or cache left behind.
CONFIG = """
[generation]
max-examples = 50
deterministic = true
database = "none"

[cache]
enabled = false

[phases.examples]
enabled = true

[phases.coverage]
enabled = true
generate-duplicate-query-parameters = true

[phases.fuzzing]
enabled = true

[phases.stateful]
enabled = false
"""


def test_every_operation_keeps_the_document(server, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config),
        "run", f"{server.url}/api/openapi.json",
        "--checks", ",".join(CHECKS),
        "--workers", "1",
        "--output-truncate", "false",
    ]
    out = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    # Every operation of the document was tested, none skipped for want of a usable schema; but
    # schemathesis leaves out the one that serves the document itself, GET /api/openapi.json.
    with urllib.request.urlopen(f"{server.url}/api/openapi.json") as r:
        n = sum(len(item) for item in json.load(r)["paths"].values()) - 1
    assert f"{n} selected / {n} total" in report and f"Tested: {n}" in report, report


def call(server, path, method="GET", body=None):
    """(status, content type, body as text) of one request."""
    req = urllib.request.Request(server.url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


ROWS = "/api/v1/datasets/innovation-funding/resources/figures/rows"


@pytest.mark.parametrize(
    "path, status, says",
    [
        ("/api/v1/datasets/no-such-dataset", 404, 'dataset "no-such-dataset" not found'),
        ("/api/v1/datasets/innovation-funding/resources/nope/rows", 404, 'has no resource "nope"'),
        (ROWS + "?nope=1", 400, 'unknown column "nope"'),
        (ROWS + "?_sort=-nope", 400, 'unknown column "nope"'),
        (ROWS + "?value=abc", 400, '"abc" is not a number'),
        (ROWS + "?value__in=1,x", 400, '"x" is not a number'),
        (ROWS + "?value__contains=1", 400, "works on text columns"),
        (ROWS + "?_next=garbage", 400, "bad next token"),
        (ROWS + "?_limit=10001", 400, "_limit: must be at most 10000"),
        (ROWS + "?_offset=-1", 400, "_offset: must be a whole number"),
        (ROWS + "?_distinct=null", 400, "_distinct: must be true or false"),
        (ROWS + "?_frobnicate=1", 400, "_frobnicate: unknown parameter"),
        (ROWS + "?_format=xml", 400, 'unknown format "xml"'),
        (ROWS + "?_format=geojson", 400, "no geometry column"),
        # Path segments that axum's extractors once answered in plain text.
        ("/api/v1/datasets/%FF", 400, "Invalid UTF-8 in `slug`"),
        ("/dataset/%FF", 400, "Invalid UTF-8 in `slug`"),
        ("/datastore/dump/%FF", 400, "Invalid UTF-8 in `resource_id`"),
        ("/api/v1/datasets/innovation-funding/resources/figures/versions/null/download", 400, "not a version number"),
        ("/api/v1/datasets/innovation-funding/resources/figures/versions/0/download", 400, "not a version number"),
        ("/api/v1/datasets/innovation-funding/resources/figures/versions/99999999999999999999/download", 404, "has no version 99999999999999999999"),
        ("/api/v1/datasets/innovation-funding/resources/figures/download?at=1&at=2", 400, "duplicate field `at`"),
        ("/api/v1/status", 405, "does not take POST"),
    ],
)
def test_errors_are_json_and_say_what_was_wrong(server, path, status, says):
    method = "POST" if status == 405 else "GET"
    got, content_type, body = call(server, path, method=method, body=b"{}" if method == "POST" else None)
    assert (got, content_type) == (status, "application/json"), body
    assert says in json.loads(body)["error"]["message"]


def test_archive_answers_a_bad_url_per_parameter(server):
    for op in ("list-file-versions?start=20240101&end=20240102&url=7", "get-file?time=20240101-0000&url=7"):
        status, _, body = call(server, "/v1/historical-archive/" + op)
        assert status == 400
        [problem] = json.loads(body)["errors"]
        assert problem["parameter"] == "url" and "not the URL of a file here" in problem["message"]


@pytest.mark.parametrize(
    "action, status",
    [
        # Once an overflow (debug builds panicked) computing the next page's link.
        ("datastore_search?resource_id=3d96fc92-cb09-55f7-8a0b-40ba62a37f4f&offset=18446744073709551615", 200),
        # Once SQLite's "API misuse" on a statement of only comments or semicolons.
        ("datastore_search_sql?sql=%3B", 409),
        ("datastore_search_sql?sql=--%20SELECT%201", 409),
        ("%FF", 400),
    ],
)
def test_ckan_hostile_calls_are_no_server_errors(server, action, status):
    got, content_type, body = call(server, "/api/3/action/" + action)
    assert (got, content_type) == (status, "application/json"), body
    assert json.loads(body)["success"] is (status == 200)
