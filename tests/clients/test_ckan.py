"""The CKAN Action API, driven by the `ckanapi` client as CKAN users drive DATA.GOV.HK."""

import json
import subprocess
import sys
import urllib.request
import urllib.error
import urllib.parse

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
    assert itib["package_count"] == ckan.action.package_search(fq="organization:itib")["count"] == 5
    assert sum(o["package_count"] for o in orgs) == len(names)
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


@pytest.fixture(scope="module")
def air(server, tmp_path_factory):
    """A published dataset with Chinese titles, hostile column names and typed columns."""
    folder = tmp_path_factory.mktemp("air")
    (folder / "readings.csv").write_text(
        'station,district 地區,pm25,aqhi,date,ok,"odd ""name"""\n'
        + "".join(
            f"Station {i},{'Central' if i % 2 else 'Mong Kok'},{i * 1.5},{i % 11},2024-01-{i % 28 + 1:02d},{'yes' if i % 3 else 'no'},x{i}\n"
            for i in range(1, 251)
        ),
        encoding="utf-8",
    )
    (folder / "meta.json").write_text(
        json.dumps(
            {
                "title": {"en": "Air quality health index readings", "zh-Hant": "空氣質素健康指數", "zh-Hans": "空气质素健康指数"},
                "description": "Hourly readings of the stations",
                "organization": "epd",
                "organization_title": {"en": "Environmental Protection Department", "zh-Hant": "環境保護署"},
                "tags": ["air", "environment"],
                "theme": "environment",
                "license": "DATA.GOV.HK Terms and Conditions",
            }
        ),
        encoding="utf-8",
    )
    server.publish(folder / "readings.csv", "air-quality", "--meta", str(folder / "meta.json"))
    pkg = ckanapi.RemoteCKAN(server.url).action.package_show(id="air-quality")
    return pkg["resources"][0]["id"]


@pytest.mark.parametrize(
    "q",
    ["空氣", "空气", "健康指數", "健康指数", "reading", "readings", "Air Quality", "station"],
)
def test_search_in_three_languages(ckan, air, q):
    found = ckan.action.package_search(q=q)
    assert "air-quality" in [r["name"] for r in found["results"]], q


def test_search_facets_filters_and_paging(ckan, air):
    everything = ckan.action.package_search(rows=1000)
    assert everything["count"] == len(ckan.action.package_list())
    # The demo's own EPD datasets are GeoJSON: the CSV one is the test's.
    found = ckan.action.package_search(
        q="",
        fq="organization:epd res_format:CSV",
        **{"facet.field": ["organization", "tags", "res_format", "groups", "license_id"]},
    )
    assert [r["name"] for r in found["results"]] == ["air-quality"]
    items = {i["name"]: i for i in found["search_facets"]["organization"]["items"]}
    assert items["epd"]["count"] == 1 and items["epd"]["display_name"] == "Environmental Protection Department"
    assert found["search_facets"]["res_format"]["items"][0]["name"] == "CSV"
    assert found["facets"]["tags"] == {"air": 1, "environment": 1}
    alltags = ckan.action.package_search(**{"facet.field": '["tags"]', "facet.limit": -1})
    assert {i["name"] for i in alltags["search_facets"]["tags"]["items"]} >= {"air", "innovation"}
    assert ckan.action.package_search(fq='tags:air res_format:CSV')["count"] == 1
    assert ckan.action.package_search(fq="tags:air tags:innovation")["count"] == 0
    page1 = ckan.action.package_search(rows=2, start=0, sort="name asc")["results"]
    page2 = ckan.action.package_search(rows=2, start=2, sort="name asc")["results"]
    names = sorted(ckan.action.package_list())
    assert [r["name"] for r in page1 + page2] == names[:4]
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.package_search(rows=1001)
    with pytest.raises(ckanapi.SearchQueryError):
        ckan.action.package_search(fq="nonsense:field")
    # Search syntax never errors.
    for q in ['"', "AND OR *", "NEAR(air", "title:air", "'; DROP TABLE datasets; --"]:
        ckan.action.package_search(q=q)


