//! The incremental update that adds a signature field to a PDF: signature dictionary with
//! `/ByteRange` and `/Contents` placeholders, widget annotation on a page, AcroForm entry.
//! Every original byte stays in place; only new objects, a new xref section and trailer follow.

use lopdf::{
    Dictionary, Document, IncrementalDocument, Object, ObjectId, StringFormat, dictionary,
};
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// Placeholder digits of `/ByteRange`: wide enough for any offset, patched in place.
const BYTE_RANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// A visible stamp: page (from 1) and bottom-left corner in points.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// Page number, from 1.
    pub page: u32,
    /// X of the bottom-left corner, in points.
    pub x: f32,
    /// Y of the bottom-left corner, in points.
    pub y: f32,
}

/// A PDF with its signature placeholders, ready to be hashed.
pub(crate) struct Placeholder {
    /// The whole file (original bytes + update), ByteRange already patched.
    pub bytes: Vec<u8>,
    /// Offset of the `<` that opens `/Contents`.
    pub contents_start: usize,
    /// Offset just after the `>` that closes `/Contents`.
    pub contents_end: usize,
}

/// Loads `original` (kept as the update's first part, not copied), refusing encrypted, damaged
/// and no-more-changes-certified files.
///
/// Stream data is not kept in memory: the update only reads and rewrites dictionaries (catalog,
/// page, AcroForm), and page contents or images would otherwise double the memory used.
pub(crate) fn load(original: Vec<u8>) -> Result<IncrementalDocument> {
    if !original.starts_with(b"%PDF-") {
        return Err(Error::Document("ce fichier n'est pas un PDF".into()));
    }
    let document =
        Document::load_mem_with_options(&original, lopdf::LoadOptions::with_filter(stream_dict))
            .map_err(|e| Error::Document(format!("PDF illisible ou endommagé : {e}")))?;
    let inc = IncrementalDocument::create_from(original, document);
    let prev = inc.get_prev_documents();
    if prev.trailer.get(b"Encrypt").is_ok() || prev.is_encrypted() {
        return Err(Error::Document(
            "PDF chiffré : seing ne signe pas les PDF protégés".into(),
        ));
    }
    if prev.xref_recovery.is_some() || prev.xref_start == 0 {
        return Err(Error::Document(
            "PDF endommagé (table des références croisées invalide)".into(),
        ));
    }
    prev.catalog()
        .map_err(|e| Error::Document(format!("PDF endommagé : pas de catalogue ({e})")))?;
    if prev.get_pages().is_empty() {
        return Err(Error::Document("PDF endommagé : aucune page".into()));
    }
    if docmdp_permission(prev) == Some(1) {
        return Err(Error::Document(
            "PDF certifié sans modification permise (DocMDP P=1) : aucune signature ne peut y \
             être ajoutée"
                .into(),
        ));
    }
    Ok(inc)
}

/// A load filter that replaces each stream but object and xref streams (which lopdf decodes to
/// find the objects) by its dictionary.
fn stream_dict(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    if let Object::Stream(stream) = object
        && !stream.dict.has_type(b"ObjStm")
        && !stream.dict.has_type(b"XRef")
    {
        *object = Object::Dictionary(std::mem::take(&mut stream.dict));
    }
    Some((id, object.clone()))
}

/// The `/P` of a certification signature (ISO 32000-1 §12.8.2.2): the catalog's `/Perms /DocMDP`
/// signature dictionary, its DocMDP signature reference, `/TransformParams /P` (2 when absent).
/// `None` when the document is not certified.
fn docmdp_permission(doc: &Document) -> Option<i64> {
    fn dict<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Dictionary> {
        deref(doc, obj)?.as_dict().ok()
    }
    let catalog = doc.catalog().ok()?;
    let signature = dict(doc, catalog.get(b"Perms").ok()?)
        .and_then(|perms| dict(doc, perms.get(b"DocMDP").ok()?))?;
    let references = deref(doc, signature.get(b"Reference").ok()?)?
        .as_array()
        .ok()?;
    let reference = references.iter().filter_map(|r| dict(doc, r)).find(|r| {
        r.get(b"TransformMethod")
            .and_then(Object::as_name)
            .is_ok_and(|m| m == b"DocMDP")
    })?;
    Some(
        reference
            .get(b"TransformParams")
            .ok()
            .and_then(|params| dict(doc, params))
            .and_then(|params| params.get(b"P").ok()?.as_i64().ok())
            .unwrap_or(2),
    )
}

/// PDF date string `D:YYYYMMDDHHmmSS+00'00'`.
pub(crate) fn pdf_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}+00'00'",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn deref<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Object> {
    doc.dereference(obj).ok().map(|(_, o)| o)
}

