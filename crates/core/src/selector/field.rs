//! Field selectors: the `fieldSelector` query parameter.
//!
//! The syntax is upstream's `fields.ParseSelector` (k8s.io/apimachinery/pkg/fields): terms
//! separated by unescaped commas, each `field=value`, `field==value` or `field!=value`,
//! split at the first operator. Values may escape `\\`, `\,` and `\=` (and, beyond
//! upstream, `\!`); an unescaped `,` or `=` in a value is an error. Whitespace is *not*
//! trimmed, as upstream. Terms are kept in upstream's order (sorted by their raw text) so
//! [`Display`](std::fmt::Display) gives the same canonical form as `Selector.String()`.
//!
//! Which fields exist is up to the resource; [`FieldSelector::fields`] lets the API server
//! reject unsupported ones before listing, and matching takes a lookup function.

use std::fmt;

use super::label::SelectorError;

/// The operator of one field requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`.
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector, e.g. `spec.nodeName!=node1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    field: String,
    operator: FieldOperator,
    /// Unescaped.
    value: String,
}

impl FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The operator.
    pub fn operator(&self) -> FieldOperator {
        self.operator
    }

    /// The (unescaped) value.
    pub fn value(&self) -> &str {
        &self.value
    }

    fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        let have = lookup(&self.field).unwrap_or_default();
        match self.operator {
            FieldOperator::Equals => have == self.value,
            FieldOperator::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A parsed field selector: a conjunction of [`FieldRequirement`]s.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a `fieldSelector` query string; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(raw)?;
            terms.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Whether the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, in canonical order.
    pub fn terms(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// Field paths referenced (e.g. `["metadata.name", "spec.nodeName"]`), each once, so the
    /// API server can reject unsupported fields with 400 before listing.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in &self.terms {
            if !out.contains(&t.field.as_str()) {
                out.push(&t.field);
            }
        }
        out
    }

    /// `lookup` returns the object's value for a field path (None = field absent, treated
    /// as "").
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| t.matches(lookup))
    }

    /// If the selector pins one value for `field` with `=`/`==` (e.g. `metadata.name=foo`),
    /// return it (upstream's `RequiresExactMatch`; the first such term wins).
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form, e.g. `metadata.name=foo,spec.nodeName!=n1`, with values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Escapes `\`, `,` and `=` in a value (upstream's `fields.EscapeValue`).
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at commas not preceded by a backslash; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits at the first operator; `!=` and `==` are tried before `=` at each position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPERATORS: [(&str, FieldOperator); 3] = [
        ("!=", FieldOperator::NotEquals),
        ("==", FieldOperator::Equals),
        ("=", FieldOperator::Equals),
    ];
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in OPERATORS {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

/// Upstream's `fields.UnescapeValue`, also accepting `\!`.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=' | '!') {
                return Err(SelectorError(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(SelectorError(format!(
                    "invalid field selector: unescaped character in value: {c:?} in {s:?}"
                )))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("parse {s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match FieldSelector::parse(s) {
            Ok(v) => panic!("parse {s:?} should fail, got {v:?}"),
            Err(e) => e.0,
        }
    }

    fn obj(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(s: &str, pairs: &[(&str, &str)]) -> bool {
        let o = obj(pairs);
        sel(s).matches(&|f: &str| o.get(f).cloned())
    }

    #[test]
    fn empty_selects_everything() {
        for s in ["", ",", ",,"] {
            let s = sel(s);
            assert!(s.is_empty());
            assert_eq!(s, FieldSelector::everything());
            assert_eq!(s.to_string(), "");
            assert!(s.fields().is_empty());
            assert!(s.matches(&|_: &str| None));
        }
    }

    #[test]
    fn operators() {
        let s = sel("metadata.name=foo");
        assert_eq!(s.terms()[0].operator(), FieldOperator::Equals);
        assert_eq!(s.terms()[0].field(), "metadata.name");
        assert_eq!(s.terms()[0].value(), "foo");
        assert_eq!(s.to_string(), "metadata.name=foo");

        let s = sel("metadata.name==foo");
        assert_eq!(s.terms()[0].operator(), FieldOperator::Equals);
        assert_eq!(s.terms()[0].value(), "foo");
        assert_eq!(s.to_string(), "metadata.name=foo");

        let s = sel("spec.nodeName!=n1");
        assert_eq!(s.terms()[0].operator(), FieldOperator::NotEquals);
        assert_eq!(s.terms()[0].value(), "n1");
        assert_eq!(s.to_string(), "spec.nodeName!=n1");

        let s = sel("a=");
        assert_eq!(s.terms()[0].value(), "");
        assert_eq!(s.to_string(), "a=");
        // Values may hold `!` and `==` splits before `=`.
        assert_eq!(sel("a=b!c").terms()[0].value(), "b!c");
        assert_eq!(sel("a!=!c").terms()[0].value(), "!c");
    }

    #[test]
    fn canonical_order_and_roundtrip() {
        let s = sel("spec.nodeName!=n1,metadata.namespace==default,metadata.name=x");
        assert_eq!(
            s.to_string(),
            "metadata.name=x,metadata.namespace=default,spec.nodeName!=n1"
        );
        assert_eq!(
            s.fields(),
            ["metadata.name", "metadata.namespace", "spec.nodeName"]
        );
        assert_eq!(sel(&s.to_string()), s);
        assert_eq!(sel("a=1,a!=2,a=3").fields(), ["a"]);
    }

    #[test]
    fn escapes() {
        let s = sel(r"metadata.name=a\,b\=c\\d\!e,x=y");
        assert_eq!(s.exact_value("metadata.name"), Some(r"a,b=c\d!e"));
        assert_eq!(s.exact_value("x"), Some("y"));
        assert_eq!(s.to_string(), r"metadata.name=a\,b\=c\\d!e,x=y");
        assert_eq!(sel(&s.to_string()), s);
        // An escaped comma does not split terms.
        assert_eq!(sel(r"a=b\,c").terms().len(), 1);
        assert_eq!(escape_value(r"a,b=c\d"), r"a\,b\=c\\d");
    }

    #[test]
    fn whitespace_is_significant() {
        let s = sel("metadata.name = foo");
        assert_eq!(s.fields(), ["metadata.name "]);
        assert_eq!(s.terms()[0].value(), " foo");
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("metadata.name"),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            err("a=b,c"),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
        assert!(err(r"a=b\x").contains(r"invalid escape sequence: \x"));
        assert!(err(r"a=b\").contains(r"invalid escape sequence: \"));
        assert!(err("a=b=c").contains("unescaped character in value: '='"));
        assert!(err("a==b=c").contains("unescaped character in value"));
        assert!(err("a!==b").contains("unescaped character in value"));
        for e in [err("x"), err("a=b\\q")] {
            assert!(e.starts_with("invalid"), "{e}");
        }
    }

    #[test]
    fn matching() {
        assert!(m("metadata.name=foo", &[("metadata.name", "foo")]));
        assert!(!m("metadata.name=foo", &[("metadata.name", "bar")]));
        assert!(!m("metadata.name=foo", &[]));
        assert!(m("metadata.name!=foo", &[("metadata.name", "bar")]));
        assert!(!m("metadata.name!=foo", &[("metadata.name", "foo")]));
        // Absent fields read as "".
        assert!(m("metadata.name!=foo", &[]));
        assert!(m("spec.nodeName=", &[]));
        assert!(!m("spec.nodeName!=", &[]));
        assert!(m("spec.nodeName!=", &[("spec.nodeName", "n1")]));
        // Conjunction.
        let o = [("metadata.name", "p"), ("status.phase", "Running")];
        assert!(m("metadata.name=p,status.phase!=Pending", &o));
        assert!(!m("metadata.name=p,status.phase=Pending", &o));
        assert!(m(r"metadata.name=a\,b", &[("metadata.name", "a,b")]));
    }

    #[test]
    fn exact_value() {
        let s = sel("metadata.name=foo,spec.nodeName!=n1");
        assert_eq!(s.exact_value("metadata.name"), Some("foo"));
        assert_eq!(s.exact_value("spec.nodeName"), None);
        assert_eq!(s.exact_value("metadata.namespace"), None);
        assert_eq!(
            sel("metadata.name==x").exact_value("metadata.name"),
            Some("x")
        );
        assert_eq!(sel("metadata.name=").exact_value("metadata.name"), Some(""));
        assert_eq!(
            FieldSelector::everything().exact_value("metadata.name"),
            None
        );
        let s: FieldSelector = "a=b".parse().unwrap();
        assert_eq!(s, sel("a=b"));
    }
}
