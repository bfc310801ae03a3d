//! One error type for every handler: client errors keep their status and say what to fix; anything
//! unexpected is a 500 whose cause goes to the log, never to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use citydata_store::StoreError;

/// An error answer.
#[derive(Debug)]
pub enum ApiError {
    /// 404 with what was not found.
    NotFound(String),
    /// 400 with what is wrong in the request.
    BadRequest(String),
    /// 403 with what may not be done.
    Forbidden(String),
    /// 503: busy; try again shortly.
    Unavailable(String),
    /// 413 with the limit the body went over.
    TooLarge(String),
    /// 405 with the method that the path does not take (the router adds the `Allow` header).
    MethodNotAllowed(String),
    /// 500; the cause is logged.
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::Forbidden(m) => ApiError::Forbidden(m),
            StoreError::Busy(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m),
            ApiError::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error; it has been logged".to_owned())
            }
        };
        let body = serde_json::json!({ "error": { "status": status.as_u16(), "message": message } });
        (status, Json(body)).into_response()
    }
}

/// A request body, or the error answer (413 naming the limit, JSON) when it could not be read.
pub(crate) fn body_or_error(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!("the body is larger than the limit of {} MiB", limit >> 20))
        } else {
            ApiError::BadRequest(format!("the body could not be read: {}", e.body_text()))
        }
    })
}

/// The answer for paths no route serves.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such path: {}", uri.path()))
}

/// The answer for a path that is served, but not to this method.
pub(crate) async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{} does not take {method}; the Allow header lists what it takes",
        uri.path()
    ))
}
