//! Detection of an XML document's character encoding, decoding to UTF-8 for parsing, and the
//! mapping back from positions in the decoded text to byte offsets in the original file.

use std::borrow::Cow;

use super::XmlError;

/// A character encoding seing can read and write XML in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum XmlEncoding {
    /// UTF-8 (the XML default), with or without a byte order mark.
    Utf8,
    /// ISO-8859-1 (Latin-1): one byte per code point, common in PES files.
    Latin1,
    /// ISO-8859-15 (Latin-9): Latin-1 with the euro sign and seven other changes.
    Latin9,
    /// Windows-1252: Latin-1 with printable characters in 0x80–0x9F.
    Windows1252,
    /// UTF-16 little-endian.
    Utf16Le,
    /// UTF-16 big-endian.
    Utf16Be,
}

/// A decoded document: the UTF-8 text the parser sees and how to map it back to the file.
#[derive(Debug)]
pub struct DecodedXml<'a> {
    /// The encoding of the original bytes.
    pub encoding: XmlEncoding,
    /// Length of the byte order mark at the start of the file (0 when none).
    pub bom_len: usize,
    /// The document text in UTF-8, without the byte order mark.
    pub text: Cow<'a, str>,
}

/// Latin-9 code points that differ from Latin-1 (byte, char).
const LATIN9_DIFF: [(u8, char); 8] = [
    (0xA4, '€'),
    (0xA6, 'Š'),
    (0xA8, 'š'),
    (0xB4, 'Ž'),
    (0xB8, 'ž'),
    (0xBC, 'Œ'),
    (0xBD, 'œ'),
    (0xBE, 'Ÿ'),
];

/// Windows-1252 characters of 0x80–0x9F (`None` where the code page leaves a hole).
const CP1252_HIGH: [Option<char>; 32] = [
    Some('€'),
    None,
    Some('‚'),
    Some('ƒ'),
    Some('„'),
    Some('…'),
    Some('†'),
    Some('‡'),
    Some('ˆ'),
    Some('‰'),
    Some('Š'),
    Some('‹'),
    Some('Œ'),
    None,
    Some('Ž'),
    None,
    None,
    Some('‘'),
    Some('’'),
    Some('“'),
    Some('”'),
    Some('•'),
    Some('–'),
    Some('—'),
    Some('˜'),
    Some('™'),
    Some('š'),
    Some('›'),
    Some('œ'),
    None,
    Some('ž'),
    Some('Ÿ'),
];

impl XmlEncoding {
    /// The encoding named by an XML declaration's `encoding` pseudo-attribute, if supported.
    pub fn from_label(label: &str) -> Option<Self> {
        match label.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" | "us-ascii" | "ascii" => Some(Self::Utf8),
            "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "iso_8859-1" | "l1" => {
                Some(Self::Latin1)
            }
            "iso-8859-15" | "iso8859-15" | "latin-9" | "latin9" | "iso_8859-15" => {
                Some(Self::Latin9)
            }
            "windows-1252" | "cp1252" => Some(Self::Windows1252),
            "utf-16le" => Some(Self::Utf16Le),
            "utf-16be" => Some(Self::Utf16Be),
            _ => None,
        }
    }

    /// The encoding's usual name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Latin1 => "ISO-8859-1",
            Self::Latin9 => "ISO-8859-15",
            Self::Windows1252 => "windows-1252",
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
        }
    }

    /// The number of bytes one ASCII character takes in this encoding.
    fn ascii_width(self) -> usize {
        match self {
            Self::Utf16Le | Self::Utf16Be => 2,
            _ => 1,
        }
    }

    /// Encodes ASCII-only text (such as a signature whose non-ASCII characters are written as
    /// character references) in this encoding.
    pub fn encode_ascii(self, ascii: &str) -> Result<Vec<u8>, XmlError> {
        if !ascii.is_ascii() {
            return Err(XmlError::Encoding(
                "le fragment à insérer contient des caractères non ASCII".into(),
            ));
        }
        Ok(match self {
            Self::Utf16Le => ascii.bytes().flat_map(|b| [b, 0]).collect(),
            Self::Utf16Be => ascii.bytes().flat_map(|b| [0, b]).collect(),
            _ => ascii.as_bytes().to_vec(),
        })
    }

    /// The number of bytes `c` takes in this encoding.
    fn char_width(self, c: char) -> usize {
        match self {
            Self::Utf8 => c.len_utf8(),
            Self::Latin1 | Self::Latin9 | Self::Windows1252 => 1,
            Self::Utf16Le | Self::Utf16Be => c.len_utf16() * 2,
        }
    }
}

