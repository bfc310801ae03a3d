//! Frictionless Table Schema: the fields of a table and their types.

use serde::{Deserialize, Serialize};

/// The cell texts read as "no value" wherever they stand (Frictionless `missingValues`).
pub const NULL_MARKERS: [&str; 6] = ["", "N/A", "NA", "-", "--", "null"];

/// The type of a column, named as Frictionless names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Whole numbers that fit in 64 bits.
    Integer,
    /// Decimal numbers (stored as doubles).
    Number,
    /// `true`/`false` (also `yes`/`no`, `Y`/`N`).
    Boolean,
    /// Calendar dates, stored as `YYYY-MM-DD`.
    Date,
    /// Date and time, stored as ISO 8601.
    Datetime,
    /// Time of day, stored as `HH:MM:SS`.
    Time,
    /// Anything else.
    String,
    /// A GeoJSON geometry, stored as its JSON text.
    #[serde(rename = "geojson")]
    Geometry,
}

impl FieldType {
    /// The Frictionless name of the type.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Time => "time",
            FieldType::String => "string",
            FieldType::Geometry => "geojson",
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The column name exactly as the file gave it (Chinese and bilingual names are kept).
    pub name: String,
    /// Its type.
    #[serde(rename = "type", default = "default_type")]
    pub field_type: FieldType,
    /// How values were written in the source when that is not the canonical form (for dates:
    /// `%d/%m/%Y`; for numbers with thousands separators: `groupChar` is set instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Frictionless `groupChar`: the thousands separator seen in the source.
    #[serde(rename = "groupChar", default, skip_serializing_if = "Option::is_none")]
    pub group_char: Option<String>,
    /// A human title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A human description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_type() -> FieldType {
    FieldType::String
}

impl Field {
    /// A field with just a name and a type.
    #[must_use]
    pub fn new(name: impl Into<String>, field_type: FieldType) -> Self {
        Self { name: name.into(), field_type, format: None, group_char: None, title: None, description: None }
    }
}

/// A Frictionless Table Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Schema {
    /// The columns, in order.
    pub fields: Vec<Field>,
    /// The texts read as null.
    #[serde(rename = "missingValues", default = "default_missing")]
    pub missing_values: Vec<String>,
}

fn default_missing() -> Vec<String> {
    NULL_MARKERS.iter().map(|s| (*s).to_owned()).collect()
}

impl Schema {
    /// A schema over `fields` with the standard null markers.
    #[must_use]
    pub fn new(fields: Vec<Field>) -> Self {
        Self { fields, missing_values: default_missing() }
    }

    /// The field named `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Applies an override: each field of `over` replaces the type, format, title and description of
    /// the field of the same name here. Names unknown here are returned as errors.
    ///
    /// # Errors
    /// The names in `over` that this schema does not have.
    pub fn apply_override(&mut self, over: &Schema) -> Result<(), Vec<String>> {
        let mut unknown = Vec::new();
        for o in &over.fields {
            match self.fields.iter_mut().find(|f| f.name == o.name) {
                Some(f) => {
                    f.field_type = o.field_type;
                    f.format.clone_from(&o.format);
                    f.group_char.clone_from(&o.group_char);
                    if o.title.is_some() {
                        f.title.clone_from(&o.title);
                    }
                    if o.description.is_some() {
                        f.description.clone_from(&o.description);
                    }
                }
                None => unknown.push(o.name.clone()),
            }
        }
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(unknown)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frictionless_round_trip() {
        let json = r#"{"fields":[{"name":"地區 District","type":"string"},{"name":"n","type":"integer"},
            {"name":"g","type":"geojson"}],"missingValues":["","-"]}"#;
        let s: Schema = serde_json::from_str(json).unwrap();
        assert_eq!(s.fields[0].name, "地區 District");
        assert_eq!(s.fields[2].field_type, FieldType::Geometry);
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["fields"][1], serde_json::json!({"name":"n","type":"integer"}));
    }

    #[test]
    fn override_changes_types_and_reports_unknown_names() {
        let mut s =
            Schema::new(vec![Field::new("code", FieldType::Integer), Field::new("x", FieldType::Number)]);
        let over =
            Schema::new(vec![Field::new("code", FieldType::String), Field::new("nope", FieldType::Date)]);
        assert_eq!(s.apply_override(&over), Err(vec!["nope".to_owned()]));
        assert_eq!(s.fields[0].field_type, FieldType::String);
    }
}
