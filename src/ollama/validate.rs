//! Native request bodies checked against the schema the OpenAPI document gives them.
//!
//! The native passthrough forwards a body as the client wrote it, so no Rust type parses it.
//! What `/openapi.json` says of it (the types of [`super::schemas`], read through utoipa, so the
//! document and the check cannot drift apart) is checked instead, before anything goes
//! upstream: a body the document does not allow is a 400 naming the field, in Ollama's shape.
//! Keys the document does not name pass unchecked (Ollama ignores what it does not know, and
//! newer versions add fields).
//!
//! The keywords those schemas use are applied as JSON Schema defines them: `type`, `enum`,
//! `properties`, `required`, `additionalProperties`, `items`, `oneOf`, `anyOf`, `allOf`,
//! `$ref`, `minimum`, `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, `pattern`
//! (Rust's regex syntax, which the document's simple patterns share with ECMA 262); an integer's
//! `format` (`int32`, `int64`) bounds it where the schema declares no bound of its own, as
//! client generators and schemathesis read it. Any other keyword is a test failure here (see
//! the tests), not a silently unchecked rule.
//!
//! Two rules come from Ollama's Go decoder rather than JSON Schema:
//! - a key that is not a documented field's exact spelling but equals it under Go's case
//!   folding (`"Keep_Alive"`) would be read as that field: it is refused, as on every body the
//!   gateway checks ([`crate::gate::fold`]);
//! - a number with a zero fraction (`7.0`) is an integer to JSON Schema but not to Go's `int`:
//!   where the schema wants an integer it is accepted, and written as `7` in the body that goes
//!   upstream.

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;
use serde_json::{Map, Number, Value};
use utoipa::ToSchema;

use crate::error::GatewayError;
use crate::gate::fold;

/// Strings longer than this are not quoted back in a refusal (an image's base64, a prompt).
const SHOWN_CHARS: usize = 40;

/// Where component schemas are referred to from.
const COMPONENTS: &str = "#/components/schemas/";

/// A documented request body's schema, with the component schemas it refers to.
#[derive(Debug)]
pub struct BodySchema {
    root: Value,
    components: HashMap<String, Value>,
    /// Every `pattern` the schemas hold, compiled once.
    patterns: HashMap<String, Regex>,
}

/// One step of the path to a value in a body (borrowed from the body or its schema: the path
/// is only written out for a refusal, so walking a body allocates nothing for it).
#[derive(Clone, Copy, Debug)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A refused value: a 400 naming where it stands (`messages[0].role: ...`).
type Refusal = GatewayError;

/// JSON pointers (RFC 6901) to the integral numbers to write as integers.
type Rewrites = Vec<String>;

impl BodySchema {
    /// The schema the document gives `T`, and every component schema it refers to.
    pub fn of<T: ToSchema>() -> Self {
        // A schema utoipa built always serialises; `true` (anything goes) is what an empty one
        // would mean.
        let json = |schema| serde_json::to_value(schema).unwrap_or(Value::Bool(true));
        let mut referenced = Vec::new();
        T::schemas(&mut referenced);
        let root = json(T::schema());
        let components: HashMap<String, Value> = referenced
            .into_iter()
            .map(|(name, schema)| (name, json(schema)))
            .collect();
        let mut patterns = HashMap::new();
        for schema in std::iter::once(&root).chain(components.values()) {
            collect_patterns(schema, &mut patterns);
        }
        Self {
            root,
            components,
            patterns,
        }
    }

    /// Check `body`. Integral numbers where an integer is wanted are rewritten in place; the
    /// answer says whether any was (the body must then be serialised again).
    pub fn check(&self, body: &mut Value) -> Result<bool, GatewayError> {
        let rewrites = self.validate(&self.root, body, &mut Vec::new())?;
        for pointer in &rewrites {
            if let Some(slot) = body.pointer_mut(pointer)
                && let Some(int) = slot.as_f64().and_then(exact_i64)
            {
                *slot = Value::from(int);
            }
        }
        Ok(!rewrites.is_empty())
    }

