//! Generates the protobuf schema table for every Kubernetes message.
//!
//! The schema is not typed in by hand: it is read from the sources of two crates that
//! are already in the dependency graph.
//!
//! * `k8s-pb` (prost-generated structs) gives, for every message, the field numbers,
//!   protobuf types, labels (optional, repeated, map) and the referenced message types.
//! * `k8s-openapi` (serde structs generated from the OpenAPI definitions) gives the exact
//!   JSON field names (`hostIPC`, `podCIDRs`, `$ref`), the exact type names (`CSIDriver`,
//!   which prost spells `CsiDriver`) and whether a field is required.
//!
//! Both are located with `cargo metadata`. The output is `$OUT_DIR/schema_table.rs`, a
//! static table that `src/schema.rs` includes and `src/decode.rs` walks.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// JSON names whose empty-string value is meaningful even though the field is optional
/// (a Go `*string` where `""` differs from nil), so an empty value is kept.
const KEEP_EMPTY_STRING: &[&str] = &["storageClassName", "volumeAttributesClassName"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=K3RS_KUBEPROTO_K8S_PB_SRC");
    println!("cargo:rerun-if-env-changed=K3RS_KUBEPROTO_K8S_OPENAPI_SRC");

    let (pb_src, openapi_src) = locate_sources();
    let openapi = OpenApiNames::load(&openapi_src);
    let messages = parse_k8s_pb(&pb_src);
    let (table, fallbacks) = render(&messages, &openapi);

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    std::fs::write(out.join("schema_table.rs"), table).expect("write schema_table.rs");
    std::fs::write(out.join("json_name_fallbacks.txt"), fallbacks).expect("write fallbacks");
}

// ---------------------------------------------------------------------------------------
// Locating the dependency sources

/// Returns the `src` directories of `k8s-pb` and `k8s-openapi`.
fn locate_sources() -> (PathBuf, PathBuf) {
    let pb_env = std::env::var_os("K3RS_KUBEPROTO_K8S_PB_SRC").map(PathBuf::from);
    let openapi_env = std::env::var_os("K3RS_KUBEPROTO_K8S_OPENAPI_SRC").map(PathBuf::from);
    if let (Some(pb), Some(openapi)) = (&pb_env, &openapi_env) {
        return (pb.clone(), openapi.clone());
    }

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let mut command = Command::new(cargo);
    command
        .current_dir(&manifest_dir)
        .args(["metadata", "--format-version", "1"]);
    if let Ok(target) = std::env::var("TARGET") {
        command.args(["--filter-platform", &target]);
    }
    let output = command
        .output()
        .expect("run `cargo metadata` to locate k8s-pb and k8s-openapi");
    if !output.status.success() {
        panic!(
            "`cargo metadata` failed (set K3RS_KUBEPROTO_K8S_PB_SRC and \
             K3RS_KUBEPROTO_K8S_OPENAPI_SRC to skip it): {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("parse `cargo metadata` output");
    let packages = metadata["packages"].as_array().expect("metadata.packages");
    let find = |name: &str| -> PathBuf {
        let package = packages
            .iter()
            .filter(|p| p["name"] == name)
            .max_by_key(|p| p["version"].as_str().map(version_key))
            .unwrap_or_else(|| panic!("package {name} not found in `cargo metadata`"));
        let manifest = package["manifest_path"].as_str().expect("manifest_path");
        Path::new(manifest)
            .parent()
            .expect("manifest directory")
            .join("src")
    };
    // A different k8s-pb or k8s-openapi version shows up as a Cargo.lock change.
    if let Some(root) = metadata["workspace_root"].as_str() {
        println!(
            "cargo:rerun-if-changed={}",
            Path::new(root).join("Cargo.lock").display()
        );
    }
    let pb = pb_env.unwrap_or_else(|| find("k8s-pb"));
    let openapi = openapi_env.unwrap_or_else(|| find("k8s-openapi"));
    (pb, openapi)
}

fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-', '+'])
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Lowercase with everything but ASCII letters and digits removed: the key that joins a
/// prost snake_case name (`host_ipc`, `r#ref`) with a JSON name (`hostIPC`, `$ref`).
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

// ---------------------------------------------------------------------------------------
// k8s-openapi: JSON names

struct OpenApiField {
    json: String,
    required: bool,
}

struct OpenApiType {
    /// The type name with its original spelling, e.g. `CSIDriver`.
    name: String,
    /// Normalized JSON name -> field.
    fields: HashMap<String, OpenApiField>,
}

/// Types from k8s-openapi, keyed by the lowercased package path + type name without the
/// `io.k8s.` prefix and with `-` replaced by `_` (`api.core.v1.podspec`).
struct OpenApiNames {
    types: HashMap<String, OpenApiType>,
}

impl OpenApiNames {
    fn load(src: &Path) -> Self {
        // Every Kubernetes version directory, newest first: the newest names the most
        // fields; older ones still hold the types that were removed since.
        let mut versions: Vec<PathBuf> = std::fs::read_dir(src)
            .unwrap_or_else(|e| panic!("read {}: {e}", src.display()))
            .map(|entry| entry.expect("dir entry").path())
            .filter(|path| {
                path.is_dir()
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("v1_"))
            })
            .collect();
        versions.sort_by_key(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            std::cmp::Reverse(version_key(
                name.trim_start_matches('v').replace('_', ".").as_str(),
            ))
        });

        let mut types = HashMap::new();
        for version in versions {
            let mut files = Vec::new();
            rust_sources(&version, &mut files);
            for file in files {
                let text = std::fs::read_to_string(&file).expect("read k8s-openapi source");
                if let Some((key, ty)) = parse_openapi_file(&text) {
                    types.entry(key).or_insert(ty);
                }
            }
        }
        OpenApiNames { types }
    }
}

