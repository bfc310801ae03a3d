//! XLSX reader (placeholder until written).

use std::path::PathBuf;

use crate::{Columns, CountingRead, FormatError, ReadOptions, Reader, Sink, Skipped};

/// Reads the first (or the chosen) sheet of an XLSX workbook.
pub(crate) struct XlsxReader {
    #[allow(dead_code)]
    path: PathBuf,
}

impl XlsxReader {
    pub(crate) fn new(path: PathBuf, _file: CountingRead, _options: &ReadOptions) -> Self {
        Self { path }
    }
}

impl Reader for XlsxReader {
    fn read(&mut self, _: &mut Columns, _: &mut Vec<Skipped>, _: &mut Sink<'_>) -> Result<(), FormatError> {
        Err(FormatError::file("XLSX is not supported yet"))
    }
}