    /// The component a `$ref` names (`true`, anything, for one the document lacks: utoipa adds
    /// every schema it refers to, so that cannot happen).
    fn resolve<'s>(&'s self, reference: &str) -> &'s Value {
        static ANY: Value = Value::Bool(true);
        reference
            .strip_prefix(COMPONENTS)
            .and_then(|name| self.components.get(name))
            .unwrap_or(&ANY)
    }

    fn validate<'a>(
        &'a self,
        schema: &'a Value,
        value: &'a Value,
        path: &mut Vec<Step<'a>>,
    ) -> Result<Rewrites, Refusal> {
        let schema = match schema {
            Value::Object(schema) => schema,
            Value::Bool(false) => return Err(refusal(path, "is not allowed here".into())),
            _ => return Ok(Vec::new()),
        };
        let mut rewrites = Vec::new();
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            rewrites.extend(self.validate(self.resolve(reference), value, path)?);
        }
        if let Some(types) = schema.get("type")
            && !types_of(types).any(|t| has_type(t, value))
        {
            return Err(self.mismatch(schema, value, path));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            return Err(self.mismatch(schema, value, path));
        }
        match value {
            Value::Number(number) => {
                let wants_integer = schema
                    .get("type")
                    .is_some_and(|types| types_of(types).any(|t| t == "integer"));
                if wants_integer && !(number.is_i64() || number.is_u64()) {
                    // serde_json reads an integer beyond 64 bits as a float, so a float this
                    // large may stand for a number the bounds refuse: only exact ones pass.
                    if number.as_f64().and_then(exact_i64).is_none() {
                        return Err(out_of_bounds(schema, number, path));
                    }
                    rewrites.push(pointer(path));
                }
                check_bounds(schema, number, path)?;
            }
            Value::String(text) => {
                check_length(schema, text.chars().count(), path)?;
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                    && !self
                        .patterns
                        .get(pattern)
                        .is_some_and(|re| re.is_match(text))
                {
                    return Err(refusal(path, format!("must match the pattern `{pattern}`")));
                }
            }
            Value::Array(items) => {
                check_items(schema, items.len(), path)?;
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        path.push(Step::Index(i));
                        let checked = self.validate(item_schema, item, path);
                        path.pop();
                        rewrites.extend(checked?);
                    }
                }
            }
            Value::Object(fields) => rewrites.extend(self.check_object(schema, fields, path)?),
            Value::Null | Value::Bool(_) => {}
        }
        if let Some(branches) = schema.get("allOf").and_then(Value::as_array) {
            for branch in branches {
                rewrites.extend(self.validate(branch, value, path)?);
            }
        }
        for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(branches) = schema.get(keyword).and_then(Value::as_array) {
                rewrites.extend(self.one_of(schema, branches, exactly_one, value, path)?);
            }
        }
        Ok(rewrites)
    }

    /// `properties`, `required` and `additionalProperties` of an object.
    fn check_object<'a>(
        &'a self,
        schema: &'a Map<String, Value>,
        fields: &'a Map<String, Value>,
        path: &mut Vec<Step<'a>>,
    ) -> Result<Rewrites, Refusal> {
        if !["properties", "required", "additionalProperties"]
            .iter()
            .any(|k| schema.contains_key(*k))
        {
            return Ok(Vec::new());
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let mut rewrites = Vec::new();
        for (key, field) in fields {
            path.push(Step::Key(key));
            let checked = match properties.and_then(|p| p.get(key)) {
                Some(field_schema) => self.validate(field_schema, field, path),
                // Not a documented name: another spelling of one (Go's case folding)?
                None => match properties
                    .and_then(|p| p.keys().find(|name| fold::go_matches(key, name)))
                {
                    Some(name) => {
                        path.pop();
                        path.push(Step::Key(name));
                        Err(fold::variant_refusal(&display(path), key, name))
                    }
                    None => match schema.get("additionalProperties") {
                        Some(extra) => self.validate(extra, field, path),
                        None => Ok(Vec::new()),
                    },
                },
            };
            path.pop();
            rewrites.extend(checked?);
        }
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(name) {
                path.push(Step::Key(name));
                let missing = refusal(path, "is required".into());
                path.pop();
                return Err(missing);
            }
        }
        Ok(rewrites)
    }

    /// `oneOf` (exactly one branch holds) or `anyOf` (at least one does).
    fn one_of<'a>(
        &'a self,
        schema: &'a Map<String, Value>,
        branches: &'a [Value],
        exactly_one: bool,
        value: &'a Value,
        path: &mut Vec<Step<'a>>,
    ) -> Result<Rewrites, Refusal> {
        let mut held = Vec::new();
        let mut refusals = Vec::new();
        for branch in branches {
            // A branch that cannot take this value's type would refuse it; skipping it spares
            // writing a refusal nobody reads (an optional field's `null` branch, every time).
            if !self.admits(branch, value) {
                continue;
            }
            match self.validate(branch, value, path) {
                Ok(rewrites) => held.push(rewrites),
                Err(refused) => refusals.push(refused),
            }
            if !exactly_one && !held.is_empty() {
                break;
            }
        }
        match held.len() {
            1 => Ok(held.remove(0)),
            0 => {
                // An object or array that only one branch could be: that branch's own refusal
                // names the field inside that is wrong.
                let mut admitting = refusals.into_iter();
                match (admitting.next(), admitting.next()) {
                    (Some(inner), None) if value.is_object() || value.is_array() => Err(inner),
                    _ => Err(self.mismatch(schema, value, path)),
                }
            }
            _ if exactly_one => Err(refusal(
                path,
                format!("must be exactly one of {}", self.describe(schema)),
            )),
            _ => Ok(held.remove(0)),
        }
    }

    /// Whether `value`'s JSON type is one `schema` can take (whatever else it demands).
    fn admits(&self, schema: &Value, value: &Value) -> bool {
        match schema {
            Value::Object(schema) => self.admits_map(schema, value),
            other => other != &Value::Bool(false),
        }
    }

    fn admits_map(&self, schema: &Map<String, Value>, value: &Value) -> bool {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            return self.admits(self.resolve(reference), value);
        }
        if let Some(types) = schema.get("type") {
            return types_of(types).any(|t| has_type(t, value));
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            return allowed.iter().any(|v| same_type(v, value));
        }
        ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array))
            .all(|branches| branches.iter().any(|b| self.admits(b, value)))
    }

    /// "must be …, not …" for a value of the wrong type or outside an enum.
    fn mismatch(&self, schema: &Map<String, Value>, value: &Value, path: &[Step]) -> Refusal {
        let expected = self.describe(schema);
        let message = match value {
            // An object or array of the right type that lacks something: what it must have is
            // the whole message.
            Value::Object(_) | Value::Array(_) if self.admits_map(schema, value) => {
                format!("must be {expected}")
            }
            Value::String(text) if text.chars().count() > SHOWN_CHARS => {
                format!("must be {expected}, not this string")
            }
            Value::Object(_) | Value::Array(_) => {
                format!("must be {expected}, not {}", kind(value))
            }
            scalar => format!("must be {expected}, not {scalar}"),
        };
        refusal(path, message)
    }

    /// What `schema` accepts, in words: `null, a string or a number`.
    fn describe(&self, schema: &Map<String, Value>) -> String {
        let mut alternatives = Vec::new();
        self.alternatives(schema, &mut alternatives);
        alternatives.dedup();
        match alternatives.split_last() {
            None => "valid JSON".to_owned(),
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }

    fn alternatives(&self, schema: &Map<String, Value>, out: &mut Vec<String>) {
        if let Some(target) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r).as_object())
        {
            return self.alternatives(target, out);
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            let listed: Vec<String> = allowed.iter().map(Value::to_string).collect();
            out.push(match listed.as_slice() {
                [one] => one.clone(),
                many => format!("one of {}", many.join(", ")),
            });
            return;
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(branches) = schema.get(keyword).and_then(Value::as_array) {
                for branch in branches.iter().filter_map(Value::as_object) {
                    self.alternatives(branch, out);
                }
                return;
            }
        }
        let required: Vec<String> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|name| format!("`{name}`"))
            .collect();
        if !required.is_empty() {
            out.push(format!("an object with {}", required.join(" and ")));
            return;
        }
        if let Some(types) = schema.get("type") {
            out.extend(types_of(types).map(|t| type_words(t).to_owned()));
            return;
        }
        if let Some(first) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|b| b.iter().find_map(Value::as_object))
        {
            self.alternatives(first, out);
        }
    }
}

