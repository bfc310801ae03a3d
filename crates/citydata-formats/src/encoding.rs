//! Text encodings: detection from the first bytes, and a streaming decoder to UTF-8.
//!
//! Detection order: a byte-order mark (UTF-8, UTF-16 LE/BE) wins; else valid UTF-8; else Big5-HKSCS
//! (encoding_rs's Big5 is the HKSCS superset), which older Hong Kong government files use. Anything
//! that is neither is an error, never decoded with replacement characters.

use std::io::Read;

use encoding_rs::{Decoder, DecoderResult, Encoding, BIG5, UTF_16BE, UTF_16LE};

use crate::FormatError;

/// The text encodings citydata reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    /// UTF-8 without a byte-order mark.
    Utf8,
    /// UTF-8 with a byte-order mark.
    Utf8Bom,
    /// UTF-16 little-endian with a byte-order mark.
    Utf16Le,
    /// UTF-16 big-endian with a byte-order mark.
    Utf16Be,
    /// Big5 with the Hong Kong Supplementary Character Set.
    Big5Hkscs,
}

impl TextEncoding {
    /// The name to show users and to store with a version.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Utf8Bom => "utf-8-sig",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
            TextEncoding::Big5Hkscs => "big5-hkscs",
        }
    }

    fn bom_len(self) -> usize {
        match self {
            TextEncoding::Utf8Bom => 3,
            TextEncoding::Utf16Le | TextEncoding::Utf16Be => 2,
            TextEncoding::Utf8 | TextEncoding::Big5Hkscs => 0,
        }
    }
}

/// Finds the encoding of a text file from its first bytes. `complete` says whether `sample` is the
/// whole file (else its last bytes may end inside a character).
///
/// # Errors
/// Binary content (NUL bytes without a UTF-16 mark), or bytes that are neither UTF-8 nor Big5-HKSCS.
pub fn detect(sample: &[u8], complete: bool) -> Result<TextEncoding, FormatError> {
    if sample.starts_with(b"\xEF\xBB\xBF") {
        return Ok(TextEncoding::Utf8Bom);
    }
    if sample.starts_with(b"\xFF\xFE") {
        return Ok(TextEncoding::Utf16Le);
    }
    if sample.starts_with(b"\xFE\xFF") {
        return Ok(TextEncoding::Utf16Be);
    }
    if let Some(at) = sample.iter().position(|&b| b == 0) {
        return Err(FormatError::file(format!(
            "this is a binary file, not text (a NUL byte at offset {at}); publish CSV, JSON, XML, GeoJSON or XLSX"
        )));
    }
    match std::str::from_utf8(sample) {
        Ok(_) => return Ok(TextEncoding::Utf8),
        // A character cut off at the end of a partial sample is fine.
        Err(e) if !complete && e.error_len().is_none() => return Ok(TextEncoding::Utf8),
        Err(_) => {}
    }
    let mut decoder = BIG5.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(sample.len() * 2);
    let (result, _) = decoder.decode_to_string_without_replacement(sample, &mut out, complete);
    match result {
        DecoderResult::InputEmpty | DecoderResult::OutputFull => Ok(TextEncoding::Big5Hkscs),
        DecoderResult::Malformed(..) => {
            let at = std::str::from_utf8(sample).map_or_else(|e| e.valid_up_to(), |_| 0);
            let line = sample[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(FormatError::file(format!(
                "unknown text encoding: invalid UTF-8 on line {line} (byte {at}), and not Big5-HKSCS either; \
                 save the file as UTF-8"
            )))
        }
    }
}

/// Wraps `inner` so that it reads UTF-8 text with the byte-order mark removed.
///
/// # Errors
/// Only I/O errors while skipping the byte-order mark.
pub fn decode<R: Read + Send + 'static>(
    mut inner: R,
    encoding: TextEncoding,
) -> Result<Box<dyn Read + Send>, FormatError> {
    let mut bom = [0u8; 3];
    inner.read_exact(&mut bom[..encoding.bom_len()])?;
    Ok(match encoding {
        TextEncoding::Utf8 | TextEncoding::Utf8Bom => Box::new(inner),
        TextEncoding::Utf16Le => Box::new(DecodeRead::new(inner, UTF_16LE)),
        TextEncoding::Utf16Be => Box::new(DecodeRead::new(inner, UTF_16BE)),
        TextEncoding::Big5Hkscs => Box::new(DecodeRead::new(inner, BIG5)),
    })
}

