//! feeds (in progress).
