//! The JSONPath subset that CRD printer columns and scale paths use (client-go's
//! `util/jsonpath` without templates): `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[1:3]`, `[*]`,
//! `.*`, `..name` and filters such as `[?(@.type=="Ready")]`. A path may be wrapped in
//! `{...}` and may start with `$`.

use serde_json::Value;

/// Why a JSONPath could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSONPath {path:?}: {reason}")]
pub struct JsonPathError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>),
    /// The current values and all their descendants (`..`).
    Descend,
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    /// Path relative to `@`.
    left: Vec<Step>,
    /// `None`: the path only has to exist.
    compare: Option<(Op, Value)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parse `.spec.replicas`, `{.status.conditions[?(@.type=="Ready")].status}`, ...
    pub fn parse(path: &str) -> Result<JsonPath, JsonPathError> {
        let err = |reason: &str| JsonPathError {
            path: path.to_string(),
            reason: reason.to_string(),
        };
        let mut s = path.trim();
        if let Some(inner) = s.strip_prefix('{') {
            s = inner
                .strip_suffix('}')
                .ok_or_else(|| err("unclosed {"))?
                .trim();
        }
        s = s.strip_prefix('$').unwrap_or(s);
        let steps = parse_steps(s).map_err(|r| err(&r))?;
        Ok(JsonPath { steps })
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, root)
    }
}

fn parse_steps(s: &str) -> Result<Vec<Step>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    // A leading bare name (`spec.replicas`) is read like `.spec.replicas`.
    let mut expect_name = !chars.is_empty() && chars[0] != '.' && chars[0] != '[';
    while i < chars.len() || expect_name {
        if expect_name {
            expect_name = false;
            if i < chars.len() && chars[i] == '*' {
                steps.push(Step::Wildcard);
                i += 1;
                continue;
            }
            if i < chars.len() && chars[i] == '[' {
                continue;
            }
            let mut name = String::new();
            while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                name.push(chars[i]);
                i += 1;
            }
            if name.is_empty() {
                if i >= chars.len() && steps.is_empty() {
                    // `.` alone selects the root.
                    break;
                }
                return Err("empty field name".to_string());
            }
            steps.push(Step::Field(name));
            continue;
        }
        match chars[i] {
            '.' => {
                if chars.get(i + 1) == Some(&'.') {
                    steps.push(Step::Descend);
                    i += 2;
                } else {
                    i += 1;
                }
                expect_name = true;
            }
            '[' => {
                let end = matching_bracket(&chars, i).ok_or("unclosed [")?;
                let inner: String = chars[i + 1..end].iter().collect();
                steps.push(parse_bracket(inner.trim())?);
                i = end + 1;
            }
            c => return Err(format!("unexpected character {c:?}")),
        }
    }
    Ok(steps)
}

/// Index of the `]` closing the `[` at `open`, skipping quotes and parentheses.
fn matching_bracket(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut i = open;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                if c == '\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' | '(' => depth += 1,
                ']' | ')' => {
                    depth -= 1;
                    if depth == 0 && c == ']' {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

fn parse_bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name));
    }
    if let Some(expr) = inner.strip_prefix("?(").and_then(|e| e.strip_suffix(')')) {
        return parse_filter(expr.trim()).map(Step::Filter);
    }
    if let Some((a, b)) = inner.split_once(':') {
        let num = |s: &str| -> Result<Option<i64>, String> {
            let s = s.trim();
            // A step (`[0:4:2]`) is not supported; the part after a second colon is ignored.
            let s = s.split(':').next().unwrap_or("");
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse()
                    .map(Some)
                    .map_err(|_| format!("invalid slice bound {s:?}"))
            }
        };
        return Ok(Step::Slice(num(a)?, num(b)?));
    }
    inner
        .parse::<i64>()
        .map(Step::Index)
        .map_err(|_| format!("unsupported bracket expression [{inner}]"))
}

fn unquote(s: &str) -> Option<String> {
    let q = s.chars().next()?;
    if (q == '\'' || q == '"') && s.len() >= 2 && s.ends_with(q) {
        let body = &s[1..s.len() - 1];
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        Some(out)
    } else {
        None
    }
}

fn parse_filter(expr: &str) -> Result<Filter, String> {
    const OPS: [(&str, Op); 6] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let chars: Vec<char> = expr.chars().collect();
    // Find the first operator outside quotes.
    let mut quote: Option<char> = None;
    let mut split: Option<(usize, usize, Op)> = None;
    let mut i = 0;
    'scan: while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == '\'' || c == '"' {
            quote = Some(c);
        } else {
            for (text, op) in OPS {
                let t: Vec<char> = text.chars().collect();
                if chars[i..].starts_with(&t) {
                    split = Some((i, i + t.len(), op));
                    break 'scan;
                }
            }
        }
        i += 1;
    }
    let (left, compare) = match split {
        Some((a, b, op)) => {
            let left: String = chars[..a].iter().collect();
            let right: String = chars[b..].iter().collect();
            (left, Some((op, parse_literal(right.trim())?)))
        }
        None => (expr.to_string(), None),
    };
    let left = left.trim();
    let rel = left
        .strip_prefix('@')
        .ok_or_else(|| format!("filter must start with @: {expr}"))?;
    Ok(Filter {
        left: parse_steps(rel)?,
        compare,
    })
}

