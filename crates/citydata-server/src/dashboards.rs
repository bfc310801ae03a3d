//! Dashboards: their definition format, its checks, and `GET /api/v1/dashboards[/{id}]`.
//!
//! A dashboard is a JSON file that a publisher adds with `citydata dashboard add FILE`:
//!
//! ```json
//! {"id": "air", "title": {"en": "Air", "zh-Hant": "空氣", "zh-Hans": "空气"},
//!  "description": {"en": "..."},
//!  "panels": [
//!    {"kind": "live", "title": {"en": "PM2.5 by area"}, "network": "smart-lampposts",
//!     "observed_properties": ["PM2.5"], "group_by": "area", "per_group": 4, "window_minutes": 30},
//!    {"kind": "chart", "title": {"en": "Funding"}, "dataset": "innovation-funding",
//!     "resource": "figures", "value": "value", "label": ["programme", "measure"], "unit": "unit",
//!     "filter": {"unit": "HKD"}, "limit": 10}]}
//! ```
//!
//! - `id`: a slug; `title` (required) and `description`: a string (English) or a language map keyed
//!   `en`, `zh-Hant`, `zh-Hans`.
//! - `panels` (1 to [`MAX_PANELS`]), each with a `kind`, a `title`, an optional `description` and
//!   `id` (a slug, unique in the dashboard; `panel-{n}` when left out):
//!   - `live`: the latest readings of SensorThings Datastreams and a rolling chart, updated over
//!     Server-Sent Events. `observed_properties` (ObservedProperty names, 1 to 8) chooses the
//!     Datastreams, `network` (optional) keeps those of Things whose `properties.network` is it,
//!     `group_by` names the Thing property that groups them (`area`: "PM2.5 by area"; a Thing
//!     without it is grouped by the area its description names, "... in {area} (...)"),
//!     `per_group` (1 to 25, default 4) is how many Datastreams of each group and property are
//!     followed, `window_minutes` (5 to 180, default 30) how far back the chart reaches, and
//!     `names` (optional) gives ObservedProperty and group names in the reader's languages
//!     (`{"Kowloon East": {"zh-Hant": "九龍東", "zh-Hans": "九龙东"}}`).
//!   - `figures` (numbers as text), `chart` (a bar chart with a table as its text alternative) and
//!     `stat` (one headline number): rows of a published dataset. `dataset` and `resource` name it,
//!     `value` a numeric column, `label` a column or a list of columns (joined for each row), `unit`
//!     an optional column, `filter` an object of the native rows API's filters (`"unit": "HKD"`,
//!     `"measure__startswith": "share"`, a list for `__in`), `limit` the most rows (1 to 100;
//!     default 20, `stat` 1).
//!
//! [`parse`] checks a definition's shape and collects every problem, each with where it is
//! (`panels[2] ("air"): unknown kind "gauge"; ...`); [`check`] checks it against a store (the
//! datasets, resources and columns exist, `value` is numeric, the filter runs) and returns warnings
//! for what may come later (an ObservedProperty no Datastream measures yet).
//!
//! The built-in `city` dashboard ([`CITY`], `dashboards/city.json`) is served when the store holds
//! no `city` of its own.
//!
//! **Invariant:** what the API serves has passed [`parse`]: the stored text was parsed before it was
//! added, and is answered in the normalised form (defaults filled in, labels as lists).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use citydata_model::{FieldType, LangText, Slug, LANGUAGES};
use citydata_store::{RowBuffer, Store};
use serde_json::{json, Map, Value as JsonValue};

use crate::extract::Path;
use crate::{ApiError, AppState};

/// The built-in `city` dashboard.
pub const CITY: &str = include_str!("dashboards/city.json");

/// The largest definition accepted, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 256 * 1024;
/// The most panels of one dashboard.
pub const MAX_PANELS: usize = 40;
/// The most ObservedProperties of one live panel.
pub const MAX_PROPERTIES: usize = 8;
const MAX_TEXT: usize = 2000;

/// Why a definition was refused: every problem found, each saying where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct DashboardError {
    /// The problems, in the order of the definition.
    pub problems: Vec<String>,
}

/// A dashboard definition that has passed [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Its id, a slug (as in `/dashboards/{id}`).
    pub id: String,
    /// Its title.
    pub title: LangText,
    /// What it shows.
    pub description: LangText,
    /// Its panels, in order.
    pub panels: Vec<Panel>,
}

/// One panel of a dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Its id, unique in the dashboard.
    pub id: String,
    /// Its heading.
    pub title: LangText,
    /// A line under the heading.
    pub description: LangText,
    /// What it shows.
    pub body: PanelBody,
}

/// What a panel shows.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelBody {
    /// Live readings of SensorThings Datastreams.
    Live(LivePanel),
    /// Rows of a published dataset, drawn as `kind` says.
    Rows(RowsKind, RowsPanel),
}

/// How a panel of rows is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsKind {
    /// Numbers with their labels, as text.
    Figures,
    /// A bar chart, with a table as its text alternative.
    Chart,
    /// One headline number (the first row).
    Stat,
}