fn parse_openapi_file(text: &str) -> Option<(String, OpenApiType)> {
    let first = text.lines().next()?;
    let definition = first.strip_prefix("// Generated from definition ")?.trim();
    let path = definition.strip_prefix("io.k8s.")?.replace('-', "_");
    let name = path.rsplit('.').next()?.to_string();

    // Top-level `pub field: Type,` lines of the struct tell which fields are required.
    let mut optional: HashMap<String, bool> = HashMap::new();
    let mut in_struct = false;
    for line in text.lines() {
        if line.starts_with("pub struct ") {
            in_struct = true;
            continue;
        }
        if in_struct && line.starts_with('}') {
            break;
        }
        if in_struct {
            if let Some(rest) = line.strip_prefix("    pub ") {
                if let Some((field, ty)) = rest.split_once(": ") {
                    optional.insert(field.to_string(), ty.starts_with("Option<"));
                }
            }
        }
    }

    let mut fields = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix('"') else {
            continue;
        };
        let Some((json, rest)) = rest.split_once("\" => Field::Key_") else {
            continue;
        };
        let key = rest.trim_end_matches(',');
        let required = !optional.get(key).copied().unwrap_or(true);
        fields.insert(
            normalize(json),
            OpenApiField {
                json: json.to_string(),
                required,
            },
        );
    }
    Some((path.to_ascii_lowercase(), OpenApiType { name, fields }))
}

// ---------------------------------------------------------------------------------------
// k8s-pb: messages and fields

#[derive(Debug)]
struct PbMessage {
    /// Package path without `k8s.io.`, e.g. `api.core.v1`.
    package: String,
    /// The prost (Rust) spelling of the message name.
    rust_name: String,
    fields: Vec<PbField>,
}