/// Field names already used in the AcroForm.
fn existing_field_names(doc: &Document) -> Vec<Vec<u8>> {
    let Ok(catalog) = doc.catalog() else {
        return vec![];
    };
    let Some(form) = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|f| deref(doc, f))
        .and_then(|f| f.as_dict().ok())
    else {
        return vec![];
    };
    let Some(fields) = form
        .get(b"Fields")
        .ok()
        .and_then(|f| deref(doc, f))
        .and_then(|f| f.as_array().ok())
    else {
        return vec![];
    };
    fields
        .iter()
        .filter_map(|f| deref(doc, f)?.as_dict().ok()?.get(b"T").ok()?.as_str().ok())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Latin-1 (WinAnsi for these characters) bytes of `s`, escaped for a PDF literal string.
fn pdf_text(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in s.chars() {
        let b = u32::from(c);
        let b = if b < 256 { b as u8 } else { b'?' };
        match b {
            b'(' | b')' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            0x20..=0x7e => out.push(b),
            _ => out.extend(format!("\\{b:03o}").into_bytes()),
        }
    }
    out
}

/// The appearance stream of a visible stamp showing `text` lines.
fn appearance(inc: &mut IncrementalDocument, lines: &[String], w: f32, h: f32) -> ObjectId {
    let doc = &mut inc.new_document;
    let font = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let mut content = format!("q 0.95 0.95 1 rg 0 0 {w} {h} re f 0 0 0.5 RG 1 w 0.5 0.5 {} {} re S Q\nBT /F1 9 Tf 0 0 0 rg\n", w - 1.0, h - 1.0).into_bytes();
    let mut y = h - 14.0;
    for line in lines {
        content.extend(format!("1 0 0 1 6 {y} Tm (").into_bytes());
        content.extend(pdf_text(line));
        content.extend(b") Tj\n");
        y -= 12.0;
    }
    content.extend(b"ET\n");
    let stream = lopdf::Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Form",
            "BBox" => vec![0.into(), 0.into(), w.into(), h.into()],
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font } },
        },
        content,
    );
    doc.add_object(stream)
}

