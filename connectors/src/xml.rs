//! XML helpers shared by the formats: decoding the bytes of a received message, navigating the
//! parsed tree, and the writer the packages are built with.
//!
//! Parsing is done by `roxmltree`, which refuses any DTD (so no entity is ever expanded or
//! fetched). Writing goes through `quick-xml`, whose attribute and text events escape their
//! values: no markup is ever assembled from unescaped strings.

use std::borrow::Cow;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use roxmltree::{Document, Node};

use crate::{Error, Result};

/// The writer every package's XML is built with.
pub(crate) type XmlWriter = Writer<Vec<u8>>;

/// A new writer whose output starts with an UTF-8 XML declaration.
pub(crate) fn writer() -> Result<XmlWriter> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(write_error)?;
    Ok(writer)
}

/// Writes `<name>text</name>` with the text escaped.
pub(crate) fn text_element(writer: &mut XmlWriter, name: &str, text: &str) -> std::io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// Writing into memory cannot fail for I/O reasons; this names what did fail anyway.
pub(crate) fn write_error(error: std::io::Error) -> Error {
    Error::Xml(format!("écriture XML : {error}"))
}

/// The final bytes of a writer, with a closing newline.
pub(crate) fn finish(writer: XmlWriter) -> Vec<u8> {
    let mut bytes = writer.into_inner();
    bytes.push(b'\n');
    bytes
}

/// Decodes a received XML document to text, following its declared encoding.
///
/// @ctes and Hélios returns are usually ISO-8859-1; `roxmltree` only reads UTF-8 text.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, str>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match declared_encoding(bytes).as_deref() {
        None | Some("UTF-8" | "UTF8" | "US-ASCII" | "ASCII") => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|e| Error::Xml(format!("UTF-8 invalide : {e}"))),
        // ISO-8859-1 maps each byte to the code point of the same value.
        Some("ISO-8859-1" | "ISO8859-1" | "LATIN1" | "LATIN-1") => {
            Ok(Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()))
        }
        Some(other) => Err(Error::Xml(format!("encodage non pris en charge : {other}"))),
    }
}

/// The `encoding` pseudo-attribute of the XML declaration, upper-cased.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.strip_prefix(b"<?xml")?;
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&head[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_ascii_uppercase())
}

/// Parses decoded text; DTDs are refused (roxmltree's default), so no entity is resolved.
pub(crate) fn parse(text: &str) -> Result<Document<'_>> {
    Ok(Document::parse(text)?)
}

/// The first child element of `node` named `name` in namespace `ns` (`""` for none).
pub(crate) fn child<'a, 'input>(
    node: Node<'a, 'input>,
    ns: &str,
    name: &str,
) -> Option<Node<'a, 'input>> {
    node.children().find(|c| c.is_element() && is(*c, ns, name))
}

/// The child elements of `node` named `name` in namespace `ns` (`""` for none).
pub(crate) fn children<'a, 'input>(
    node: Node<'a, 'input>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && is(*c, ns, name))
}

/// Whether `node` is the element `name` in namespace `ns` (`""` for none).
pub(crate) fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    let tag = node.tag_name();
    tag.name() == name && tag.namespace().unwrap_or("") == ns
}

/// The first child element's trimmed text, or an error naming what is missing.
pub(crate) fn required_text(node: Node<'_, '_>, ns: &str, name: &str) -> Result<String> {
    child(node, ns, name)
        .map(|c| c.text().unwrap_or("").trim().to_owned())
        .ok_or_else(|| Error::Format(format!("<{name}> absent de <{}>", node.tag_name().name())))
}

/// Whether every character may appear in an XML 1.0 document.
pub(crate) fn is_xml_text(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_declaration_is_decoded_byte_for_byte() {
        let bytes = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xE9t\xE9</a>";
        let text = decode(bytes).unwrap();
        assert!(text.ends_with("<a>été</a>"));
    }

    #[test]
    fn undeclared_encoding_must_be_utf8() {
        assert!(decode("<a>é</a>".as_bytes()).is_ok());
        assert!(matches!(decode(b"<a>\xE9</a>"), Err(Error::Xml(_))));
        assert!(matches!(
            decode(b"<?xml version='1.0' encoding='EBCDIC'?><a/>"),
            Err(Error::Xml(_))
        ));
    }

    #[test]
    fn dtd_and_entities_are_refused() {
        let text = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
        assert!(matches!(parse(text), Err(Error::Xml(_))));
    }

    #[test]
    fn control_characters_are_not_xml_text() {
        assert!(is_xml_text("Délibération n°12\ttab"));
        assert!(!is_xml_text("bell\u{7}"));
        assert!(!is_xml_text("nul\0"));
    }
}
