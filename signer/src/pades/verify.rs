//! PAdES verification: every signature dictionary of the file, its byte range, its CMS.

use der::{Decode, Encode};
use lopdf::{Document, Object};
use time::OffsetDateTime;

use crate::cms;
use crate::digest::DigestAlgorithm;
use crate::error::{Error, Result};
use crate::verify::{
    Indication, SignatureReport, SubIndication, VerificationReport, VerifyOptions,
};

struct Found {
    name: String,
    byte_range: Vec<i64>,
    contents: Vec<u8>,
    sub_filter: Vec<u8>,
    m: Option<OffsetDateTime>,
}

fn parse_pdf_date(s: &[u8]) -> Option<OffsetDateTime> {
    let s = std::str::from_utf8(s).ok()?;
    let s = s.strip_prefix("D:").unwrap_or(s);
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<u32>().ok());
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0, 4)?).ok()?,
        time::Month::try_from(u8::try_from(num(4, 6).unwrap_or(1)).ok()?).ok()?,
        u8::try_from(num(6, 8).unwrap_or(1)).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(8, 10).unwrap_or(0)).ok()?,
        u8::try_from(num(10, 12).unwrap_or(0)).ok()?,
        u8::try_from(num(12, 14).unwrap_or(0)).ok()?,
    )
    .ok()?;
    let mut offset = time::UtcOffset::UTC;
    if let Some(sign) = s.get(14..15)
        && (sign == "+" || sign == "-")
    {
        let h = i8::try_from(num(15, 17).unwrap_or(0)).ok()?;
        let m = i8::try_from(num(18, 20).unwrap_or(0)).ok()?;
        let k = if sign == "-" { -1 } else { 1 };
        offset = time::UtcOffset::from_hms(k * h, k * m, 0).ok()?;
    }
    Some(time::PrimitiveDateTime::new(date, t).assume_offset(offset))
}

fn signatures(doc: &Document) -> Vec<Found> {
    // Field names: widget/field dictionaries whose /V points at a signature dictionary.
    let mut names = std::collections::HashMap::new();
    for obj in doc.objects.values() {
        if let Ok(d) = obj.as_dict()
            && let (Ok(Object::Reference(v)), Ok(t)) = (d.get(b"V"), d.get(b"T"))
            && let Ok(t) = t.as_str()
        {
            names.insert(*v, String::from_utf8_lossy(t).into_owned());
        }
    }
    let mut out = Vec::new();
    for (id, obj) in &doc.objects {
        let Ok(d) = obj.as_dict() else { continue };
        let is_sig = d
            .get(b"Type")
            .and_then(Object::as_name)
            .is_ok_and(|t| t == b"Sig");
        let looks_signed = d.has(b"ByteRange") && d.has(b"Contents") && d.has(b"Filter");
        if !(is_sig || looks_signed) {
            continue;
        }
        let byte_range = d
            .get(b"ByteRange")
            .and_then(Object::as_array)
            .map(|a| a.iter().filter_map(|o| o.as_i64().ok()).collect())
            .unwrap_or_default();
        out.push(Found {
            name: names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("object {} {}", id.0, id.1)),
            byte_range,
            contents: d
                .get(b"Contents")
                .and_then(Object::as_str)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            sub_filter: d
                .get(b"SubFilter")
                .and_then(Object::as_name)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
            m: d.get(b"M")
                .and_then(Object::as_str)
                .ok()
                .and_then(parse_pdf_date),
        });
    }
    out.sort_by_key(|f| f.byte_range.get(2).copied().unwrap_or(0));
    out
}

/// Verifies every signature of a PDF.
pub fn verify(pdf: &[u8], options: &VerifyOptions) -> Result<VerificationReport> {
    let doc = Document::load_mem(pdf)
        .map_err(|e| Error::Document(format!("PDF illisible ou endommagé : {e}")))?;
    let mut reports = Vec::new();
    for found in signatures(&doc) {
        if found.sub_filter == b"ETSI.RFC3161" {
            // Document timestamps (B-LTA) are not signatures of a signer.
            continue;
        }
        let format = if found.sub_filter == b"ETSI.CAdES.detached" {
            "PAdES"
        } else {
            "PDF (PKCS#7)"
        };
        let mut report = SignatureReport::new(found.name.clone(), format);
        report.claimed_signing_time = found.m;
        check_one(pdf, &found, options, &mut report);
        reports.push(report);
    }
    Ok(VerificationReport::new(reports))
}

fn check_one(pdf: &[u8], found: &Found, options: &VerifyOptions, report: &mut SignatureReport) {
    let br = &found.byte_range;
    let valid_range = br.len() == 4
        && br.iter().all(|v| *v >= 0)
        && br[0] == 0
        && br[1] < br[2]
        && usize::try_from(br[2] + br[3]).is_ok_and(|end| end <= pdf.len())
        && pdf.get(br[1] as usize) == Some(&b'<')
        && pdf.get(br[2] as usize - 1) == Some(&b'>');
    if !valid_range {
        report.fail(
            Indication::TotalFailed,
            SubIndication::FormatFailure,
            "invalid /ByteRange",
        );
        return;
    }
    let (start, end) = (br[1] as usize, br[2] as usize);
    let covered_end = (br[2] + br[3]) as usize;
    if covered_end != pdf.len() {
        report.messages.push(format!(
            "covers the revision ending at byte {covered_end}; the file was updated afterwards"
        ));
    }
    // /Contents is zero-padded after the DER: decode one ContentInfo and ignore the rest.
    let signed_data = (|| -> Result<::cms::signed_data::SignedData> {
        let mut reader = der::SliceReader::new(&found.contents)?;
        let ci = ::cms::content_info::ContentInfo::decode(&mut reader)?;
        cms::parse_signed_data(&ci.to_der()?)
    })();
    let signed_data = match signed_data {
        Ok(sd) => sd,
        Err(e) => {
            report.fail(
                Indication::TotalFailed,
                SubIndication::FormatFailure,
                format!("/Contents: {e}"),
            );
            return;
        }
    };
    let region = |a: DigestAlgorithm| -> Result<Option<Vec<u8>>> {
        let reader = std::io::Read::chain(&pdf[..start], &pdf[end..covered_end]);
        Ok(Some(cms::digest_reader(a, reader)?))
    };
    let mut digest = region;
    let embedded = cms::embedded_certificates(&signed_data);
    for si in signed_data.signer_infos.0.iter() {
        let pool: Vec<_> = embedded
            .iter()
            .chain(options.certificates.iter())
            .cloned()
            .collect();
        let check = cms::check_signer_info(si, &pool, &mut digest, report);
        if check.signing_time.is_some() && found.sub_filter == b"ETSI.CAdES.detached" {
            report
                .messages
                .push("signing-time attribute present (PAdES baseline puts the time in /M)".into());
        }
        crate::cades::verify_common(&check, &embedded, options, report);
    }
}
