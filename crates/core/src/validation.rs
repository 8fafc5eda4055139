//! The name and label rules of `k8s.io/apimachinery/pkg/util/validation`, with upstream's
//! error messages word for word, so a 422 from k3rs reads like one from kube-apiserver.
//!
//! This is the only copy of these rules in k3rs: the API server's admission, the CRD
//! validator, the label-selector parser and the join endpoints all call it. Each rule has
//! a yes/no form (`is_*`) and a form that lists every problem (`*_errors`, empty when the
//! value is valid), as upstream's `IsDNS1123Label` and friends do. Lengths are in bytes,
//! as Go's `len` counts them.

/// Longest DNS-1123 label (RFC 1123).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Longest DNS-1123 subdomain (RFC 1123).
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Longest DNS-1035 label (RFC 1035).
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Longest name part of a qualified name (a label or annotation key after the prefix).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Upstream's `MaxLenError`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// Upstream's `EmptyError`.
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// Upstream's `RegexError`: `msg`, then the examples and the regex that was used.
pub fn regex_error(msg: &str, regex: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{regex}')");
    }
    let mut text = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            text.push_str(" or ");
        }
        text.push_str(&format!("'{example}', "));
    }
    text.push_str(&format!("regex used for validation is '{regex}')"));
    text
}

// ---------------------------------------------------------------------------------------
// The regexes, as byte scans (anchored at both ends, like upstream's `^...$`).

