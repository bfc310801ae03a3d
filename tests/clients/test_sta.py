"""The SensorThings API as a real client sees it: FROST's Python client (`frost-sta-client`) creates
a Thing with its Location and Datastreams, posts observations, and reads them back with its query
builders (filter, expand, orderby, top, count). Its dataArray helper is broken, so the
`CreateObservations` bodies are posted as JSON directly, as the standard writes them.

The server refuses results that do not fit the Datastream's observation type (FROST-Server itself
does not), and keeps one reading per datastream and phenomenon time.
"""

import json
import urllib.error
import urllib.request
import uuid

import frost_sta_client as fsc
import pytest

MEASUREMENT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement"
COUNT = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation"


def post_json(url, body):
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def get_json(url):
    with urllib.request.urlopen(url) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def sta(server):
    return f"{server.url}/sta/v1.1"


@pytest.fixture(scope="module")
def service(sta):
    return fsc.SensorThingsService(sta)


@pytest.fixture(scope="module")
def lamppost(service):
    """A Thing with a Location and two Datastreams, made through the client's service API."""
    tag = uuid.uuid4().hex[:8]
    sensor = fsc.Sensor(name="PMS5003", description="laser particle counter", encoding_type="application/pdf", metadata="https://example.org/pms5003.pdf")
    pm = fsc.ObservedProperty(name="PM2.5", definition="https://example.org/pm25", description="fine particles")
    flow = fsc.ObservedProperty(name="traffic flow", definition="https://example.org/flow", description="vehicles")
    location = fsc.Location(
        name=f"kerb {tag}",
        description="Des Voeux Road Central",
        encoding_type="application/geo+json",
        location={"type": "Point", "coordinates": [114.1577, 22.2833]},
    )
    thing = fsc.Thing(name=f"lamppost {tag}", description="smart lamppost", properties={"district": "Central"})
    thing.locations = [location]
    thing.datastreams = [
        fsc.Datastream(
            name=f"PM2.5 {tag}",
            description="PM2.5 at the kerb",
            observation_type=MEASUREMENT,
            unit_of_measurement=fsc.UnitOfMeasurement(name="microgram per cubic metre", symbol="ug/m3", definition="ucum:ug/m3"),
            sensor=sensor,
            observed_property=pm,
        ),
        fsc.Datastream(
            name=f"flow {tag}",
            description="vehicles per 5 minutes",
            observation_type=COUNT,
            unit_of_measurement=fsc.UnitOfMeasurement(name="vehicles", symbol="veh", definition="count"),
            sensor=sensor,
            observed_property=flow,
        ),
    ]
    service.create(thing)
    assert isinstance(thing.id, int)
    datastreams = {ds.name.split()[0]: ds for ds in thing.get_datastreams().query().list()}
    return tag, thing, datastreams["PM2.5"], datastreams["flow"]


def test_deep_insert_made_everything(service, lamppost):
    tag, thing, pm, flow = lamppost
    found = service.things().query().filter(f"name eq 'lamppost {tag}'").expand("Locations,Datastreams($expand=Sensor,ObservedProperty)").list()
    assert len(found.entities) == 1
    t = found.entities[0]
    assert t.id == thing.id
    assert t.properties == {"district": "Central"}
    assert [loc.location["coordinates"] for loc in t.locations.entities] == [[114.1577, 22.2833]]
    names = sorted(ds.name for ds in t.datastreams.entities)
    assert names == [f"PM2.5 {tag}", f"flow {tag}"]
    assert {ds.observed_property.name for ds in t.datastreams.entities} == {"PM2.5", "traffic flow"}
    assert pm.observation_type == MEASUREMENT
    assert flow.unit_of_measurement.symbol == "veh"


def test_observations_posted_with_the_client_and_queried(service, lamppost):
    tag, thing, pm, _ = lamppost
    for minute, value in enumerate([12.5, 30.0, 47.25, 18.0]):
        obs = fsc.Observation(result=value, phenomenon_time=f"2024-05-01T08:0{minute}:00Z", datastream=pm)
        service.create(obs)
        assert isinstance(obs.id, int)
    got = pm.get_observations().query().filter("result gt 20").orderby("phenomenonTime", "asc").list()
    assert [o.result for o in got.entities] == [30.0, 47.25]
    counted = pm.get_observations().query().count().top(1).orderby("phenomenonTime", "desc").list()
    assert counted.count == 4
    assert [o.result for o in counted.entities] == [18.0]
    assert counted.next_link and "$skip=1" in counted.next_link
    by_thing = service.observations().query().filter(f"Datastream/Thing/name eq 'lamppost {tag}' and result ge 18").list()
    assert sorted(o.result for o in by_thing.entities) == [18.0, 30.0, 47.25]
    # The latest reading of each of the Thing's datastreams, in one request.
    latest = (
        service.datastreams()
        .query()
        .filter(f"Thing/@iot.id eq {thing.id}")
        .expand("Observations($top=1;$orderby=phenomenonTime desc)")
        .list()
    )
    by_name = {ds.name: [o.result for o in ds.observations.entities] if ds.observations else [] for ds in latest.entities}
    assert by_name[f"PM2.5 {tag}"] == [18.0]
    # The feature of interest was made from the Thing's Location.
    one = service.observations().query().filter(f"Datastream/@iot.id eq {pm.id}").expand("FeatureOfInterest").top(1).list()
    assert one.entities[0].feature_of_interest.feature["coordinates"] == [114.1577, 22.2833]


