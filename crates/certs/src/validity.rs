//! Validity periods, matching k3s: CAs for 10 years, leaf certificates for 1 year,
//! and leaves renewed on start when they expire within 90 days.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::CertificateParams;

const DAY: u64 = 24 * 60 * 60;
pub(crate) const CA_LIFETIME: Duration = Duration::from_secs(3650 * DAY);
pub(crate) const LEAF_LIFETIME: Duration = Duration::from_secs(365 * DAY);
/// k3s rotates leaf certificates at startup when they are within 90 days of expiry.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(90 * DAY);
/// Certificates start slightly in the past so that a node whose clock lags the server's
/// by a few minutes still accepts a certificate issued just now.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Set `params` to be valid from (now - backdate) for `lifetime` from now.
pub(crate) fn set_validity(params: &mut CertificateParams, lifetime: Duration) {
    // rcgen takes `time::OffsetDateTime`; building it from the epoch plus a std Duration
    // avoids a direct dependency on the `time` crate just to name that type.
    let now = Duration::from_secs(now_unix());
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now.saturating_sub(BACKDATE);
    params.not_after = epoch + now + lifetime;
}

/// Whether a certificate expiring at `not_after_unix` should be renewed now.
pub(crate) fn needs_renewal(not_after_unix: i64) -> bool {
    let renew_at = now_unix().saturating_add(RENEW_BEFORE.as_secs());
    not_after_unix < i64::try_from(renew_at).unwrap_or(i64::MAX)
}

/// A fresh random positive serial number (RFC 5280 allows up to 20 octets).
pub(crate) fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // keep the DER INTEGER positive
    bytes[0] |= 0x01; // and non-zero in its first octet
    rcgen::SerialNumber::from_slice(&bytes)
}