#[derive(Debug)]
struct PbField {
    number: u32,
    rust_name: String,
    /// First word of the field's doc comment: Kubernetes comments usually start with
    /// the JSON name (`volumeID is unique ID ...`).
    doc_word: Option<String>,
    label: Label,
    /// Scalar type name (`string`, `int32`, ...) or `message`.
    value: String,
    /// For maps: the key scalar type.
    key: Option<String>,
    /// For message values: the referenced message's package path + Rust name.
    message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Label {
    Single,
    Repeated,
    Map,
}

fn parse_k8s_pb(src: &Path) -> Vec<PbMessage> {
    let mut files = Vec::new();
    rust_sources(src, &mut files);
    let mut messages = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("file under src");
        let module: Vec<String> = relative
            .parent()
            .map(|dir| {
                dir.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if module.is_empty() {
            continue; // lib.rs: traits, no messages
        }
        let text = std::fs::read_to_string(&file).expect("read k8s-pb source");
        parse_pb_module(&module, &text, &mut messages);
    }
    messages
}

fn parse_pb_module(module: &[String], text: &str, messages: &mut Vec<PbMessage>) {
    let mut current: Option<PbMessage> = None;
    let mut doc_word: Option<String> = None;
    let mut doc_started = false;
    let mut attribute: Option<String> = None;
    let mut declaration = String::new();

    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|rest| rest.strip_suffix(" {}"))
        {
            messages.push(PbMessage {
                package: module.join("."),
                rust_name: name.to_string(),
                fields: Vec::new(),
            });
            continue;
        }
        if let Some(name) = line
            .strip_prefix("pub struct ")
            .and_then(|rest| rest.strip_suffix(" {"))
        {
            current = Some(PbMessage {
                package: module.join("."),
                rust_name: name.to_string(),
                fields: Vec::new(),
            });
            continue;
        }
        let Some(message) = current.as_mut() else {
            continue;
        };
        if line == "}" {
            messages.push(current.take().expect("current message"));
            continue;
        }
        let trimmed = line.trim();
        if let Some(doc) = trimmed.strip_prefix("///") {
            if !doc_started {
                doc_started = true;
                doc_word = doc.split_whitespace().next().map(|w| {
                    w.trim_matches(|c: char| !c.is_ascii_alphanumeric())
                        .to_string()
                });
            }
            continue;
        }
        if let Some(attr) = trimmed
            .strip_prefix("#[prost(")
            .and_then(|rest| rest.strip_suffix(")]"))
        {
            attribute = Some(attr.to_string());
            declaration.clear();
            continue;
        }
        if attribute.is_some() {
            declaration.push_str(trimmed);
            let balanced = declaration.matches('<').count() == declaration.matches('>').count();
            if declaration.ends_with(',') && balanced {
                let attr = attribute.take().expect("attribute");
                let field = parse_pb_field(module, &attr, &declaration, doc_word.take());
                message.fields.push(field);
                doc_started = false;
                declaration.clear();
            }
        }
    }
}