def test_datastore_search(ckan, air):
    r = ckan.action.datastore_search(resource_id=air, limit=5)
    assert r["total"] == 250 and len(r["records"]) == 5
    types = {f["id"]: f["type"] for f in r["fields"]}
    assert types == {
        "_id": "int", "station": "text", "district 地區": "text", "pm25": "numeric", "aqhi": "int",
        "date": "date", "ok": "bool", 'odd "name"': "text",
    }
    r = ckan.action.datastore_search(
        resource_id=air, filters={"district 地區": "Central", "ok": True}, sort="pm25 desc", fields=["station", "pm25"], limit=3
    )
    assert [x["station"] for x in r["records"]] == ["Station 247", "Station 245", "Station 241"]
    assert list(r["records"][0]) == ["station", "pm25"]
    assert r["total"] == sum(1 for i in range(1, 251) if i % 2 and i % 3)
    r = ckan.action.datastore_search(resource_id=air, q="Station 12", limit=100)
    assert {x["station"] for x in r["records"]} >= {"Station 12", "Station 120"}
    r = ckan.action.datastore_search(resource_id=air, filters={'odd "name"': "x7"})
    assert [x["station"] for x in r["records"]] == ["Station 7"]
    r = ckan.action.datastore_search(resource_id=air, records_format="lists", limit=2, offset=10)
    assert r["records"][0][0] == 11
    r = ckan.action.datastore_search(resource_id=air, distinct=True, fields="district 地區", sort="district 地區")
    assert [x["district 地區"] for x in r["records"]] == ["Central", "Mong Kok"]
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search(resource_id=air, fields=["nope"])
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search(resource_id=air, filters={"pm25": "lots"})
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search(resource_id=air, limit=32001)
    with pytest.raises(ckanapi.NotFound):
        ckan.action.datastore_search(resource_id="00000000-0000-0000-0000-000000000000")