impl RowsKind {
    fn name(self) -> &'static str {
        match self {
            RowsKind::Figures => "figures",
            RowsKind::Chart => "chart",
            RowsKind::Stat => "stat",
        }
    }
}

/// The Datastreams a live panel follows.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePanel {
    /// Only Things whose `properties.network` is this.
    pub network: Option<String>,
    /// ObservedProperty names.
    pub observed_properties: Vec<String>,
    /// The Thing property that groups the Datastreams.
    pub group_by: String,
    /// How many Datastreams of each group and property are followed.
    pub per_group: u32,
    /// How many minutes the rolling chart spans.
    pub window_minutes: u32,
    /// Names in the reader's language for ObservedProperty and group names (`"Kowloon East":
    /// {"zh-Hant": "九龍東"}`); a name without one is shown as the data gives it.
    pub names: BTreeMap<String, LangText>,
}

/// The rows a dataset panel draws.
#[derive(Debug, Clone, PartialEq)]
pub struct RowsPanel {
    /// The dataset's slug.
    pub dataset: String,
    /// The resource's name.
    pub resource: String,
    /// The numeric column.
    pub value: String,
    /// The columns whose values, joined, label a row.
    pub label: Vec<String>,
    /// The column of units, if any.
    pub unit: Option<String>,
    /// Filters of the native rows API: parameter name and value.
    pub filter: BTreeMap<String, String>,
    /// The most rows.
    pub limit: u32,
}

/// Collects problems with their place in the definition.
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, at: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{at}: {what}"));
    }
}

fn lang_text(v: Option<&JsonValue>, at: &str, required: bool, p: &mut Problems) -> LangText {
    match v {
        None | Some(JsonValue::Null) => {
            if required {
                p.add(at, "missing: give a text, or a map of texts keyed en, zh-Hant, zh-Hans");
            }
            LangText::default()
        }
        Some(JsonValue::String(s)) if s.trim().is_empty() && required => {
            p.add(at, "is empty");
            LangText::default()
        }
        Some(JsonValue::String(s)) => {
            if s.chars().count() > MAX_TEXT {
                p.add(at, format!("longer than {MAX_TEXT} characters"));
            }
            LangText::en(s.clone())
        }
        Some(JsonValue::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                if !LANGUAGES.contains(&k.as_str()) {
                    p.add(at, format!("unknown language {k:?}: use en, zh-Hant or zh-Hans"));
                    continue;
                }
                match v.as_str() {
                    Some(s) if s.chars().count() > MAX_TEXT => {
                        p.add(&format!("{at}.{k}"), format!("longer than {MAX_TEXT} characters"))
                    }
                    Some(s) => {
                        out.insert(k.clone(), s.to_owned());
                    }
                    None => p.add(&format!("{at}.{k}"), "must be a string"),
                }
            }
            let t = LangText(out);
            if required && t.is_empty() {
                p.add(at, "has no text in any language");
            }
            t
        }
        Some(_) => {
            p.add(at, "must be a string or a map of texts keyed en, zh-Hant, zh-Hans");
            LangText::default()
        }
    }
}

fn string(m: &Map<String, JsonValue>, key: &str, at: &str, p: &mut Problems) -> Option<String> {
    match m.get(key) {
        None | Some(JsonValue::Null) => None,
        Some(JsonValue::String(s)) if !s.trim().is_empty() && s.len() <= 200 => Some(s.clone()),
        Some(JsonValue::String(_)) => {
            p.add(&format!("{at}.{key}"), "must be 1 to 200 bytes of text");
            None
        }
        Some(_) => {
            p.add(&format!("{at}.{key}"), "must be a string");
            None
        }
    }
}

fn required(m: &Map<String, JsonValue>, key: &str, at: &str, p: &mut Problems) -> String {
    if !m.contains_key(key) {
        p.add(at, format!("missing {key:?}"));
    }
    string(m, key, at, p).unwrap_or_default()
}

fn number(
    m: &Map<String, JsonValue>,
    key: &str,
    at: &str,
    range: (u32, u32),
    default: u32,
    p: &mut Problems,
) -> u32 {
    match m.get(key) {
        None | Some(JsonValue::Null) => default,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (range.0..=range.1).contains(&n) => n,
            _ => {
                p.add(
                    &format!("{at}.{key}"),
                    format!("must be a whole number from {} to {}", range.0, range.1),
                );
                default
            }
        },
    }
}

fn unknown_keys(m: &Map<String, JsonValue>, known: &[&str], at: &str, p: &mut Problems) {
    for k in m.keys().filter(|k| !known.contains(&k.as_str())) {
        p.add(at, format!("unknown member {k:?} (known: {})", known.join(", ")));
    }
}

const COMMON: [&str; 4] = ["kind", "id", "title", "description"];
const LIVE_KEYS: [&str; 6] =
    ["network", "observed_properties", "group_by", "per_group", "window_minutes", "names"];
