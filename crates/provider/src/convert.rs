//! Between Terraform values and the model's JSON specs.
//!
//! A resource's Terraform object holds its spec attributes (user-set) and its status
//! attributes (computed). Specs are decoded into the model's serde structs (so serde
//! defaults and `deny_unknown_fields` apply exactly as for Ansible and the executor),
//! validated, and encoded back with defaults filled in for the plan.

use std::collections::BTreeMap;

use model::ValidationErrors;
use model::schema::{Mode, ResourceSchema};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use tfplugin::{AttributePath, Diagnostic, Diagnostics, Number, Type, Value};

/// Turns a Terraform value into JSON. `None` when any part is unknown.
pub fn to_json(v: &Value) -> Option<Json> {
    Some(match v.unwrap_dynamic() {
        Value::Null => Json::Null,
        Value::Unknown(_) => return None,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Json::from(i),
            (None, Some(u)) => Json::from(u),
            _ => serde_json::Number::from_f64(n.as_f64())
                .map(Json::Number)
                .unwrap_or(Json::Null),
        },
        Value::String(s) => Json::String(s.clone()),
        Value::List(xs) | Value::Set(xs) | Value::Tuple(xs) => {
            Json::Array(xs.iter().map(to_json).collect::<Option<Vec<_>>>()?)
        }
        Value::Map(m) | Value::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| to_json(v).map(|j| (k.clone(), j)))
                .collect::<Option<serde_json::Map<_, _>>>()?,
        ),
        Value::Dynamic(_, inner) => to_json(inner)?,
    })
}

/// Turns JSON into a Terraform value of type `ty`. Missing object attributes are null.
pub fn from_json(j: &Json, ty: &Type) -> Value {
    match (ty, j) {
        (_, Json::Null) => Value::Null,
        (Type::String, Json::String(s)) => Value::String(s.clone()),
        (Type::String, other) => Value::String(other.to_string()),
        (Type::Number, Json::Number(n)) => Value::Number(
            n.as_i64()
                .map(Number::from)
                .or_else(|| n.as_u64().map(Number::from))
                .unwrap_or_else(|| Number::from(n.as_f64().unwrap_or(0.0))),
        ),
        (Type::Bool, Json::Bool(b)) => Value::Bool(*b),
        (Type::List(e), Json::Array(xs)) => {
            Value::List(xs.iter().map(|x| from_json(x, e)).collect())
        }
        (Type::Set(e), Json::Array(xs)) => Value::Set(xs.iter().map(|x| from_json(x, e)).collect()),
        (Type::Map(e), Json::Object(m)) => Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), from_json(v, e)))
                .collect(),
        ),
        (Type::Object(attrs), Json::Object(m)) => Value::Object(
            attrs
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        m.get(k).map(|v| from_json(v, t)).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Parses a model validation path (`kernel_modules[1]`, `a.b`) into an attribute path.
pub fn parse_path(p: &str) -> AttributePath {
    let mut path = AttributePath::root();
    for part in p.split('.') {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            path = path.attr(name);
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            let idx = idx.trim_end_matches(']');
            path = match idx.parse::<i64>() {
                Ok(i) => path.index(i),
                Err(_) => path.key(idx.trim_matches('"')),
            };
        }
    }
    path
}

/// Diagnostics for validation errors, each on its attribute.
pub fn validation_diagnostics(errs: &ValidationErrors) -> Diagnostics {
    errs.0
        .iter()
        .map(|e| {
            Diagnostic::error(format!("Invalid {}", e.path), e.reason.clone())
                .with_attribute(parse_path(&e.path))
        })
        .collect()
}

/// The spec part of a Terraform object as JSON: user-settable attributes only, nulls
/// dropped so the model's defaults apply. `Ok(None)` when some spec value is unknown.
pub fn spec_json(obj: &Value, schema: &ResourceSchema) -> Result<Option<Json>, Diagnostics> {
    let mut out = serde_json::Map::new();
    for a in schema
        .attributes
        .iter()
        .filter(|a| a.mode != Mode::Computed)
    {
        let v = obj.get_attr(&a.name).unwrap_or(&Value::Null);
        if v.is_null() {
            continue;
        }
        match to_json(v) {
            Some(j) => {
                out.insert(a.name.clone(), j);
            }
            None => return Ok(None),
        }
    }
    Ok(Some(Json::Object(out)))
}

/// Decodes a spec from JSON, naming the attribute when serde refuses it.
pub fn decode_spec<T: DeserializeOwned>(j: Json, resource: &str) -> Result<T, Diagnostics> {
    serde_json::from_value(j).map_err(|e| {
        let msg = e.to_string();
        // serde says "unknown variant `x`, expected one of ..." or "invalid type ... for key `k`".
        Diagnostic::error(format!("Invalid {resource} configuration"), msg).into()
    })
}

