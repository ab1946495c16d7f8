//! Reading PKCS#12 (RFC 7292) files: the private key and certificates inside.
//!
//! Supports what current OpenSSL and most tools write: PBES2 (PBKDF2 + AES-CBC) for both the
//! shrouded key bag and the encrypted certificate safe, or unencrypted safes. The MAC is not
//! checked: a wrong password already fails the decryption (padding and DER checks).

use cms::content_info::ContentInfo;
use cms::encrypted_data::EncryptedData;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, Decode, Encode, Sequence};
use pkcs8::pkcs5::EncryptionScheme;
use pkcs8::{EncryptedPrivateKeyInfoRef, PrivateKeyInfoRef};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::error::{Error, Result};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");

/// `PFX ::= SEQUENCE { version, authSafe ContentInfo, macData OPTIONAL }`
#[derive(Sequence)]
struct Pfx {
    version: u8,
    auth_safe: ContentInfo,
    #[asn1(optional = "true")]
    mac_data: Option<Any>,
}

/// `SafeBag ::= SEQUENCE { bagId, bagValue [0] EXPLICIT ANY, bagAttributes SET OF OPTIONAL }`
#[derive(Sequence)]
struct SafeBag {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: Any,
    #[asn1(optional = "true")]
    bag_attributes: Option<der::asn1::SetOfVec<Attribute>>,
}

/// `CertBag ::= SEQUENCE { certId, certValue [0] EXPLICIT OCTET STRING }`
#[derive(Sequence)]
struct CertBag {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: OctetString,
}

/// The contents of a PKCS#12 file.
pub(crate) struct Contents {
    /// PKCS#8 DER private keys.
    pub keys: Vec<Vec<u8>>,
    /// Every certificate.
    pub certificates: Vec<Certificate>,
}

fn wrong() -> Error {
    Error::Key("not a PKCS#12 file, or wrong password".into())
}

/// Decodes `data` with `password`.
pub(crate) fn parse(data: &[u8], password: &str) -> Result<Contents> {
    let pfx = Pfx::from_der(data).map_err(|_| wrong())?;
    if pfx.version != 3 || pfx.auth_safe.content_type != ID_DATA {
        return Err(Error::Key(
            "unsupported PKCS#12 (not password integrity mode)".into(),
        ));
    }
    let _ = &pfx.mac_data;
    let safe = pfx.auth_safe.content.decode_as::<OctetString>()?;
    let infos = Vec::<ContentInfo>::from_der(safe.as_bytes())?;
    let mut out = Contents {
        keys: Vec::new(),
        certificates: Vec::new(),
    };
    for info in infos {
        let contents = if info.content_type == ID_DATA {
            info.content.decode_as::<OctetString>()?.as_bytes().to_vec()
        } else if info.content_type == ID_ENCRYPTED_DATA {
            let ed = info.content.decode_as::<EncryptedData>()?;
            let scheme = EncryptionScheme::from_der(&ed.enc_content_info.content_enc_alg.to_der()?)
                .map_err(|_| {
                    Error::Key("PKCS#12 uses a legacy cipher (RC2/3DES): re-export it with AES (openssl pkcs12 -export without -legacy)".into())
                })?;
            let ct = ed.enc_content_info.encrypted_content.ok_or_else(wrong)?;
            scheme
                .decrypt(password, ct.as_bytes())
                .map_err(|_| wrong())?
        } else {
            continue;
        };
        let bags = Vec::<SafeBag>::from_der(&contents).map_err(|_| wrong())?;
        for bag in bags {
            if bag.bag_id == CERT_BAG {
                let cb = bag.bag_value.decode_as::<CertBag>()?;
                if cb.cert_id == X509_CERTIFICATE {
                    out.certificates
                        .push(Certificate::from_der(cb.cert_value.as_bytes())?);
                }
            } else if bag.bag_id == SHROUDED_KEY_BAG {
                let der = bag.bag_value.to_der()?;
                let epki = EncryptedPrivateKeyInfoRef::from_der(&der)?;
                let doc = epki.decrypt(password).map_err(|_| wrong())?;
                out.keys.push(doc.as_bytes().to_vec());
            } else if bag.bag_id == KEY_BAG {
                let der = bag.bag_value.to_der()?;
                PrivateKeyInfoRef::from_der(&der)?;
                out.keys.push(der);
            }
        }
    }
    Ok(out)
}
