//! The DNS-1035 label and DNS-1123 subdomain rules that CRD names, groups and versions must
//! follow, with apimachinery's wording so error messages read like upstream.

const DNS1035_LABEL_ERROR: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_ERROR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Problems with `value` as a DNS-1035 label (empty when valid).
pub(crate) fn dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-');
    if !ok {
        errs.push(DNS1035_LABEL_ERROR.to_string());
    }
    errs
}

fn dns1123_label_ok(label: &[u8]) -> bool {
    !label.is_empty()
        && is_alnum(label[0])
        && is_alnum(label[label.len() - 1])
        && label.iter().all(|&c| is_alnum(c) || c == b'-')
}

/// Problems with `value` as a DNS-1123 subdomain (empty when valid).
pub(crate) fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !value.split('.').all(|l| dns1123_label_ok(l.as_bytes())) {
        errs.push(DNS1123_SUBDOMAIN_ERROR.to_string());
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns1035_label("crontabs").is_empty());
        assert!(dns1035_label("cron-tabs2").is_empty());
        assert!(!dns1035_label("CronTabs").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
        assert!(!dns1035_label("abc-").is_empty());
        assert!(!dns1035_label("").is_empty());
        assert!(dns1123_subdomain("stable.example.com").is_empty());
        assert!(!dns1123_subdomain("Stable.example.com").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
    }
}
