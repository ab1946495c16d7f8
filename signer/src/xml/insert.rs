//! Byte-preserving insertion: new fragments are spliced into the original bytes, which are
//! otherwise copied unchanged (the file is never re-serialized).

use std::io::Write;

use bergshamra_xml::uppsala::{Document, NodeId};

use super::{DecodedXml, XmlError};

/// One fragment to insert at a byte offset of the original file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// Offset in the original bytes.
    pub offset: usize,
    /// Bytes to insert, already in the file's encoding.
    pub bytes: Vec<u8>,
}

/// Position in the decoded text of the end tag of `element` (where a last child goes).
pub fn end_tag_position(doc: &Document<'_>, element: NodeId) -> Result<usize, XmlError> {
    let range = doc
        .node_range(element)
        .ok_or_else(|| XmlError::Malformed("élément sans position dans le source".into()))?;
    let source = &doc.input_text()[range.clone()];
    if source.ends_with("/>") && !source.contains("</") {
        return Err(XmlError::Malformed(
            "élément vide : impossible d'y ajouter une signature".into(),
        ));
    }
    // Nothing but the end tag follows its "</": comments and CDATA end before it.
    let at = source
        .rfind("</")
        .ok_or_else(|| XmlError::Malformed("balise fermante introuvable".into()))?;
    Ok(range.start + at)
}

/// Writes `original` with the insertions (offsets ascending) to `out`.
pub fn write_with_insertions<W: Write>(
    original: &[u8],
    insertions: &[Insertion],
    out: &mut W,
) -> std::io::Result<()> {
    let mut from = 0;
    for insertion in insertions {
        out.write_all(&original[from..insertion.offset])?;
        out.write_all(&insertion.bytes)?;
        from = insertion.offset;
    }
    out.write_all(&original[from..])
}

/// Builds the insertions for ASCII fragments placed at decoded-text positions.
pub fn insertions_at(
    decoded: &DecodedXml<'_>,
    mut fragments: Vec<(usize, String)>,
) -> Result<Vec<Insertion>, XmlError> {
    fragments.sort_by_key(|(pos, _)| *pos);
    let positions: Vec<usize> = fragments.iter().map(|(p, _)| *p).collect();
    let offsets = decoded.original_offsets(&positions);
    fragments
        .into_iter()
        .zip(offsets)
        .map(|((_, text), offset)| {
            Ok(Insertion {
                offset,
                bytes: decoded.encoding.encode_ascii(&text)?,
            })
        })
        .collect()
}

/// Escapes text for element content or a double-quoted attribute, writing every non-ASCII
/// character as a character reference so the result is valid in any encoding.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", u32::from(c))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{encoding, parse};

    #[test]
    fn insertion_keeps_every_original_byte_in_latin1() {
        let original = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<r><b Id=\"x\">\xE9t\xE9<!-- </fake> --></b></r>\n";
        let decoded = encoding::decode(original).unwrap();
        let doc = parse::parse(&decoded.text).unwrap();
        let root = doc.document_element().unwrap();
        let b = parse::child(&doc, root, None, "b").unwrap();
        let pos = end_tag_position(&doc, b).unwrap();
        let ins = insertions_at(
            &decoded,
            vec![(pos, format!("<s>{}</s>", escape("Orléans")))],
        )
        .unwrap();
        let mut out = Vec::new();
        write_with_insertions(original, &ins, &mut out).unwrap();
        let expected: &[u8] = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<r><b Id=\"x\">\xE9t\xE9<!-- </fake> --><s>Orl&#233;ans</s></b></r>\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn empty_elements_cannot_take_a_child() {
        let doc = parse::parse("<r><b/></r>").unwrap();
        let b = parse::child(&doc, doc.document_element().unwrap(), None, "b").unwrap();
        assert!(end_tag_position(&doc, b).is_err());
    }
}