/// The most entries of a live panel's `names`.
const MAX_NAMES: usize = 200;
const ROWS_KEYS: [&str; 7] = ["dataset", "resource", "value", "label", "unit", "filter", "limit"];

fn live_panel(m: &Map<String, JsonValue>, at: &str, p: &mut Problems) -> LivePanel {
    let known: Vec<&str> = COMMON.iter().chain(LIVE_KEYS.iter()).copied().collect();
    unknown_keys(m, &known, at, p);
    let mut observed_properties = Vec::new();
    match m.get("observed_properties") {
        Some(JsonValue::Array(a)) if !a.is_empty() && a.len() <= MAX_PROPERTIES => {
            for (i, v) in a.iter().enumerate() {
                match v.as_str().filter(|s| !s.trim().is_empty() && s.len() <= 200) {
                    Some(s) if observed_properties.iter().any(|o| o == s) => {
                        p.add(&format!("{at}.observed_properties[{i}]"), format!("{s:?} is listed twice"))
                    }
                    Some(s) => observed_properties.push(s.to_owned()),
                    None => {
                        p.add(&format!("{at}.observed_properties[{i}]"), "must be an ObservedProperty name")
                    }
                }
            }
        }
        None => p.add(at, "missing \"observed_properties\": the names of the ObservedProperties to show"),
        Some(_) => p.add(
            &format!("{at}.observed_properties"),
            format!("must be a list of 1 to {MAX_PROPERTIES} ObservedProperty names"),
        ),
    }
    LivePanel {
        network: string(m, "network", at, p),
        observed_properties,
        group_by: string(m, "group_by", at, p).unwrap_or_else(|| "area".to_owned()),
        per_group: number(m, "per_group", at, (1, 25), 4, p),
        window_minutes: number(m, "window_minutes", at, (5, 180), 30, p),
        names: names(m, at, p),
    }
}

fn names(m: &Map<String, JsonValue>, at: &str, p: &mut Problems) -> BTreeMap<String, LangText> {
    let mut out = BTreeMap::new();
    match m.get("names") {
        None | Some(JsonValue::Null) => {}
        Some(JsonValue::Object(n)) if n.len() <= MAX_NAMES => {
            for (k, v) in n {
                out.insert(k.clone(), lang_text(Some(v), &format!("{at}.names.{k}"), true, p));
            }
        }
        Some(_) => p.add(
            &format!("{at}.names"),
            format!("must be an object of up to {MAX_NAMES} names, each a text or a map keyed en, zh-Hant, zh-Hans"),
        ),
    }
    out
}

fn rows_panel(kind: RowsKind, m: &Map<String, JsonValue>, at: &str, p: &mut Problems) -> RowsPanel {
    let known: Vec<&str> = COMMON.iter().chain(ROWS_KEYS.iter()).copied().collect();
    unknown_keys(m, &known, at, p);
    let dataset = required(m, "dataset", at, p);
    if !dataset.is_empty() {
        if let Err(e) = Slug::parse(&dataset) {
            p.add(&format!("{at}.dataset"), e);
        }
    }
    let label = match m.get("label") {
        None | Some(JsonValue::Null) => {
            p.add(at, "missing \"label\": the column (or list of columns) that names each row");
            Vec::new()
        }
        Some(JsonValue::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(JsonValue::Array(a))
            if !a.is_empty()
                && a.len() <= 4
                && a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())) =>
        {
            a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        }
        Some(_) => {
            p.add(&format!("{at}.label"), "must be a column name or a list of 1 to 4 column names");
            Vec::new()
        }
    };
    let mut filter = BTreeMap::new();
    match m.get("filter") {
        None | Some(JsonValue::Null) => {}
        Some(JsonValue::Object(f)) => {
            for (k, v) in f {
                let here = format!("{at}.filter.{k}");
                if k.is_empty() || (k.starts_with('_') && k != "_id" && !k.starts_with("_id__")) {
                    p.add(&here, "must name a column (controls such as _sort are not filters)");
                    continue;
                }
                let text = match v {
                    JsonValue::String(s) => Some(s.clone()),
                    JsonValue::Number(n) => Some(n.to_string()),
                    JsonValue::Bool(b) => Some(b.to_string()),
                    JsonValue::Array(a) if a.iter().all(|x| x.is_string() || x.is_number()) => Some(
                        a.iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    _ => None,
                };
                match text {
                    Some(t) => {
                        filter.insert(k.clone(), t);
                    }
                    None => p.add(&here, "must be a string, a number, a boolean or a list of them"),
                }
            }
        }
        Some(_) => {
            p.add(&format!("{at}.filter"), "must be an object of filters, such as {\"unit\": \"HKD\"}")
        }
    }
    let default_limit = if kind == RowsKind::Stat { 1 } else { 20 };
    RowsPanel {
        dataset,
        resource: required(m, "resource", at, p),
        value: required(m, "value", at, p),
        label,
        unit: string(m, "unit", at, p),
        filter,
        limit: number(m, "limit", at, (1, 100), default_limit, p),
    }
}

