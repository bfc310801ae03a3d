//! `citydata publish`: formats, encodings, metadata, versions, and bad input that changes nothing.

use std::path::Path;

use crate::common::{fails, ok, sha256_hex, Server};

const CSV: &str = "\u{feff}地區 District,設施數目 Facilities,面積 Area,開放 Open,日期 Date,備註 Note\n\
Wan Chai,12,\"1,234.5\",true,31/12/2023,\"a, \"\"quoted\"\" note\"\n\
Sha Tin,7,-,false,01/06/2024,N/A\n\
Islands,3,88,yes,15/01/2024,\"two\nlines\"\n\n\n";

const META: &str = r#"{"title":{"en":"District facilities","zh-Hant":"地區設施","zh-Hans":"地区设施"},
  "description":"Facilities by district","organization":"Home Affairs Department","tags":["district","facilities"],
  "license":"DATA.GOV.HK Terms and Conditions","frequency":"monthly","theme":"community"}"#;

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    std::fs::write(dir.join(name), bytes).unwrap();
    name.to_owned()
}

#[test]
fn publish_then_read_back_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "facilities.csv", CSV);
    write(d, "meta.json", META);
    let out = ok(
        d,
        &[
            "publish",
            "facilities.csv",
            "--dataset",
            "district-facilities",
            "--meta",
            "meta.json",
            "--db",
            "t.db",
        ],
    );
    assert!(out.contains("version 1: 3 rows, 6 columns (csv, utf-8-sig)"), "{out}");

    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let ds = server.json("/api/v1/datasets/district-facilities");
    assert_eq!(ds["title"]["zh-Hant"], "地區設施");
    assert_eq!(ds["organization"]["slug"], "home-affairs-department");
    assert_eq!(ds["organization"]["title"]["en"], "Home Affairs Department");
    assert_eq!(ds["tags"], serde_json::json!(["district", "facilities"]));
    let res = &ds["resources"][0];
    assert_eq!(res["name"], "facilities");
    assert_eq!(res["row_count"], 3);
    let types: Vec<String> = res["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            "地區 District:string",
            "設施數目 Facilities:integer",
            "面積 Area:number",
            "開放 Open:boolean",
            "日期 Date:date",
            "備註 Note:string"
        ]
    );
    assert_eq!(res["schema"]["fields"][2]["groupChar"], ",");
    assert_eq!(res["schema"]["fields"][4]["format"], "%d/%m/%Y");
    let v1 = &res["versions"][0];
    assert_eq!(v1["sha256"], sha256_hex(CSV.as_bytes()));
    assert_eq!(v1["bytes"], CSV.len());
    assert_eq!(v1["encoding"], "utf-8-sig");

    let rows = server.json("/api/v1/datasets/district-facilities/resources/facilities/rows");
    let r0 = &rows["records"][0];
    assert_eq!(r0["面積 Area"], 1234.5);
    assert_eq!(r0["開放 Open"], true);
    assert_eq!(r0["日期 Date"], "2023-12-31");
    assert_eq!(r0["備註 Note"], "a, \"quoted\" note");
    assert_eq!(rows["records"][1]["面積 Area"], serde_json::Value::Null);
    assert_eq!(rows["records"][2]["備註 Note"], "two\nlines");

    let (status, bytes) = server.get(v1["download_url"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(bytes, CSV.as_bytes(), "the original bytes, exactly");
    drop(server);

    // Identical bytes: no new version. Changed bytes: version 2, version 1 still downloadable.
    let out = ok(d, &["publish", "facilities.csv", "--dataset", "district-facilities", "--db", "t.db"]);
    assert!(out.contains("unchanged"), "{out}");
    let v2 = CSV.replace("Islands,3", "Islands,4");
    write(d, "facilities.csv", &v2);
    let out = ok(d, &["publish", "facilities.csv", "--dataset", "district-facilities", "--db", "t.db"]);
    assert!(out.contains("version 2"), "{out}");
    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let ds = server.json("/api/v1/datasets/district-facilities");
    assert_eq!(ds["title"]["en"], "District facilities", "metadata kept when --meta is not given");
    let versions = ds["resources"][0]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    let (_, old) = server.get(versions[0]["download_url"].as_str().unwrap());
    assert_eq!(old, CSV.as_bytes());
    let (_, new) = server.get(&format!("/api/v1/blobs/{}", versions[1]["sha256"].as_str().unwrap()));
    assert_eq!(new, v2.as_bytes());
    let rows = server.json("/api/v1/datasets/district-facilities/resources/facilities/rows");
    assert_eq!(rows["records"][2]["設施數目 Facilities"], 4);
}

#[test]
fn every_format_and_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // "地區,人口 / 油尖旺 / 深水埗" in Big5-HKSCS; 埗 (0x96F5) is an HKSCS character outside plain Big5.
    let big5 = b"\xa6a\xb0\xcf,\xa4H\xa4f\n\xaao\xa6y\xa9\xf4,318522\n\xb2`\xa4\xf4\x96\xf5,431090\n";
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain("名稱\t數目\n公園\t1,234\n".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> =
        [0xFE, 0xFF].into_iter().chain("a;b\n1;x\n".encode_utf16().flat_map(u16::to_be_bytes)).collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("big5.csv", big5.to_vec(), "2 rows, 2 columns (csv, big5-hkscs)"),
        ("utf16.tsv", utf16, "1 rows, 2 columns (tsv, utf-16le)"),
        ("utf16be.csv", utf16be, "1 rows, 2 columns (csv, utf-16be)"),
        ("a.json", br#"{"data":[{"id":1,"name":"A"},{"id":2,"name":"B","extra":true}]}"#.to_vec(), "2 rows, 3 columns (json, utf-8)"),
        ("times.ndjson", b"{\"t\":\"2024-01-01T10:00:00+08:00\"}\n{\"t\":\"2024-01-02T11:00:00+08:00\"}\n".to_vec(), "2 rows, 1 columns (ndjson"),
        ("libraries.xlsx", include_bytes!("fixtures/libraries.xlsx").to_vec(), "2 rows, 4 columns (xlsx"),
        (
            "facilities.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><facilities>\n<facility id=\"1\"><name_en>Wan Chai Library</name_en><name_tc>灣仔圖書館</name_tc><lat>22.279</lat></facility>\n<facility id=\"2\"><name_en>Sha Tin Library</name_en><name_tc>沙田圖書館</name_tc><lat>22.382</lat></facility>\n</facilities>\n".as_bytes().to_vec(),
            "2 rows, 4 columns (xml, utf-8)",
        ),
        ("pts.geojson", br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"Lamppost 1"},"geometry":{"type":"Point","coordinates":[114.17,22.3]}}]}"#.to_vec(), "1 rows, 2 columns (geojson"),
    ];
    for (name, bytes, want) in &cases {
        write(d, name, bytes);
        let out = ok(d, &["publish", name, "--dataset", "formats", "--db", "t.db"]);
        assert!(out.contains(want), "{name}: {out}");
    }
    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let ds = server.json("/api/v1/datasets/formats");
    let find =
        |name: &str| ds["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(find("big5")["schema"]["fields"][0]["name"], "地區");
    assert_eq!(find("big5")["schema"]["fields"][1]["type"], "integer");
    assert_eq!(find("pts")["schema"]["fields"][1]["type"], "geojson");
    assert_eq!(find("a")["schema"]["fields"][2]["type"], "boolean");
    assert_eq!(find("utf16")["schema"]["fields"][1]["type"], "integer");
    let xlsx: Vec<String> = find("libraries")["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{}:{}", f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(xlsx, ["名稱 Name:string", "Books:number", "Opened:date", "Open:boolean"]);
    let xml_fields = find("facilities")["schema"]["fields"].clone();
    let xml: Vec<&str> = xml_fields.as_array().unwrap().iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(xml, ["integer", "string", "string", "number"]);
    let rows = server.json("/api/v1/datasets/formats/resources/libraries/rows");
    assert_eq!(rows["records"][0]["名稱 Name"], "灣仔公共圖書館");
    assert_eq!(rows["records"][0]["Opened"], "2024-01-01");
    let rows = server.json("/api/v1/datasets/formats/resources/facilities/rows");
    assert_eq!(rows["records"][1]["name_tc"], "沙田圖書館");
    let rows = server.json("/api/v1/datasets/formats/resources/big5/rows");
    assert_eq!(rows["records"][1]["地區"], "深水埗");
    let rows = server.json("/api/v1/datasets/formats/resources/pts/rows");
    assert_eq!(
        rows["records"][0]["geometry"],
        serde_json::json!({"type": "Point", "coordinates": [114.17, 22.3]})
    );
}

#[test]
fn schema_override_and_datapackage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "codes.csv", "code,name\n1,a\n2,b\n");
    write(d, "meta.json", r#"{"title":"Codes","schema":{"fields":[{"name":"code","type":"string"}]}}"#);
    ok(d, &["publish", "codes.csv", "--dataset", "codes", "--meta", "meta.json", "--db", "t.db"]);
    write(d, "bad-meta.json", r#"{"schema":{"fields":[{"name":"nope","type":"string"}]}}"#);
    let err =
        fails(d, &["publish", "codes.csv", "--dataset", "codes2", "--meta", "bad-meta.json", "--db", "t.db"]);
    assert!(err.contains("columns the file does not have: nope"), "{err}");
    write(d, "typed.json", r#"{"schema":{"fields":[{"name":"name","type":"integer"}]}}"#);
    let err =
        fails(d, &["publish", "codes.csv", "--dataset", "codes3", "--meta", "typed.json", "--db", "t.db"]);
    assert!(
        err.contains("codes.csv: line 2 (record 1): column \"name\": expected an integer, found \"a\""),
        "{err}"
    );

    std::fs::create_dir(d.join("pkg")).unwrap();
    write(d, "pkg/districts.csv", "name,population\nWan Chai,166695\n");
    write(d, "pkg/halls.json", r#"[{"hall":"A","district":"Wan Chai"}]"#);
    write(
        d,
        "pkg/datapackage.json",
        r#"{"name":"hk","title":{"en":"Districts","zh-Hant":"地區"},"keywords":["district"],
            "licenses":[{"name":"ODC-BY-1.0"}],
            "resources":[{"name":"districts","path":"districts.csv","schema":{"fields":[{"name":"population","type":"number"}]}},
                         {"name":"halls","path":"halls.json","title":"Community halls"}]}"#,
    );
    let out = ok(d, &["publish", "pkg/datapackage.json", "--dataset", "hk", "--db", "t.db"]);
    assert!(out.contains("hk/districts: version 1") && out.contains("hk/halls: version 1"), "{out}");
    write(d, "pkg/evil.json", r#"{"resources":[{"path":"../codes.csv"}]}"#);
    let err = fails(
        d,
        &["publish", "pkg/evil.json", "--format", "datapackage", "--dataset", "evil", "--db", "t.db"],
    );
    assert!(err.contains("must be relative and inside the package's folder"), "{err}");

    let server = Server::start(d, &["--db", "t.db", "--no-demo"]);
    let codes = server.json("/api/v1/datasets/codes");
    assert_eq!(codes["resources"][0]["schema"]["fields"][0]["type"], "string");
    let hk = server.json("/api/v1/datasets/hk");
    assert_eq!(hk["title"]["zh-Hant"], "地區");
    assert_eq!(hk["license"], "ODC-BY-1.0");
    assert_eq!(hk["resources"][0]["schema"]["fields"][1]["type"], "number");
    assert_eq!(hk["resources"][1]["title"]["en"], "Community halls");
    let (status, _) = server.get("/api/v1/datasets/evil");
    assert_eq!(status, 404, "a failed publish leaves no dataset behind");
}

/// Each bad file fails with a message naming the file, the place and the reason, and leaves the
/// dataset exactly as it was.
#[test]
fn bad_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "good.csv", "a,b\n1,2\n");
    ok(d, &["publish", "good.csv", "--dataset", "ds", "--resource", "data", "--db", "t.db"]);
    let before = Server::start(d, &["--db", "t.db", "--no-demo"]).json("/api/v1/datasets/ds");

    let bomb = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">{}]><r><x>&lol9;</x></r>",
        (1..10)
            .map(|i| format!("<!ENTITY lol{i} \"{}\">", format!("&lol{};", i - 1).repeat(10)))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", b"".to_vec(), "empty.csv: the file is empty"),
        ("blank.csv", b"\n\n  \n".to_vec(), "the file is empty"),
        ("binary.csv", vec![0x00, 0x01, 0x02, 0xff, 0x10, 0x00], "binary file"),
        ("image.csv", b"\x89PNG\r\n\x1a\n".to_vec(), "a PNG image"),
        ("bad.json", b"[{\"a\":1},\n{\"a\":2,,}]".to_vec(), "bad.json: line 2: malformed JSON"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n".to_vec(), "ragged.csv: line 3 (record 2): expected 2 fields as in the header, found 3"),
        ("latin1.csv", b"a,b\n1,caf\xe9\xff\xfe\n".to_vec(), "latin1.csv: unknown text encoding: invalid UTF-8 on line 2"),
        ("trunc16.csv", b"\xff\xfea\x00,\x00b\x00\n\x00\x31".to_vec(), "invalid UTF-16LE byte sequence"),
        ("bomb.xml", bomb.into_bytes(), "entity declarations are not allowed"),
        (
            "xxe.xml",
            b"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><r><x>&xxe;</x><x>b</x></r>".to_vec(),
            "entity declarations are not allowed",
        ),
        ("notzip.xlsx", b"a,b\n1,2\n".to_vec(), "not an XLSX workbook"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".to_vec(), "XLS (Excel 97-2003)"),
    ];
    for (name, bytes, want) in &cases {
        write(d, name, bytes);
        let err = fails(d, &["publish", name, "--dataset", "ds", "--resource", "data", "--db", "t.db"]);
        assert!(err.contains(want), "{name}: {err}");
        assert!(err.contains(name), "{name}: the error names the file: {err}");
    }
    let after = Server::start(d, &["--db", "t.db", "--no-demo"]).json("/api/v1/datasets/ds");
    assert_eq!(before, after, "nothing changed");
    assert!(ok(d, &["check", "--db", "t.db"]).contains("ok"));

    // With --skip-bad-rows the ragged rows are reported, line by line, and the rest is published.
    write(d, "ragged2.csv", "a,b\n1,2\n3,4,5\n6\n7,8\n");
    let out = crate::common::run(
        d,
        &[
            "publish",
            "ragged2.csv",
            "--dataset",
            "ds",
            "--resource",
            "data",
            "--skip-bad-rows",
            "--db",
            "t.db",
        ],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped line 3 (record 2): expected 2 fields as in the header, found 3"), "{err}");
    assert!(err.contains("skipped line 4"), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("version 2: 2 rows, 2 columns (csv, utf-8), 20 bytes")
    );
}