/// Reads the `encoding` pseudo-attribute of an ASCII-compatible XML declaration.
fn declared_encoding(bytes: &[u8]) -> Result<Option<String>, XmlError> {
    if !bytes.starts_with(b"<?xml") {
        return Ok(None);
    }
    let end = bytes
        .iter()
        .take(512)
        .position(|&b| b == b'>')
        .ok_or_else(|| XmlError::Malformed("déclaration XML non terminée".into()))?;
    let decl = String::from_utf8_lossy(&bytes[..end]);
    let Some(pos) = decl.find("encoding") else {
        return Ok(None);
    };
    let rest = decl[pos + "encoding".len()..].trim_start();
    let rest = rest
        .strip_prefix('=')
        .ok_or_else(|| XmlError::Malformed("déclaration d'encodage invalide".into()))?
        .trim_start();
    let quote = rest
        .chars()
        .next()
        .filter(|c| *c == '"' || *c == '\'')
        .ok_or_else(|| XmlError::Malformed("déclaration d'encodage invalide".into()))?;
    let value = rest[1..]
        .split(quote)
        .next()
        .ok_or_else(|| XmlError::Malformed("déclaration d'encodage invalide".into()))?;
    Ok(Some(value.to_string()))
}

/// Detects the encoding of `bytes` (byte order mark, then XML declaration, as XML 1.0 appendix F)
/// and decodes them to UTF-8, borrowing when the file is already UTF-8.
pub fn decode(bytes: &[u8]) -> Result<DecodedXml<'_>, XmlError> {
    let (encoding, bom_len) = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        (XmlEncoding::Utf8, 3)
    } else if bytes.starts_with(&[0xFF, 0xFE]) {
        (XmlEncoding::Utf16Le, 2)
    } else if bytes.starts_with(&[0xFE, 0xFF]) {
        (XmlEncoding::Utf16Be, 2)
    } else if bytes.starts_with(&[0x3C, 0x00, 0x3F, 0x00]) {
        (XmlEncoding::Utf16Le, 0)
    } else if bytes.starts_with(&[0x00, 0x3C, 0x00, 0x3F]) {
        (XmlEncoding::Utf16Be, 0)
    } else {
        match declared_encoding(bytes)? {
            None => (XmlEncoding::Utf8, 0),
            Some(label) => (
                XmlEncoding::from_label(&label).ok_or_else(|| {
                    XmlError::Encoding(format!("encodage « {label} » non pris en charge"))
                })?,
                0,
            ),
        }
    };
    let body = &bytes[bom_len..];
    let text = match encoding {
        XmlEncoding::Utf8 => Cow::Borrowed(std::str::from_utf8(body).map_err(|e| {
            XmlError::Encoding(format!(
                "le fichier n'est pas de l'UTF-8 valide (octet {})",
                e.valid_up_to() + bom_len
            ))
        })?),
        XmlEncoding::Latin1 => Cow::Owned(body.iter().map(|&b| b as char).collect()),
        XmlEncoding::Latin9 => Cow::Owned(
            body.iter()
                .map(|&b| {
                    LATIN9_DIFF
                        .iter()
                        .find(|(byte, _)| *byte == b)
                        .map_or(b as char, |(_, c)| *c)
                })
                .collect(),
        ),
        XmlEncoding::Windows1252 => {
            let mut s = String::with_capacity(body.len());
            for (i, &b) in body.iter().enumerate() {
                let c = if (0x80..0xA0).contains(&b) {
                    CP1252_HIGH[usize::from(b - 0x80)].ok_or_else(|| {
                        XmlError::Encoding(format!(
                            "octet 0x{b:02X} invalide en windows-1252 (position {i})"
                        ))
                    })?
                } else {
                    b as char
                };
                s.push(c);
            }
            Cow::Owned(s)
        }
        XmlEncoding::Utf16Le | XmlEncoding::Utf16Be => {
            if !body.len().is_multiple_of(2) {
                return Err(XmlError::Encoding(
                    "UTF-16 tronqué (nombre d'octets impair)".into(),
                ));
            }
            let units = body.chunks_exact(2).map(|p| {
                if encoding == XmlEncoding::Utf16Le {
                    u16::from_le_bytes([p[0], p[1]])
                } else {
                    u16::from_be_bytes([p[0], p[1]])
                }
            });
            Cow::Owned(
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .map_err(|_| XmlError::Encoding("UTF-16 invalide".into()))?,
            )
        }
    };
    let utf16 = matches!(encoding, XmlEncoding::Utf16Le | XmlEncoding::Utf16Be);
    match declared_encoding(text.as_bytes())? {
        Some(label) => {
            let coherent = if label.eq_ignore_ascii_case("utf-16") {
                utf16
            } else {
                XmlEncoding::from_label(&label) == Some(encoding)
            };
            if !coherent {
                return Err(XmlError::Encoding(format!(
                    "l'encodage déclaré « {label} » ne correspond pas au contenu du fichier"
                )));
            }
        }
        None if utf16 && bom_len == 0 => {
            return Err(XmlError::Encoding(
                "UTF-16 sans marque d'ordre des octets ni déclaration".into(),
            ));
        }
        None => {}
    }
    Ok(DecodedXml {
        encoding,
        bom_len,
        text,
    })
}