def test_datastore_search_sql(ckan, air, server):
    r = ckan.action.datastore_search_sql(
        sql=f'SELECT "district 地區" AS d, count(*) AS n, avg(pm25) AS mean FROM "{air}" GROUP BY 1 ORDER BY 1'
    )
    assert [x["d"] for x in r["records"]] == ["Central", "Mong Kok"]
    assert r["records"][0]["n"] == 125
    with pytest.raises(ckanapi.NotAuthorized):
        ckan.action.datastore_search_sql(sql="SELECT * FROM versions")
    with pytest.raises(ckanapi.NotAuthorized):
        ckan.action.datastore_search_sql(sql=f'DELETE FROM "{air}"')
    with pytest.raises(ckanapi.ValidationError) as e:
        ckan.action.datastore_search_sql(
            sql="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        )
    assert "took longer" in json.dumps(e.value.error_dict)
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search_sql(sql="SELECT randomblob(1000000000)")
    assert ckan.action.datastore_search(resource_id=air, limit=0)["total"] == 250


def test_datastore_dump(server, air):
    with urllib.request.urlopen(f"{server.url}/datastore/dump/{air}?bom=true") as r:
        body = r.read().decode("utf-8")
        assert r.headers["Content-Type"].startswith("text/csv")
    assert body.startswith("\ufeff_id,station,district 地區,pm25,aqhi,date,ok,\"odd \"\"name\"\"\"\r\n")
    assert len(body.strip().splitlines()) == 251
    with urllib.request.urlopen(f"{server.url}/datastore/dump/{air}?format=ndjson") as r:
        lines = r.read().decode().splitlines()
    assert len(lines) == 250 and json.loads(lines[0])["ok"] is True


def test_native_rows(server, air):
    base = "/api/v1/datasets/air-quality/resources/readings/rows"
    _, page, _ = raw(server, base + "?_limit=7&_sort=-pm25&pm25__lt=100&_facet=district%20%E5%9C%B0%E5%8D%80")
    assert page["total"] == 66 and page["total_exact"] is True
    assert [r["pm25"] for r in page["records"]] == [99.0, 97.5, 96.0, 94.5, 93.0, 91.5, 90.0]
    assert {f["value"]: f["count"] for f in page["facets"]["district 地區"]} == {"Central": 33, "Mong Kok": 33}
    seen = [r["_id"] for r in page["records"]]
    while page["next"]:
        _, page, _ = raw(server, page["next_url"])
        seen += [r["_id"] for r in page["records"]]
    assert len(seen) == len(set(seen)) == 66
    status, err, _ = raw(server, base + "?nope=1")
    assert status == 400 and "unknown column" in err["error"]["message"]
    status, err, _ = raw(server, base + "?_next=garbage")
    assert status == 400 and "bad next token" in err["error"]["message"]
    status, err, _ = raw(server, base + "?aqhi__gt=many")
    assert status == 400
    status, err, _ = raw(server, base + "?_limit=10001")
    assert status == 400
    with urllib.request.urlopen(server.url + base + "?_format=csv&station=Station%202&_fields=station,aqhi") as r:
        assert r.read().decode() == "station,aqhi\r\nStation 2,2\r\n"


def test_native_dataset_search(server, air):
    _, found, _ = raw(server, "/api/v1/datasets?q=%E7%A9%BA%E6%B0%94&facets=organization,tag")
    slugs = [d["slug"] for d in found["datasets"]]
    assert "air-quality" in slugs and "air-quality-monitoring-stations" in slugs
    epd = sum(1 for d in found["datasets"] if (d["organization"] or {}).get("slug") == "epd")
    # Organisation facet values carry the organisation's name beside the slug and count.
    assert {"value": "epd", "count": epd, "title": {"en": "Environmental Protection Department", "zh-Hant": "環境保護署"}} in found["facets"]["organization"]
    _, page, _ = raw(server, "/api/v1/datasets?limit=2&offset=2&sort=name")
    _, everything, _ = raw(server, "/api/v1/datasets?sort=name")
    assert [d["slug"] for d in page["datasets"]] == [d["slug"] for d in everything["datasets"]][2:4]
    assert page["count"] == everything["count"]
    _, only, _ = raw(server, "/api/v1/datasets?organization=epd&tag=air")
    assert [d["slug"] for d in only["datasets"]] == ["air-quality"]
    status, err, _ = raw(server, "/api/v1/datasets?colour=red")
    assert status == 400 and "unknown parameter" in err["error"]["message"]


def test_native_sql(server, air):
    q = urllib.parse.quote(f'SELECT station, pm25 FROM "{air}" WHERE aqhi = 10 ORDER BY pm25 DESC')
    _, r, _ = raw(server, f"/api/v1/sql?sql={q}")
    assert r["records"][0] == {"station": "Station 241", "pm25": 361.5}
    assert [f["type"] for f in r["fields"]] == ["string", "number"]
    with urllib.request.urlopen(f"{server.url}/api/v1/sql?_format=csv&sql={q}") as f:
        assert f.read().decode().startswith("station,pm25\r\nStation 241,361.5\r\n")
    req = urllib.request.Request(
        server.url + "/api/v1/sql?_size=3",
        data=f'SELECT _id FROM "{air}"'.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(req) as f:
        body = json.loads(f.read())
    assert len(body["records"]) == 3 and body["truncated"] is True
    status, err, _ = raw(server, "/api/v1/sql?sql=" + urllib.parse.quote("SELECT * FROM sqlite_schema"))
    assert status == 403 and "not allowed" in err["error"]["message"]
    status, err, _ = raw(server, "/api/v1/sql?sql=" + urllib.parse.quote("PRAGMA table_info(x)"))
    assert status == 403
    status, err, _ = raw(server, "/api/v1/sql?sql=" + urllib.parse.quote(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"))
    assert status == 400 and "took longer" in err["error"]["message"]