/// Reads a dashboard definition and checks its shape.
///
/// # Errors
/// Every problem found, each saying where it is.
pub fn parse(text: &str) -> Result<Dashboard, DashboardError> {
    let fail = |m: String| DashboardError { problems: vec![m] };
    if text.len() > MAX_DEFINITION_BYTES {
        return Err(fail(format!("the definition is larger than {MAX_DEFINITION_BYTES} bytes")));
    }
    let v: JsonValue = serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let JsonValue::Object(m) = v else {
        return Err(fail("a dashboard must be a JSON object with id, title and panels".into()));
    };
    let mut p = Problems(Vec::new());
    unknown_keys(&m, &["id", "title", "description", "panels"], "dashboard", &mut p);
    let id = required(&m, "id", "dashboard", &mut p);
    if !id.is_empty() {
        if let Err(e) = Slug::parse(&id) {
            p.add("id", e);
        }
    }
    let title = lang_text(m.get("title"), "title", true, &mut p);
    let description = lang_text(m.get("description"), "description", false, &mut p);
    let mut panels = Vec::new();
    match m.get("panels") {
        Some(JsonValue::Array(a)) if !a.is_empty() && a.len() <= MAX_PANELS => {
            for (i, v) in a.iter().enumerate() {
                let JsonValue::Object(pm) = v else {
                    p.add(&format!("panels[{i}]"), "must be an object with a kind and a title");
                    continue;
                };
                let pid = match pm.get("id") {
                    None => format!("panel-{}", i + 1),
                    Some(JsonValue::String(s)) if Slug::parse(s).is_ok() => s.clone(),
                    Some(other) => {
                        p.add(&format!("panels[{i}].id"), format!("{other} is not a valid id: use 1 to 100 lower-case letters, digits, '-' or '_'"));
                        format!("panel-{}", i + 1)
                    }
                };
                let at = format!("panels[{i}] ({pid:?})");
                if panels.iter().any(|q: &Panel| q.id == pid) {
                    p.add(&at, "another panel has this id");
                }
                let title = lang_text(pm.get("title"), &format!("{at}.title"), true, &mut p);
                let description =
                    lang_text(pm.get("description"), &format!("{at}.description"), false, &mut p);
                let body = match pm.get("kind").and_then(JsonValue::as_str) {
                    Some("live") => PanelBody::Live(live_panel(pm, &at, &mut p)),
                    Some("figures") => {
                        PanelBody::Rows(RowsKind::Figures, rows_panel(RowsKind::Figures, pm, &at, &mut p))
                    }
                    Some("chart") => {
                        PanelBody::Rows(RowsKind::Chart, rows_panel(RowsKind::Chart, pm, &at, &mut p))
                    }
                    Some("stat") => {
                        PanelBody::Rows(RowsKind::Stat, rows_panel(RowsKind::Stat, pm, &at, &mut p))
                    }
                    Some(other) => {
                        p.add(
                            &at,
                            format!("unknown kind {other:?}; the kinds are live, figures, chart and stat"),
                        );
                        continue;
                    }
                    None => {
                        p.add(&at, "missing \"kind\": one of live, figures, chart, stat");
                        continue;
                    }
                };
                panels.push(Panel { id: pid, title, description, body });
            }
        }
        None => p.add("dashboard", "missing \"panels\": a list of panels"),
        Some(_) => p.add("panels", format!("must be a list of 1 to {MAX_PANELS} panels")),
    }
    if p.0.is_empty() {
        Ok(Dashboard { id, title, description, panels })
    } else {
        Err(DashboardError { problems: p.0 })
    }
}

/// Checks a dashboard against `store`: every dataset panel's dataset, resource and columns exist,
/// its value column is numeric and its filter runs. Returns warnings for what may come later: an
/// ObservedProperty that no Datastream measures yet.
///
/// # Errors
/// The problems found, each saying which panel; a database error as one problem.
pub fn check(store: &Store, d: &Dashboard) -> Result<Vec<String>, DashboardError> {
    let mut p = Problems(Vec::new());
    let mut warnings = Vec::new();
    for (i, panel) in d.panels.iter().enumerate() {
        let at = format!("panels[{i}] ({:?})", panel.id);
        match &panel.body {
            PanelBody::Live(live) => {
                for name in &live.observed_properties {
                    let mut q = citydata_store::sensors::EntityQuery::all(
                        citydata_store::sensors::EntitySet::ObservedProperty,
                    );
                    q.filter = Some(citydata_store::sensors::Expr::Cmp(
                        citydata_store::sensors::CmpOp::Eq,
                        Box::new(citydata_store::sensors::Expr::Path(vec!["name".into()])),
                        Box::new(citydata_store::sensors::Expr::Lit(citydata_store::sensors::SVal::Text(
                            name.clone(),
                        ))),
                    ));
                    q.top = 1;
                    match store.sta_query(&q) {
                        Ok(page) if page.entities.is_empty() => warnings.push(format!(
                            "{at}: no ObservedProperty is named {name:?} yet; the panel stays empty until one has readings"
                        )),
                        Ok(_) => {}
                        Err(e) => p.add(&at, e),
                    }
                }
            }
            PanelBody::Rows(_, rows) => check_rows(store, rows, &at, &mut p),
        }
    }
    if p.0.is_empty() {
        Ok(warnings)
    } else {
        Err(DashboardError { problems: p.0 })
    }
}