fn parse_pb_field(
    module: &[String],
    attr: &str,
    declaration: &str,
    doc: Option<String>,
) -> PbField {
    let (name, ty) = declaration
        .strip_prefix("pub ")
        .and_then(|rest| rest.split_once(':'))
        .unwrap_or_else(|| panic!("unexpected k8s-pb field declaration {declaration:?}"));
    let rust_name = name.trim().trim_start_matches("r#").to_string();
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();

    let parts: Vec<&str> = attr.split(", ").map(str::trim).collect();
    let number: u32 = parts
        .iter()
        .find_map(|p| p.strip_prefix("tag = \""))
        .and_then(|t| t.trim_end_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no tag in #[prost({attr})]"));
    let head = parts[0];

    let (label, key, value) = if let Some(map) = head
        .strip_prefix("btree_map = \"")
        .or_else(|| head.strip_prefix("map = \""))
        .or_else(|| head.strip_prefix("hash_map = \""))
    {
        // `btree_map = "string, message"`: split() above cut it at ", ".
        let key = map.to_string();
        let value = parts
            .get(1)
            .map(|v| v.trim_end_matches('"').to_string())
            .expect("map value type");
        (Label::Map, Some(key), value)
    } else {
        let value = head.split(" = ").next().unwrap_or(head).to_string();
        let label = if parts.contains(&"repeated") {
            Label::Repeated
        } else {
            Label::Single
        };
        (label, None, value)
    };
    let value = match value.as_str() {
        "enumeration" => "int32".to_string(),
        other => other.to_string(),
    };

    let message = (value == "message").then(|| resolve_type(module, innermost_type(&ty)));
    PbField {
        number,
        rust_name,
        doc_word: doc,
        label,
        value,
        key,
        message,
    }
}

/// The message type path inside `Option<..>`, `Vec<..>`, `Box<..>` or the value of a
/// `BTreeMap<K, V>`.
fn innermost_type(ty: &str) -> &str {
    let ty = ty.trim_end_matches([',', '>']);
    let start = ty.rfind(['<', ',']).map(|i| i + 1).unwrap_or(0);
    &ty[start..]
}

/// Resolves a Rust type path relative to `module` into `package.path.Name`.
fn resolve_type(module: &[String], path: &str) -> String {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = module.to_vec();
    if segments.first() == Some(&"crate") {
        base.clear();
        segments.remove(0);
    }
    while segments.first() == Some(&"super") {
        base.pop();
        segments.remove(0);
    }
    base.extend(segments.iter().map(|s| s.to_string()));
    base.join(".")
}

// ---------------------------------------------------------------------------------------
// Rendering the table

/// Fields whose message Go embeds with `json:",inline"`: protobuf has a field for the
/// embedded struct, JSON has its fields directly in the parent (`Probe.handler`,
/// `Volume.volumeSource`, `ConfigMapKeySelector.localObjectReference`).
struct InlineFields {
    /// (lowercased message key, field number).
    fields: std::collections::HashSet<(String, u32)>,
    /// Lowercased key of an embedded message -> key of an OpenAPI type that embeds it.
    borrowed_names: HashMap<String, String>,
}

fn find_inline_fields(messages: &[PbMessage], openapi: &OpenApiNames) -> InlineFields {
    let by_key: HashMap<String, &PbMessage> = messages
        .iter()
        .map(|m| {
            (
                format!("{}.{}", m.package, m.rust_name).to_ascii_lowercase(),
                m,
            )
        })
        .collect();
    let mut inline = InlineFields {
        fields: Default::default(),
        borrowed_names: HashMap::new(),
    };
    let mut embedded_types = std::collections::HashSet::new();
    // With an OpenAPI definition: a message field the definition lacks, whose own fields
    // the definition has (or are themselves embedded), is embedded. Repeated until no
    // change, for embedding chains (`NamedRuleWithOperations` > `RuleWithOperations` > `Rule`).
    loop {
        let mut changed = false;
        for m in messages {
            let key = format!("{}.{}", m.package, m.rust_name).to_ascii_lowercase();
            let Some(names) = openapi.types.get(&key) else {
                continue;
            };
            for f in &m.fields {
                if f.label != Label::Single
                    || names.fields.contains_key(&normalize(&f.rust_name))
                    || inline.fields.contains(&(key.clone(), f.number))
                {
                    continue;
                }
                let Some(target_key) = f.message.as_ref().map(|t| t.to_ascii_lowercase()) else {
                    continue;
                };
                let Some(target) = by_key.get(&target_key) else {
                    continue;
                };
                let embedded = !target.fields.is_empty()
                    && target.fields.iter().all(|tf| {
                        names.fields.contains_key(&normalize(&tf.rust_name))
                            || inline.fields.contains(&(target_key.clone(), tf.number))
                    });
                if embedded {
                    inline.fields.insert((key.clone(), f.number));
                    inline
                        .borrowed_names
                        .entry(target_key.clone())
                        .or_insert(key.clone());
                    embedded_types.insert(target_key.rsplit('.').next().unwrap_or("").to_string());
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Without one (older API versions): a field named after a type embedded elsewhere.
    for m in messages {
        let key = format!("{}.{}", m.package, m.rust_name).to_ascii_lowercase();
        if openapi.types.contains_key(&key) {
            continue;
        }
        for f in &m.fields {
            let Some(target_key) = f.message.as_ref().map(|t| t.to_ascii_lowercase()) else {
                continue;
            };
            let type_name = target_key.rsplit('.').next().unwrap_or("");
            if f.label == Label::Single
                && normalize(&f.rust_name) == type_name
                && embedded_types.contains(type_name)
            {
                inline.fields.insert((key.clone(), f.number));
            }
        }
    }
    inline
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn scalar_variant(ty: &str) -> &'static str {
    match ty {
        "string" => "String",
        "bytes" => "Bytes",
        "bool" => "Bool",
        "int32" => "Int32",
        "int64" => "Int64",
        "uint32" => "Uint32",
        "uint64" => "Uint64",
        "sint32" => "Sint32",
        "sint64" => "Sint64",
        "fixed32" => "Fixed32",
        "fixed64" => "Fixed64",
        "sfixed32" => "Sfixed32",
        "sfixed64" => "Sfixed64",
        "float" => "Float",
        "double" => "Double",
        other => panic!("unsupported protobuf scalar type {other:?} in k8s-pb"),
    }
}

/// Renders the table, and a list of the fields whose JSON name did not come from
/// k8s-openapi (for review; written next to the table).
fn render(messages: &[PbMessage], openapi: &OpenApiNames) -> (String, String) {
    // Canonical (Kubernetes) spelling of each message's full name.
    let canonical: Vec<String> = messages
        .iter()
        .map(|m| {
            let key = format!("{}.{}", m.package, m.rust_name).to_ascii_lowercase();
            let name = openapi
                .types
                .get(&key)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| m.rust_name.clone());
            format!("k8s.io.{}.{}", m.package, name)
        })
        .collect();
    let mut order: Vec<usize> = (0..messages.len()).collect();
    order.sort_by(|a, b| canonical[*a].cmp(&canonical[*b]));
    let mut index_of_rust: HashMap<String, usize> = HashMap::new();
    for (position, &i) in order.iter().enumerate() {
        let m = &messages[i];
        index_of_rust.insert(format!("{}.{}", m.package, m.rust_name), position);
    }

    let inline = find_inline_fields(messages, openapi);

    let mut stats: BTreeMap<&str, usize> = BTreeMap::new();
    let mut fallbacks = String::new();
    // One flat field array and messages as ranges into it: far quicker for rustc than
    // thousands of nested slice literals.
    let mut out = String::new();
    let mut field_rows = String::new();
    let mut field_count = 0usize;
    out.push_str(
        "// @generated by crates/kubeproto/build.rs from k8s-pb and k8s-openapi sources.\n",
    );
    out.push_str("pub(crate) static MESSAGES: &[MessageSchema] = &[\n");
    for &i in &order {
        let m = &messages[i];
        let key = format!("{}.{}", m.package, m.rust_name).to_ascii_lowercase();
        // A message embedded inline in another (Go `json:",inline"`) takes its JSON names
        // from the embedding type when it has no OpenAPI definition of its own.
        let names = openapi.types.get(&key).or_else(|| {
            inline
                .borrowed_names
                .get(&key)
                .and_then(|k| openapi.types.get(k))
        });
        let mut fields: Vec<&PbField> = m.fields.iter().collect();
        fields.sort_by_key(|f| f.number);
        writeln!(
            out,
            "    MessageSchema {{ name: {:?}, first_field: {}, field_count: {} }},",
            canonical[i],
            field_count,
            fields.len()
        )
        .unwrap();
        field_count += fields.len();
        for f in fields {
            let normalized = normalize(&f.rust_name);
            let from_openapi = names.and_then(|t| t.fields.get(&normalized));
            let is_inline = inline.fields.contains(&(key.clone(), f.number));
            let (json, required) = if is_inline {
                *stats.entry("inline").or_default() += 1;
                (lower_camel(&f.rust_name), false)
            } else if let Some(field) = from_openapi {
                *stats.entry("openapi").or_default() += 1;
                (field.json.clone(), field.required)
            } else if let Some(word) = f.doc_word.as_ref().filter(|w| {
                normalize(w) == normalized && w.starts_with(|c: char| c.is_ascii_lowercase())
            }) {
                *stats.entry("doc comment").or_default() += 1;
                writeln!(fallbacks, "{} {} doc {}", canonical[i], f.rust_name, word).unwrap();
                (word.clone(), false)
            } else {
                *stats.entry("camelCase").or_default() += 1;
                writeln!(
                    fallbacks,
                    "{} {} camel {}",
                    canonical[i],
                    f.rust_name,
                    lower_camel(&f.rust_name)
                )
                .unwrap();
                (lower_camel(&f.rust_name), false)
            };
            let value = match &f.message {
                Some(target) => {
                    let index = index_of_rust
                        .get(target)
                        .unwrap_or_else(|| panic!("unknown message type {target} in k8s-pb"));
                    format!("V::Message({index})")
                }
                None => format!("V::{}", scalar_variant(&f.value)),
            };
            let shape = match f.label {
                Label::Single => "S::Single".to_string(),
                Label::Repeated => "S::Repeated".to_string(),
                Label::Map => format!(
                    "S::Map(V::{})",
                    scalar_variant(f.key.as_deref().expect("map key"))
                ),
            };
            let omit_empty_string = f.value == "string"
                && f.label == Label::Single
                && !required
                && !KEEP_EMPTY_STRING.contains(&json.as_str());
            writeln!(
                field_rows,
                "    FieldSchema {{ number: {}, json_name: {:?}, shape: {}, value: {}, omit_empty_string: {}, inline: {} }},",
                f.number, json, shape, value, omit_empty_string, is_inline
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    writeln!(
        out,
        "pub(crate) static FIELDS: [FieldSchema; {field_count}] = [\n{field_rows}];"
    )
    .unwrap();
    writeln!(out, "// JSON name sources: {stats:?}").unwrap();
    (out, fallbacks)
}
