//! The HTTP server: one module per API surface, registered in one list in [`app`].
//!
//! Handlers are thin: parse the request, call the store (on the blocking pool, since the store is
//! synchronous), write the answer in the format asked. Errors become HTTP answers in one place,
//! [`ApiError`].
//!
//! **Architecture Invariant:** the server knows the store's interface only, never the database
//! behind it; the JSON shapes of each API live in its own module, not in the store or the model.

mod archive;
mod ckan;
mod cql2;
pub mod dashboards;
mod dcat;
mod error;
mod extract;
pub mod live;
mod native;
mod ogc;
mod spatial;
mod sql;
mod sta;
mod stream;
mod tiles;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use citydata_store::Store;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<Store>,
    /// The ingest path of observations (group commit; also the feed of committed events).
    pub ingest: Arc<dyn citydata_sensors::Ingest>,
}

/// The OpenAPI 3.1 document of every route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The whole HTTP surface, as a router that tests can call without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::home))
        .route("/datasets", get(web::datasets))
        .route("/datasets/{slug}", get(web::dataset))
        .route("/map", get(web::map))
        .route("/dashboards/{id}", get(web::dashboard))
        .route("/assets/{*file}", get(web::file).layer(tower_http::compression::CompressionLayer::new()))
        .route("/favicon.svg", get(web::file))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/status", get(native::status))
        .route("/api/v1/datasets", get(native::datasets))
        .route("/api/v1/datasets/{slug}", get(native::dataset))
        .route("/api/v1/datasets/{slug}/resources/{resource}/rows", get(native::rows))
        .route(
            "/api/v1/datasets/{slug}/resources/{resource}/versions/{number}/download",
            get(native::download),
        )
        .route("/api/v1/datasets/{slug}/resources/{resource}/download", get(native::download_at))
        .route("/api/v1/blobs/{sha256}", get(native::blob))
        .route("/api/v1/sql", get(sql::sql).post(sql::sql))
        .route("/api/v1/dashboards", get(dashboards::list))
        .route("/api/v1/dashboards/{id}", get(dashboards::one))
        .route("/v1/historical-archive/list-files", get(archive::list_files))
        .route("/v1/historical-archive/list-file-versions", get(archive::list_file_versions))
        .route("/v1/historical-archive/get-file", get(archive::get_file))
        .route("/api/3/action/{name}", get(ckan::action).post(ckan::action))
        .route("/api/action/{name}", get(ckan::action).post(ckan::action))
        .route("/datastore/dump/{resource_id}", get(ckan::dump))
        .route("/catalog", get(dcat::catalog))
        .route("/catalog.jsonld", get(dcat::catalog_jsonld))
        .route("/catalog.ttl", get(dcat::catalog_ttl))
        .route("/catalog.rdf", get(dcat::catalog_rdf))
        .route("/dataset/{slug}", get(dcat::dataset))
        .route("/dataset/{slug}/datapackage.json", get(dcat::datapackage))
        .route("/ogc", get(ogc::landing))
        .route("/ogc/", get(ogc::landing))
        .route("/ogc/conformance", get(ogc::conformance))
        .route("/ogc/api", get(ogc::api_definition))
        .route("/ogc/collections", get(ogc::collections))
        .route("/ogc/collections/{collectionId}", get(ogc::collection))
        .route("/ogc/collections/{collectionId}/queryables", get(ogc::queryables))
        .route("/ogc/collections/{collectionId}/items", get(ogc::items))
        .route("/ogc/collections/{collectionId}/items/{featureId}", get(ogc::item))
        .route("/tiles/{tileset}", get(tiles::tilejson))
        .route("/tiles/{collection}/{z}/{x}/{y}", get(tiles::tile))
        .route("/sta/v1.1", get(sta::root))
        .route("/sta/v1.1/{entity}", sta_methods())
        .route("/sta/v1.1/{entity}/{*path}", sta_methods())
        // Live: SSE stream, government feeds, counters (live.rs).
        .route("/api/v1/live", get(live::live))
        .route("/api/v1/live/stats", get(live::stats))
        .route(
            "/api/v1/feeds/{kind}",
            axum::routing::post(live::feed)
                .layer(axum::extract::DefaultBodyLimit::max(citydata_sensors::feeds::MAX_FEED_BYTES)),
        )
        .layer(axum::Extension(live::Live::start(&state)))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(CorsLayer::permissive())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .with_state(state)
}

