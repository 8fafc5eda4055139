//! Label selectors: the `labelSelector` query parameter and `metav1.LabelSelector` objects.
//!
//! The string parser follows the one in `k8s.io/apimachinery/pkg/labels` token for token:
//! a lexer splits the input into identifiers and the symbols `! = == != > < ( ) ,` (plus the
//! keywords `in` and `notin`), and a recursive-descent parser turns comma-separated
//! requirements into [`Requirement`]s. Keys and values are validated like upstream (qualified
//! names and label values), `in`/`notin` value sets are sorted and de-duplicated, and the
//! requirements are kept sorted by key so that [`Display`](std::fmt::Display) gives the same
//! canonical form as upstream's `Selector.String()`.
//!
//! Matching semantics are upstream's too: `!=` and `notin` match objects that lack the key,
//! `>`/`<` compare base-10 integers and never match a missing or non-numeric label.

use std::collections::BTreeMap;
use std::fmt;

use crate::validation::{label_value_errors, qualified_name_errors};

/// A selector that failed to parse or validate; the message follows upstream's wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

/// The operator of one label requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key in (v1,v2)`
    In,
    /// `key notin (v1,v2)`
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>5`
    GreaterThan,
    /// `key<5`
    LessThan,
}

/// One requirement of a label selector, e.g. `tier in (web,db)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// Sorted and de-duplicated; exactly one for `=`, `==`, `!=`, `>`, `<`; none for
    /// `Exists`/`DoesNotExist`; at least one for `in`/`notin`.
    values: Vec<String>,
}

