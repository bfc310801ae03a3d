//! Dashboards a publisher added: each kept by its id as the JSON text of its definition.
//!
//! The store neither reads nor checks the definition (its format and its checks belong to the
//! server, which owns the JSON shapes); it keeps the text exactly as given, with the times it was
//! first added and last replaced. Adding a dashboard whose id exists replaces it.

/// A stored dashboard definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDashboard {
    /// Its id (as in `/dashboards/{id}`).
    pub id: String,
    /// The definition, JSON text as it was added.
    pub definition: String,
    /// When it was first added (RFC 3339, UTC).
    pub created: String,
    /// When it was last replaced (RFC 3339, UTC).
    pub modified: String,
}

impl crate::Store {
    /// Adds the dashboard `id` with its `definition` (JSON text), replacing one of the same id.
    /// Returns true when it replaced one.
    ///
    /// # Errors
    /// Database errors.
    pub fn put_dashboard(&self, id: &str, definition: &str) -> crate::Result<bool> {
        self.backend.put_dashboard(id, definition)
    }

    /// The dashboard `id`, if there is one.
    ///
    /// # Errors
    /// Database errors.
    pub fn dashboard(&self, id: &str) -> crate::Result<Option<StoredDashboard>> {
        self.backend.dashboard(id)
    }

    /// Every stored dashboard, by id.
    ///
    /// # Errors
    /// Database errors.
    pub fn dashboards(&self) -> crate::Result<Vec<StoredDashboard>> {
        self.backend.dashboards()
    }

    /// Removes the dashboard `id`; false when there was none.
    ///
    /// # Errors
    /// Database errors.
    pub fn remove_dashboard(&self, id: &str) -> crate::Result<bool> {
        self.backend.remove_dashboard(id)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn dashboards_round_trip_replace_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path).unwrap();
        assert!(store.dashboards().unwrap().is_empty());
        assert_eq!(store.dashboard("city").unwrap(), None);
        let text = r#"{"id": "city", "title": "城市", "panels": []}"#;
        assert!(!store.put_dashboard("city", text).unwrap());
        assert!(!store.put_dashboard("air", "{}").unwrap());
        let got = store.dashboard("city").unwrap().unwrap();
        assert_eq!((got.id.as_str(), got.definition.as_str()), ("city", text));
        assert_eq!(got.created, got.modified);
        // Replacing keeps the first time and the one row; a new store on the same file sees it.
        assert!(store.put_dashboard("city", "{\"v\": 2}").unwrap());
        drop(store);
        let store = Store::open(&path).unwrap();
        let again = store.dashboard("city").unwrap().unwrap();
        assert_eq!(again.definition, "{\"v\": 2}");
        assert_eq!(again.created, got.created);
        let ids: Vec<String> = store.dashboards().unwrap().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["air", "city"]);
        assert!(store.remove_dashboard("air").unwrap());
        assert!(!store.remove_dashboard("air").unwrap());
        assert_eq!(store.dashboards().unwrap().len(), 1);
        // An id is a value, never SQL.
        assert!(!store.put_dashboard("x'); DROP TABLE dashboards; --", "{}").unwrap());
        assert_eq!(store.dashboards().unwrap().len(), 2);
    }
}
