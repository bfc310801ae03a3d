//! The web UI: its pages and its built files, embedded in the binary by `build.rs`.
//!
//! Every page is the UI's one HTML document with the page's language, title, description and, on a
//! dataset's page, a schema.org `Dataset` block (JSON-LD) written in by the server, so that search
//! engines and link previews see them without running a script. The language is `?lang=`, else the
//! `lang` cookie the UI sets when a reader chooses one, else the browser's `Accept-Language`.
//! Built files have content-hashed names and are cached for a year; pages are revalidated.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as JsonValue};

use crate::extract::Path;
use crate::{ApiError, AppState};

/// The built files of the UI: path (with a leading `/`) and bytes.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" | "map" => "application/json",
        "woff2" => "font/woff2",
        "pbf" => "application/x-protobuf",
        _ => "application/octet-stream",
    }
}

/// `GET /assets/{file}` and the other built files at the root (`/favicon.svg`).
pub(crate) async fn file(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    match asset(path) {
        Some(bytes) if path != "/index.html" => {
            let cache = if path.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "public, max-age=3600"
            };
            ([(header::CONTENT_TYPE, content_type(path)), (header::CACHE_CONTROL, cache)], bytes)
                .into_response()
        }
        _ => ApiError::NotFound(format!("no such file: {path}")).into_response(),
    }
}

/// The languages of the UI, as `lang` attribute values.
const LANGS: [&str; 3] = ["en", "zh-Hant", "zh-Hans"];

/// One of [`LANGS`] for a language tag (`zh-HK` and `zh-TW` are Traditional, `zh-CN` Simplified).
fn normalise_lang(tag: &str) -> Option<&'static str> {
    let t = tag.trim().to_ascii_lowercase();
    if t == "en" || t.starts_with("en-") {
        Some("en")
    } else if t.starts_with("zh-hans") || ["zh-cn", "zh-sg", "zh-my"].contains(&t.as_str()) {
        Some("zh-Hans")
    } else if t == "zh" || t.starts_with("zh-") {
        Some("zh-Hant")
    } else {
        None
    }
}

/// The page's language: `?lang=`, the `lang` cookie, `Accept-Language` (in order of quality), English.
fn page_lang(query: Option<&str>, headers: &HeaderMap) -> &'static str {
    let from_query = crate::ckan::form_urlencoded(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| normalise_lang(&v));
    let from_cookie = || {
        headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
            c.split(';').find_map(|kv| kv.trim().strip_prefix("lang=").and_then(normalise_lang))
        })
    };
    let from_accept = || {
        let accept = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
        let mut tags: Vec<(f32, &str)> = accept
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=")?.parse().ok()).unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        tags.sort_by(|a, b| b.0.total_cmp(&a.0));
        tags.into_iter().find_map(|(_, t)| normalise_lang(t))
    };
    from_query.or_else(from_cookie).or_else(from_accept).unwrap_or("en")
}

/// HTML-escapes text for an element or a double-quoted attribute.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A language map of the native API's JSON read in `lang`, in the order of
/// [`citydata_model::reading_order`], else any.
fn text_in(map: &JsonValue, lang: &str) -> String {
    if let Some(s) = map.as_str() {
        return s.to_owned();
    }
    citydata_model::reading_order(lang)
        .iter()
        .find_map(|l| map.get(*l).and_then(JsonValue::as_str).filter(|s| !s.is_empty()))
        .or_else(|| map.as_object()?.values().find_map(JsonValue::as_str))
        .unwrap_or_default()
        .to_owned()
}

/// The pages' Content Security Policy: scripts, styles, workers and connections from this server
/// only (the browser itself refuses anything else, whatever a script or a dataset's text tries);
/// inline style attributes are allowed (the map and charts set sizes and colours with them), inline
/// scripts are not (the JSON-LD block is data, which CSP does not run).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

/// What the server writes into a page.
struct Head {
    title: String,
    description: String,
    json_ld: Option<JsonValue>,
    status: StatusCode,
}