impl Requirement {
    /// Builds and validates a requirement like upstream's `labels.NewRequirement`.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        let mut errs: Vec<String> = Vec::new();
        if let Err(e) = validate_label_key(&key) {
            errs.push(e);
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                        quote_list(&values)
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        quote_list(&values)
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        quote_list(&values)
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        quote_list(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(format!(
                            "values[{i}]: Invalid value: {v:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = label_value_errors(v);
            if !msgs.is_empty() {
                errs.push(format!(
                    "values[{i}]: Invalid value: {v:?}: {}",
                    msgs.join("; ")
                ));
            }
        }
        if !errs.is_empty() {
            return Err(SelectorError(aggregate(errs)));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// The label key, e.g. `app.kubernetes.io/name`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and de-duplicated (empty for `Exists`/`DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether labels given by `get` (key → value, `None` = absent) satisfy this requirement.
    pub fn matches_with<'a>(&self, get: &dyn Fn(&str) -> Option<&'a str>) -> bool {
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                get(&self.key).is_some_and(has_value)
            }
            Operator::NotIn | Operator::NotEquals => match get(&self.key) {
                None => true,
                Some(v) => !has_value(v),
            },
            Operator::Exists => get(&self.key).is_some(),
            Operator::DoesNotExist => get(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = get(&self.key).map(str::parse::<i64>) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        f.write_str(&self.values.join(","))?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: a conjunction of [`Requirement`]s, kept sorted by key.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Upstream's `labels.Nothing()`: matches no object (from a `null` metav1.LabelSelector).
    nothing: bool,
}

impl LabelSelector {
    /// Parses a `labelSelector` query string; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parser = Parser {
            src: s,
            items: lex(s),
            pos: 0,
            seen: 0,
        };
        let requirements = parser.parse()?;
        Ok(Self::from_requirements(requirements))
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches no object (upstream's `labels.Nothing()`), which is what a
    /// `null` metav1.LabelSelector means. Like upstream it displays as the empty string, so
    /// do not turn it back into a query parameter.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Builds a selector from requirements (sorted by key, as upstream's `Selector.Add`).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// `key=value` for every entry, like upstream's `labels.SelectorFromValidatedSet` but
    /// validated (e.g. a Service's `spec.selector`). An empty map selects everything.
    pub fn from_map(labels: &BTreeMap<String, String>) -> Result<Self, SelectorError> {
        let requirements = labels
            .iter()
            .map(|(k, v)| Requirement::new(k.clone(), Operator::Equals, vec![v.clone()]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_requirements(requirements))
    }

    /// Whether the selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// `labels`: the object's `metadata.labels` (None or non-object = no labels). A label
    /// whose value is not a JSON string is compared by its JSON text.
    pub fn matches(&self, labels: Option<&serde_json::Value>) -> bool {
        let map = labels.and_then(serde_json::Value::as_object);
        let rendered: BTreeMap<&str, String> = map
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_string())
            .map(|(k, v)| (k.as_str(), v.to_string()))
            .collect();
        let get = |k: &str| -> Option<&str> {
            let v = map?.get(k)?;
            match v.as_str() {
                Some(s) => Some(s),
                None => rendered.get(k).map(String::as_str),
            }
        };
        self.matches_with(&get)
    }

    /// Matches against a plain label map.
    pub fn matches_map(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k: &str| labels.get(k).map(String::as_str))
    }

    /// Matches against labels given by `get` (key → value, `None` = absent).
    pub fn matches_with<'a>(&self, get: &dyn Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_with(get))
    }

    /// From a metav1.LabelSelector JSON object (`{matchLabels, matchExpressions: [{key,
    /// operator: In|NotIn|Exists|DoesNotExist, values}]}`), like upstream's
    /// `metav1.LabelSelectorAsSelector`: `null` selects nothing, `{}` selects everything.
    pub fn from_label_selector_json(v: &serde_json::Value) -> Result<Self, SelectorError> {
        if v.is_null() {
            return Ok(Self::nothing());
        }
        let obj = v.as_object().ok_or_else(|| {
            SelectorError(format!(
                "invalid label selector: expected an object, found {v}"
            ))
        })?;
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(m)) => {
                for (k, val) in m {
                    let val = val.as_str().ok_or_else(|| {
                        SelectorError(format!(
                            "invalid label selector: matchLabels[{k:?}]: expected a string, found {val}"
                        ))
                    })?;
                    requirements.push(Requirement::new(
                        k.clone(),
                        Operator::Equals,
                        vec![val.to_string()],
                    )?);
                }
            }
            Some(other) => {
                return Err(SelectorError(format!(
                    "invalid label selector: matchLabels: expected an object, found {other}"
                )))
            }
        }
        match obj.get("matchExpressions") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(exprs)) => {
                for (i, expr) in exprs.iter().enumerate() {
                    requirements.push(expression_requirement(i, expr)?);
                }
            }
            Some(other) => {
                return Err(SelectorError(format!(
                    "invalid label selector: matchExpressions: expected an array, found {other}"
                )))
            }
        }
        Ok(Self::from_requirements(requirements))
    }
}

fn expression_requirement(
    i: usize,
    expr: &serde_json::Value,
) -> Result<Requirement, SelectorError> {
    let bad = |what: &str| {
        SelectorError(format!(
            "invalid label selector: matchExpressions[{i}]: {what}"
        ))
    };
    let obj = expr
        .as_object()
        .ok_or_else(|| bad(&format!("expected an object, found {expr}")))?;
    let key = match obj.get("key") {
        Some(serde_json::Value::String(s)) => s.clone(),
        None | Some(serde_json::Value::Null) => String::new(),
        Some(other) => return Err(bad(&format!("key: expected a string, found {other}"))),
    };
    let op = match obj.get("operator") {
        Some(serde_json::Value::String(s)) => s.as_str(),
        None | Some(serde_json::Value::Null) => "",
        Some(other) => return Err(bad(&format!("operator: expected a string, found {other}"))),
    };
    let operator = match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => {
            return Err(SelectorError(format!(
                "{other:?} is not a valid label selector operator"
            )))
        }
    };
    let values = match obj.get("values") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(vs)) => vs
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(&format!("values: expected strings, found {v}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(bad(&format!("values: expected an array, found {other}"))),
    };
    Requirement::new(key, operator, values)
}