/// A reader that turns another encoding into UTF-8 as it streams, failing on malformed input.
struct DecodeRead<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    finished: bool,
    output: Vec<u8>,
    out_start: usize,
    consumed: u64,
    name: &'static str,
}

impl<R: Read> DecodeRead<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Self {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
            finished: false,
            output: Vec::with_capacity(3 * 64 * 1024 + 16),
            out_start: 0,
            consumed: 0,
            name: encoding.name(),
        }
    }

    fn fill_output(&mut self) -> std::io::Result<()> {
        self.output.clear();
        self.out_start = 0;
        while self.output.is_empty() && !self.finished {
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            if self.start == self.end && self.eof {
                // Flush what the decoder holds; a dangling partial character is malformed.
                let mut s = String::with_capacity(16);
                let (res, _) = self.decoder.decode_to_string_without_replacement(&[], &mut s, true);
                if let DecoderResult::Malformed(..) = res {
                    return Err(self.malformed());
                }
                self.finished = true;
                self.output.extend_from_slice(s.as_bytes());
                return Ok(());
            }
            let mut s = String::with_capacity((self.end - self.start) * 3 + 16);
            let (res, read) = self.decoder.decode_to_string_without_replacement(
                &self.input[self.start..self.end],
                &mut s,
                false,
            );
            self.start += read;
            self.consumed += read as u64;
            if let DecoderResult::Malformed(..) = res {
                return Err(self.malformed());
            }
            self.output.extend_from_slice(s.as_bytes());
        }
        Ok(())
    }

    fn malformed(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("invalid {} byte sequence near byte {} of the file", self.name, self.consumed),
        )
    }
}

impl<R: Read> Read for DecodeRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.out_start == self.output.len() {
            self.fill_output()?;
        }
        let n = buf.len().min(self.output.len() - self.out_start);
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Result<String, String> {
        let enc = detect(bytes, true).map_err(|e| e.to_string())?;
        let mut s = String::new();
        decode(std::io::Cursor::new(bytes.to_vec()), enc)
            .map_err(|e| e.to_string())?
            .read_to_string(&mut s)
            .map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn detects_and_decodes_each_encoding() {
        let text = "地區,設施\n油尖旺,圖書館\n";
        let (big5, _, bad) = BIG5.encode(text);
        assert!(!bad);
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let cases: Vec<(Vec<u8>, TextEncoding)> = vec![
            (text.as_bytes().to_vec(), TextEncoding::Utf8),
            ([b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(), TextEncoding::Utf8Bom),
            ([b"\xFF\xFE".as_slice(), &le].concat(), TextEncoding::Utf16Le),
            (
                [b"\xFE\xFF".as_slice(), &text.encode_utf16().flat_map(u16::to_be_bytes).collect::<Vec<_>>()]
                    .concat(),
                TextEncoding::Utf16Be,
            ),
            (big5.to_vec(), TextEncoding::Big5Hkscs),
        ];
        for (bytes, want) in cases {
            assert_eq!(detect(&bytes, true).unwrap(), want);
            assert_eq!(read_all(&bytes).unwrap(), text, "{want:?}");
            // Reading on after the end keeps answering 0, as readers such as csv do.
            let mut r = decode(std::io::Cursor::new(bytes.clone()), want).unwrap();
            std::io::copy(&mut r, &mut std::io::sink()).unwrap();
            assert_eq!(r.read(&mut [0; 8]).unwrap(), 0);
            assert_eq!(r.read(&mut [0; 8]).unwrap(), 0);
        }
    }

    #[test]
    fn hkscs_characters_decode() {
        // 0x9DEF (嘅) and 0x9DEE (㗎), Cantonese characters of HKSCS that plain Big5 lacks.
        let s = read_all(b"\x9d\xef\x9d\xee,ok\n").unwrap();
        assert_eq!(s, "\u{5605}\u{35ce},ok\n");
    }

    #[test]
    fn rejects_binary_and_unknown_bytes() {
        let e = detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", true).unwrap_err();
        assert!(e.message.contains("binary file"), "{e}");
        let e = detect(b"abc\n\xff\xff\xff\n", true).unwrap_err();
        assert!(e.message.contains("line 2"), "{e}");
        // A partial sample may end in the middle of a character.
        assert_eq!(detect("地".as_bytes()[..2].as_ref(), false).unwrap(), TextEncoding::Utf8);
    }

    #[test]
    fn truncated_utf16_is_an_error() {
        let e = read_all(b"\xFF\xFEa\0b").unwrap_err();
        assert!(e.contains("invalid UTF-16LE"), "{e}");
    }
}
