"""The CKAN Action API, driven by the `ckanapi` client as CKAN users drive DATA.GOV.HK."""

import json
import subprocess
import sys
import urllib.request
import urllib.error

import ckanapi
import pytest


@pytest.fixture(scope="module")
def ckan(server):
    return ckanapi.RemoteCKAN(server.url, user_agent="citydata-tests")


def raw(server, path, body=None):
    """A plain HTTP call that returns (status, parsed JSON, headers) without following redirects."""
    req = urllib.request.Request(server.url + path, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


def test_status_and_lists(ckan):
    status = ckan.action.status_show()
    assert status["ckan_version"].startswith("2.")
    names = ckan.action.package_list()
    assert "innovation-funding" in names and names == sorted(names)
    assert ckan.action.package_list(limit=2, offset=1) == names[1:3]
    orgs = ckan.action.organization_list(all_fields=True)
    itib = next(o for o in orgs if o["name"] == "itib")
    assert itib["package_count"] == len(names)
    assert itib["title_translated"]["zh_Hant"] == "創新科技及工業局"
    assert "innovation" in ckan.action.tag_list()
    assert "economy" in ckan.action.group_list()


def test_package_and_resource(ckan):
    p = ckan.action.package_show(id="innovation-funding")
    assert p["name"] == "innovation-funding"
    assert p["title_translated"]["zh_Hant"] == "創新及科技資助計劃數字"
    assert p["organization"]["name"] == "itib"
    assert {t["name"] for t in p["tags"]} >= {"innovation", "funding"}
    assert p["num_resources"] == len(p["resources"]) >= 1
    # By id as well as by name.
    assert ckan.action.package_show(id=p["id"])["name"] == p["name"]
    r = p["resources"][0]
    assert r["format"] == "CSV" and r["datastore_active"] is True
    assert ckan.action.resource_show(id=r["id"]) == r
    with urllib.request.urlopen(r["url"]) as f:
        body = f.read()
    assert len(body) == r["size"]
    acts = ckan.action.package_activity_list(id="innovation-funding")
    assert acts[-1]["activity_type"] == "new package"


def test_errors_as_ckan_shapes(ckan, server):
    with pytest.raises(ckanapi.NotFound):
        ckan.action.package_show(id="no-such-dataset")
    with pytest.raises(ckanapi.NotFound):
        ckan.action.resource_show(id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ckanapi.ValidationError) as e:
        ckan.action.package_show()
    assert e.value.error_dict["id"] == ["Missing value"]
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_list(limit="many")
    with pytest.raises(ckanapi.NotAuthorized):
        ckan.action.package_create(name="x")
    status, body, _ = raw(server, "/api/3/action/package_show?id=no-such-dataset")
    assert status == 404 and body["success"] is False
    assert body["error"]["__type"] == "Not Found Error"
    assert body["help"].endswith("/api/3/action/help_show?name=package_show")
    status, body, _ = raw(server, "/api/3/action/package_show", b"{not json")
    assert status == 400 and body["success"] is False
    status, body, _ = raw(server, "/api/3/action/no_such_action")
    assert status == 400 and "Action name not known" in body["error"]["message"]


def test_get_and_post_on_both_paths(server):
    for path in ("/api/3/action/package_show", "/api/action/package_show"):
        s1, get, _ = raw(server, path + "?id=innovation-funding")
        s2, post, _ = raw(server, path, json.dumps({"id": "innovation-funding"}).encode())
        assert s1 == s2 == 200
        assert get["result"] == post["result"]


def test_ckanapi_dump_all(server, tmp_path):
    out = tmp_path / "datasets.jsonl"
    subprocess.run(
        # The `ckanapi` command, run through its entry point so that it needs nothing on PATH.
        [sys.executable, "-c", "import sys; from ckanapi.cli.main import main; sys.exit(main())",
         "dump", "datasets", "--all", "-q", "-r", server.url, "-O", str(out)],
        check=True,
        timeout=120,
    )
    dumped = [json.loads(line) for line in out.read_text().splitlines()]
    names = ckanapi.RemoteCKAN(server.url).action.package_list()
    assert sorted(d["name"] for d in dumped) == names
