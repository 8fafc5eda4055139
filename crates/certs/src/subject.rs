//! Certificate subjects with several organizations.
//!
//! Kubernetes reads a client certificate's groups from its `O` attributes, one per
//! group, but rcgen's `DistinguishedName` keeps at most one value per attribute type.
//! For a certificate with more than one group we therefore let rcgen build and sign it,
//! then swap in a subject we encode ourselves and sign the to-be-signed part again with
//! the same CA key and algorithm. Only the subject changes; every other field (serial,
//! validity, extensions, key identifiers) is kept byte for byte.

use rcgen::{KeyPair, SigningKey as _};

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OID: u8 = 0x06;
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03]; // 2.5.4.3
const OID_ORGANIZATION: [u8; 3] = [0x55, 0x04, 0x0a]; // 2.5.4.10

/// DER of an X.509 `Name`: one RDN per organization (in order), then the common name,
/// matching how Go's crypto/x509 (and so k3s) orders O before CN.
pub(crate) fn encode_name(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let mut rdns = Vec::new();
    for org in organizations {
        rdns.extend(rdn(&OID_ORGANIZATION, org));
    }
    rdns.extend(rdn(&OID_COMMON_NAME, common_name));
    tlv(TAG_SEQUENCE, &rdns)
}

fn rdn(oid: &[u8], value: &str) -> Vec<u8> {
    let mut attr = tlv(TAG_OID, oid);
    attr.extend(tlv(TAG_UTF8_STRING, value.as_bytes()));
    tlv(TAG_SET, &tlv(TAG_SEQUENCE, &attr))
}

/// Replace the subject of `cert_der` (as produced by rcgen, signed by `signer`) with
/// `subject_der` and re-sign it with `signer`.
pub(crate) fn replace_subject(
    cert_der: &[u8],
    subject_der: &[u8],
    signer: &KeyPair,
) -> Result<Vec<u8>, String> {
    let (tag, cert_body, _) = read_tlv(cert_der)?;
    if tag != TAG_SEQUENCE {
        return Err("certificate is not a SEQUENCE".into());
    }
    let (tbs_tag, tbs_body, rest) = read_tlv(cert_body)?;
    let (_, _, after_alg) = read_tlv(rest)?;
    let signature_algorithm = &rest[..rest.len() - after_alg.len()];
    if tbs_tag != TAG_SEQUENCE {
        return Err("tbsCertificate is not a SEQUENCE".into());
    }

    // tbsCertificate: [0] version, serial, signature, issuer, validity, subject, ...
    let mut fields = Vec::new();
    let mut remaining = tbs_body;
    while !remaining.is_empty() {
        let (_, _, next) = read_tlv(remaining)?;
        fields.push(&remaining[..remaining.len() - next.len()]);
        remaining = next;
    }
    let subject_index = match fields.first().map(|f| f[0]) {
        Some(0xa0) => 5, // explicit version present (always, for v3)
        _ => 4,
    };
    if fields.len() <= subject_index {
        return Err("tbsCertificate too short".into());
    }
    let mut new_tbs_body = Vec::with_capacity(tbs_body.len() + subject_der.len());
    for (i, field) in fields.iter().enumerate() {
        if i == subject_index {
            new_tbs_body.extend_from_slice(subject_der);
        } else {
            new_tbs_body.extend_from_slice(field);
        }
    }
    let new_tbs = tlv(TAG_SEQUENCE, &new_tbs_body);
    let signature = signer.sign(&new_tbs).map_err(|e| format!("signing: {e}"))?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend(signature);

    let mut body = new_tbs;
    body.extend_from_slice(signature_algorithm);
    body.extend(tlv(TAG_BIT_STRING, &bits));
    Ok(tlv(TAG_SEQUENCE, &body))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Read one DER TLV with a single-byte tag: (tag, content, rest after it).
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let truncated = || "truncated DER".to_string();
    let (&tag, after_tag) = input.split_first().ok_or_else(truncated)?;
    let (&first, mut after_len) = after_tag.split_first().ok_or_else(truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || after_len.len() < count {
            return Err("unsupported DER length".into());
        }
        let len = after_len[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        after_len = &after_len[count..];
        len
    };
    if after_len.len() < len {
        return Err(truncated());
    }
    Ok((tag, &after_len[..len], &after_len[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer as _;

    #[test]
    fn name_encoding_parses_back_with_all_organizations() {
        let name = encode_name("u", &["a".into(), "b".into(), "c".into()]);
        let (_, parsed) = x509_parser::x509::X509Name::from_der(&name).unwrap();
        let orgs: Vec<&str> = parsed
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["a", "b", "c"]);
        let cn = parsed.iter_common_name().next().unwrap().as_str().unwrap();
        assert_eq!(cn, "u");
    }

    #[test]
    fn long_lengths_round_trip() {
        let content = vec![7u8; 300];
        let encoded = tlv(TAG_SEQUENCE, &content);
        assert_eq!(&encoded[..4], &[0x30, 0x82, 0x01, 0x2c]);
        let (tag, body, rest) = read_tlv(&encoded).unwrap();
        assert_eq!(
            (tag, body, rest),
            (TAG_SEQUENCE, content.as_slice(), &[][..])
        );
    }
}
