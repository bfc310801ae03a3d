//! The historical archive, with DATA.GOV.HK's paths, parameters and times, so that scripts written
//! for its archive API work unchanged: `/v1/historical-archive/list-files`, `list-file-versions` and
//! `get-file`.
//!
//! A file is a resource, named by its stable URL (`{site}/api/v1/datasets/{slug}/resources/{name}/download`,
//! the `url` of the resource in the CKAN API); its versions are the resource's versions. Times are
//! Hong Kong time (UTC+8), as DATA.GOV.HK gives them: dates as `YYYYMMDD`, instants as
//! `YYYYMMDD-HHMM`. `get-file` answers the bytes of the version in force at the time asked, exactly
//! as published.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use citydata_store::{Dataset, Resource, Version};
use serde_json::{json, Value as JsonValue};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::ckan::base_url;
use crate::extract::Query;
use crate::AppState;

/// Hong Kong time, in which the archive API speaks.
const HKT: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// The most files `list-files` returns in one call.
const MAX_FILES: usize = 1000;

/// A 400 with the list of what is wrong, one entry per parameter.
struct Problems(Vec<(String, String)>);

impl IntoResponse for Problems {
    fn into_response(self) -> Response {
        let errors: Vec<JsonValue> =
            self.0.into_iter().map(|(p, m)| json!({ "parameter": p, "message": m })).collect();
        (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response()
    }
}

/// Parses `YYYYMMDD`.
pub(crate) fn parse_date(s: &str) -> Option<Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i32 = s[..4].parse().ok()?;
    let m: u8 = s[4..6].parse().ok()?;
    let d: u8 = s[6..].parse().ok()?;
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

/// Parses `YYYYMMDD-HHMM` in Hong Kong time.
pub(crate) fn parse_instant(s: &str) -> Option<OffsetDateTime> {
    let (d, t) = s.split_once('-')?;
    if t.len() != 4 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let time = Time::from_hms(t[..2].parse().ok()?, t[2..].parse().ok()?, 0).ok()?;
    Some(PrimitiveDateTime::new(parse_date(d)?, time).assume_offset(HKT))
}

/// A stored RFC 3339 time.
fn stored(t: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

/// `YYYYMMDD-HHMM` in Hong Kong time.
fn archive_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(HKT);
    format!("{:04}{:02}{:02}-{:02}{:02}", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// The version of `r` in force at `at`: the newest published at or before it.
pub(crate) fn version_at(r: &Resource, at: OffsetDateTime) -> Option<&Version> {
    r.versions.iter().rev().find(|v| stored(&v.created).is_some_and(|c| c <= at))
}

/// The stable URL of a resource, the name of its file in the archive.
pub(crate) fn resource_url(base: &str, d: &Dataset, r: &Resource) -> String {
    format!("{base}/api/v1/datasets/{}/resources/{}/download", d.slug, r.name)
}

/// The dataset slug and resource name in a resource URL (any host; the versioned download URL too).
fn parse_resource_url(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("/api/v1/datasets/")?.1;
    let rest = rest.split(['?', '#']).next()?;
    let mut parts = rest.split('/');
    let slug = parts.next()?;
    (parts.next()? == "resources").then_some(())?;
    let name = parts.next()?;
    let decode = |s: &str| crate::ckan::percent_decode(s);
    Some((decode(slug), decode(name)))
}

fn problem(p: &str, m: &str) -> (String, String) {
    (p.to_owned(), m.to_owned())
}

/// `start` and `end` as an inclusive range of instants.
fn period(
    q: &HashMap<String, String>,
    problems: &mut Vec<(String, String)>,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let mut get = |name: &str, required: bool| match q.get(name).map(String::as_str) {
        None | Some("") if !required => None,
        None | Some("") => {
            problems.push(problem(name, "required, as YYYYMMDD"));
            None
        }
        Some(s) => {
            let d = parse_date(s);
            if d.is_none() {
                problems.push(problem(name, "must be a date as YYYYMMDD, such as 20240131"));
            }
            d
        }
    };
    let (start, end) = (get("start", true)?, get("end", true)?);
    let from = PrimitiveDateTime::new(start, Time::MIDNIGHT).assume_offset(HKT);
    let to = PrimitiveDateTime::new(end.next_day()?, Time::MIDNIGHT).assume_offset(HKT)
        - time::Duration::nanoseconds(1);
    if from > to {
        problems.push(problem("end", "must not be before start"));
        return None;
    }
    Some((from, to))
}

fn count(
    q: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
    problems: &mut Vec<(String, String)>,
) -> usize {
    match q.get(name).map(String::as_str) {
        None | Some("") => default,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n <= max => n,
            _ => {
                problems.push((name.to_owned(), format!("must be a whole number from 0 to {max}")));
                default
            }
        },
    }
}

fn all_datasets(s: &AppState) -> Result<Vec<Dataset>, crate::ApiError> {
    let mut out = Vec::new();
    for slug in s.store.dataset_slugs()? {
        out.extend(s.store.dataset(&slug)?);
    }
    Ok(out)
}

/// `GET /v1/historical-archive/list-files`
pub(crate) async fn list_files(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, crate::ApiError> {
    let mut problems = Vec::new();
    let range = period(&q, &mut problems);
    let max = count(&q, "max", MAX_FILES, MAX_FILES, &mut problems);
    let skip = count(&q, "skip", 0, usize::MAX, &mut problems);
    let desc = match q.get("order").map(|o| o.to_ascii_lowercase()) {
        None => false,
        Some(o) if o.is_empty() || o == "asc" => false,
        Some(o) if o == "desc" => true,
        Some(_) => {
            problems.push(problem("order", "must be asc or desc"));
            false
        }
    };
    let Some((from, to)) = range.filter(|_| problems.is_empty()) else {
        return Ok(Problems(problems).into_response());
    };
    let base = base_url(&headers);
    let filter = |name: &str| q.get(name).filter(|v| !v.is_empty()).map(|v| v.to_lowercase());
    let (category, provider, format, search) =
        (filter("category"), filter("provider"), filter("format"), filter("search"));
    let datasets = tokio::task::spawn_blocking(move || all_datasets(&s)).await??;
    let mut files = Vec::new();
    for d in &datasets {
        let org = d.organization.as_ref().map(|o| o.slug.to_lowercase());
        if category
            .as_ref()
            .is_some_and(|c| d.meta.theme.as_ref().map(|t| t.to_lowercase()).as_ref() != Some(c))
            || provider.as_ref().is_some_and(|p| org.as_ref() != Some(p))
        {
            continue;
        }
        for r in &d.resources {
            let in_period: Vec<&Version> = r
                .versions
                .iter()
                .filter(|v| stored(&v.created).is_some_and(|c| c >= from && c <= to))
                .collect();
            let Some(last) = in_period.last() else { continue };
            if format.as_ref().is_some_and(|f| last.format.to_lowercase() != *f) {
                continue;
            }
            let names = [&d.meta.title, &r.title];
            if let Some(word) = &search {
                let hay = names
                    .iter()
                    .flat_map(|t| t.0.values())
                    .chain([&d.slug, &r.name])
                    .any(|t| t.to_lowercase().contains(word.as_str()));
                if !hay {
                    continue;
                }
            }
            let lang = |t: &citydata_model::LangText, k: &str| {
                t.0.get(k).cloned().or_else(|| t.best().map(str::to_owned))
            };
            files.push(json!({
                "url": resource_url(&base, d, r),
                "dataset-id": d.slug,
                "dataset-name-en": lang(&d.meta.title, "en"),
                "dataset-name-tc": lang(&d.meta.title, "zh-Hant"),
                "dataset-name-sc": lang(&d.meta.title, "zh-Hans"),
                "resource-name-en": lang(&r.title, "en").unwrap_or_else(|| r.name.clone()),
                "resource-name-tc": lang(&r.title, "zh-Hant").unwrap_or_else(|| r.name.clone()),
                "resource-name-sc": lang(&r.title, "zh-Hans").unwrap_or_else(|| r.name.clone()),
                "category": d.meta.theme,
                "provider": org,
                "format": last.format.to_ascii_uppercase(),
                "version-count": in_period.len(),
                "last-version-timestamp": stored(&last.created).map(archive_time),
            }));
        }
    }
    files.sort_by(|a, b| a["url"].as_str().cmp(&b["url"].as_str()));
    if desc {
        files.reverse();
    }
    let total = files.len();
    let files: Vec<JsonValue> = files.into_iter().skip(skip).take(max).collect();
    Ok(Json(json!({ "file-count": total, "files": files })).into_response())
}

/// The `url` parameter: present, and the URL of a file here (any host), as its dataset slug and
/// resource name; a problem for `url` otherwise.
fn file_url(
    q: &HashMap<String, String>,
    problems: &mut Vec<(String, String)>,
) -> Option<(String, (String, String))> {
    let url = match q.get("url").map(String::as_str) {
        None | Some("") => {
            problems.push(problem("url", "required: the file's URL, as list-files gives it"));
            return None;
        }
        Some(u) => u,
    };
    match parse_resource_url(url) {
        Some(names) => Some((url.to_owned(), names)),
        None => {
            problems.push((
                "url".to_owned(),
                format!("{url:?} is not the URL of a file here; list-files gives the URLs (…/api/v1/datasets/SLUG/resources/NAME/download)"),
            ));
            None
        }
    }
}

/// Finds the resource that `url` names.
fn find(
    s: &AppState,
    url: &str,
    (slug, name): (String, String),
) -> Result<(Dataset, String), crate::ApiError> {
    let d =
        s.store.dataset(&slug)?.ok_or_else(|| crate::ApiError::NotFound(format!("no file at {url:?}")))?;
    if !d.resources.iter().any(|r| r.name == name) {
        return Err(crate::ApiError::NotFound(format!("no file at {url:?}")));
    }
    Ok((d, name))
}

/// `GET /v1/historical-archive/list-file-versions`
pub(crate) async fn list_file_versions(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, crate::ApiError> {
    let mut problems = Vec::new();
    let url = file_url(&q, &mut problems);
    let range = period(&q, &mut problems);
    let (Some((url, names)), Some((from, to))) = (url, range.filter(|_| problems.is_empty())) else {
        return Ok(Problems(problems).into_response());
    };
    let (d, name) = tokio::task::spawn_blocking(move || find(&s, &url, names)).await??;
    let r =
        d.resources.iter().find(|r| r.name == name).ok_or_else(|| crate::ApiError::NotFound(name.clone()))?;
    let stamps: Vec<String> = r
        .versions
        .iter()
        .filter_map(|v| stored(&v.created))
        .filter(|c| *c >= from && *c <= to)
        .map(archive_time)
        .collect();
    Ok(Json(json!({ "version-count": stamps.len(), "timestamps": stamps })).into_response())
}

/// `GET /v1/historical-archive/get-file`
pub(crate) async fn get_file(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, crate::ApiError> {
    let mut problems = Vec::new();
    let url = file_url(&q, &mut problems);
    let at = match q.get("time").map(String::as_str) {
        None | Some("") => {
            problems.push(problem("time", "required, as YYYYMMDD-HHMM (Hong Kong time)"));
            None
        }
        Some(t) => {
            let at = parse_instant(t);
            if at.is_none() {
                problems
                    .push(problem("time", "must be YYYYMMDD-HHMM (Hong Kong time), such as 20240131-0930"));
            }
            at
        }
    };
    let (Some((url, names)), Some(at)) = (url, at.filter(|_| problems.is_empty())) else {
        return Ok(Problems(problems).into_response());
    };
    let s2 = s.clone();
    let (d, name) = tokio::task::spawn_blocking(move || find(&s2, &url, names)).await??;
    let r =
        d.resources.iter().find(|r| r.name == name).ok_or_else(|| crate::ApiError::NotFound(name.clone()))?;
    // A timestamp names a minute, as list-file-versions gives them: the file as it was at its end.
    let v =
        version_at(r, at + time::Duration::minutes(1) - time::Duration::nanoseconds(1)).ok_or_else(|| {
            crate::ApiError::NotFound(format!("the file had no version yet at {}", archive_time(at)))
        })?;
    Ok(crate::native::blob_response(s, v.sha256.clone(), v.bytes, &v.media_type, Some(&v.filename)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants() {
        assert_eq!(parse_date("20240229").map(|d| d.to_string()), Some("2024-02-29".into()));
        for bad in ["20230229", "2024131", "2024-01-01", "20241301", "abcdefgh", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let t = parse_instant("20240131-0930").unwrap();
        assert_eq!(t.to_offset(UtcOffset::UTC).hour(), 1);
        assert_eq!(archive_time(t), "20240131-0930");
        for bad in ["20240131", "20240131-2460", "20240131-930", "x-0930"] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn resource_urls() {
        assert_eq!(
            parse_resource_url("http://h:1/api/v1/datasets/air/resources/hourly%20readings/download?x=1"),
            Some(("air".into(), "hourly readings".into()))
        );
        assert_eq!(
            parse_resource_url("https://other/api/v1/datasets/air/resources/r/versions/3/download"),
            Some(("air".into(), "r".into()))
        );
        assert_eq!(parse_resource_url("http://h/elsewhere/air"), None);
    }
}