/// Compile every `pattern` under `schema` (one that does not compile matches nothing; the
/// tests show none fails to).
fn collect_patterns(schema: &Value, out: &mut HashMap<String, Regex>) {
    match schema {
        Value::Object(map) => {
            if let Some(pattern) = map.get("pattern").and_then(Value::as_str)
                && let Ok(re) = Regex::new(pattern)
            {
                out.insert(pattern.to_owned(), re);
            }
            map.values().for_each(|inner| collect_patterns(inner, out));
        }
        Value::Array(items) => items.iter().for_each(|inner| collect_patterns(inner, out)),
        _ => {}
    }
}

/// `minimum` and `maximum`, or else the range of the integer `format`.
fn bounds(schema: &Map<String, Value>) -> (Option<Number>, Option<Number>) {
    let (format_min, format_max) = match schema.get("format").and_then(Value::as_str) {
        Some("int32") => (Some(Number::from(i32::MIN)), Some(Number::from(i32::MAX))),
        Some("int64") => (Some(Number::from(i64::MIN)), Some(Number::from(i64::MAX))),
        _ => (None, None),
    };
    let declared = |key| schema.get(key).and_then(Value::as_number).cloned();
    (
        declared("minimum").or(format_min),
        declared("maximum").or(format_max),
    )
}

