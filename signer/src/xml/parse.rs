//! Safe XML parsing: no DTD entities, no external identifiers, nothing fetched.
//!
//! The parser (`uppsala`) never fetches external resources and bounds entity expansion, but a
//! document that declares entities has no place in a signed file: such documents (XXE attempts,
//! billion-laughs) are refused before parsing, with a clear reason.

use bergshamra_xml::uppsala::{Document, NodeId, NodeKind, Parser};

use super::XmlError;

/// Refuses a document type declaration that declares entities or names an external subset.
fn check_doctype(text: &str) -> Result<(), XmlError> {
    // A DOCTYPE can only appear in the prolog, before the root element: look there only, so
    // that a 30 MB file is not scanned for it.
    let prolog_end = first_element_start(text).unwrap_or(text.len());
    let prolog = &text[..prolog_end];
    let Some(start) = prolog.find("<!DOCTYPE") else {
        return Ok(());
    };
    let doctype = &text[start..];
    let header_end = doctype.find(['[', '>']).unwrap_or(doctype.len());
    let header = &doctype[..header_end];
    if header.contains("SYSTEM") || header.contains("PUBLIC") {
        return Err(XmlError::Forbidden(
            "la déclaration DOCTYPE désigne une DTD externe".into(),
        ));
    }
    if doctype.contains("<!ENTITY") {
        return Err(XmlError::Forbidden(
            "la déclaration DOCTYPE déclare des entités (XXE ou expansion d'entités)".into(),
        ));
    }
    Ok(())
}

/// Byte position of the root element's start tag: the first `<` not followed by `?` or `!`.
fn first_element_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    while let Some(off) = memchr_lt(&bytes[pos..]) {
        let at = pos + off;
        match bytes.get(at + 1) {
            Some(b'?') => pos = text[at..].find("?>").map(|e| at + e + 2)?,
            Some(b'!') if text[at..].starts_with("<!--") => {
                pos = text[at..].find("-->").map(|e| at + e + 3)?
            }
            Some(b'!') => {
                // DOCTYPE: skip its internal subset, which may hold '<'.
                let rest = &text[at..];
                let end = match (rest.find('['), rest.find('>')) {
                    (Some(b), Some(g)) if b < g => rest
                        .find("]")
                        .and_then(|c| rest[c..].find('>').map(|g2| c + g2 + 1))?,
                    (_, Some(g)) => g + 1,
                    _ => return None,
                };
                pos = at + end;
            }
            _ => return Some(at),
        }
    }
    None
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'<')
}

/// Parses UTF-8 XML text safely (see the module documentation).
pub fn parse(text: &str) -> Result<Document<'_>, XmlError> {
    check_doctype(text)?;
    Parser::new()
        .with_forbid_entities(true)
        .parse(text)
        .map_err(|e| XmlError::Malformed(e.to_string()))
}

/// The element children of `node`.
pub fn child_elements<'d>(
    doc: &'d Document<'_>,
    node: NodeId,
) -> impl Iterator<Item = NodeId> + 'd {
    doc.children_iter(node)
        .filter(|c| matches!(doc.node_kind(*c), Some(NodeKind::Element(_))))
}

/// The first child element of `node` with this namespace (`None`: no namespace) and local name.
pub fn child(doc: &Document<'_>, node: NodeId, ns: Option<&str>, local: &str) -> Option<NodeId> {
    child_elements(doc, node).find(|c| is_element(doc, *c, ns, local))
}

/// Whether `node` is an element with this namespace (`None`: no namespace) and local name.
pub fn is_element(doc: &Document<'_>, node: NodeId, ns: Option<&str>, local: &str) -> bool {
    doc.element(node)
        .is_some_and(|e| e.name.local_name == local && e.name.namespace_uri.as_deref() == ns)
}

/// The local name of an element.
pub fn local_name<'d>(doc: &'d Document<'_>, node: NodeId) -> Option<&'d str> {
    doc.element(node).map(|e| e.name.local_name.as_ref())
}

/// All descendant elements of `node` (document order) with this local name, any namespace.
pub fn descendants_named(doc: &Document<'_>, node: NodeId, local: &str) -> Vec<NodeId> {
    doc.descendants(node)
        .into_iter()
        .filter(|d| local_name(doc, *d) == Some(local))
        .collect()
}

/// Concatenated text content of an element.
pub fn text(doc: &Document<'_>, node: NodeId) -> String {
    doc.text_content_deep(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billion_laughs_is_refused_quickly() {
        let mut doc =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            doc.push_str(&format!(
                "<!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        doc.push_str("]>\n<lolz>&lol9;</lolz>");
        let started = std::time::Instant::now();
        let err = parse(&doc).unwrap_err();
        assert!(matches!(err, XmlError::Forbidden(_)), "{err}");
        assert!(started.elapsed().as_millis() < 100);
    }

    #[test]
    fn external_entities_and_external_dtds_are_refused() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>";
        assert!(matches!(parse(xxe), Err(XmlError::Forbidden(_))));
        let ext = "<!DOCTYPE r SYSTEM \"http://example.invalid/r.dtd\"><r/>";
        assert!(matches!(parse(ext), Err(XmlError::Forbidden(_))));
        let pe = "<!DOCTYPE r [<!ENTITY % p SYSTEM \"http://example.invalid/p\"> %p;]><r/>";
        assert!(matches!(parse(pe), Err(XmlError::Forbidden(_))));
    }

    #[test]
    fn a_plain_internal_subset_and_a_normal_document_parse() {
        assert!(parse("<!DOCTYPE r [<!ELEMENT r ANY>]><r a=\"1\"><!-- c --><s/></r>").is_ok());
        let doc = parse("<?xml version=\"1.0\"?><r xmlns=\"urn:x\"><s>t</s></r>").unwrap();
        let root = doc.document_element().unwrap();
        let s = child(&doc, root, Some("urn:x"), "s").unwrap();
        assert_eq!(text(&doc, s), "t");
    }

    #[test]
    fn malformed_xml_is_a_clear_error() {
        assert!(matches!(parse("<r><s></r>"), Err(XmlError::Malformed(_))));
    }
}