impl DecodedXml<'_> {
    /// Maps byte positions in [`Self::text`] (sorted ascending, on character boundaries) to byte
    /// offsets in the original file, in one pass over the text.
    pub fn original_offsets(&self, positions: &[usize]) -> Vec<usize> {
        if self.encoding == XmlEncoding::Utf8 {
            return positions.iter().map(|p| p + self.bom_len).collect();
        }
        let mut out = Vec::with_capacity(positions.len());
        let mut original = self.bom_len;
        let mut wanted = positions.iter().peekable();
        for (pos, c) in self.text.char_indices() {
            while wanted.next_if(|w| **w == pos).is_some() {
                out.push(original);
            }
            if wanted.peek().is_none() {
                return out;
            }
            original += self.encoding.char_width(c);
        }
        while wanted.next().is_some() {
            out.push(original);
        }
        out
    }

    /// Bytes one ASCII character takes in the original encoding.
    pub fn ascii_width(&self) -> usize {
        self.encoding.ascii_width()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_is_decoded_and_offsets_map_back() {
        let bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xE9t\xE9</a>";
        let d = decode(bytes).unwrap();
        assert_eq!(d.encoding, XmlEncoding::Latin1);
        assert!(d.text.ends_with("<a>été</a>"));
        let end_tag = d.text.find("</a>").unwrap();
        let off = d.original_offsets(&[end_tag])[0];
        assert_eq!(&bytes[off..], b"</a>");
    }

    #[test]
    fn utf16_with_bom_maps_offsets() {
        let s = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>é</a>";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        let d = decode(&bytes).unwrap();
        assert_eq!(d.encoding, XmlEncoding::Utf16Le);
        let end_tag = d.text.find("</a>").unwrap();
        let off = d.original_offsets(&[end_tag])[0];
        assert_eq!(off, bytes.len() - 8);
        assert_eq!(
            XmlEncoding::Utf16Le.encode_ascii("<").unwrap(),
            vec![b'<', 0]
        );
    }

    #[test]
    fn unknown_and_incoherent_encodings_are_refused() {
        let err = decode(b"<?xml version=\"1.0\" encoding=\"EBCDIC-FR\"?><a/>").unwrap_err();
        assert!(err.to_string().contains("EBCDIC-FR"), "{err}");
        assert!(decode(b"<?xml version=\"1.0\"?><a>\xE9</a>").is_err());
    }

    #[test]
    fn windows_1252_and_latin9_differ_from_latin1() {
        let d = decode(b"<?xml version='1.0' encoding='windows-1252'?><a>\x80</a>").unwrap();
        assert!(d.text.contains('€'));
        let d = decode(b"<?xml version='1.0' encoding='ISO-8859-15'?><a>\xA4</a>").unwrap();
        assert!(d.text.contains('€'));
    }
}
