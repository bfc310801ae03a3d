//! The HTML form of the OGC API answers: plain, accessible pages (a heading, the links, tables), with
//! every text escaped. The web UI's map shows the same features richer; these pages are for people
//! following the API's links in a browser.

use serde_json::Value as Json;

use super::Collection;

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body`.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:1rem;line-height:1.5}}\
         table{{border-collapse:collapse;display:block;overflow-x:auto}}td,th{{border:1px solid #999;padding:.25rem .5rem;text-align:left;vertical-align:top}}\
         a:focus{{outline:3px solid #1a5fb4}}nav a{{margin-right:1rem}}</style></head>\
         <body><a href=\"#main\" class=\"skip\">Skip to content</a>\
         <nav aria-label=\"API\"><a href=\"/ogc?f=html\">OGC API home</a><a href=\"/ogc/collections?f=html\">Collections</a>\
         <a href=\"/ogc/conformance?f=html\">Conformance</a><a href=\"/ogc/api?f=html\">API definition</a></nav>\
         <main id=\"main\"><h1>{t}</h1>\n{body}</main></body></html>\n",
        t = escape(title)
    )
}

pub(crate) fn landing(title: &str, description: &str, base: &str) -> String {
    page(
        title,
        &format!(
            "<p>{d}</p><ul><li><a href=\"{b}/ogc/collections?f=html\">Collections</a></li>\
             <li><a href=\"{b}/ogc/conformance?f=html\">Conformance classes</a></li>\
             <li><a href=\"{b}/ogc/api\">API definition (OpenAPI 3.0, JSON)</a></li>\
             <li><a href=\"{b}/ogc?f=json\">This page as JSON</a></li></ul>",
            d = escape(description),
            b = escape(base)
        ),
    )
}

pub(crate) fn conformance() -> String {
    let items: String =
        super::CONFORMANCE.iter().map(|c| format!("<li><code>{}</code></li>", escape(c))).collect();
    page("Conformance classes", &format!("<ul>{items}</ul>"))
}

pub(crate) fn api_page(doc: &Json, base: &str) -> String {
    let mut rows = String::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            let summary = ops["get"]["summary"].as_str().unwrap_or("");
            rows.push_str(&format!(
                "<tr><td><code>GET {}</code></td><td>{}</td></tr>",
                escape(path),
                escape(summary)
            ));
        }
    }
    page(
        "API definition",
        &format!(
            "<p>The machine-readable definition: <a href=\"{b}/ogc/api\">OpenAPI 3.0 (JSON)</a>.</p>\
             <table><thead><tr><th scope=\"col\">Path</th><th scope=\"col\">What it does</th></tr></thead>\
             <tbody>{rows}</tbody></table>",
            b = escape(base)
        ),
    )
}

pub(crate) fn collections(all: &[Collection], base: &str) -> String {
    let mut rows = String::new();
    for c in all {
        rows.push_str(&format!(
            "<tr><td><a href=\"{b}/ogc/collections/{id}?f=html\">{t}</a></td><td>{n}</td><td>{types}</td>\
             <td><a href=\"{b}/ogc/collections/{id}/items\">GeoJSON</a></td></tr>",
            b = escape(base),
            id = escape(&c.id),
            t = escape(&c.title()),
            n = c.res.spatial.count,
            types = escape(&c.res.spatial.types.join(", ")),
        ));
    }
    page(
        "Collections",
        &format!(
            "<p>{n} collections.</p><table><thead><tr><th scope=\"col\">Collection</th>\
             <th scope=\"col\">Features</th><th scope=\"col\">Geometry</th><th scope=\"col\">Data</th></tr></thead>\
             <tbody>{rows}</tbody></table>",
            n = all.len()
        ),
    )
}

pub(crate) fn collection(c: &Collection, base: &str) -> String {
    let extent = c.res.spatial.extent.map_or_else(
        || "none".to_owned(),
        |e| format!("{:.5}, {:.5} to {:.5}, {:.5} (longitude, latitude)", e[0], e[1], e[2], e[3]),
    );
    let fields: String = c
        .properties()
        .map(|f| {
            format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(&f.name),
                escape(&format!("{:?}", f.field_type).to_lowercase())
            )
        })
        .collect();
    page(
        &c.title(),
        &format!(
            "<p>{d}</p><dl><dt>Features</dt><dd>{n}</dd><dt>Geometry</dt><dd>{types}</dd><dt>Extent</dt><dd>{extent}</dd>\
             <dt>Made from</dt><dd>{src}</dd></dl>\
             <p><a href=\"{b}/ogc/collections/{id}/items?f=html\">Browse the features</a> · \
             <a href=\"{b}/ogc/collections/{id}/items\">GeoJSON</a> · \
             <a href=\"{b}/ogc/collections/{id}/queryables?f=html\">Queryables</a> · \
             <a href=\"{b}/tiles/{id}.json\">Vector tiles</a></p>\
             <h2>Properties</h2><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Type</th></tr></thead>\
             <tbody>{fields}</tbody></table>",
            d = escape(&c.description()),
            n = c.res.spatial.count,
            types = escape(&c.res.spatial.types.join(", ")),
            src = escape(&c.res.spatial.source),
            b = escape(base),
            id = escape(&c.id),
        ),
    )
}

pub(crate) fn queryables(c: &Collection, body: &Json, base: &str) -> String {
    let mut rows = String::new();
    if let Some(props) = body["properties"].as_object() {
        for (name, s) in props {
            let t = s["type"].as_str().or_else(|| s["format"].as_str()).unwrap_or("");
            rows.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>", escape(name), escape(t)));
        }
    }
    page(
        &format!("Queryables of {}", c.title()),
        &format!(
            "<p>Filter with <code>filter</code> (CQL2) or with a property as a query parameter, e.g. \
             <code>{b}/ogc/collections/{id}/items?name=value</code>.</p>\
             <table><thead><tr><th scope=\"col\">Property</th><th scope=\"col\">Type</th></tr></thead><tbody>{rows}</tbody></table>",
            b = escape(base),
            id = escape(&c.id)
        ),
    )
}

/// A page of features: their properties in a table, with the paging links.
pub(crate) fn features(c: &Collection, features: &Json, links: &[Json]) -> String {
    let props: Vec<&citydata_model::Field> = c.properties().collect();
    let mut head = String::from("<th scope=\"col\">id</th>");
    for f in &props {
        head.push_str(&format!("<th scope=\"col\">{}</th>", escape(&f.name)));
    }
    let mut rows = String::new();
    for feat in features["features"].as_array().map_or(&[][..], Vec::as_slice) {
        let id = feat["id"].to_string();
        rows.push_str(&format!(
            "<tr><td><a href=\"/ogc/collections/{}/items/{id}?f=html\">{id}</a></td>",
            escape(&c.id)
        ));
        for f in &props {
            rows.push_str(&format!("<td>{}</td>", escape(&show(&feat["properties"][&f.name]))));
        }
        rows.push_str("</tr>");
    }
    let nav: String = links
        .iter()
        .filter(|l| matches!(l["rel"].as_str(), Some("next" | "prev")) && l["type"] == super::HTML_TYPE)
        .map(|l| {
            format!(
                "<a rel=\"{r}\" href=\"{h}\">{t}</a> ",
                r = escape(l["rel"].as_str().unwrap_or("")),
                h = escape(l["href"].as_str().unwrap_or("")),
                t = if l["rel"] == "next" { "Next page" } else { "Previous page" }
            )
        })
        .collect();
    page(
        &c.title(),
        &format!(
            "<p>{n} features on this page{m}.</p><p>{nav}</p><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table><p>{nav}</p>",
            n = features["numberReturned"],
            m = features["numberMatched"].as_u64().map(|m| format!(" of {m}")).unwrap_or_default(),
        ),
    )
}

/// One feature: its properties and geometry.
pub(crate) fn feature(c: &Collection, f: &Json) -> String {
    let mut rows = String::new();
    if let Some(props) = f["properties"].as_object() {
        for (k, v) in props {
            rows.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                escape(k),
                escape(&show(v))
            ));
        }
    }
    page(
        &format!("{}: feature {}", c.title(), f["id"]),
        &format!(
            "<table><tbody>{rows}</tbody></table><h2>Geometry</h2><pre>{}</pre>",
            escape(&f["geometry"].to_string())
        ),
    )
}

fn show(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}