impl fmt::Display for LabelSelector {
    /// The canonical form, e.g. `app=web,tier in (a,b)`; `everything()` and `nothing()` are
    /// both `""` (as upstream).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------
// Validation of keys and values (rules and messages in `crate::validation`).

fn validate_label_key(key: &str) -> Result<(), String> {
    let errs = qualified_name_errors(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("key: Invalid value: {key:?}: {}", errs.join("; ")))
    }
}

fn quote_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(","))
}

/// Like upstream's `utilerrors.Aggregate.Error()`.
fn aggregate(errs: Vec<String>) -> String {
    if errs.len() == 1 {
        errs.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", errs.join(", "))
    }
}

// ---------------------------------------------------------------------------------------
// Lexer and parser (k8s.io/apimachinery/pkg/labels/selector.go).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Whether `in`/`notin` are keywords (after a key) or plain identifiers (keys and values).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

#[derive(Clone, Debug)]
struct Item {
    tok: Token,
    lit: String,
    /// Byte offsets of the token in the source.
    start: usize,
    end: usize,
}

fn string_to_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(s: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.next_if(|&(_, c)| is_whitespace(c)).is_some() {}
        let Some(&(start, first)) = chars.peek() else {
            items.push(Item {
                tok: Token::EndOfString,
                lit: String::new(),
                start: s.len(),
                end: s.len(),
            });
            return items;
        };
        if is_special(first) {
            // Longest run of special symbols that still forms a token. Every single symbol
            // is a token, so this always yields one.
            let mut buf = String::new();
            let mut last: Option<(Token, usize)> = None;
            while let Some(&(i, c)) = chars.peek() {
                if !is_special(c) {
                    break;
                }
                buf.push(c);
                match string_to_token(&buf) {
                    Some(tok) => {
                        last = Some((tok, i + c.len_utf8()));
                        chars.next();
                    }
                    None => break,
                }
            }
            if let Some((tok, end)) = last {
                items.push(Item {
                    tok,
                    lit: s[start..end].to_string(),
                    start,
                    end,
                });
            }
        } else {
            let mut end = start;
            while let Some((i, c)) = chars.next_if(|&(_, c)| !is_special(c) && !is_whitespace(c)) {
                end = i + c.len_utf8();
            }
            let lit = &s[start..end];
            items.push(Item {
                tok: string_to_token(lit).unwrap_or(Token::Identifier),
                lit: lit.to_string(),
                start,
                end,
            });
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    items: Vec<Item>,
    pos: usize,
    /// Furthest token index looked at, to quote the failing requirement in errors.
    seen: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser<'_> {
    fn item(&self, idx: usize) -> (Token, String, usize) {
        // The last item is always EndOfString; never read past it.
        let idx = idx.min(self.items.len() - 1);
        let it = &self.items[idx];
        (it.tok, it.lit.clone(), idx)
    }

    fn lookahead(&mut self, ctx: Context) -> (Token, String) {
        let (tok, lit, idx) = self.item(self.pos);
        self.seen = self.seen.max(idx);
        (Self::in_context(tok, ctx), lit)
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let (tok, lit, idx) = self.item(self.pos);
        self.seen = self.seen.max(idx);
        self.pos = (self.pos + 1).min(self.items.len());
        (Self::in_context(tok, ctx), lit)
    }

    fn in_context(tok: Token, ctx: Context) -> Token {
        match (ctx, tok) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => tok,
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let start = self.items[self.pos].start;
                    match self.parse_requirement() {
                        Ok(r) => requirements.push(r),
                        Err(e) => {
                            let end = self.items[self.seen.min(self.items.len() - 1)].end;
                            let text = self.src[start..end.max(start)].trim();
                            return Err(SelectorError(format!(
                                "unable to parse requirement: {e} (in requirement {text:?})"
                            )));
                        }
                    }
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(SelectorError(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, op, Vec::new()).map_err(|e| e.0);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values).map_err(|e| e.0)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        validate_label_key(&lit)?;
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ if lit.is_empty() => {
                return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}"))
            }
            _ => {
                return Err(format!(
                    "invalid operator '{lit}', expected: {BINARY_OPERATORS}"
                ))
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                // "()" is the set holding the empty string.
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    values.push(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    // Empty values: "(,a", "a,)", "a,,b".
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if tok2 == Token::Comma {
                        self.consume(Context::Values);
                        values.push(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if matches!(tok, Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(vec![lit])
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("parse {s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(v) => panic!("parse {s:?} should fail, got {v:?}"),
            Err(e) => e.0,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(s: &str, pairs: &[(&str, &str)]) -> bool {
        let sel = sel(s);
        let map = labels(pairs);
        let by_map = sel.matches_map(&map);
        let json = serde_json::to_value(&map).unwrap();
        assert_eq!(by_map, sel.matches(Some(&json)), "json vs map for {s:?}");
        by_map
    }

    #[test]
    fn empty_selects_everything() {
        for s in ["", "  ", "\t\n"] {
            let s = sel(s);
            assert!(s.is_empty());
            assert_eq!(s, LabelSelector::everything());
            assert_eq!(s.to_string(), "");
            assert!(s.matches(None));
            assert!(s.matches(Some(&json!({"a": "b"}))));
            assert!(s.matches_map(&BTreeMap::new()));
        }
    }

    #[test]
    fn operators_parse_and_display() {
        let cases = [
            ("a=b", "a=b", Operator::Equals),
            ("a==b", "a==b", Operator::DoubleEquals),
            ("a!=b", "a!=b", Operator::NotEquals),
            ("a in (b,c)", "a in (b,c)", Operator::In),
            ("a notin (c,b,b)", "a notin (b,c)", Operator::NotIn),
            ("a", "a", Operator::Exists),
            ("!a", "!a", Operator::DoesNotExist),
            ("a>5", "a>5", Operator::GreaterThan),
            ("a<5", "a<5", Operator::LessThan),
            ("a=", "a=", Operator::Equals),
            ("a in ()", "a in ()", Operator::In),
        ];
        for (input, canonical, op) in cases {
            let s = sel(input);
            assert_eq!(s.to_string(), canonical, "{input}");
            assert_eq!(s.requirements().len(), 1);
            assert_eq!(s.requirements()[0].operator(), op, "{input}");
            assert_eq!(s.requirements()[0].key(), "a");
            assert!(!s.is_empty());
            // The canonical form parses back to the same selector.
            assert_eq!(sel(canonical), s, "{input}");
        }
        assert_eq!(
            sel("a notin (c,b,b)").requirements()[0].values(),
            ["b", "c"]
        );
        assert_eq!(sel("a in ()").requirements()[0].values(), [""]);
        assert_eq!(sel("a").requirements()[0].values(), [] as [String; 0]);
    }

    #[test]
    fn whitespace_is_tolerated() {
        let s = sel("  x = 1 ,  y  !=  2,z in ( a , b ) ,  ! w ,v notin(c),\tu\n");
        assert_eq!(s.to_string(), "u,v notin (c),!w,x=1,y!=2,z in (a,b)");
        assert_eq!(sel("a = ").to_string(), "a=");
        assert_eq!(sel("a>  10").to_string(), "a>10");
    }

    #[test]
    fn requirements_sorted_by_key_canonically() {
        let s = sel("b=1,a=2,c,a!=3");
        assert_eq!(s.to_string(), "a=2,a!=3,b=1,c");
        assert_eq!(s, sel("a=2,a!=3,b=1,c"));
    }

    #[test]
    fn prefixed_keys_and_keywords_as_identifiers() {
        let s = sel("app.kubernetes.io/name=web,example.com/x-y_z.1 in (in,notin)");
        assert_eq!(
            s.to_string(),
            "app.kubernetes.io/name=web,example.com/x-y_z.1 in (in,notin)"
        );
        // `in` and `notin` are plain identifiers where a key or value is expected.
        assert_eq!(sel("in in (in)").to_string(), "in in (in)");
        assert_eq!(sel("notin=in").to_string(), "notin=in");
        assert_eq!(sel("in").requirements()[0].operator(), Operator::Exists);
    }

    #[test]
    fn empty_values_in_sets() {
        assert_eq!(sel("a in (,b)").requirements()[0].values(), ["", "b"]);
        assert_eq!(sel("a in (b,)").requirements()[0].values(), ["", "b"]);
        assert_eq!(
            sel("a in (b,,c)").requirements()[0].values(),
            ["", "b", "c"]
        );
        assert_eq!(sel("a in (,)").requirements()[0].values(), [""]);
        assert!(m("a in (,b)", &[("a", "")]));
        assert!(!m("a in (,b)", &[]));
    }

    #[test]
    fn syntax_errors() {
        let e = err("a in (b");
        assert!(e.starts_with("unable to parse requirement: "), "{e}");
        assert!(e.contains("found '', expected: ',' or ')'"), "{e}");
        assert!(e.contains("\"a in (b\""), "{e}");

        let e = err("=x");
        assert_eq!(e, "found '=', expected: !, identifier, or 'end of string'");

        let e = err("a b");
        assert!(e.starts_with("unable to parse requirement: "), "{e}");
        assert!(e.contains("invalid operator 'b'"), "{e}");
        assert!(e.contains("in, notin, =, ==, !=, gt, lt"), "{e}");
        assert!(e.contains("\"a b\""), "{e}");

        let e = err("a=b,");
        assert_eq!(e, "found '', expected: identifier after ','");
        let e = err("a=b,,c");
        assert_eq!(e, "found ',', expected: identifier after ','");
        let e = err(",a");
        assert!(e.contains("found ','"), "{e}");
        let e = err("a=b c");
        assert_eq!(e, "found 'c', expected: ',' or 'end of string'");
        let e = err("a in b");
        assert!(e.contains("found 'b' expected: '('"), "{e}");
        let e = err("a in (b c)");
        assert!(e.contains("found 'c', expected: ',' or ')'"), "{e}");
        let e = err("a in (=)");
        assert!(
            e.contains("found '=', expected: ',', ')' or identifier"),
            "{e}"
        );
        let e = err("a in (b,=)");
        assert!(e.contains("found '=', expected: ',', or identifier"), "{e}");
        let e = err("a=(b)");
        assert!(e.contains("found '(', expected: identifier"), "{e}");
        let e = err("a<=5");
        assert!(e.contains("found '=', expected: identifier"), "{e}");
        let e = err("!a=b");
        assert_eq!(e, "found '=', expected: ',' or 'end of string'");
        let e = err("!");
        assert!(e.contains("found '', expected: identifier"), "{e}");
        let e = err("a in");
        assert!(e.contains("found '' expected: '('"), "{e}");
        let e = err("a=b=c");
        assert!(
            e.contains("found '=', expected: ',' or 'end of string'"),
            "{e}"
        );
        let e = err("(");
        assert!(e.contains("found '('"), "{e}");
    }

    #[test]
    fn invalid_keys() {
        for key in [
            "a@b",
            "-a",
            "a-",
            "a\\b",
            "a:b",
            "a/b/c",
            "/a",
            "a/",
            "Example.com/a",
            "ex_ample.com/a",
            "a.b/c@",
        ] {
            let e = err(&format!("{key}=x"));
            assert!(e.starts_with("unable to parse requirement: "), "{key}: {e}");
            assert!(e.contains("key: Invalid value"), "{key}: {e}");
        }
        let e = err("a@b=x");
        assert!(
            e.contains("name part must consist of alphanumeric characters"),
            "{e}"
        );
        assert!(e.contains("\"a@b\""), "{e}");
        assert!(err("Example.com/a").contains("prefix part a lowercase RFC 1123 subdomain"));
        assert!(err("/a").contains("prefix part must be non-empty"));
        assert!(err("a/").contains("name part must be non-empty"));
        assert!(err("a/b/c").contains("a qualified name must consist of"));

        let long_name = "a".repeat(64);
        let e = err(&long_name);
        assert!(
            e.contains("name part must be no more than 63 characters"),
            "{e}"
        );
        sel(&"a".repeat(63));

        let long_prefix = format!("{}/a", ["abcdefghi"; 26].join("."));
        assert!(long_prefix.len() > 255);
        let e = err(&long_prefix);
        assert!(
            e.contains("prefix part must be no more than 253 characters"),
            "{e}"
        );
        let ok_prefix = format!("{}/a", ["abcdefghi"; 25].join("."));
        sel(&ok_prefix);
    }

    #[test]
    fn invalid_values() {
        let long = "v".repeat(64);
        let e = err(&format!("a={long}"));
        assert!(e.contains("must be no more than 63 characters"), "{e}");
        assert!(e.contains("values[0]: Invalid value"), "{e}");
        sel(&format!("a={}", "v".repeat(63)));

        for v in ["-x", "x-", "x@y", "_x", "x/y"] {
            let e = err(&format!("a={v}"));
            assert!(
                e.contains("a valid label must be an empty string or consist of"),
                "{v}: {e}"
            );
        }
        let e = err("a in (ok,b@d)");
        assert!(e.contains("\"b@d\""), "{e}");
        assert!(e.contains("\"a in (ok,b@d)\""), "{e}");
        // Both value-level problems are aggregated.
        let e = err(&format!("a in ({long},x@y)"));
        assert!(e.contains('['), "{e}");

        let e = err("a>b");
        assert!(e.contains("the value must be an integer"), "{e}");
        let e = err("a<");
        assert!(e.contains("the value must be an integer"), "{e}");
        // A negative bound is not a valid label value, as upstream.
        assert!(LabelSelector::parse("a>-1").is_err());
        sel("a>007");
    }

    #[test]
    fn matching_semantics() {
        // Equality.
        assert!(m("a=b", &[("a", "b")]));
        assert!(m("a==b", &[("a", "b"), ("c", "d")]));
        assert!(!m("a=b", &[("a", "c")]));
        assert!(!m("a=b", &[]));
        assert!(m("a=", &[("a", "")]));
        assert!(!m("a=", &[]));
        // Inequality matches objects without the key.
        assert!(m("a!=b", &[]));
        assert!(m("a!=b", &[("a", "c")]));
        assert!(!m("a!=b", &[("a", "b")]));
        // Sets.
        assert!(m("a in (b,c)", &[("a", "c")]));
        assert!(!m("a in (b,c)", &[("a", "d")]));
        assert!(!m("a in (b,c)", &[]));
        assert!(m("a notin (b,c)", &[]));
        assert!(m("a notin (b,c)", &[("a", "d")]));
        assert!(!m("a notin (b,c)", &[("a", "b")]));
        // Existence.
        assert!(m("a", &[("a", "")]));
        assert!(!m("a", &[("b", "")]));
        assert!(m("!a", &[]));
        assert!(m("!a", &[("b", "x")]));
        assert!(!m("!a", &[("a", "x")]));
        // Numeric comparisons.
        assert!(m("a>5", &[("a", "6")]));
        assert!(m("a>5", &[("a", "10")]));
        assert!(!m("a>5", &[("a", "5")]));
        assert!(!m("a>5", &[("a", "x")]));
        assert!(!m("a>5", &[]));
        assert!(m("a<5", &[("a", "4")]));
        assert!(m("a<5", &[("a", "-3")]));
        assert!(!m("a<5", &[("a", "5")]));
        assert!(!m("a<5", &[]));
        assert!(!m("a<5", &[("a", "")]));
        // Conjunction.
        assert!(m("a=b,c in (d),!e,f", &[("a", "b"), ("c", "d"), ("f", "")]));
        assert!(!m("a=b,c in (d),!e,f", &[("a", "b"), ("c", "d")]));
        assert!(!m(
            "a=b,c in (d),!e,f",
            &[("a", "b"), ("c", "d"), ("e", ""), ("f", "")]
        ));
    }

    #[test]
    fn matches_json_labels() {
        let s = sel("a!=b,!c");
        assert!(s.matches(None));
        assert!(s.matches(Some(&serde_json::Value::Null)));
        assert!(s.matches(Some(&json!("not an object"))));
        assert!(s.matches(Some(&json!({"a": "x"}))));
        assert!(!s.matches(Some(&json!({"c": "x"}))));
        let s = sel("a");
        assert!(!s.matches(None));
        assert!(s.matches(Some(&json!({"a": 1}))));
        assert!(sel("a=1").matches(Some(&json!({"a": 1}))));
        assert!(sel("a>0").matches(Some(&json!({"a": 1}))));
    }

    #[test]
    fn from_label_selector_json_works() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web", "tier": "front"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["a"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "owner", "operator": "Exists", "values": []},
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,!canary,env in (dev,prod),owner,tier=front,zone notin (a)"
        );
        let ok = labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("env", "dev"),
            ("owner", "me"),
        ]);
        assert!(s.matches_map(&ok));
        let mut bad = ok.clone();
        bad.insert("canary".into(), "1".into());
        assert!(!s.matches_map(&bad));
        let mut bad = ok.clone();
        bad.insert("zone".into(), "a".into());
        assert!(!s.matches_map(&bad));
        assert_eq!(sel(&s.to_string()), s);

        // {} selects everything, null selects nothing.
        let all = LabelSelector::from_label_selector_json(&json!({})).unwrap();
        assert!(all.is_empty());
        assert!(all.matches(None));
        let all = LabelSelector::from_label_selector_json(
            &json!({"matchLabels": null, "matchExpressions": []}),
        )
        .unwrap();
        assert!(all.is_empty());
        let none = LabelSelector::from_label_selector_json(&serde_json::Value::Null).unwrap();
        assert!(!none.is_empty());
        assert!(!none.matches(None));
        assert!(!none.matches_map(&labels(&[("a", "b")])));
        assert_eq!(none, LabelSelector::nothing());
    }

    #[test]
    fn from_label_selector_json_errors() {
        let bad = |v: serde_json::Value| {
            LabelSelector::from_label_selector_json(&v)
                .expect_err(&format!("{v} should fail"))
                .0
        };
        let e = bad(json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}));
        assert_eq!(e, "\"Gt\" is not a valid label selector operator");
        let e = bad(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}));
        assert!(e.contains("values set can't be empty"), "{e}");
        let e = bad(json!({"matchExpressions": [{"key": "a", "operator": "In"}]}));
        assert!(e.contains("values set can't be empty"), "{e}");
        let e =
            bad(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}));
        assert!(e.contains("values set must be empty"), "{e}");
        let e = bad(json!({"matchLabels": {"a b": "c"}}));
        assert!(e.contains("key: Invalid value: \"a b\""), "{e}");
        let e = bad(json!({"matchLabels": {"a": "c d"}}));
        assert!(e.contains("values[0]: Invalid value: \"c d\""), "{e}");
        let e = bad(json!({"matchLabels": {"a": 1}}));
        assert!(e.contains("expected a string"), "{e}");
        let e = bad(json!({"matchExpressions": [{"operator": "Exists"}]}));
        assert!(e.contains("name part must be non-empty"), "{e}");
        let e = bad(json!({"matchExpressions": {}}));
        assert!(e.contains("expected an array"), "{e}");
        let e = bad(json!("a=b"));
        assert!(e.contains("expected an object"), "{e}");
    }

    #[test]
    fn from_map_and_requirement_new() {
        let s = LabelSelector::from_map(&labels(&[("b", "2"), ("a", "1")])).unwrap();
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(LabelSelector::from_map(&BTreeMap::new())
            .unwrap()
            .is_empty());
        assert!(LabelSelector::from_map(&labels(&[("a", "x y")])).is_err());

        let r =
            Requirement::new("a", Operator::In, vec!["y".into(), "x".into(), "y".into()]).unwrap();
        assert_eq!(r.values(), ["x", "y"]);
        assert_eq!(r.to_string(), "a in (x,y)");
        assert!(Requirement::new("a", Operator::Equals, vec![]).is_err());
        assert!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()]).is_err()
        );
        let s: LabelSelector = "x=y".parse().unwrap();
        assert_eq!(s, sel("x=y"));
    }
}
