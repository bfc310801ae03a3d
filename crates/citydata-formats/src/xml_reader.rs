//! XML reader (placeholder until written).

use std::io::Read;

use crate::{Columns, FormatError, ReadOptions, Reader, Sink, Skipped};

/// Reads the repeated record element of an XML document.
pub(crate) struct XmlReader {
    #[allow(dead_code)]
    input: Box<dyn Read + Send>,
}

impl XmlReader {
    pub(crate) fn new(input: Box<dyn Read + Send>, _options: &ReadOptions) -> Self {
        Self { input }
    }
}

impl Reader for XmlReader {
    fn read(&mut self, _: &mut Columns, _: &mut Vec<Skipped>, _: &mut Sink<'_>) -> Result<(), FormatError> {
        Err(FormatError::file("XML is not supported yet"))
    }
}