/// The methods of the SensorThings resources, one handler for all; bodies up to 64 MiB (a
/// `CreateObservations` batch).
fn sta_methods() -> axum::routing::MethodRouter<AppState> {
    get(sta::resource)
        .post(sta::resource)
        .patch(sta::resource)
        .put(sta::resource)
        .delete(sta::resource)
        .layer(axum::extract::DefaultBodyLimit::max(citydata_sensors::data_array::MAX_BODY))
}

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
///
/// Every connection gets `TCP_NODELAY`: a streamed answer ends with a small write (the last chunk)
/// that Nagle's algorithm would otherwise hold until the client's delayed ACK, about 40 ms later,
/// on every request of a kept-alive connection.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let ingest = citydata_sensors::GroupCommit::start(&store).unwrap();
        (dir, AppState { store: Arc::new(store), ingest: Arc::new(ingest) })
    }

    async fn get(app: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let resp = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Every route registered in `app` is in the OpenAPI document, and every documented path is
    /// routed (answers something other than the fallback's 404 for unknown paths).
    #[tokio::test]
    async fn openapi_documents_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let documented: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        let source = include_str!("lib.rs").split("#[cfg(test)]").next().unwrap();
        let routed: Vec<&str> = source
            .split(".route(")
            .skip(1)
            .filter_map(|s| s.trim_start().strip_prefix('"')?.split('"').next())
            .collect();
        assert!(routed.len() >= 8);
        let mut a = routed.clone();
        let mut b = documented.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "routes and the OpenAPI document differ");
        let (_dir, st) = state();
        let app = app(st);
        for path in documented {
            let concrete =
                path.replace("{sha256}", &"0".repeat(64)).replace("{number}", "1").replace(['{', '}'], "");
            let (status, body) = get(&app, &concrete).await;
            let fallback = body["error"]["message"].as_str().is_some_and(|m| m.starts_with("no such path"));
            assert!(!fallback, "{path} is documented but not routed ({status})");
        }
    }

    /// A feed over the body limit is a JSON 413 that names the limit, not axum's plain text.
    #[tokio::test]
    async fn an_oversized_feed_is_a_json_413() {
        let (_dir, st) = state();
        let app = app(st);
        let body = vec![b' '; citydata_sensors::feeds::MAX_FEED_BYTES + 1];
        let resp =
            app.oneshot(Request::post("/api/v1/feeds/aqhi").body(Body::from(body)).unwrap()).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["status"], 413);
        assert!(v["error"]["message"].as_str().unwrap().contains("limit of 32 MiB"), "{v}");
    }

    /// What axum's own extractors and router answer in plain text or with an empty body comes out
    /// as the JSON error shape, saying what was wrong.
    #[tokio::test]
    async fn rejections_are_json_with_a_message() {
        let (_dir, st) = state();
        let app = app(st);
        let cases = [
            ("GET", "/api/v1/datasets/%FF", StatusCode::BAD_REQUEST, "Invalid UTF-8 in `slug`"),
            ("GET", "/dataset/%FF/datapackage.json", StatusCode::BAD_REQUEST, "Invalid UTF-8 in `slug`"),
            ("GET", "/datastore/dump/%FF", StatusCode::BAD_REQUEST, "Invalid UTF-8 in `resource_id`"),
            (
                "GET",
                "/api/v1/datasets/a/resources/b/versions/x/download",
                StatusCode::BAD_REQUEST,
                "\"x\" is not a version number",
            ),
            (
                "GET",
                "/api/v1/datasets/a/resources/b/versions/0/download",
                StatusCode::BAD_REQUEST,
                "\"0\" is not a version number",
            ),
            (
                "GET",
                "/api/v1/datasets/a/resources/b/versions/99999999999999999999/download",
                StatusCode::NOT_FOUND,
                "dataset \"a\" not found",
            ),
            (
                "GET",
                "/api/v1/datasets/a/resources/b/download?at=1&at=2",
                StatusCode::BAD_REQUEST,
                "duplicate field `at`",
            ),
            ("GET", "/catalog.ttl?page=0", StatusCode::BAD_REQUEST, "page must be a whole number from 1"),
            ("POST", "/api/v1/status", StatusCode::METHOD_NOT_ALLOWED, "/api/v1/status does not take POST"),
            ("DELETE", "/api/3/action/status_show", StatusCode::METHOD_NOT_ALLOWED, "does not take DELETE"),
        ];
        for (method, path, status, says) in cases {
            let req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), status, "{method} {path}");
            assert_eq!(resp.headers()["content-type"], "application/json", "{method} {path}");
            if status == StatusCode::METHOD_NOT_ALLOWED {
                assert!(resp.headers().contains_key("allow"), "{method} {path}");
            }
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["status"], status.as_u16(), "{method} {path}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{method} {path}: {message}");
        }
    }

    #[tokio::test]
    async fn errors_are_json_with_a_message() {
        let (_dir, st) = state();
        let app = app(st);
        let (status, body) = get(&app, "/api/v1/datasets/none").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["message"], "dataset \"none\" not found");
        let (status, body) = get(&app, "/api/v1/blobs/XYZ").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"]["message"].as_str().unwrap().contains("64 lower-case hex digits"));
        let (status, _) = get(&app, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = get(&app, "/api/v1/status").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["datasets"], 0);
    }
}
