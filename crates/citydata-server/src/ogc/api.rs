//! The OpenAPI 3.0 document of `/ogc` (the landing page's `service-desc`), made per request from the
//! collections there are, so that every collection's properties are listed as queryables and as query
//! parameters of its items path. Self-contained: every `$ref` points inside the document, so clients
//! and validators resolve it offline.

use serde_json::{json, Map, Value as Json};

use super::{field_schema, Collection, CRS_LIST};

/// The document, with `base` as the server.
pub(crate) fn document(base: &str, collections: &[Collection]) -> Json {
    let mut paths = Map::new();
    let ok = |desc: &str, schema: &str, media: &str| {
        json!({
            "description": desc,
            "content": {
                media: { "schema": { "$ref": format!("#/components/schemas/{schema}") } },
                "text/html": { "schema": { "type": "string" } }
            }
        })
    };
    let errors = json!({
        "400": { "$ref": "#/components/responses/InvalidParameter" },
        "500": { "$ref": "#/components/responses/ServerError" }
    });
    let with_errors = |mut responses: Json, not_found: bool| {
        if let (Some(r), Some(e)) = (responses.as_object_mut(), errors.as_object()) {
            r.extend(e.clone());
            if not_found {
                r.insert("404".into(), json!({ "$ref": "#/components/responses/NotFound" }));
            }
        }
        responses
    };
    paths.insert("/".into(), json!({ "get": {
        "tags": ["Capabilities"], "summary": "The landing page", "operationId": "getLandingPage",
        "parameters": [{ "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": ok("The landing page", "landingPage", "application/json") }), false)
    }}));
    paths.insert("/conformance".into(), json!({ "get": {
        "tags": ["Capabilities"], "summary": "The conformance classes implemented", "operationId": "getConformance",
        "parameters": [{ "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": ok("The conformance classes", "confClasses", "application/json") }), false)
    }}));
    paths.insert("/api".into(), json!({ "get": {
        "tags": ["Capabilities"], "summary": "This API definition", "operationId": "getApi",
        "parameters": [{ "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": {
            "description": "The OpenAPI 3.0 document",
            "content": { "application/vnd.oai.openapi+json;version=3.0": { "schema": { "type": "object" } },
                         "text/html": { "schema": { "type": "string" } } }
        }}), false)
    }}));
    paths.insert("/collections".into(), json!({ "get": {
        "tags": ["Capabilities"], "summary": "The feature collections", "operationId": "getCollections",
        "parameters": [{ "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": ok("The collections", "collections", "application/json") }), false)
    }}));
    paths.insert("/collections/{collectionId}".into(), json!({ "get": {
        "tags": ["Capabilities"], "summary": "One feature collection", "operationId": "describeCollection",
        "parameters": [{ "$ref": "#/components/parameters/collectionId" }, { "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": ok("The collection", "collection", "application/json") }), true)
    }}));
    paths.insert("/collections/{collectionId}/queryables".into(), json!({ "get": {
        "tags": ["Capabilities"], "summary": "The queryable properties of a collection", "operationId": "getQueryables",
        "parameters": [{ "$ref": "#/components/parameters/collectionId" }, { "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": {
            "description": "The queryables as a JSON Schema",
            "content": { "application/schema+json": { "schema": { "type": "object" } },
                         "text/html": { "schema": { "type": "string" } } }
        }}), true)
    }}));
    let item_params = [
        "collectionId",
        "limit",
        "offset",
        "bbox",
        "bbox-crs",
        "datetime",
        "crs",
        "filter",
        "filter-lang",
        "filter-crs",
        "f",
    ];
    paths.insert("/collections/{collectionId}/items".into(), json!({ "get": {
        "tags": ["Data"], "summary": "The features of a collection", "operationId": "getFeatures",
        "description": "Every property of the collection (see its queryables) may also be given as a query parameter: features whose property equals the value.",
        "parameters": item_params.iter().map(|p| json!({ "$ref": format!("#/components/parameters/{p}") })).collect::<Vec<_>>(),
        "responses": with_errors(json!({ "200": features_response() }), true)
    }}));
    paths.insert("/collections/{collectionId}/items/{featureId}".into(), json!({ "get": {
        "tags": ["Data"], "summary": "One feature", "operationId": "getFeature",
        "parameters": [{ "$ref": "#/components/parameters/collectionId" }, { "$ref": "#/components/parameters/featureId" },
                       { "$ref": "#/components/parameters/crs" }, { "$ref": "#/components/parameters/f" }],
        "responses": with_errors(json!({ "200": {
            "description": "The feature",
            "headers": { "Content-Crs": { "$ref": "#/components/headers/Content-Crs" } },
            "content": { "application/geo+json": { "schema": { "$ref": "#/components/schemas/featureGeoJSON" } },
                         "text/html": { "schema": { "type": "string" } } }
        }}), true)
    }}));
    // Each collection's own items path: its properties as query parameters.
    for c in collections {
        let mut params: Vec<Json> = item_params
            .iter()
            .filter(|p| **p != "collectionId")
            .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
            .collect();
        for f in c.properties() {
            params.push(json!({
                "name": f.name, "in": "query", "required": false, "style": "form", "explode": false,
                "description": format!("Features whose {} equals the value", f.name),
                "schema": field_schema(f.field_type),
            }));
        }
        paths.insert(
            format!("/collections/{}/items", c.id),
            json!({ "get": {
                "tags": ["Data"], "summary": format!("The features of {}", c.title()),
                "operationId": format!("getFeatures-{}", c.id),
                "parameters": params,
                "responses": with_errors(json!({ "200": features_response() }), false)
            }}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "citydata OGC API - Features",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The city's spatial datasets as OGC API - Features (Part 1 Core, Part 2 CRS, Part 3 Filtering with CQL2).",
            "license": { "name": "Apache-2.0" }
        },
        "servers": [{ "url": format!("{base}/ogc") }],
        "tags": [{ "name": "Capabilities" }, { "name": "Data" }],
        "paths": paths,
        "components": components(),
    })
}