fn site_name(lang: &str) -> &'static str {
    in_lang(lang, ["citydata Hong Kong", "citydata 香港", "citydata 香港"])
}

/// Fills the UI's HTML document for one page.
fn page(lang: &str, path: &str, head: Head) -> Response {
    let Some(template) = asset("/index.html") else {
        return ApiError::NotFound("the web UI is not built".into()).into_response();
    };
    let template = String::from_utf8_lossy(template);
    let title = if head.title.is_empty() {
        site_name(lang).to_owned()
    } else {
        format!("{} · {}", head.title, site_name(lang))
    };
    let mut extra = format!(
        "<meta name=\"description\" content=\"{}\">\n    <meta property=\"og:title\" content=\"{}\">\n",
        escape(&head.description),
        escape(&title)
    );
    for l in LANGS {
        extra.push_str(&format!(
            "    <link rel=\"alternate\" hreflang=\"{l}\" href=\"{}?lang={l}\">\n",
            escape(path)
        ));
    }
    if let Some(ld) = head.json_ld {
        // `<` is escaped so that no value can close the script element.
        let body = ld.to_string().replace('<', "\\u003c");
        extra.push_str(&format!("    <script type=\"application/ld+json\">{body}</script>\n"));
    }
    let html = template
        .replacen("<html lang=\"en\">", &format!("<html lang=\"{lang}\">"), 1)
        .replacen("<title>citydata</title>", &format!("<title>{}</title>", escape(&title)), 1)
        .replacen("<!--citydata:head-->", &extra, 1)
        .replacen(
            "<!--citydata:body-->",
            &format!("<noscript><h1>{}</h1><p>{}</p></noscript>", escape(&title), escape(&head.description)),
            1,
        );
    (
        head.status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::VARY, HeaderValue::from_static("Cookie, Accept-Language")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        ],
        html,
    )
        .into_response()
}

fn simple(title: &str, description: &str) -> Head {
    Head {
        title: title.to_owned(),
        description: description.to_owned(),
        json_ld: None,
        status: StatusCode::OK,
    }
}

/// A text in the three languages: English, Traditional and Simplified Chinese.
type Tri = [&'static str; 3];

fn in_lang(lang: &str, text: Tri) -> &'static str {
    match lang {
        "zh-Hant" => text[1],
        "zh-Hans" => text[2],
        _ => text[0],
    }
}

const TAGLINE: Tri = [
    "Open data of the city: find it, query it, map it, watch it live.",
    "城市開放數據：搜尋、查詢、地圖、即時監察。",
    "城市开放数据：搜索、查询、地图、实时监察。",
];

/// A page whose title does not depend on the data.
fn fixed_page(query: Option<&str>, headers: &HeaderMap, path: &str, title: Tri) -> Response {
    let lang = page_lang(query, headers);
    page(lang, path, simple(in_lang(lang, title), in_lang(lang, TAGLINE)))
}

/// `GET /`
pub(crate) async fn home(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    fixed_page(q.as_deref(), &headers, "/", ["", "", ""])
}

/// `GET /datasets`
pub(crate) async fn datasets(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    fixed_page(q.as_deref(), &headers, "/datasets", ["Datasets", "數據集", "数据集"])
}

/// `GET /map`
pub(crate) async fn map(RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    fixed_page(q.as_deref(), &headers, "/map", ["Map", "地圖", "地图"])
}

/// `GET /dashboards/{id}`: the page with the dashboard's title and description; 404 (the UI's page,
/// which says so) for an unknown id.
pub(crate) async fn dashboard(
    State(s): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = page_lang(q.as_deref(), &headers);
    let path = format!("/dashboards/{id}");
    let head = match crate::dashboards::lookup(&s, id).await? {
        Some((d, _, _)) => {
            let text = |t: &citydata_model::LangText| t.in_lang(lang).unwrap_or_default().to_owned();
            simple(&text(&d.title), &text(&d.description))
        }
        None => Head { status: StatusCode::NOT_FOUND, ..simple("404", "") },
    };
    Ok(page(lang, &path, head))
}

