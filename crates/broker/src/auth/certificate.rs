//! The user name a client certificate vouches for: its subject Common Name or its first
//! Subject Alternative Name (e-mail, DNS name or URI). The transport has already verified the
//! certificate against the listener's client CA; this file only reads names out of its DER
//! encoding, with a small reader that refuses anything it does not understand and never
//! panics, whatever the bytes.

/// Which name of a client certificate becomes the user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateField {
    /// The subject's Common Name (OID 2.5.4.3).
    CommonName,
    /// The first e-mail address, DNS name or URI of the Subject Alternative Name extension.
    SubjectAltName,
}

/// The user name `field` gives for the DER certificate `der`, if it has one.
pub fn certificate_username(der: &[u8], field: CertificateField) -> Option<String> {
    let tbs = tbs_certificate(der)?;
    match field {
        CertificateField::CommonName => common_name(tbs.subject),
        CertificateField::SubjectAltName => first_alt_name(tbs.extensions?),
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTF8_STRING: u8 = 0x0C;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
/// `[0] EXPLICIT` version, `[3] EXPLICIT` extensions.
const VERSION_TAG: u8 = 0xA0;
const EXTENSIONS_TAG: u8 = 0xA3;
/// GeneralName choices, context-specific primitive: rfc822Name `[1]`, dNSName `[2]`, URI `[6]`.
const SAN_EMAIL: u8 = 0x81;
const SAN_DNS: u8 = 0x82;
const SAN_URI: u8 = 0x86;
/// 2.5.4.3 id-at-commonName
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 2.5.29.17 id-ce-subjectAltName
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];

/// A cursor over DER elements.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next element's tag and contents.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, after_tag) = self.rest.split_first()?;
        let (&first, after_length) = after_tag.split_first()?;
        let (length, body) = if first < 0x80 {
            (usize::from(first), after_length)
        } else {
            // Long form: the low bits say how many length bytes follow; 4 is plenty.
            let count = usize::from(first & 0x7F);
            if count == 0 || count > 4 {
                return None;
            }
            let bytes = after_length.get(..count)?;
            let length = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (length, after_length.get(count..)?)
        };
        let contents = body.get(..length)?;
        self.rest = body.get(length..)?;
        Some((tag, contents))
    }

    /// The next element, which must have `tag`.
    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (found, contents) if found == tag => Some(contents),
            _ => None,
        }
    }
}

struct Tbs<'a> {
    subject: &'a [u8],
    extensions: Option<&'a [u8]>,
}

fn tbs_certificate(der: &[u8]) -> Option<Tbs<'_>> {
    let certificate = Der::new(der).expect(SEQUENCE)?;
    let mut tbs = Der::new(Der::new(certificate).expect(SEQUENCE)?);
    let (mut tag, _) = tbs.next()?;
    if tag == VERSION_TAG {
        // serialNumber follows the version.
        (tag, _) = tbs.next()?;
    }
    let _serial = tag;
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
    let mut extensions = None;
    while let Some((tag, contents)) = tbs.next() {
        if tag == EXTENSIONS_TAG {
            extensions = Some(contents);
        }
    }
    Some(Tbs {
        subject,
        extensions,
    })
}

/// The first Common Name in a Name (SEQUENCE OF SET OF AttributeTypeAndValue).
fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = Der::new(name);
    while let Some(rdn) = rdns.expect(SET) {
        let mut attributes = Der::new(rdn);
        while let Some(attribute) = attributes.expect(SEQUENCE) {
            let mut fields = Der::new(attribute);
            if fields.expect(OID)? != OID_COMMON_NAME {
                continue;
            }
            let (tag, value) = fields.next()?;
            if matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING) {
                return text(value);
            }
        }
    }
    None
}

/// The first e-mail, DNS or URI name of the Subject Alternative Name extension.
fn first_alt_name(extensions: &[u8]) -> Option<String> {
    let list = Der::new(extensions).expect(SEQUENCE)?;
    let mut extensions = Der::new(list);
    while let Some(extension) = extensions.expect(SEQUENCE) {
        let mut fields = Der::new(extension);
        if fields.expect(OID)? != OID_SUBJECT_ALT_NAME {
            continue;
        }
        let (mut tag, mut value) = fields.next()?;
        if tag == BOOLEAN {
            (tag, value) = fields.next()?;
        }
        if tag != OCTET_STRING {
            return None;
        }
        let names = Der::new(value).expect(SEQUENCE)?;
        let mut names = Der::new(names);
        while let Some((tag, name)) = names.next() {
            if matches!(tag, SAN_EMAIL | SAN_DNS | SAN_URI) {
                return text(name);
            }
        }
        return None;
    }
    None
}

/// A name as text; names with control characters or white space are refused, since they
/// could not be a user name in the password or ACL files.
fn text(bytes: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(bytes).ok()?;
    if name.is_empty() || name.contains(|c: char| c.is_control() || c.is_whitespace()) {
        return None;
    }
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    fn certificate(cn: Option<&str>, sans: Vec<SanType>) -> Vec<u8> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "MQuicTT tests");
        if let Some(cn) = cn {
            name.push(DnType::CommonName, cn);
        }
        params.distinguished_name = name;
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn common_name_and_alt_names_are_read() {
        let der = certificate(
            Some("sensor-17"),
            vec![
                SanType::Rfc822Name("sensor17@example.com".try_into().unwrap()),
                SanType::DnsName("sensor17.example.com".try_into().unwrap()),
            ],
        );
        assert_eq!(
            certificate_username(&der, CertificateField::CommonName).as_deref(),
            Some("sensor-17")
        );
        assert_eq!(
            certificate_username(&der, CertificateField::SubjectAltName).as_deref(),
            Some("sensor17@example.com")
        );
    }

    #[test]
    fn missing_names_give_none() {
        let der = certificate(None, Vec::new());
        assert_eq!(
            certificate_username(&der, CertificateField::CommonName),
            None
        );
        assert_eq!(
            certificate_username(&der, CertificateField::SubjectAltName),
            None
        );
    }

    #[test]
    fn garbage_and_truncations_never_panic() {
        let der = certificate(
            Some("x"),
            vec![SanType::DnsName("x.example".try_into().unwrap())],
        );
        for cut in 0..der.len() {
            let _ = certificate_username(&der[..cut], CertificateField::CommonName);
            let _ = certificate_username(&der[..cut], CertificateField::SubjectAltName);
        }
        let mut flipped = der.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xFF;
            let _ = certificate_username(&flipped, CertificateField::SubjectAltName);
            flipped[i] ^= 0xFF;
        }
        for junk in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x30, 0x85],
        ] {
            assert_eq!(
                certificate_username(junk, CertificateField::CommonName),
                None
            );
        }
    }
}
