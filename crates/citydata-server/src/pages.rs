//! The plain HTML front page until the web UI arrives: the datasets, each linked to its API answer.

use axum::extract::State;
use axum::response::Html;

use crate::{ApiError, AppState};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /`
pub(crate) async fn index(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let store = state.store.clone();
    let datasets = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for slug in store.dataset_slugs()? {
            if let Some(d) = store.dataset(&slug)? {
                out.push(d);
            }
        }
        Ok::<_, ApiError>(out)
    })
    .await??;
    let mut items = String::new();
    for d in &datasets {
        let zh =
            d.meta.title.0.get("zh-Hant").map(|t| format!(" <span lang=\"zh-Hant\">{}</span>", escape(t)));
        items.push_str(&format!(
            "<li><a href=\"/api/v1/datasets/{slug}\">{title}</a>{zh}</li>\n",
            slug = escape(&d.slug),
            title = escape(d.meta.title.best().unwrap_or(&d.slug)),
            zh = zh.unwrap_or_default()
        ));
    }
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>citydata</title></head>\
         <body><h1>citydata</h1><p>{n} datasets. API: <a href=\"/api/v1/datasets\">/api/v1/datasets</a>, \
         <a href=\"/api/openapi.json\">OpenAPI</a>.</p><ul>\n{items}</ul></body></html>\n",
        n = datasets.len()
    )))
}