fn check_bounds(
    schema: &Map<String, Value>,
    number: &Number,
    path: &[Step],
) -> Result<(), Refusal> {
    let (minimum, maximum) = bounds(schema);
    let below = minimum
        .as_ref()
        .is_some_and(|min| compare(number, min) == Some(Ordering::Less));
    let above = maximum
        .as_ref()
        .is_some_and(|max| compare(number, max) == Some(Ordering::Greater));
    if below || above {
        return Err(out_of_bounds(schema, number, path));
    }
    Ok(())
}

fn out_of_bounds(schema: &Map<String, Value>, number: &Number, path: &[Step]) -> Refusal {
    let message = match bounds(schema) {
        (Some(min), Some(max)) => format!("must be between {min} and {max}, not {number}"),
        (Some(min), None) => format!("must be at least {min}, not {number}"),
        (None, Some(max)) => format!("must be at most {max}, not {number}"),
        (None, None) => format!("must be an integer that can be read exactly, not {number}"),
    };
    refusal(path, message)
}

/// `minLength` and `maxLength` (in characters, as JSON Schema counts them).
fn check_length(schema: &Map<String, Value>, length: usize, path: &[Step]) -> Result<(), Refusal> {
    let bound = |key| schema.get(key).and_then(Value::as_u64);
    if let Some(min) = bound("minLength")
        && (length as u64) < min
    {
        let message = if min == 1 {
            "must not be empty".to_owned()
        } else {
            format!("must be at least {min} characters long")
        };
        return Err(refusal(path, message));
    }
    if let Some(max) = bound("maxLength")
        && (length as u64) > max
    {
        return Err(refusal(
            path,
            format!("must be at most {max} characters long"),
        ));
    }
    Ok(())
}