fn check_rows(store: &Store, rows: &RowsPanel, at: &str, p: &mut Problems) {
    let dataset = match store.dataset(&rows.dataset) {
        Ok(Some(d)) => d,
        Ok(None) => return p.add(at, format!("no dataset {:?} is published", rows.dataset)),
        Err(e) => return p.add(at, e),
    };
    let Some(resource) = dataset.resources.iter().find(|r| r.name == rows.resource) else {
        let names: Vec<&str> = dataset.resources.iter().map(|r| r.name.as_str()).collect();
        return p.add(
            at,
            format!(
                "dataset {:?} has no resource {:?} (it has {})",
                rows.dataset,
                rows.resource,
                names.join(", ")
            ),
        );
    };
    let Some(version) = resource.current() else {
        return p.add(at, format!("resource {:?} of {:?} has no version", rows.resource, rows.dataset));
    };
    let fields = &version.schema.fields;
    let column = |name: &str, role: &str, p: &mut Problems| {
        let found = fields.iter().find(|f| f.name == name);
        if found.is_none() {
            let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            p.add(
                at,
                format!(
                    "{role} column {name:?} is not in {}/{} (its columns: {})",
                    rows.dataset,
                    rows.resource,
                    names.join(", ")
                ),
            );
        }
        found
    };
    if let Some(f) = column(&rows.value, "value", p) {
        if !matches!(f.field_type, FieldType::Integer | FieldType::Number) {
            p.add(
                at,
                format!("value column {:?} holds {} values, not numbers", rows.value, f.field_type.name()),
            );
        }
    }
    for l in &rows.label {
        column(l, "label", p);
    }
    if let Some(u) = &rows.unit {
        column(u, "unit", p);
    }
    // The filter is run as the rows API runs it, so that it fails here and not in a reader's browser.
    let mut pairs: Vec<(String, String)> = rows.filter.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.push(("_limit".into(), "1".into()));
    match crate::native::row_query(&pairs) {
        Ok((q, _, _)) => {
            if let Err(e) = store.query_rows(&resource.id, &q, &mut RowBuffer::default()) {
                p.add(at, format!("filter: {e}"));
            }
        }
        Err(ApiError::BadRequest(m)) => p.add(at, format!("filter: {m}")),
        Err(e) => p.add(at, format!("filter: {e:?}")),
    }
}

impl Dashboard {
    /// The normalised definition as the API serves it (defaults filled in, labels as lists).
    #[must_use]
    pub fn to_json(&self) -> JsonValue {
        let panels: Vec<JsonValue> = self
            .panels
            .iter()
            .map(|p| {
                let mut v = match &p.body {
                    PanelBody::Live(l) => json!({
                        "kind": "live",
                        "network": l.network,
                        "observed_properties": l.observed_properties,
                        "group_by": l.group_by,
                        "per_group": l.per_group,
                        "window_minutes": l.window_minutes,
                        "names": l.names.iter().map(|(k, v)| (k.clone(), json!(v.0))).collect::<Map<String, JsonValue>>(),
                    }),
                    PanelBody::Rows(kind, r) => json!({
                        "kind": kind.name(),
                        "dataset": r.dataset,
                        "resource": r.resource,
                        "value": r.value,
                        "label": r.label,
                        "unit": r.unit,
                        "filter": r.filter,
                        "limit": r.limit,
                    }),
                };
                v["id"] = json!(p.id);
                v["title"] = json!(p.title.0);
                v["description"] = json!(p.description.0);
                v
            })
            .collect();
        json!({"id": self.id, "title": self.title.0, "description": self.description.0, "panels": panels})
    }
}

