//! Dataset metadata as a publisher writes it (`--meta META.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Schema;

/// The languages citydata serves, in order of preference for display.
pub const LANGUAGES: [&str; 3] = ["en", "zh-Hant", "zh-Hans"];

/// The languages to read a text in for a reader of `lang`, best first: `lang`, the other Chinese
/// script, English (English first for any language not of [`LANGUAGES`]).
#[must_use]
pub fn reading_order(lang: &str) -> [&'static str; 3] {
    match lang {
        "zh-Hant" => ["zh-Hant", "zh-Hans", "en"],
        "zh-Hans" => ["zh-Hans", "zh-Hant", "en"],
        _ => LANGUAGES,
    }
}

/// Text in several languages, keyed `en`, `zh-Hant`, `zh-Hans`. A plain string in the metadata file
/// is taken as English.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(transparent)]
pub struct LangText(pub BTreeMap<String, String>);

impl LangText {
    /// English text only.
    #[must_use]
    pub fn en(s: impl Into<String>) -> Self {
        Self(BTreeMap::from([("en".to_owned(), s.into())]))
    }

    /// The text in the first language of [`LANGUAGES`] that has one, else any.
    #[must_use]
    pub fn best(&self) -> Option<&str> {
        LANGUAGES.iter().find_map(|l| self.0.get(*l)).or_else(|| self.0.values().next()).map(String::as_str)
    }

    /// The text for a reader of `lang`: in `lang`, else the other Chinese script, else English,
    /// else any (see [`reading_order`]).
    #[must_use]
    pub fn in_lang(&self, lang: &str) -> Option<&str> {
        reading_order(lang)
            .iter()
            .find_map(|l| self.0.get(*l).filter(|s| !s.is_empty()))
            .map(String::as_str)
            .or_else(|| self.best())
    }

    /// True when no language has text.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.values().all(String::is_empty)
    }
}

impl<'de> Deserialize<'de> for LangText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(BTreeMap<String, String>),
        }
        match Raw::deserialize(d)? {
            Raw::One(s) => Ok(LangText::en(s)),
            Raw::Many(m) => {
                if let Some(k) = m.keys().find(|k| !LANGUAGES.contains(&k.as_str())) {
                    return Err(serde::de::Error::custom(format!(
                        "unknown language {k:?}: use one of en, zh-Hant, zh-Hans"
                    )));
                }
                Ok(LangText(m))
            }
        }
    }
}

/// What a publisher may say about one resource of a dataset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceMeta {
    /// Title of the resource.
    #[serde(default, skip_serializing_if = "LangText::is_empty")]
    pub title: LangText,
    /// Description of the resource.
    #[serde(default, skip_serializing_if = "LangText::is_empty")]
    pub description: LangText,
    /// Schema override: the listed fields replace the inferred ones of the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// Which columns hold the location, when the publish should not find them by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<GeometrySpec>,
}

/// The columns that locate each row of a table: `x` holds longitudes or grid eastings, `y`
/// latitudes or northings, in the coordinate reference system `crs` (`EPSG:4326` when not given;
/// `EPSG:2326` for the Hong Kong 1980 Grid). `"geometry": {"none": true}` turns the search for
/// coordinate columns off.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeometrySpec {
    /// The column of longitudes or eastings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The column of latitudes or northings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The coordinate reference system of `x` and `y`, e.g. `EPSG:2326`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crs: Option<String>,
    /// No geometry: do not look for coordinate columns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub none: bool,
}

/// The metadata file given to `citydata publish --meta`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetMeta {
    /// Title, a string or a language map.
    #[serde(default, skip_serializing_if = "LangText::is_empty")]
    pub title: LangText,
    /// Description, a string or a language map.
    #[serde(default, skip_serializing_if = "LangText::is_empty")]
    pub description: LangText,
    /// The publishing organisation: its slug, or its name (a slug is made from it). Created on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// The organisation's title when it is created (a string or a language map).
    #[serde(default, skip_serializing_if = "LangText::is_empty")]
    pub organization_title: LangText,
    /// Keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Licence identifier or title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Update frequency (`daily`, `monthly`, `irregular`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    /// Theme (`economy`, `environment`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// Where the data comes from, for attribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Schema override for a single-resource dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// The location columns of a single-resource dataset (see [`GeometrySpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geometry: Option<GeometrySpec>,
    /// Per-resource metadata, by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, ResourceMeta>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_read_in_the_readers_language_then_the_other_script_then_english() {
        let t: LangText = serde_json::from_str(r#"{"en":"Air","zh-Hant":"空氣","zh-Hans":""}"#).unwrap();
        assert_eq!(t.in_lang("zh-Hant"), Some("空氣"));
        assert_eq!(t.in_lang("zh-Hans"), Some("空氣"), "empty text does not count");
        assert_eq!(t.in_lang("en"), Some("Air"));
        assert_eq!(t.in_lang("fr"), Some("Air"));
        assert_eq!(LangText::default().in_lang("en"), None);
    }

    #[test]
    fn titles_as_strings_or_language_maps() {
        let m: DatasetMeta = serde_json::from_str(
            r#"{"title":{"en":"Air quality","zh-Hant":"空氣質素"},"description":"Hourly",
                "organization":"epd","tags":["air"]}"#,
        )
        .unwrap();
        assert_eq!(m.title.0["zh-Hant"], "空氣質素");
        assert_eq!(m.description.best(), Some("Hourly"));
        let bad = serde_json::from_str::<DatasetMeta>(r#"{"title":{"fr":"x"}}"#).unwrap_err();
        assert!(bad.to_string().contains("unknown language"), "{bad}");
        let typo = serde_json::from_str::<DatasetMeta>(r#"{"titel":"x"}"#).unwrap_err();
        assert!(typo.to_string().contains("titel"), "{typo}");
    }
}