fn is_lower_alphanumeric(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alphanumeric(first)
                && is_lower_alphanumeric(last)
                && b.iter().all(|&c| is_lower_alphanumeric(c) || c == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase) && matches_dns1123_label(s)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`
fn matches_label_value(s: &str) -> bool {
    s.is_empty() || matches_qualified_name_part(s)
}

// ---------------------------------------------------------------------------------------
// The rules.

/// A rule of upstream's common shape: a length limit, then a pattern, each with its
/// message.
struct Rule {
    max_length: usize,
    matches: fn(&str) -> bool,
    message: &'static str,
    regex: &'static str,
    examples: &'static [&'static str],
}

impl Rule {
    fn allows(&self, value: &str) -> bool {
        value.len() <= self.max_length && (self.matches)(value)
    }

    fn too_long(&self, value: &str) -> Option<String> {
        (value.len() > self.max_length).then(|| max_len_error(self.max_length))
    }

    fn pattern_error(&self) -> String {
        regex_error(self.message, self.regex, self.examples)
    }

    fn errors(&self, value: &str) -> Vec<String> {
        let mut errs: Vec<String> = self.too_long(value).into_iter().collect();
        if !(self.matches)(value) {
            errs.push(self.pattern_error());
        }
        errs
    }
}

const DNS1123_LABEL: Rule = Rule {
    max_length: DNS1123_LABEL_MAX_LENGTH,
    matches: matches_dns1123_label,
    message: DNS1123_LABEL_ERR_MSG,
    regex: DNS1123_LABEL_FMT,
    examples: &["my-name", "123-abc"],
};

const DNS1123_SUBDOMAIN: Rule = Rule {
    max_length: DNS1123_SUBDOMAIN_MAX_LENGTH,
    matches: matches_dns1123_subdomain,
    message: DNS1123_SUBDOMAIN_ERR_MSG,
    regex: DNS1123_SUBDOMAIN_FMT,
    examples: &["example.com"],
};

const DNS1035_LABEL: Rule = Rule {
    max_length: DNS1035_LABEL_MAX_LENGTH,
    matches: matches_dns1035_label,
    message: DNS1035_LABEL_ERR_MSG,
    regex: DNS1035_LABEL_FMT,
    examples: &["my-name", "abc-123"],
};

const LABEL_VALUE: Rule = Rule {
    max_length: LABEL_VALUE_MAX_LENGTH,
    matches: matches_label_value,
    message: LABEL_VALUE_ERR_MSG,
    regex: LABEL_VALUE_FMT,
    examples: &["MyValue", "my_value", "12345"],
};

/// Upstream's `IsDNS1123Label`: every problem with `value` as a lowercase RFC 1123 label
/// (namespace names, container and port names).
pub fn dns1123_label_errors(value: &str) -> Vec<String> {
    let mut errs: Vec<String> = DNS1123_LABEL.too_long(value).into_iter().collect();
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: the length was checked above, so it
            // must be the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(DNS1123_LABEL.pattern_error());
        }
    }
    errs
}

/// Whether `value` is a lowercase RFC 1123 label.
pub fn is_dns1123_label(value: &str) -> bool {
    DNS1123_LABEL.allows(value)
}

/// Upstream's `IsDNS1123Subdomain`: every problem with `value` as a lowercase RFC 1123
/// subdomain (the names of most objects, Node names, API groups).
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    DNS1123_SUBDOMAIN.errors(value)
}

/// Whether `value` is a lowercase RFC 1123 subdomain.
pub fn is_dns1123_subdomain(value: &str) -> bool {
    DNS1123_SUBDOMAIN.allows(value)
}

/// Upstream's `IsDNS1035Label`: every problem with `value` as an RFC 1035 label (Service
/// names, CRD plural and kind-derived names).
pub fn dns1035_label_errors(value: &str) -> Vec<String> {
    DNS1035_LABEL.errors(value)
}

/// Whether `value` is an RFC 1035 label.
pub fn is_dns1035_label(value: &str) -> bool {
    DNS1035_LABEL.allows(value)
}

/// Upstream's `IsQualifiedName`: every problem with `value` as a label or annotation key,
/// a name part with an optional DNS subdomain prefix and `/` (`example.com/MyName`).
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|msg| format!("prefix part {msg}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Whether `value` is a valid label or annotation key.
pub fn is_qualified_name(value: &str) -> bool {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    prefix.is_none_or(|p| !p.is_empty() && is_dns1123_subdomain(p))
        && name.len() <= QUALIFIED_NAME_MAX_LENGTH
        && matches_qualified_name_part(name)
}

/// Upstream's `IsValidLabelValue`: every problem with `value` as a label value (empty is
/// allowed).
pub fn label_value_errors(value: &str) -> Vec<String> {
    LABEL_VALUE.errors(value)
}

/// Whether `value` is a valid label value.
pub fn is_label_value(value: &str) -> bool {
    LABEL_VALUE.allows(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `is_*` agrees with its `*_errors` on a spread of good and bad values.
    #[test]
    fn yes_no_forms_agree_with_the_error_lists() {
        let long = |n| "a".repeat(n);
        let mut values: Vec<String> = [
            "",
            "a",
            "A",
            "0",
            "-",
            "a-",
            "-a",
            "a-b",
            "a.b",
            "a..b",
            ".a",
            "a.",
            "a_b",
            "1abc",
            "my-name",
            "Web",
            "web-1.example",
            "example.com/MyName",
            "/a",
            "a/",
            "a/b/c",
            "Example.com/a",
            "a.b/c.d",
            "x/-y",
            "system:node",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for n in [62, 63, 64, 252, 253, 254] {
            values.push(long(n));
            values.push(format!("{}.{}", long(n / 2), long(n - n / 2 - 1)));
            values.push(format!("{}/b", long(n)));
            values.push(format!("b/{}", long(n)));
        }
        for v in &values {
            assert_eq!(
                is_dns1123_label(v),
                dns1123_label_errors(v).is_empty(),
                "{v}"
            );
            assert_eq!(
                is_dns1123_subdomain(v),
                dns1123_subdomain_errors(v).is_empty(),
                "{v}"
            );
            assert_eq!(
                is_dns1035_label(v),
                dns1035_label_errors(v).is_empty(),
                "{v}"
            );
            assert_eq!(
                is_qualified_name(v),
                qualified_name_errors(v).is_empty(),
                "{v}"
            );
            assert_eq!(is_label_value(v), label_value_errors(v).is_empty(), "{v}");
        }
    }

    #[test]
    fn dns_labels_and_subdomains() {
        assert!(is_dns1123_label("kube-system"));
        assert!(is_dns1123_label("123-abc"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("web-1.example"));
        assert!(!is_dns1123_subdomain("Web"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("n1."));
        assert!(!is_dns1123_subdomain(""));
        // Upstream limits the whole subdomain, not each of its labels.
        assert!(is_dns1123_subdomain(&"a".repeat(253)));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(is_dns1035_label("crontabs"));
        assert!(!is_dns1035_label("1abc"));
        assert!(!is_dns1035_label("abc-"));
    }

    #[test]
    fn messages_are_upstreams() {
        assert_eq!(
            dns1123_label_errors("My_Name"),
            ["a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(dns1123_label_errors("a.b"), ["must not contain dots"]);
        assert_eq!(
            dns1123_subdomain_errors(&"A".repeat(254)),
            [
                "must be no more than 253 characters",
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert_eq!(
            dns1035_label_errors("1abc"),
            ["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
        );
        assert_eq!(
            label_value_errors("-no"),
            ["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]
        );
        assert_eq!(
            qualified_name_errors("/x"),
            ["prefix part must be non-empty"]
        );
        assert_eq!(
            qualified_name_errors("a/"),
            [
                "name part must be non-empty",
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert!(qualified_name_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(
            qualified_name_errors(&format!("{}/b", "p".repeat(254))),
            ["prefix part must be no more than 253 characters"]
        );
    }

    #[test]
    fn keys_and_values() {
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(is_qualified_name("MyName"));
        assert!(!is_qualified_name("-bad"));
        assert!(!is_qualified_name("Example.com/a"));
        assert!(!is_qualified_name(&"k".repeat(64)));
        assert!(is_label_value(""));
        assert!(is_label_value("my_value"));
        assert!(!is_label_value("-no"));
        assert!(!is_label_value(&"v".repeat(64)));
    }
}