/// `GET /datasets/{slug}`: the page with the dataset's title, description and JSON-LD; 404 (the
/// UI's page, which says so) for an unknown slug.
pub(crate) async fn dataset(
    State(s): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lang = page_lang(q.as_deref(), &headers);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_owned();
    let path = format!("/datasets/{slug}");
    let found = crate::native::dataset_value(&s, slug).await?;
    let head = match found {
        None => Head {
            title: "404".into(),
            description: String::new(),
            json_ld: None,
            status: StatusCode::NOT_FOUND,
        },
        Some(d) => Head {
            title: text_in(&d["title"], lang),
            description: text_in(&d["description"], lang),
            json_ld: Some(schema_org(&d, &format!("http://{host}"), lang)),
            status: StatusCode::OK,
        },
    };
    Ok(page(lang, &path, head))
}

/// A schema.org `Dataset` for a dataset of the native API (`d`), its URLs on `base`.
fn schema_org(d: &JsonValue, base: &str, lang: &str) -> JsonValue {
    let slug = d["slug"].as_str().unwrap_or_default();
    let distribution: Vec<JsonValue> = d["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let url = r["download_url"].as_str()?;
            Some(json!({
                "@type": "DataDownload",
                "name": r["name"],
                "encodingFormat": r["versions"].as_array()
                    .and_then(|v| v.last())
                    .and_then(|v| v["media_type"].as_str())
                    .unwrap_or_else(|| r["format"].as_str().unwrap_or_default()),
                "contentUrl": format!("{base}{url}"),
            }))
        })
        .collect();
    let mut names = Vec::new();
    for l in LANGS {
        if let Some(t) = d["title"].get(l).and_then(JsonValue::as_str) {
            names.push(json!({"@language": l, "@value": t}));
        }
    }
    json!({
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": format!("{base}/datasets/{slug}"),
        "url": format!("{base}/datasets/{slug}"),
        "identifier": slug,
        "name": text_in(&d["title"], lang),
        "alternateName": names,
        "description": text_in(&d["description"], lang),
        "inLanguage": lang,
        "keywords": d["tags"],
        "license": d["license"],
        "isAccessibleForFree": true,
        "dateCreated": d["created"],
        "dateModified": d["modified"],
        "creator": {
            "@type": "Organization",
            "name": text_in(&d["organization"]["title"], lang),
            "identifier": d["organization"]["slug"],
        },
        "includedInDataCatalog": {"@type": "DataCatalog", "name": site_name(lang), "url": format!("{base}/datasets")},
        "spatialCoverage": {"@type": "Place", "name": "Hong Kong"},
        "distribution": distribution,
        "sameAs": format!("{base}/api/v1/datasets/{slug}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_comes_from_query_cookie_then_accept_language() {
        let mut h = HeaderMap::new();
        assert_eq!(page_lang(None, &h), "en");
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("fr;q=0.9, zh-CN;q=0.8, en;q=0.5"));
        assert_eq!(page_lang(None, &h), "zh-Hans");
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; lang=zh-Hant"));
        assert_eq!(page_lang(None, &h), "zh-Hant");
        assert_eq!(page_lang(Some("x=1&lang=en"), &h), "en");
        assert_eq!(page_lang(Some("lang=zh-HK"), &HeaderMap::new()), "zh-Hant");
        assert_eq!(page_lang(Some("lang=klingon"), &HeaderMap::new()), "en");
    }

    #[tokio::test]
    async fn json_ld_cannot_close_its_script() {
        let d = json!({"slug": "x", "title": {"en": "</script><script>alert(1)</script>"}, "description": "d",
            "organization": {"slug": "o", "title": {"en": "O"}}, "resources": []});
        let head = Head {
            title: "t".into(),
            description: "<b>".into(),
            json_ld: Some(schema_org(&d, "http://h", "en")),
            status: StatusCode::OK,
        };
        let resp = page("en", "/datasets/x", head);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(html.matches("</script>").count(), html.matches("<script").count(), "{html}");
        assert!(html.contains("&lt;b&gt;"));
        assert!(html.contains("\"@type\":\"Dataset\""));
    }
}
