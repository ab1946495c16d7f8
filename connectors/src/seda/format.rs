//! File format identification for `FormatIdentification`: MIME type, PRONOM identifier where we
//! can name it with confidence, and a readable label.
//!
//! PRONOM choices (The National Archives' registry):
//! - PDF: by the header's version — 1.0 `fmt/14`, 1.1 `fmt/15`, 1.2 `fmt/16`, 1.3 `fmt/17`,
//!   1.4 `fmt/18`, 1.5 `fmt/19`, 1.6 `fmt/20`, 1.7 `fmt/276`, 2.0 `fmt/1129`. PDF/A
//!   (`fmt/95`, `fmt/354`, `fmt/476`…) would need the XMP metadata read; it is not claimed.
//! - XML: `fmt/101` (Extensible Markup Language 1.0).
//! - JSON (a journal export): `fmt/817`.
//! - Plain text: `x-fmt/111`.
//! - CAdES detached signature (`.p7s`): PRONOM has no entry we could confirm for a detached
//!   CMS signature, so no `FormatId` is written, only the MIME type
//!   `application/pkcs7-signature` and a label — an archive service identifies it by itself.
//! - Anything else: `application/octet-stream`, no `FormatId`.

/// What is known of a file's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFormat {
    /// Readable label (`FormatLitteral`).
    pub label: &'static str,
    /// MIME type.
    pub mime_type: &'static str,
    /// PRONOM identifier, when known with confidence.
    pub pronom: Option<&'static str>,
}

impl FileFormat {
    /// Identifies a file from its name's extension and its first bytes.
    pub fn identify(file_name: &str, head: &[u8]) -> Self {
        let extension = file_name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if head.starts_with(b"%PDF-") || extension == "pdf" {
            return pdf(head);
        }
        match extension.as_str() {
            "xml" => Self {
                label: "Extensible Markup Language",
                mime_type: "text/xml",
                pronom: Some("fmt/101"),
            },
            "json" => Self {
                label: "JSON Data Interchange Format",
                mime_type: "application/json",
                pronom: Some("fmt/817"),
            },
            "txt" => Self {
                label: "Plain Text File",
                mime_type: "text/plain",
                pronom: Some("x-fmt/111"),
            },
            "p7s" => Self {
                label: "Signature électronique CAdES détachée (CMS)",
                mime_type: "application/pkcs7-signature",
                pronom: None,
            },
            _ => Self {
                label: "Format non identifié",
                mime_type: "application/octet-stream",
                pronom: None,
            },
        }
    }
}

fn pdf(head: &[u8]) -> FileFormat {
    let version = head.strip_prefix(b"%PDF-").and_then(|rest| rest.get(..3));
    let (label, pronom) = match version {
        Some(b"1.0") => ("Portable Document Format 1.0", Some("fmt/14")),
        Some(b"1.1") => ("Portable Document Format 1.1", Some("fmt/15")),
        Some(b"1.2") => ("Portable Document Format 1.2", Some("fmt/16")),
        Some(b"1.3") => ("Portable Document Format 1.3", Some("fmt/17")),
        Some(b"1.4") => ("Portable Document Format 1.4", Some("fmt/18")),
        Some(b"1.5") => ("Portable Document Format 1.5", Some("fmt/19")),
        Some(b"1.6") => ("Portable Document Format 1.6", Some("fmt/20")),
        Some(b"1.7") => ("Portable Document Format 1.7", Some("fmt/276")),
        Some(b"2.0") => ("Portable Document Format 2.0", Some("fmt/1129")),
        _ => ("Portable Document Format", None),
    };
    FileFormat {
        label,
        mime_type: "application/pdf",
        pronom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdf_version_chooses_the_pronom_id() {
        assert_eq!(
            FileFormat::identify("a.pdf", b"%PDF-1.7\n").pronom,
            Some("fmt/276")
        );
        assert_eq!(
            FileFormat::identify("a.bin", b"%PDF-1.4\n").pronom,
            Some("fmt/18")
        );
        assert_eq!(FileFormat::identify("a.pdf", b"garbage").pronom, None);
        assert_eq!(
            FileFormat::identify("a.XML", b"<?xml").pronom,
            Some("fmt/101")
        );
        let sig = FileFormat::identify("a.pdf.p7s", b"\x30\x82");
        assert_eq!(
            (sig.mime_type, sig.pronom),
            ("application/pkcs7-signature", None)
        );
    }
}
