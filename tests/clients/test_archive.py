"""The historical archive API with DATA.GOV.HK's paths and parameters, and the native `at=`."""

import datetime
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

HKT = datetime.timezone(datetime.timedelta(hours=8))


def get(server, path, **params):
    url = server.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def versions(server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    bodies = [b"station,pm25\nCentral,21\n", b"station,pm25\nCentral,23\nMong Kok,30\n"]
    for body in bodies:
        (folder / "readings.csv").write_bytes(body)
        server.publish(folder / "readings.csv", "air-archive")
    return bodies


def today():
    return datetime.datetime.now(HKT).strftime("%Y%m%d")


def test_list_files_and_versions(server, versions):
    status, body = get(server, "/v1/historical-archive/list-files", start=today(), end=today(), search="air-archive")
    assert status == 200, body
    listing = json.loads(body)
    assert listing["file-count"] == 1
    f = listing["files"][0]
    assert f["format"] == "CSV" and f["version-count"] == 2
    status, body = get(server, "/v1/historical-archive/list-file-versions", url=f["url"], start=today(), end=today())
    assert status == 200, body
    v = json.loads(body)
    assert v["version-count"] == 2 and len(v["timestamps"]) == 2
    # The file at its latest timestamp is the latest version, byte for byte.
    status, body = get(server, "/v1/historical-archive/get-file", url=f["url"], time=v["timestamps"][-1])
    assert status == 200 and body == versions[1]
    # Before the first version there was no file.
    status, _ = get(server, "/v1/historical-archive/get-file", url=f["url"], time="20000101-0000")
    assert status == 404
    # A period before anything was published lists nothing.
    status, body = get(server, "/v1/historical-archive/list-files", start="20000101", end="20001231")
    assert json.loads(body)["file-count"] == 0


def test_native_download_at_any_instant(server, versions):
    ds = json.loads(get(server, "/api/v1/datasets/air-archive")[1])
    v1, v2 = ds["resources"][0]["versions"]
    base = "/api/v1/datasets/air-archive/resources/readings/download"
    assert get(server, base)[1] == versions[1]
    assert get(server, base, at=v1["created"])[1] == versions[0]
    assert get(server, base, at=v2["created"])[1] == versions[1]
    assert get(server, base, at="2000-01-01T00:00:00Z")[0] == 404
    assert get(server, base, at="yesterday")[0] == 400


@pytest.mark.parametrize(
    "path,params,param",
    [
        ("list-files", {"start": "2024-01-01", "end": "20240101"}, "start"),
        ("list-files", {"end": "20240101"}, "start"),
        ("list-files", {"start": "20240230", "end": "20240301"}, "start"),
        ("list-files", {"start": "20240301", "end": "20240201"}, "end"),
        ("list-files", {"start": "20240101", "end": "20240101", "max": "-1"}, "max"),
        ("list-file-versions", {"start": "20240101", "end": "20240101"}, "url"),
        ("get-file", {"url": "x", "time": "20240101"}, "time"),
        ("get-file", {"url": "x", "time": "20240101-2561"}, "time"),
    ],
)
def test_bad_dates_get_400(server, path, params, param):
    status, body = get(server, "/v1/historical-archive/" + path, **params)
    assert status == 400, body
    assert param in [e["parameter"] for e in json.loads(body)["errors"]]