/// `minItems` and `maxItems`.
fn check_items(schema: &Map<String, Value>, count: usize, path: &[Step]) -> Result<(), Refusal> {
    let bound = |key| schema.get(key).and_then(Value::as_u64);
    if let Some(min) = bound("minItems")
        && (count as u64) < min
    {
        return Err(refusal(path, format!("must have at least {min} items")));
    }
    if let Some(max) = bound("maxItems")
        && (count as u64) > max
    {
        return Err(refusal(path, format!("must have at most {max} items")));
    }
    Ok(())
}

/// `type` as one name or a list of them.
fn types_of(types: &Value) -> impl Iterator<Item = &str> {
    let listed = match types {
        Value::Array(list) => list.as_slice(),
        one => std::slice::from_ref(one),
    };
    listed.iter().filter_map(Value::as_str)
}

/// Whether `value` has the JSON Schema type `name` (an integer is any number without a
/// fractional part, `7.0` included).
fn has_type(name: &str, value: &Value) -> bool {
    match (name, value) {
        ("null", Value::Null)
        | ("boolean", Value::Bool(_))
        | ("string", Value::String(_))
        | ("number", Value::Number(_))
        | ("array", Value::Array(_))
        | ("object", Value::Object(_)) => true,
        ("integer", Value::Number(n)) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// The integer an integral float stands for, when it stands for one exactly: within ±2^53
/// every integer is a float of its own; beyond, one float stands for many numbers.
fn exact_i64(float: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    // Integral and within ±2^53: the cast is exact.
    (float.fract() == 0.0 && (-EXACT..=EXACT).contains(&float)).then_some(float as i64)
}

/// Compare two JSON numbers, exactly when both are integers.
fn compare(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn type_words(name: &str) -> &str {
    match name {
        "null" => "null",
        "boolean" => "a boolean",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "array" => "an array",
        "object" => "an object",
        other => other,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn refusal(path: &[Step], message: String) -> Refusal {
    let at = display(path);
    GatewayError::invalid(at.clone(), format!("{at}: {message}"))
}

/// `messages[0].tool_calls[1].function`, or `body` for the body itself.
fn display(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() {
        out.push_str("body");
    }
    out
}

/// The JSON pointer to the value at `path`.
fn pointer(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        out.push('/');
        match step {
            Step::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Step::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ollama::schemas::{
        ChatBody, EmbedBody, GenerateBody, LegacyEmbeddingsBody, ShowBody,
    };
    use serde_json::json;

    /// The refusal's field and message, or `None` when the body passes.
    fn refusal(schema: &BodySchema, mut body: Value) -> Option<(String, String)> {
        match schema.check(&mut body) {
            Ok(_) => None,
            Err(GatewayError::InvalidRequest { param, message }) => {
                Some((param.unwrap_or_default(), message))
            }
            Err(other) => Some((String::new(), other.to_string())),
        }
    }

    #[test]
    fn native_schemas_use_only_the_keywords_checked_here() {
        const CHECKED: &[&str] = &[
            "type",
            "enum",
            "properties",
            "required",
            "additionalProperties",
            "items",
            "oneOf",
            "anyOf",
            "allOf",
            "$ref",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "pattern",
            "format",
        ];
        const ANNOTATIONS: &[&str] = &[
            "description",
            "example",
            "examples",
            "title",
            "default",
            "deprecated",
        ];
        fn walk(schema: &Value, at: &str) {
            let Some(schema) = schema.as_object() else {
                return;
            };
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                assert!(Regex::new(pattern).is_ok(), "{at}: pattern {pattern:?}");
            }
            for (keyword, inner) in schema {
                assert!(
                    CHECKED.contains(&keyword.as_str()) || ANNOTATIONS.contains(&keyword.as_str()),
                    "{at}: `{keyword}` is not checked by the native validator"
                );
                match keyword.as_str() {
                    "properties" => {
                        for (name, property) in inner.as_object().into_iter().flatten() {
                            walk(property, &format!("{at}.{name}"));
                        }
                    }
                    "items" | "additionalProperties" => walk(inner, at),
                    "oneOf" | "anyOf" | "allOf" => {
                        for branch in inner.as_array().into_iter().flatten() {
                            walk(branch, at);
                        }
                    }
                    _ => {}
                }
            }
        }
        for (name, schema) in [
            ("ChatBody", BodySchema::of::<ChatBody>()),
            ("GenerateBody", BodySchema::of::<GenerateBody>()),
            ("EmbedBody", BodySchema::of::<EmbedBody>()),
            (
                "LegacyEmbeddingsBody",
                BodySchema::of::<LegacyEmbeddingsBody>(),
            ),
            ("ShowBody", BodySchema::of::<ShowBody>()),
        ] {
            assert!(schema.root.is_object(), "{name}");
            walk(&schema.root, name);
            for (component, inner) in &schema.components {
                walk(inner, component);
            }
        }
    }

    #[test]
    fn wrong_types_are_refused_naming_the_field() {
        let chat = BodySchema::of::<ChatBody>();
        let ask = json!([{"role": "user", "content": "hi"}]);
        let cases = [
            (
                json!({"model": "m", "messages": ask, "keep_alive": {}}),
                "keep_alive",
                "must be null, a string or a number, not an object",
            ),
            (
                json!({"model": "m", "messages": ask, "think": "extreme"}),
                "think",
                "not \"extreme\"",
            ),
            (
                json!({"model": "m", "messages": ask, "format": "yaml"}),
                "format",
                "must be null, \"json\" or an object",
            ),
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}),
                "messages[0].role",
                "one of \"system\", \"user\", \"assistant\", \"tool\"",
            ),
            (
                json!({"model": "m", "messages": [{"content": "hi"}]}),
                "messages[0].role",
                "is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "content": "",
                "tool_calls": [{"function": {"index": 5_000_000_000_u64, "name": "f", "arguments": {}}}]}]}),
                "messages[0].tool_calls[0].function.index",
                "between 0 and 4294967295",
            ),
            (
                json!({"model": "m", "messages": ask, "top_logprobs": 21}),
                "top_logprobs",
                "between 0 and 20",
            ),
            (
                json!({"model": "", "messages": ask}),
                "model",
                "must not be empty",
            ),
            (json!({"messages": ask}), "model", "is required"),
            (
                json!({"model": " \u{2028}", "messages": ask}),
                "model",
                "must match the pattern",
            ),
        ];
        for (body, field, words) in cases {
            let (param, message) = refusal(&chat, body.clone()).unwrap_or_default();
            assert_eq!(param, field, "{body}: {message}");
            assert!(message.starts_with(&format!("{field}: ")), "{message}");
            assert!(message.contains(words), "{body}: {message}");
        }
        let embed = BodySchema::of::<EmbedBody>();
        let (param, message) =
            refusal(&embed, json!({"model": "m", "dimensions": 1.5})).unwrap_or_default();
        assert_eq!(param, "dimensions", "{message}");
        // Beyond 64 bits serde_json reads a float, which must not round onto the bound.
        let (param, message) = refusal(
            &embed,
            serde_json::from_str(r#"{"model": "m", "dimensions": -9223372036854775809}"#)
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(param, "dimensions", "{message}");
        let long = "x".repeat(100);
        let (_, message) =
            refusal(&embed, json!({"model": "m", "dimensions": long})).unwrap_or_default();
        assert!(!message.contains(&long), "{message}");
    }

    #[test]
    fn what_ollama_takes_passes() {
        let chat = BodySchema::of::<ChatBody>();
        for body in [
            // A load, as Ollama's Go client writes it, and as others do.
            json!({"model": "m", "messages": null, "options": null}),
            json!({"model": "m"}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi", "images": ["aGk="]}],
                "keep_alive": "5m", "think": "high", "format": {"type": "object"},
                "tools": [{"type": "function", "function": {"name": "f"}}], "stream": null,
                "options": {"temperature": 0.2}, "truncate": false, "context_extra": [1]}),
            json!({"model": "m", "messages": [{"role": "assistant", "content": "", "tool_calls":
                [{"id": "call_1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}]}],
                "keep_alive": -1, "think": false, "format": "json"}),
        ] {
            assert_eq!(refusal(&chat, body.clone()), None, "{body}");
        }
        let show = BodySchema::of::<ShowBody>();
        for body in [
            json!({"model": "m"}),
            json!({"name": "m"}),
            json!({"model": "m", "name": "n", "verbose": true}),
            // As Ollama's Go client writes it.
            json!({"model": "m", "system": "", "template": "", "verbose": false, "options": null, "name": ""}),
        ] {
            assert_eq!(refusal(&show, body.clone()), None, "{body}");
        }
        for body in [json!({"name": ""}), json!({"name": null})] {
            assert!(refusal(&show, body.clone()).is_some(), "{body}");
        }
        let (param, message) = refusal(&show, json!({"verbose": true})).unwrap_or_default();
        assert_eq!(param, "body", "{message}");
        assert!(
            message.contains("`model`") && message.contains("`name`"),
            "{message}"
        );
        let (param, _) = refusal(&show, json!({"model": "m", "verbose": {}})).unwrap_or_default();
        assert_eq!(param, "verbose");
        let embed = BodySchema::of::<EmbedBody>();
        for dimensions in [json!(0), json!(-3), json!(65_535), json!(null)] {
            let body = json!({"model": "m", "input": "x", "dimensions": dimensions});
            assert_eq!(refusal(&embed, body.clone()), None, "{body}");
        }
        let legacy = BodySchema::of::<LegacyEmbeddingsBody>();
        assert_eq!(
            refusal(
                &legacy,
                json!({"model": "m", "prompt": "x", "options": null})
            ),
            None
        );
    }

    #[test]
    fn integral_numbers_are_written_as_integers() {
        let embed = BodySchema::of::<EmbedBody>();
        let mut body = json!({"model": "m", "input": "x", "dimensions": 16.0, "keep_alive": 30.0});
        assert!(matches!(embed.check(&mut body), Ok(true)));
        assert_eq!(body["dimensions"], json!(16));
        assert!(body["dimensions"].is_i64());
        // A number where the document wants a number stays as written.
        assert!(body["keep_alive"].is_f64());
        let mut body = json!({"model": "m", "input": "x", "dimensions": 16});
        assert!(matches!(embed.check(&mut body), Ok(false)));

        let chat = BodySchema::of::<ChatBody>();
        let mut body = json!({"model": "m", "top_logprobs": 3.0, "messages": [{"role": "assistant",
            "content": "", "tool_calls": [{"function": {"index": 1.0, "name": "f", "arguments": {}}}]}]});
        assert!(matches!(chat.check(&mut body), Ok(true)));
        assert!(body["top_logprobs"].is_u64());
        assert!(
            body.pointer("/messages/0/tool_calls/0/function/index")
                .is_some_and(Value::is_u64)
        );
    }

    #[test]
    fn other_spellings_of_documented_keys_are_refused_where_they_stand() {
        let chat = BodySchema::of::<ChatBody>();
        let (param, message) =
            refusal(&chat, json!({"model": "m", "Keep_Alive": {}})).unwrap_or_default();
        assert_eq!(param, "keep_alive", "{message}");
        assert!(message.contains("\"Keep_Alive\""), "{message}");
        let (param, _) = refusal(
            &chat,
            json!({"model": "m", "messages": [{"role": "user", "ROLE": "robot"}]}),
        )
        .unwrap_or_default();
        assert_eq!(param, "messages[0].role");
    }
}