fn features_response() -> Json {
    json!({
        "description": "A page of features",
        "headers": { "Content-Crs": { "$ref": "#/components/headers/Content-Crs" } },
        "content": { "application/geo+json": { "schema": { "$ref": "#/components/schemas/featureCollectionGeoJSON" } },
                     "text/html": { "schema": { "type": "string" } } }
    })
}

fn components() -> Json {
    let number_array = json!({ "type": "array", "items": { "type": "number" } });
    let positions = |depth: usize| {
        let mut s = json!({ "type": "array", "minItems": 2, "items": { "type": "number" } });
        for _ in 0..depth {
            s = json!({ "type": "array", "items": s });
        }
        s
    };
    let geometry = |name: &str, coords: Json| {
        json!({
            "type": "object", "required": ["type", "coordinates"],
            "properties": { "type": { "type": "string", "enum": [name] }, "coordinates": coords }
        })
    };
    json!({
        "headers": {
            "Content-Crs": { "description": "The CRS of the coordinates, as a URI in angle brackets", "schema": { "type": "string" } }
        },
        "responses": {
            "InvalidParameter": { "description": "A query parameter is unknown or has an invalid value", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/exception" } } } },
            "NotFound": { "description": "No such collection or feature", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/exception" } } } },
            "ServerError": { "description": "A server error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/exception" } } } }
        },
        "parameters": {
            "f": { "name": "f", "in": "query", "required": false, "description": "The format: json or html", "schema": { "type": "string", "enum": ["json", "html"] } },
            "collectionId": { "name": "collectionId", "in": "path", "required": true, "description": "The collection's id", "schema": { "type": "string" } },
            "featureId": { "name": "featureId", "in": "path", "required": true, "description": "The feature's id", "schema": { "type": "string" } },
            "limit": { "name": "limit", "in": "query", "required": false, "style": "form", "explode": false, "description": "The most features in the page", "schema": { "type": "integer", "minimum": 1, "maximum": 10000, "default": 10 } },
            "offset": { "name": "offset", "in": "query", "required": false, "style": "form", "explode": false, "description": "Features to skip (the next links carry it)", "schema": { "type": "integer", "minimum": 0, "default": 0 } },
            "bbox": { "name": "bbox", "in": "query", "required": false, "style": "form", "explode": false, "description": "Only features that intersect the box: min x, min y, max x, max y (in bbox-crs, CRS84 by default)", "schema": { "type": "array", "minItems": 4, "maxItems": 6, "items": { "type": "number" } } },
            "bbox-crs": { "name": "bbox-crs", "in": "query", "required": false, "style": "form", "explode": false, "description": "The CRS of bbox", "schema": { "type": "string", "format": "uri", "enum": CRS_LIST } },
            "crs": { "name": "crs", "in": "query", "required": false, "style": "form", "explode": false, "description": "The CRS of the answer's coordinates", "schema": { "type": "string", "format": "uri", "enum": CRS_LIST } },
            "datetime": { "name": "datetime", "in": "query", "required": false, "style": "form", "explode": false, "description": "An instant or an interval (RFC 3339, `..` for open ends), matched against the collection's first date property", "schema": { "type": "string" } },
            "filter": { "name": "filter", "in": "query", "required": false, "style": "form", "explode": false, "description": "A CQL2 filter (text or JSON, see filter-lang)", "schema": { "type": "string" } },
            "filter-lang": { "name": "filter-lang", "in": "query", "required": false, "style": "form", "explode": false, "description": "The language of filter", "schema": { "type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text" } },
            "filter-crs": { "name": "filter-crs", "in": "query", "required": false, "style": "form", "explode": false, "description": "The CRS of the filter's geometries", "schema": { "type": "string", "format": "uri", "enum": CRS_LIST } }
        },
        "schemas": {
            "exception": { "type": "object", "required": ["code"], "properties": { "code": { "type": "string" }, "description": { "type": "string" } } },
            "link": { "type": "object", "required": ["href"], "properties": {
                "href": { "type": "string" }, "rel": { "type": "string" }, "type": { "type": "string" },
                "hreflang": { "type": "string" }, "title": { "type": "string" }, "length": { "type": "integer" } } },
            "landingPage": { "type": "object", "required": ["links"], "properties": {
                "title": { "type": "string" }, "description": { "type": "string" },
                "links": { "type": "array", "items": { "$ref": "#/components/schemas/link" } } } },
            "confClasses": { "type": "object", "required": ["conformsTo"], "properties": {
                "conformsTo": { "type": "array", "items": { "type": "string" } } } },
            "extent": { "type": "object", "properties": {
                "spatial": { "type": "object", "properties": {
                    "bbox": { "type": "array", "minItems": 1, "items": { "type": "array", "minItems": 4, "maxItems": 6, "items": { "type": "number" } } },
                    "crs": { "type": "string" } } },
                "temporal": { "type": "object", "properties": {
                    "interval": { "type": "array", "items": { "type": "array", "minItems": 2, "maxItems": 2, "items": { "type": "string", "nullable": true } } },
                    "trs": { "type": "string" } } } } },
            "collection": { "type": "object", "required": ["id", "links"], "properties": {
                "id": { "type": "string" }, "title": { "type": "string" }, "description": { "type": "string" },
                "keywords": { "type": "array", "items": { "type": "string" } },
                "links": { "type": "array", "items": { "$ref": "#/components/schemas/link" } },
                "extent": { "$ref": "#/components/schemas/extent" },
                "itemType": { "type": "string" },
                "crs": { "type": "array", "items": { "type": "string" } },
                "storageCrs": { "type": "string" } } },
            "collections": { "type": "object", "required": ["links", "collections"], "properties": {
                "links": { "type": "array", "items": { "$ref": "#/components/schemas/link" } },
                "crs": { "type": "array", "items": { "type": "string" } },
                "collections": { "type": "array", "items": { "$ref": "#/components/schemas/collection" } } } },
            "pointGeoJSON": geometry("Point", number_array),
            "multipointGeoJSON": geometry("MultiPoint", positions(1)),
            "linestringGeoJSON": geometry("LineString", positions(1)),
            "multilinestringGeoJSON": geometry("MultiLineString", positions(2)),
            "polygonGeoJSON": geometry("Polygon", positions(2)),
            "multipolygonGeoJSON": geometry("MultiPolygon", positions(3)),
            "geometrycollectionGeoJSON": { "type": "object", "required": ["type", "geometries"], "properties": {
                "type": { "type": "string", "enum": ["GeometryCollection"] },
                "geometries": { "type": "array", "items": { "$ref": "#/components/schemas/geometryGeoJSON" } } } },
            "geometryGeoJSON": { "oneOf": [
                { "$ref": "#/components/schemas/pointGeoJSON" }, { "$ref": "#/components/schemas/multipointGeoJSON" },
                { "$ref": "#/components/schemas/linestringGeoJSON" }, { "$ref": "#/components/schemas/multilinestringGeoJSON" },
                { "$ref": "#/components/schemas/polygonGeoJSON" }, { "$ref": "#/components/schemas/multipolygonGeoJSON" },
                { "$ref": "#/components/schemas/geometrycollectionGeoJSON" } ] },
            "featureGeoJSON": { "type": "object", "required": ["type", "geometry", "properties"], "properties": {
                "type": { "type": "string", "enum": ["Feature"] },
                "geometry": { "nullable": true, "allOf": [{ "$ref": "#/components/schemas/geometryGeoJSON" }] },
                "properties": { "type": "object", "nullable": true },
                "id": { "oneOf": [{ "type": "string" }, { "type": "integer" }] },
                "links": { "type": "array", "items": { "$ref": "#/components/schemas/link" } } } },
            "featureCollectionGeoJSON": { "type": "object", "required": ["type", "features"], "properties": {
                "type": { "type": "string", "enum": ["FeatureCollection"] },
                "features": { "type": "array", "items": { "$ref": "#/components/schemas/featureGeoJSON" } },
                "links": { "type": "array", "items": { "$ref": "#/components/schemas/link" } },
                "timeStamp": { "type": "string", "format": "date-time" },
                "numberMatched": { "type": "integer", "minimum": 0 },
                "numberReturned": { "type": "integer", "minimum": 0 } } }
        }
    })
}
