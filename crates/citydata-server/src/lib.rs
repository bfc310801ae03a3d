//! The HTTP server: one module per API surface, registered in one list in [`app`].
//!
//! Handlers are thin: parse the request, call the store (on the blocking pool, since the store is
//! synchronous), write the answer in the format asked. Errors become HTTP answers in one place,
//! [`ApiError`].
//!
//! **Architecture Invariant:** the server knows the store's interface only, never the database
//! behind it; the JSON shapes of each API live in its own module, not in the store or the model.

mod error;
mod native;
mod pages;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
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
}

/// The OpenAPI 3.1 document of every route.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The whole HTTP surface, as a router that tests can call without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/api/openapi.json", get(openapi))
        .route("/api/v1/status", get(native::status))
        .route("/api/v1/datasets", get(native::datasets))
        .route("/api/v1/datasets/{slug}", get(native::dataset))
        .route("/api/v1/datasets/{slug}/resources/{resource}/rows", get(native::rows))
        .route("/api/v1/datasets/{slug}/resources/{resource}/versions/{number}/download", get(native::download))
        .route("/api/v1/blobs/{sha256}", get(native::blob))
        .fallback(error::not_found)
        .layer(CorsLayer::permissive())
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(60)))
        .with_state(state)
}

async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