/// The built-in dashboard `id`, if there is one.
#[must_use]
pub fn builtin(id: &str) -> Option<Dashboard> {
    // The file is checked by a test; a broken one is served as absent rather than as a panic.
    (id == "city").then(|| parse(CITY).ok()).flatten()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// A stored definition read back (it passed [`parse`] when it was added).
fn stored(d: &citydata_store::dashboards::StoredDashboard) -> Result<Dashboard, ApiError> {
    parse(&d.definition)
        .map_err(|e| ApiError::Internal(format!("stored dashboard {:?} no longer reads: {e}", d.id)))
}

fn summary(d: &Dashboard, builtin: bool, modified: Option<&str>) -> JsonValue {
    json!({
        "id": d.id,
        "title": d.title.0,
        "description": d.description.0,
        "panels": d.panels.len(),
        "builtin": builtin,
        "modified": modified,
        "url": format!("/dashboards/{}", d.id),
        "api_url": format!("/api/v1/dashboards/{}", d.id),
    })
}

/// `GET /api/v1/dashboards`
pub(crate) async fn list(State(s): State<AppState>) -> Result<Json<JsonValue>, ApiError> {
    let all = blocking(move || Ok(s.store.dashboards()?)).await?;
    let mut out = Vec::new();
    for d in &all {
        // One definition that no longer reads (written by another version) does not hide the others.
        match stored(d) {
            Ok(parsed) => out.push(summary(&parsed, false, Some(&d.modified))),
            Err(e) => tracing::error!(error = ?e, "a stored dashboard is left out of the list"),
        }
    }
    if !all.iter().any(|d| d.id == "city") {
        if let Some(city) = builtin("city") {
            out.insert(0, summary(&city, true, None));
        }
    }
    Ok(Json(json!({ "dashboards": out })))
}

/// The dashboard `id`: the stored one, else the built-in one; with whether it is built in and when
/// it was last stored.
pub(crate) async fn lookup(
    s: &AppState,
    id: String,
) -> Result<Option<(Dashboard, bool, Option<String>)>, ApiError> {
    let store = s.store.clone();
    let key = id.clone();
    let found = blocking(move || Ok(store.dashboard(&key)?)).await?;
    Ok(match found {
        Some(st) => Some((stored(&st)?, false, Some(st.modified))),
        None => builtin(&id).map(|d| (d, true, None)),
    })
}

/// `GET /api/v1/dashboards/{id}`
pub(crate) async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JsonValue>, ApiError> {
    let Some((d, is_builtin, modified)) = lookup(&s, id.clone()).await? else {
        return Err(ApiError::NotFound(format!("dashboard {id:?} not found")));
    };
    let mut v = d.to_json();
    v["builtin"] = json!(is_builtin);
    v["modified"] = json!(modified);
    Ok(Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse(text).expect_err("should be refused").problems
    }

    #[test]
    fn the_builtin_city_dashboard_parses() {
        let d = parse(CITY).unwrap();
        assert_eq!(d.id, "city");
        assert!(LANGUAGES.iter().all(|l| d.title.0.contains_key(*l)), "{:?}", d.title);
        let live: Vec<&LivePanel> = d
            .panels
            .iter()
            .filter_map(|p| if let PanelBody::Live(l) = &p.body { Some(l) } else { None })
            .collect();
        assert!(live.iter().any(|l| l.observed_properties.contains(&"PM2.5".to_owned())));
        // Every property and area of the demo is named in the three languages.
        for l in &live {
            for name in l.observed_properties.iter().map(String::as_str).chain(["Kowloon East", "Central"]) {
                let t = &l.names.get(name).unwrap_or_else(|| panic!("no names for {name}")).0;
                assert!(LANGUAGES.iter().all(|x| t.contains_key(*x)), "{name}: {t:?}");
            }
        }
        assert!(live.iter().any(|l| l.observed_properties.contains(&"Traffic flow".to_owned())));
        for p in &d.panels {
            assert!(LANGUAGES.iter().all(|l| p.title.0.contains_key(*l)), "panel {} lacks a language", p.id);
        }
        // The most Datastreams the page follows stays within one live stream's limit.
        let followed: u32 = live.iter().map(|l| l.per_group * l.observed_properties.len() as u32 * 4).sum();
        assert!(followed as usize <= crate::live::MAX_DATASTREAMS, "{followed}");
        assert!(builtin("city").is_some());
        assert!(builtin("other").is_none());
    }

    #[test]
    fn defaults_are_filled_in() {
        let d = parse(
            r#"{"id": "a", "title": "A", "panels": [
                {"kind": "live", "title": "L", "observed_properties": ["PM2.5"],
                 "names": {"Central": {"zh-Hant": "中環"}}},
                {"kind": "stat", "id": "s", "title": {"zh-Hant": "數"}, "dataset": "d", "resource": "r",
                 "value": "v", "label": "l", "filter": {"n__in": ["x", 2], "b": true}}]}"#,
        )
        .unwrap();
        let v = d.to_json();
        assert_eq!(v["panels"][0]["id"], "panel-1");
        assert_eq!(v["panels"][0]["group_by"], "area");
        assert_eq!(v["panels"][0]["per_group"], 4);
        assert_eq!(v["panels"][0]["window_minutes"], 30);
        assert_eq!(v["panels"][0]["names"], json!({"Central": {"zh-Hant": "中環"}}));
        assert_eq!(v["panels"][1]["limit"], 1);
        assert_eq!(v["panels"][1]["label"], json!(["l"]));
        assert_eq!(v["panels"][1]["filter"], json!({"b": "true", "n__in": "x,2"}));
        assert_eq!(v["title"], json!({"en": "A"}));
        // What the API serves reads back as the same dashboard.
        assert_eq!(parse(&v.to_string()).unwrap(), d);
    }

    #[test]
    fn bad_definitions_say_what_and_where() {
        let cases: &[(&str, &str)] = &[
            ("[]", "must be a JSON object"),
            ("{", "not JSON"),
            (r#"{"title": "t", "panels": []}"#, "dashboard: missing \"id\""),
            (r#"{"id": "Bad Id", "title": "t", "panels": [{"kind": "live", "title": "x", "observed_properties": ["a"]}]}"#, "id: \"Bad Id\" is not a valid slug"),
            (r#"{"id": "a", "panels": [{"kind": "stat"}]}"#, "title: missing"),
            (r#"{"id": "a", "title": {"fr": "x"}, "panels": []}"#, "unknown language \"fr\""),
            (r#"{"id": "a", "title": "t", "panels": []}"#, "panels: must be a list of 1 to 40 panels"),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "gauge", "title": "g"}]}"#, "panels[0] (\"panel-1\"): unknown kind \"gauge\"; the kinds are live, figures, chart and stat"),
            (r#"{"id": "a", "title": "t", "panels": [{"title": "g"}]}"#, "missing \"kind\""),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "chart", "title": "c", "resource": "r", "value": "v", "label": "l"}]}"#, "panels[0] (\"panel-1\"): missing \"dataset\""),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "chart", "title": "c", "dataset": "d", "resource": "r", "value": "v"}]}"#, "missing \"label\""),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "chart", "title": "c", "dataset": "d", "resource": "r", "value": "v", "label": "l", "filter": {"_sort": "x"}}]}"#, "filter._sort: must name a column"),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "chart", "title": "c", "dataset": "d", "resource": "r", "value": "v", "label": "l", "limit": 0}]}"#, ".limit: must be a whole number from 1 to 100"),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "title": "l"}]}"#, "missing \"observed_properties\""),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "title": "l", "observed_properties": ["a", "a"]}]}"#, "\"a\" is listed twice"),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "title": "l", "observed_properties": ["a"], "per_group": 99}]}"#, "per_group: must be a whole number from 1 to 25"),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "title": "l", "observed_properties": ["a"], "colour": "red"}]}"#, "unknown member \"colour\""),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "title": "l", "observed_properties": ["a"], "names": {"a": {"de": "x"}}}]}"#, ".names.a: unknown language \"de\""),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "title": "l", "observed_properties": ["a"], "names": ["a"]}]}"#, ".names: must be an object"),
            (r#"{"id": "a", "title": "t", "panels": [{"kind": "live", "id": "x", "title": "l", "observed_properties": ["a"]}, {"kind": "live", "id": "x", "title": "m", "observed_properties": ["b"]}]}"#, "another panel has this id"),
        ];
        for (text, says) in cases {
            let got = problems(text);
            assert!(got.iter().any(|m| m.contains(says)), "{text}\nwanted {says:?} in {got:?}");
        }
        // Every problem is collected, not only the first.
        let got = problems(
            r#"{"id": "a", "title": "t", "panels": [{"kind": "gauge", "title": "g"}, {"kind": "stat", "title": "s"}]}"#,
        );
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(problems(&" ".repeat(MAX_DEFINITION_BYTES + 1))[0].contains("larger than"));
    }

    /// A store with one published dataset, `figures/figures` (programme, measure, value, unit).
    fn store() -> (tempfile::TempDir, std::sync::Arc<Store>) {
        use citydata_model::{Field, FieldType as F, Schema, Value};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let schema = Schema::new(
            [("programme", F::String), ("measure", F::String), ("value", F::Integer), ("unit", F::String)]
                .iter()
                .map(|(n, t)| Field::new(*n, *t))
                .collect(),
        );
        let slug = Slug::parse("figures").unwrap();
        let mut tx = store.begin_publish(&slug, None, "test").unwrap();
        let bytes = b"figures".to_vec();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let nv = citydata_store::NewVersion {
            resource: "figures",
            title: LangText::en("figures"),
            description: LangText::default(),
            sha256: &sha,
            filename: "f.csv",
            format: "csv",
            media_type: "text/csv",
            encoding: "utf-8",
            schema: &schema,
            skipped: Vec::new(),
            spatial: None,
        };
        let mut loader = tx.add_version(&nv, &mut std::io::Cursor::new(bytes)).unwrap();
        let t = |s: &'static str| Value::Text(s.into());
        loader.insert(&[t("Wi-Fi.HK"), t("hotspots"), Value::Int(45_000), t("hotspots")]).unwrap();
        loader.insert(&[t("iAM Smart"), t("users"), Value::Int(2_700_000), t("people")]).unwrap();
        loader.finish().unwrap();
        tx.commit().unwrap();
        (dir, std::sync::Arc::new(store))
    }

    const GOOD: &str = r#"{"id": "mine", "title": {"en": "Mine", "zh-Hant": "我的"}, "panels": [
        {"kind": "chart", "title": "Users", "dataset": "figures", "resource": "figures", "value": "value",
         "label": ["programme", "measure"], "unit": "unit", "filter": {"value__gt": 100}},
        {"kind": "live", "title": "Air", "observed_properties": ["PM2.5"]}]}"#;

    #[test]
    fn definitions_are_checked_against_the_store() {
        let (_dir, store) = store();
        let d = parse(GOOD).unwrap();
        let warnings = check(&store, &d).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("no ObservedProperty is named \"PM2.5\" yet"), "{warnings:?}");
        let panel = |body: &str| {
            format!(r#"{{"id": "x", "title": "x", "panels": [{{"kind": "figures", "title": "f", {body}}}]}}"#)
        };
        let cases = [
            (
                r#""dataset": "nothing", "resource": "figures", "value": "value", "label": "measure""#,
                "no dataset \"nothing\" is published",
            ),
            (
                r#""dataset": "figures", "resource": "other", "value": "value", "label": "measure""#,
                "has no resource \"other\" (it has figures)",
            ),
            (
                r#""dataset": "figures", "resource": "figures", "value": "amount", "label": "measure""#,
                "value column \"amount\" is not in figures/figures",
            ),
            (
                r#""dataset": "figures", "resource": "figures", "value": "unit", "label": "measure""#,
                "not numbers",
            ),
            (
                r#""dataset": "figures", "resource": "figures", "value": "value", "label": ["measure", "nope"]"#,
                "label column \"nope\"",
            ),
            (
                r#""dataset": "figures", "resource": "figures", "value": "value", "label": "measure", "unit": "units""#,
                "unit column \"units\"",
            ),
            (
                r#""dataset": "figures", "resource": "figures", "value": "value", "label": "measure", "filter": {"colour": "red"}"#,
                "filter:",
            ),
            (
                r#""dataset": "figures", "resource": "figures", "value": "value", "label": "measure", "filter": {"value__gt": "many"}"#,
                "filter:",
            ),
        ];
        for (body, says) in cases {
            let d = parse(&panel(body)).unwrap();
            let got = check(&store, &d).expect_err(body).problems;
            assert!(
                got.iter().any(|m| m.starts_with("panels[0] (\"panel-1\"): ") && m.contains(says)),
                "{body}: wanted {says:?} in {got:?}"
            );
        }
    }

    async fn get(app: &axum::Router, path: &str) -> (axum::http::StatusCode, JsonValue) {
        use tower::ServiceExt;
        let req = axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_api_serves_stored_and_builtin_dashboards() {
        let (_dir, store) = store();
        let ingest = citydata_sensors::GroupCommit::start(&store).unwrap();
        let app = crate::app(AppState { store: store.clone(), ingest: std::sync::Arc::new(ingest) });
        // Only the built-in city dashboard at first.
        let (status, list) = get(&app, "/api/v1/dashboards").await;
        assert_eq!(status, 200);
        assert_eq!(list["dashboards"].as_array().unwrap().len(), 1);
        assert_eq!(list["dashboards"][0]["id"], "city");
        assert_eq!(list["dashboards"][0]["builtin"], true);
        let (status, city) = get(&app, "/api/v1/dashboards/city").await;
        assert_eq!(status, 200);
        assert_eq!(city["builtin"], true);
        assert_eq!(city["panels"][0]["kind"], "live");
        assert_eq!(city["panels"], parse(CITY).unwrap().to_json()["panels"]);
        let (status, body) = get(&app, "/api/v1/dashboards/nowhere").await;
        assert_eq!(status, 404);
        assert_eq!(body["error"]["message"], "dashboard \"nowhere\" not found");

        // A stored dashboard is listed and served normalised; a stored `city` replaces the built-in one.
        store.put_dashboard("mine", GOOD).unwrap();
        store.put_dashboard("city", &GOOD.replace("\"mine\"", "\"city\"")).unwrap();
        let (_, list) = get(&app, "/api/v1/dashboards").await;
        let ids: Vec<&str> =
            list["dashboards"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["city", "mine"]);
        assert!(list["dashboards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["builtin"] == false && d["panels"] == 2));
        let (status, mine) = get(&app, "/api/v1/dashboards/mine").await;
        assert_eq!(status, 200);
        assert_eq!(mine["title"]["zh-Hant"], "我的");
        assert_eq!(mine["panels"][1]["per_group"], 4);
        assert_eq!(mine["panels"][0]["filter"]["value__gt"], "100");
        assert!(mine["modified"].is_string());
        let (_, city) = get(&app, "/api/v1/dashboards/city").await;
        assert_eq!(city["builtin"], false);
        // A stored definition that no longer reads is left out of the list, and is a 500 alone.
        store.put_dashboard("broken", "{").unwrap();
        let (status, list) = get(&app, "/api/v1/dashboards").await;
        assert_eq!(status, 200);
        assert_eq!(list["dashboards"].as_array().unwrap().len(), 2);
        let (status, _) = get(&app, "/api/v1/dashboards/broken").await;
        assert_eq!(status, 500);
        store.remove_dashboard("city").unwrap();
        let (_, city) = get(&app, "/api/v1/dashboards/city").await;
        assert_eq!(city["builtin"], true);
    }
}