fn parse_literal(s: &str) -> Result<Value, String> {
    if let Some(text) = unquote(s) {
        return Ok(Value::String(text));
    }
    match s {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        "null" | "nil" => return Ok(Value::Null),
        _ => {}
    }
    serde_json::from_str::<serde_json::Number>(s)
        .map(Value::Number)
        .map_err(|_| format!("unsupported filter literal {s:?}"))
}

fn eval<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            apply_step(step, v, &mut next);
        }
        current = next;
    }
    current
}

fn apply_step<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(name)) {
                out.push(x);
            }
        }
        Step::Wildcard => match v {
            Value::Object(m) => out.extend(m.values()),
            Value::Array(a) => out.extend(a.iter()),
            _ => {}
        },
        Step::Index(i) => {
            if let Some(a) = v.as_array() {
                let len = a.len() as i64;
                let idx = if *i < 0 { len + i } else { *i };
                if (0..len).contains(&idx) {
                    out.push(&a[idx as usize]);
                }
            }
        }
        Step::Slice(from, to) => {
            if let Some(a) = v.as_array() {
                let len = a.len() as i64;
                let clamp =
                    |x: i64| -> usize { (if x < 0 { len + x } else { x }).clamp(0, len) as usize };
                let start = from.map(clamp).unwrap_or(0);
                let end = to.map(clamp).unwrap_or(len as usize);
                if start < end {
                    out.extend(a[start..end].iter());
                }
            }
        }
        Step::Descend => descend(v, out),
        Step::Filter(filter) => {
            let candidates: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for c in candidates {
                if filter_matches(filter, c) {
                    out.push(c);
                }
            }
        }
    }
}

fn descend<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    out.push(v);
    match v {
        Value::Object(m) => m.values().for_each(|x| descend(x, out)),
        Value::Array(a) => a.iter().for_each(|x| descend(x, out)),
        _ => {}
    }
}

fn filter_matches(filter: &Filter, item: &Value) -> bool {
    let found = eval(&filter.left, item);
    match &filter.compare {
        None => found.iter().any(|v| !v.is_null()),
        Some((op, lit)) => found.iter().any(|v| compare(v, *op, lit)),
    }
}

fn compare(v: &Value, op: Op, lit: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (v, lit) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) => {
            if a == b {
                Some(Ordering::Equal)
            } else {
                None
            }
        }
    };
    match op {
        Op::Eq => ord == Some(Ordering::Equal),
        Op::Ne => ord != Some(Ordering::Equal),
        Op::Lt => ord == Some(Ordering::Less),
        Op::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => ord == Some(Ordering::Greater),
        Op::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn selects_like_client_go() {
        let obj = json!({
            "metadata": {"labels": {"app": "web", "k8s.io/name": "x"}},
            "spec": {"replicas": 3, "list": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
            "status": {"conditions": [
                {"type": "Synced", "status": "False"},
                {"type": "Ready", "status": "True"}
            ]}
        });
        assert_eq!(find(".spec.replicas", &obj), [json!(3)]);
        assert_eq!(find("{.spec.replicas}", &obj), [json!(3)]);
        assert_eq!(find("$.spec.replicas", &obj), [json!(3)]);
        assert_eq!(find(".metadata.labels.app", &obj), [json!("web")]);
        assert_eq!(find(".metadata.labels['k8s.io/name']", &obj), [json!("x")]);
        assert_eq!(find(".metadata.labels.k8s\\.io/name", &obj), [json!("x")]);
        assert_eq!(find(".spec.list[0].name", &obj), [json!("a")]);
        assert_eq!(find(".spec.list[-1].name", &obj), [json!("c")]);
        assert_eq!(find(".spec.list[0:2].name", &obj), [json!("a"), json!("b")]);
        assert_eq!(
            find(".spec.list[*].name", &obj),
            [json!("a"), json!("b"), json!("c")]
        );
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#, &obj),
            [json!("True")]
        );
        assert_eq!(
            find(".status.conditions[?(@.type!='Ready')].type", &obj),
            [json!("Synced")]
        );
        assert_eq!(find("..name", &obj).len(), 3);
        assert!(find(".spec.missing", &obj).is_empty());
        assert_eq!(find(".", &obj), std::slice::from_ref(&obj));
        assert!(JsonPath::parse(".spec[").is_err());
        assert!(JsonPath::parse(".spec[?(x==1)]").is_err());
    }
}
