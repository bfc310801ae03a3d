"""OGC API - Features and vector tiles on the demo, with real clients: the `ogctests` conformance
suite, GDAL (`ogrinfo` and `ogr2ogr` through the OAPIF driver; the MVT driver for tiles) and OWSLib.
"""

import json
import pathlib
import statistics
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from owslib.ogcapi.features import Features

HERE = pathlib.Path(__file__).resolve().parent
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG2326 = "http://www.opengis.net/def/crs/EPSG/0/2326"


def fetch(url, headers=None):
    """(status, headers, body bytes) of a GET, errors included."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def get(server, path, **params):
    url = server.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    status, headers, body = fetch(url)
    return status, headers, (json.loads(body) if body and "json" in headers.get("Content-Type", "") else body)


def items(server, collection, **params):
    status, headers, body = get(server, f"/ogc/collections/{collection}/items", **params)
    assert status == 200, body
    return body, headers


def ogr(*args):
    out = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def feature_count(text):
    return int(next(l for l in text.splitlines() if l.startswith("Feature Count:")).split(":")[1])


# --- the conformance suite ---------------------------------------------------------------------


def suite(server, scope, *flags):
    out = subprocess.run(
        [sys.executable, str(HERE / "ogc_suite.py"), server.url + "/ogc", scope, "-q", *flags],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    return out.stdout


def test_ogctests_core(server):
    text = suite(server, "features/core")
    assert " passed" in text and "failed" not in text


# Four filtering tests of ogctests 0.1.15 cannot pass on any server, so they are left out by name:
# test_ct5 sends `{queryable}=valid-value` and wants 200, then `[invalid-value]` and wants 400 (both
# are valid strings for a string queryable, and "valid-value" is not a valid number); test_ct7 sends
# a dict as `filter-lang` and compares with a property named "valid"; test_ct8 indexes the queryable's
# name (a string) with ['key']; test_ct10 sends `filter-lang` as an enum object and a filter that is
# not CQL2. The CQL2 filtering those tests mean to check is tested below with GDAL and directly.
BROKEN_FILTERING = "not test_ct5 and not test_ct7 and not test_ct8 and not test_ct10"


def test_ogctests_filtering(server):
    text = suite(server, "features/filtering", "-k", BROKEN_FILTERING)
    assert "6 passed" in text, text[-3000:]


# --- GDAL ----------------------------------------------------------------------------------------


def test_gdal_lists_collections_and_counts(server):
    text = ogr("-so", f"OAPIF:{server.url}/ogc")
    for layer in ("libraries", "buildings", "districts", "wifi-hk-hotspots", "smart-lampposts", "land-parcels"):
        assert f": {layer} " in text, text
    assert feature_count(ogr("-so", "-al", f"OAPIF:{server.url}/ogc", "libraries")) == 186


def test_gdal_spatial_and_attribute_filters_match_the_api(server):
    url = f"OAPIF:{server.url}/ogc"
    box = ("114.1", "22.2", "114.2", "22.3")
    in_box = feature_count(ogr("-so", "-al", url, "libraries", "-spat", *box))
    body, _ = items(server, "libraries", bbox=",".join(box), limit=1000)
    assert in_box == body["numberReturned"] == body["numberMatched"] > 0
    where = feature_count(ogr("-so", "-al", url, "libraries", "-where", "District = 'SOUTHERN'"))
    body, _ = items(server, "libraries", District="SOUTHERN", limit=1000)
    assert where == body["numberMatched"] > 0
    both = feature_count(ogr("-so", "-al", url, "libraries", "-spat", *box, "-where", "District = 'SOUTHERN'"))
    assert 0 < both <= min(in_box, where)


def test_ogr2ogr_copies_a_whole_collection_through_paging(server, tmp_path):
    out = tmp_path / "parcels.geojson"
    run = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(out), f"OAPIF:{server.url}/ogc", "land-parcels"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    features = json.loads(out.read_text())["features"]
    body, _ = items(server, "land-parcels", limit=1)
    assert len(features) == body["numberMatched"] > 1000
    assert len({f["properties"]["id"] for f in features}) == len(features)


def test_gdal_reads_vector_tiles(server, tmp_path):
    status, headers, tj = get(server, "/tiles/buildings.json")
    assert status == 200 and tj["tilejson"] == "3.0.0"
    assert tj["tiles"][0].endswith("/tiles/buildings/{z}/{x}/{y}.mvt")
    # A z14 tile over Kowloon, where the synthetic buildings are dense.
    z, x, y = 14, 13389, 7147
    status, headers, body = fetch(f"{server.url}/tiles/buildings/{z}/{x}/{y}.mvt")
    assert status == 200 and headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    text = ogr("-al", str(path))
    assert "Layer name: buildings" in text
    assert feature_count(text) > 10
    assert "height_m (Real)" in text and "name_zh (String)" in text
    # Revalidation costs no query: the ETag names the version and the tile.
    etag = headers["ETag"]
    status, _, _ = fetch(f"{server.url}/tiles/buildings/{z}/{x}/{y}.mvt", {"If-None-Match": etag})
    assert status == 304
    # Open sea south of Lamma: no building.
    status, _, body = fetch(f"{server.url}/tiles/buildings/14/13380/7170.mvt")
    assert status == 204 and body == b""


# --- OWSLib --------------------------------------------------------------------------------------


def test_owslib_features(server):
    w = Features(server.url + "/ogc")
    ids = {c["id"] for c in w.collections()["collections"]}
    assert {"libraries", "hospitals", "buildings"} <= ids
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in w.conformance()["conformsTo"]
    q = w.collection_queryables("libraries")
    assert q["properties"]["District"]["type"] == "string"
    page = w.collection_items("libraries", bbox=[114.1, 22.2, 114.2, 22.3], limit=5)
    assert page["numberReturned"] == len(page["features"]) <= 5
    for f in page["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 114.1 <= lon <= 114.2 and 22.2 <= lat <= 22.3
    one = w.collection_item("libraries", str(page["features"][0]["id"]))
    assert one["properties"] == page["features"][0]["properties"]


# --- CRS -----------------------------------------------------------------------------------------


def test_crs_hk1980_grid_and_epsg_4326_axis_order(server):
    plain, headers = items(server, "libraries", limit=200)
    assert headers["Content-Crs"] == f"<{CRS84}>"
    grid, headers = items(server, "libraries", limit=200, crs=EPSG2326)
    assert headers["Content-Crs"] == f"<{EPSG2326}>"
    # EPSG:2326's axes are northing, easting; the government's own grid coordinates are in the
    # properties (whole metres, a few of them off): the median difference is well under a metre.
    diffs = []
    for f in grid["features"]:
        n, e = f["geometry"]["coordinates"]
        diffs.append(((n - f["properties"]["Northing"]) ** 2 + (e - f["properties"]["Easting"]) ** 2) ** 0.5)
    assert statistics.median(diffs) < 1.0, statistics.median(diffs)
    latlon, _ = items(server, "libraries", limit=200, crs=EPSG4326)
    for a, b in zip(plain["features"], latlon["features"]):
        assert a["geometry"]["coordinates"] == b["geometry"]["coordinates"][::-1]
    # A box in the grid finds what the same box in degrees finds.
    f = grid["features"][0]
    n, e = f["geometry"]["coordinates"]
    near, _ = items(server, "libraries", bbox=f"{n - 50},{e - 50},{n + 50},{e + 50}", **{"bbox-crs": EPSG2326})
    assert f["id"] in [g["id"] for g in near["features"]]


# --- filters -------------------------------------------------------------------------------------


def test_cql2_text_and_json_filters(server):
    text, _ = items(server, "buildings", filter="height_m > 150 AND district_en = 'Kwun Tong'", limit=10000)
    assert text["numberReturned"] > 0
    assert all(f["properties"]["height_m"] > 150 and f["properties"]["district_en"] == "Kwun Tong" for f in text["features"])
    as_json = json.dumps({"op": "and", "args": [
        {"op": ">", "args": [{"property": "height_m"}, 150]},
        {"op": "=", "args": [{"property": "district_en"}, "Kwun Tong"]},
    ]})
    same, _ = items(server, "buildings", filter=as_json, **{"filter-lang": "cql2-json"}, limit=10000)
    assert [f["id"] for f in same["features"]] == [f["id"] for f in text["features"]]
    spatial, _ = items(
        server, "libraries", limit=1000,
        filter="S_INTERSECTS(geometry, POLYGON((114.1 22.2, 114.2 22.2, 114.2 22.3, 114.1 22.3, 114.1 22.2)))",
    )
    boxed, _ = items(server, "libraries", bbox="114.1,22.2,114.2,22.3", limit=1000)
    assert {f["id"] for f in spatial["features"]} == {f["id"] for f in boxed["features"]}
    many, _ = items(server, "buildings", limit=10000,
                    filter="district_en IN ('Central and Western', 'Wan Chai') AND floors BETWEEN 10 AND 20 AND name_en LIKE '%Court%'")
    for f in many["features"]:
        p = f["properties"]
        assert p["district_en"] in ("Central and Western", "Wan Chai") and 10 <= p["floors"] <= 20 and "Court" in p["name_en"]


def test_paging_walks_the_whole_collection(server):
    seen = []
    url = server.url + "/ogc/collections/land-parcels/items?limit=700"
    while url:
        status, _, body = fetch(url)
        assert status == 200
        page = json.loads(body)
        assert page["numberReturned"] == len(page["features"])
        seen += [f["id"] for f in page["features"]]
        url = next((l["href"] for l in page["links"] if l["rel"] == "next" and l["type"] == "application/geo+json"), None)
    assert len(seen) == len(set(seen)) == page["numberMatched"]


@pytest.mark.parametrize(
    "path,says",
    [
        ("/ogc/collections/libraries/items?bbox=1,2,3", "bbox"),
        ("/ogc/collections/libraries/items?bbox=114.3,22.2,114.1,22.3", "lower corner"),
        ("/ogc/collections/libraries/items?crs=EPSG:9999", "unknown coordinate reference system"),
        ("/ogc/collections/libraries/items?filter=District%20%3D", "CQL2 syntax error at character"),
        ("/ogc/collections/libraries/items?filter=nosuch%20%3D%201", "nosuch"),
        ("/ogc/collections/libraries/items?limit=0", "limit"),
        ("/ogc/collections/libraries/items?limit=10001", "limit"),
        ("/ogc/collections/libraries/items?colour=red", "unknown query parameter"),
        ("/ogc/collections/libraries/items?datetime=yesterday", "datetime"),
        ("/tiles/libraries/23/0/0.mvt", "zoom level 23 is out of range"),
        ("/tiles/libraries/3/8/0.mvt", "x=8 is out of range"),
    ],
)
def test_bad_requests_say_why(server, path, says):
    status, headers, body = fetch(server.url + path)
    assert status == 400, body
    assert says in body.decode(), body


def test_html_pages(server):
    for path in ("/ogc?f=html", "/ogc/collections?f=html", "/ogc/collections/libraries?f=html",
                 "/ogc/collections/libraries/items?f=html&limit=3", "/ogc/collections/libraries/items/1?f=html"):
        status, headers, body = fetch(server.url + path)
        assert status == 200 and headers["Content-Type"].startswith("text/html"), path
        assert b"<h1>" in body
    _, _, body = fetch(server.url + "/ogc/collections/libraries/items?f=html&limit=3")
    assert "圖書館".encode() in body


# --- spatial filters of the rows APIs -----------------------------------------------------------


def haversine_m(lon1, lat1, lon2, lat2):
    import math

    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def rows(server, **params):
    status, _, body = get(server, "/api/v1/datasets/libraries/resources/libraries/rows", **params)
    assert status == 200, body
    return body


def test_native_rows_inside_a_box_near_a_point_and_in_a_district(server):
    # Libraries carry their grid coordinates and district name: enough to check each filter.
    box = rows(server, _bbox="114.1,22.2,114.2,22.3", _limit=1000, _format="geojson")
    assert box["features"]
    for f in box["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert 114.1 <= lon <= 114.2 and 22.2 <= lat <= 22.3
    ogc, _ = items(server, "libraries", bbox="114.1,22.2,114.2,22.3", limit=1000)
    assert len(box["features"]) == ogc["numberMatched"]
    near = rows(server, _near="114.1694,22.3193,1500", _limit=1000, _format="geojson")
    assert near["features"]
    everything = rows(server, _limit=1000, _format="geojson")
    within = [f for f in everything["features"]
              if haversine_m(114.1694, 22.3193, *f["geometry"]["coordinates"]) <= 1500]
    assert {f["properties"]["GMID"] for f in near["features"]} == {f["properties"]["GMID"] for f in within}
    # The government's District column against the district polygons (coarse at the coast).
    southern = rows(server, _district="Southern", _limit=1000)
    named = [r["District"] for r in southern["records"]]
    assert named and named.count("SOUTHERN") >= 0.9 * len(named)
    same = rows(server, _district="南區", _limit=1000)
    assert same["records"] == southern["records"]
    status, _, body = get(server, "/api/v1/datasets/libraries/resources/libraries/rows", _district="Atlantis")
    assert status == 400 and "Wan Chai" in body["error"]["message"]


def test_datastore_search_spatial_filters(server):
    import ckanapi

    ckan = ckanapi.RemoteCKAN(server.url)
    rid = ckan.action.package_show(id="libraries")["resources"][0]["id"]
    by_district = ckan.action.datastore_search(resource_id=rid, district="Wan Chai", limit=1000)
    native = rows(server, _district="Wan Chai", _limit=1000)
    assert by_district["total"] == native["total"] > 0
    near = ckan.action.datastore_search(resource_id=rid, near="114.1694,22.3193,1500", limit=1000)
    assert near["total"] == len(rows(server, _near="114.1694,22.3193,1500", _limit=1000)["records"])
    with pytest.raises(ckanapi.ValidationError):
        ckan.action.datastore_search(resource_id=rid, bbox="1,2,3")


def test_temporal_filters_on_a_datetime_property(server):
    every, _ = items(server, "libraries", limit=1000)
    stamps = [f["properties"]["Last Update"] for f in every["features"]]
    assert all(isinstance(s, str) for s in stamps)
    cut = sorted(stamps)[len(stamps) // 2]
    after, _ = items(server, "libraries", limit=1000,
                     filter=f"T_AFTER(\"Last Update\", TIMESTAMP('{cut.replace(' ', 'T')}Z'))")
    want = {f["id"] for f in every["features"] if f["properties"]["Last Update"] > cut}
    assert {f["id"] for f in after["features"]} == want and want
    # `datetime` applies to the collection's first date property, ends included.
    day = cut[:10]
    window, _ = items(server, "libraries", limit=1000, datetime=f"{day}T00:00:00Z/{day}T23:59:59Z")
    assert {f["id"] for f in window["features"]} == {
        f["id"] for f in every["features"] if f["properties"]["Last Update"][:10] == day
    }


def test_the_api_definition_resolves_offline(server):
    status, headers, doc = get(server, "/ogc/api")
    assert status == 200 and headers["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"
    refs = []

    def walk(v):
        if isinstance(v, dict):
            if "$ref" in v:
                refs.append(v["$ref"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part]
    # Each collection's properties are query parameters of its own items path.
    params = {p["name"] for p in doc["paths"]["/collections/libraries/items"]["get"]["parameters"] if "name" in p}
    assert {"District", "Facility Name", "地區"} <= params