/// Adds a signature field whose value has `contents_len` bytes reserved, and returns the
/// updated file with `/ByteRange` patched.
pub(crate) fn add_signature_field(
    mut inc: IncrementalDocument,
    contents_len: usize,
    signing_time: OffsetDateTime,
    stamp: Option<(Stamp, Vec<String>)>,
) -> Result<Placeholder> {
    let prev = inc.get_prev_documents();
    let pages = prev.get_pages();
    let page_no = stamp.as_ref().map(|(s, _)| s.page).unwrap_or(1);
    let page_id = *pages.get(&page_no).ok_or_else(|| {
        Error::Unsupported(format!(
            "page {page_no} absente (le document a {} pages)",
            pages.len()
        ))
    })?;
    let root_id = prev
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|e| Error::Document(format!("PDF endommagé : /Root ({e})")))?;
    let used = existing_field_names(prev);
    let name = (1..)
        .map(|i| format!("Signature{i}"))
        .find(|n| !used.iter().any(|u| u == n.as_bytes()))
        .unwrap_or_default();
    let acroform = prev
        .catalog()
        .ok()
        .and_then(|c| c.get(b"AcroForm").ok())
        .cloned();
    let page_annots = prev
        .get_dictionary(page_id)
        .ok()
        .and_then(|p| p.get(b"Annots").ok())
        .cloned();

    let sig_dict = dictionary! {
        "Type" => "Sig",
        "Filter" => "Adobe.PPKLite",
        "SubFilter" => "ETSI.CAdES.detached",
        "ByteRange" => vec![
            Object::Integer(0),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
        ],
        "Contents" => Object::String(vec![0u8; contents_len], StringFormat::Hexadecimal),
        "M" => Object::string_literal(pdf_date(signing_time)),
    };
    let sig_id = inc.new_document.add_object(sig_dict);

    let (rect, ap) = match &stamp {
        Some((s, lines)) => {
            let (w, h) = (220.0_f32, 16.0 + 12.0 * lines.len() as f32);
            let ap = appearance(&mut inc, lines, w, h);
            (
                vec![s.x.into(), s.y.into(), (s.x + w).into(), (s.y + h).into()],
                Some(ap),
            )
        }
        None => (vec![0.into(), 0.into(), 0.into(), 0.into()], None),
    };
    let mut widget = dictionary! {
        "Type" => "Annot",
        "Subtype" => "Widget",
        "FT" => "Sig",
        "T" => Object::string_literal(name),
        "V" => sig_id,
        // Print + Locked.
        "F" => 132,
        "Rect" => rect,
        "P" => page_id,
    };
    if let Some(ap) = ap {
        widget.set("AP", dictionary! { "N" => ap });
    }
    let widget_id = inc.new_document.add_object(widget);

    // The page's /Annots gets the widget.
    match page_annots {
        Some(Object::Reference(annots_id)) => {
            inc.opt_clone_object_to_new_document(annots_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : /Annots ({e})")))?;
            inc.new_document
                .get_object_mut(annots_id)
                .and_then(Object::as_array_mut)
                .map_err(|e| Error::Document(format!("PDF endommagé : /Annots ({e})")))?
                .push(widget_id.into());
        }
        other => {
            let mut annots = match other {
                Some(Object::Array(a)) => a,
                _ => vec![],
            };
            annots.push(widget_id.into());
            inc.opt_clone_object_to_new_document(page_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : page ({e})")))?;
            inc.new_document
                .get_dictionary_mut(page_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : page ({e})")))?
                .set("Annots", annots);
        }
    }

    // The AcroForm lists the field and says the document is signed (SigFlags 3).
    let add_field = |form: &mut Dictionary, doc: &mut Document| -> Result<()> {
        form.set("SigFlags", 3);
        match form.get(b"Fields").ok().cloned() {
            Some(Object::Reference(fields_id)) => {
                doc.get_object_mut(fields_id)
                    .and_then(Object::as_array_mut)
                    .map_err(|e| Error::Document(format!("PDF endommagé : /Fields ({e})")))?
                    .push(widget_id.into());
            }
            Some(Object::Array(mut a)) => {
                a.push(widget_id.into());
                form.set("Fields", a);
            }
            _ => form.set("Fields", vec![Object::from(widget_id)]),
        }
        Ok(())
    };
    match acroform {
        Some(Object::Reference(form_id)) => {
            inc.opt_clone_object_to_new_document(form_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : /AcroForm ({e})")))?;
            if let Ok(Object::Dictionary(d)) = inc.get_prev_documents().get_object(form_id)
                && let Ok(Object::Reference(fields_id)) = d.get(b"Fields")
            {
                inc.opt_clone_object_to_new_document(*fields_id)
                    .map_err(|e| Error::Document(format!("PDF endommagé : /Fields ({e})")))?;
            }
            let mut form = inc
                .new_document
                .get_dictionary(form_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : /AcroForm ({e})")))?
                .clone();
            add_field(&mut form, &mut inc.new_document)?;
            inc.new_document.set_object(form_id, form);
        }
        other => {
            let mut form = match other {
                Some(Object::Dictionary(d)) => d,
                _ => Dictionary::new(),
            };
            if let Ok(Object::Reference(fields_id)) = form.get(b"Fields") {
                inc.opt_clone_object_to_new_document(*fields_id)
                    .map_err(|e| Error::Document(format!("PDF endommagé : /Fields ({e})")))?;
            }
            add_field(&mut form, &mut inc.new_document)?;
            let form_id = inc.new_document.add_object(form);
            inc.opt_clone_object_to_new_document(root_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : catalogue ({e})")))?;
            inc.new_document
                .get_dictionary_mut(root_id)
                .map_err(|e| Error::Document(format!("PDF endommagé : catalogue ({e})")))?
                .set("AcroForm", form_id);
        }
    }

    let original_len = inc.get_prev_documents_bytes().len();
    let mut bytes = Vec::with_capacity(original_len + contents_len * 2 + 4096);
    inc.save_to(&mut bytes)
        .map_err(|e| Error::Document(format!("écriture de la mise à jour incrémentale : {e}")))?;
    patch(bytes, original_len, contents_len)
}

/// Finds the placeholders in the appended part and patches `/ByteRange` in place.
fn patch(mut bytes: Vec<u8>, original_len: usize, contents_len: usize) -> Result<Placeholder> {
    let hex_zeros = vec![b'0'; contents_len * 2];
    let tail = &bytes[original_len..];
    let rel = find(tail, &hex_zeros)
        .ok_or_else(|| Error::Document("placeholder /Contents introuvable".into()))?;
    let contents_start = original_len + rel - 1;
    let contents_end = original_len + rel + hex_zeros.len() + 1;
    if bytes[contents_start] != b'<' || bytes[contents_end - 1] != b'>' {
        return Err(Error::Document("placeholder /Contents mal formé".into()));
    }
    let placeholder = format!("0 {p} {p} {p}", p = BYTE_RANGE_PLACEHOLDER);
    let rel = find(&bytes[original_len..], placeholder.as_bytes())
        .ok_or_else(|| Error::Document("placeholder /ByteRange introuvable".into()))?;
    let at = original_len + rel;
    let total = bytes.len();
    let value = format!(
        "0 {} {} {}",
        contents_start,
        contents_end,
        total - contents_end
    );
    let padded = format!("{value:<width$}", width = placeholder.len());
    bytes[at..at + placeholder.len()].copy_from_slice(padded.as_bytes());
    Ok(Placeholder {
        bytes,
        contents_start,
        contents_end,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