/// Decodes and validates the spec of a Terraform object. `Ok(None)` when unknown.
pub fn spec_from_value<T: DeserializeOwned>(
    obj: &Value,
    schema: &ResourceSchema,
    validate: impl Fn(&T) -> Result<(), ValidationErrors>,
) -> Result<Option<T>, Diagnostics> {
    let Some(j) = spec_json(obj, schema)? else {
        return Ok(None);
    };
    // Enumerated strings are checked here first so the error carries the attribute path.
    let mut diags = Diagnostics::new();
    if let Json::Object(m) = &j {
        for a in schema.attributes.iter().filter(|a| !a.allowed.is_empty()) {
            if let Some(Json::String(s)) = m.get(&a.name)
                && !a.allowed.contains(s)
            {
                diags.push(
                    Diagnostic::error(
                        format!("Invalid {}", a.name),
                        format!("{s:?} is not one of {}", a.allowed.join(", ")),
                    )
                    .with_attribute(AttributePath::attribute(&a.name)),
                );
            }
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    let spec: T = decode_spec(j, &schema.name)?;
    validate(&spec).map_err(|e| validation_diagnostics(&e))?;
    Ok(Some(spec))
}

/// Builds the full Terraform object of a resource from its spec and status, typed by
/// the resource's Terraform type (`ty` must be an object type). The `timeouts` block is
/// carried over from `carry` (config or prior state).
pub fn object_from<S: Serialize, St: Serialize>(
    spec: &S,
    status: &St,
    ty: &Type,
    carry: &Value,
) -> Result<Value, Diagnostics> {
    let mut j = serde_json::to_value(spec).map_err(internal)?;
    let st = serde_json::to_value(status).map_err(internal)?;
    if let (Json::Object(m), Json::Object(s)) = (&mut j, st) {
        for (k, v) in s {
            m.entry(k).or_insert(v);
        }
    }
    let mut v = from_json(&j, ty);
    v.set_attr(
        "timeouts",
        carry.get_attr("timeouts").cloned().unwrap_or(Value::Null),
    );
    Ok(v)
}

/// Sets every computed attribute named in `names` to unknown (values decided at apply).
pub fn mark_unknown(v: &mut Value, names: &[&str]) {
    for n in names {
        v.set_attr(n, Value::unknown());
    }
}

/// Copies computed attributes from `prior` into `v` (stable values keep their prior value).
pub fn keep_prior(v: &mut Value, prior: &Value, schema: &ResourceSchema) {
    for a in schema
        .attributes
        .iter()
        .filter(|a| a.mode == Mode::Computed)
    {
        if let Some(p) = prior.get_attr(&a.name) {
            v.set_attr(&a.name, p.clone());
        }
    }
}

/// Names of force-new attributes whose value differs between `prior` and `planned`.
pub fn replace_paths(
    prior: &Value,
    planned: &Value,
    schema: &ResourceSchema,
) -> Vec<AttributePath> {
    if prior.is_null() {
        return Vec::new();
    }
    schema
        .attributes
        .iter()
        .filter(|a| a.force_new)
        .filter(|a| prior.get_attr(&a.name) != planned.get_attr(&a.name))
        .map(|a| AttributePath::attribute(&a.name))
        .collect()
}

/// A programming error surfaced as a diagnostic.
pub fn internal(e: impl std::fmt::Display) -> Diagnostics {
    Diagnostic::error("Internal error in the v2engine provider", e.to_string()).into()
}

/// Reads `timeouts.<op>` ("30s", "10m", "1h") from a resource object.
pub fn timeout(obj: &Value, op: &str) -> Result<std::time::Duration, Diagnostics> {
    let default = std::time::Duration::from_secs(600);
    let Some(s) = obj
        .get_attr("timeouts")
        .and_then(|t| t.get_attr(op))
        .and_then(Value::as_str)
    else {
        return Ok(default);
    };
    parse_duration(s).ok_or_else(|| {
        Diagnostic::error(
            format!("Invalid timeouts.{op}"),
            format!("{s:?} is not a duration such as \"30s\", \"10m\" or \"1h\""),
        )
        .with_attribute(AttributePath::attribute("timeouts").attr(op))
        .into()
    })
}

/// Parses "90s", "10m", "1h", "1h30m".
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
    }
    if !num.is_empty() || total == 0 {
        return None;
    }
    Some(std::time::Duration::from_secs(total))
}

/// A string map as a Terraform map value.
pub fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::string(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tfplugin::PathStep;

    #[test]
    fn json_round_trip() {
        let ty = Type::object([
            ("a", Type::String),
            ("n", Type::Number),
            ("l", Type::list(Type::String)),
            ("m", Type::map(Type::Bool)),
        ]);
        let j = json!({"a": "x", "n": 3, "l": ["p"], "m": {"k": true}});
        let v = from_json(&j, &ty);
        assert_eq!(to_json(&v), Some(j));
    }

    #[test]
    fn unknowns_are_none() {
        let v = Value::object([("a", Value::unknown())]);
        assert_eq!(to_json(&v), None);
    }

    #[test]
    fn paths_parse() {
        let p = parse_path("kernel_modules[2]");
        assert_eq!(
            p.steps(),
            &[
                PathStep::Attribute("kernel_modules".into()),
                PathStep::ElementKeyInt(2)
            ]
        );
        let p = parse_path("a.b");
        assert_eq!(p.steps().len(), 2);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert!(parse_duration("10").is_none());
        assert!(parse_duration("ten").is_none());
        assert!(parse_duration("0s").is_none());
    }
}