def test_a_duplicate_is_not_doubled(service, sta, lamppost):
    _, _, pm, _ = lamppost
    first = fsc.Observation(result=1.5, phenomenon_time="2024-05-02T00:00:00Z", datastream=pm)
    service.create(first)
    again = fsc.Observation(result=2.5, phenomenon_time="2024-05-02T00:00:00Z", datastream=pm)
    service.create(again)
    assert again.id == first.id
    same = pm.get_observations().query().filter("phenomenonTime eq 2024-05-02T00:00:00Z").count().list()
    assert same.count == 1
    assert same.entities[0].result == 1.5


def test_wrong_result_types_are_refused(service, sta, lamppost):
    _, _, pm, flow = lamppost
    for ds, result in [(pm, "high"), (flow, 2.5), (flow, True)]:
        status, body = post_json(f"{sta}/Observations", {"result": result, "Datastream": {"@iot.id": ds.id}})
        assert status == 400, body
        assert body["type"] == "error" and "not" in body["message"]
    with pytest.raises(Exception):
        service.create(fsc.Observation(result="high", phenomenon_time="2024-05-03T00:00:00Z", datastream=pm))
    assert pm.get_observations().query().filter("phenomenonTime ge 2024-05-03T00:00:00Z").count().list().count == 0


def test_create_observations_data_array(service, sta, lamppost):
    _, _, pm, flow = lamppost
    body = [
        {
            "Datastream": {"@iot.id": pm.id},
            "components": ["phenomenonTime", "result"],
            "dataArray@iot.count": 3,
            "dataArray": [["2024-06-01T00:00:00Z", 10.0], ["2024-06-01T00:01:00Z", 11.0], ["2024-06-01T00:02:00Z", 12.0]],
        },
        {"Datastream": {"@iot.id": flow.id}, "components": ["phenomenonTime", "result"], "dataArray": [["2024-06-01T00:00:00Z", 42]]},
    ]
    status, links = post_json(f"{sta}/CreateObservations", body)
    assert status == 201, links
    assert len(links) == 4 and all(link.startswith(f"{sta}/Observations(") for link in links)
    assert get_json(links[3])["result"] == 42
    june = pm.get_observations().query().filter("year(phenomenonTime) eq 2024 and month(phenomenonTime) eq 6").count().list()
    assert june.count == 3
    # A bad row refuses the whole body.
    status, err = post_json(
        f"{sta}/CreateObservations",
        [{"Datastream": {"@iot.id": flow.id}, "components": ["phenomenonTime", "result"], "dataArray": [["2024-06-02T00:00:00Z", 1], ["2024-06-02T00:01:00Z", "x"]]}],
    )
    assert status == 400 and "not an integer" in err["message"]
    assert flow.get_observations().query().filter("day(phenomenonTime) eq 2").count().list().count == 0


def test_spatial_filter_and_errors(service, sta, lamppost):
    tag, thing, _, _ = lamppost
    central = "geography'POLYGON((114.15 22.27, 114.17 22.27, 114.17 22.29, 114.15 22.29, 114.15 22.27))'"
    inside = service.things().query().filter(f"st_within(Locations/location, {central}) and name eq 'lamppost {tag}'").list()
    assert [t.id for t in inside.entities] == [thing.id]
    far = "geography'POINT(113.9 22.3)'"
    assert service.locations().query().filter(f"geo.intersects(location, {far}) and name eq 'kerb {tag}'").list().entities == []
    with urllib.request.urlopen(f"{sta}") as resp:
        root = json.load(resp)
    assert {e["name"] for e in root["value"]} >= {"Things", "Datastreams", "Observations", "FeaturesOfInterest"}
    try:
        urllib.request.urlopen(f"{sta}/Things?$filter=name%20eq")
        raise AssertionError("a bad filter must be refused")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert "ends too early" in json.load(e)["message"]
