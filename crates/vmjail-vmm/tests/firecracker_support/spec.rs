//! Firecracker's Swagger 2.0 spec (`firecracker.yaml`), parsed at test time,
//! and a validator of requests (and answers) against it — no hand-copied
//! schema.

use std::path::PathBuf;

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// Where the spec lives: `$VMJAIL_FIRECRACKER_API_SPEC`, else the project's
/// shared copy beside the checkout (`../shared/firecracker-api/`, what CI
/// lays out), else the copy vendored beside this file for checkouts without
/// it (Firecracker's `src/firecracker/swagger/firecracker.yaml`, Apache-2.0).
pub fn spec_path() -> PathBuf {
    if let Some(path) = std::env::var_os("VMJAIL_FIRECRACKER_API_SPEC") {
        return PathBuf::from(path);
    }
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = crate_dir.join("../../../shared/firecracker-api/firecracker.yaml");
    if shared.is_file() {
        return shared;
    }
    crate_dir.join("tests/firecracker_support/firecracker.yaml")
}

pub struct Spec {
    root: Yaml,
}

impl Spec {
    pub fn load() -> Spec {
        let path = spec_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "reading the Firecracker API spec {}: {e} (set VMJAIL_FIRECRACKER_API_SPEC)",
                path.display()
            )
        });
        let root: Yaml = serde_yaml::from_str(&text).expect("the API spec is valid YAML");
        assert_eq!(root["swagger"].as_str(), Some("2.0"), "a Swagger 2.0 spec");
        Spec { root }
    }

    /// The path template (`/drives/{drive_id}`) that `path` matches.
    pub fn path_template(&self, path: &str) -> Option<String> {
        let paths = self.root["paths"].as_mapping()?;
        let wanted: Vec<&str> = path.split('/').collect();
        paths.keys().filter_map(Yaml::as_str).find_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            let matches = parts.len() == wanted.len()
                && parts.iter().zip(&wanted).all(|(t, w)| {
                    if t.starts_with('{') && t.ends_with('}') {
                        !w.is_empty()
                    } else {
                        t == w
                    }
                });
            matches.then(|| template.to_owned())
        })
    }

    fn operation(&self, method: &str, path: &str) -> Result<&Yaml, String> {
        let template = self
            .path_template(path)
            .ok_or_else(|| format!("no path in the spec matches {path}"))?;
        let op = &self.root["paths"][template.as_str()][method.to_ascii_lowercase().as_str()];
        if op.is_null() {
            return Err(format!("{template} has no {method} operation in the spec"));
        }
        Ok(op)
    }

    /// Check one request: the operation exists, the body is present exactly
    /// when the spec has a body parameter (and required when it says so), and
    /// the body conforms to the parameter's schema.
    pub fn validate_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Json>,
    ) -> Result<(), String> {
        let op = self.operation(method, path)?;
        let params = op["parameters"].as_sequence().cloned().unwrap_or_default();
        let body_param = params.iter().find(|p| p["in"].as_str() == Some("body"));
        match (body_param, body) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!("{method} {path} takes no body")),
            (Some(param), None) => {
                if param["required"].as_bool() == Some(true) {
                    Err(format!("{method} {path} requires a body"))
                } else {
                    Ok(())
                }
            }
            (Some(param), Some(body)) => self
                .validate(body, &param["schema"], "body", true)
                .map_err(|e| format!("{method} {path}: {e}")),
        }
    }

    /// Check an answer body against the operation's schema for `status`.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Json,
    ) -> Result<(), String> {
        let op = self.operation(method, path)?;
        let responses = &op["responses"];
        let response = responses
            .as_mapping()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.as_u64() == Some(u64::from(status)))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&responses["default"]);
        if response.is_null() {
            return Err(format!("{method} {path} has no response {status}"));
        }
        self.validate(body, &response["schema"], "answer", false)
            .map_err(|e| format!("{method} {path} answer {status}: {e}"))
    }

    fn resolve<'a>(&'a self, schema: &'a Yaml) -> Result<&'a Yaml, String> {
        match schema["$ref"].as_str() {
            None => Ok(schema),
            Some(reference) => {
                let name = reference
                    .strip_prefix("#/definitions/")
                    .ok_or_else(|| format!("unsupported $ref {reference}"))?;
                let definition = &self.root["definitions"][name];
                if definition.is_null() {
                    return Err(format!("$ref {reference} names no definition"));
                }
                self.resolve(definition)
            }
        }
    }

    /// Validate `value` against `schema`. `request`: read-only properties
    /// must not be sent.
    pub fn validate(
        &self,
        value: &Json,
        schema: &Yaml,
        at: &str,
        request: bool,
    ) -> Result<(), String> {
        let schema = self.resolve(schema)?;
        if schema.is_null() {
            return Err(format!("{at}: no schema"));
        }
        let kind = schema["type"]
            .as_str()
            .or_else(|| schema["properties"].is_mapping().then_some("object"));
        if let Some(allowed) = schema["enum"].as_sequence() {
            let ok = allowed.iter().any(|a| yaml_equals_json(a, value));
            if !ok {
                return Err(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        match kind {
            Some("object") => self.validate_object(value, schema, at, request),
            Some("string") => value
                .is_string()
                .then_some(())
                .ok_or_else(|| format!("{at}: expected a string, got {value}")),
            Some("boolean") => value
                .is_boolean()
                .then_some(())
                .ok_or_else(|| format!("{at}: expected a boolean, got {value}")),
            Some("integer") => {
                let n = value
                    .as_i64()
                    .ok_or_else(|| format!("{at}: expected an integer, got {value}"))?;
                if let Some(min) = schema["minimum"].as_i64() {
                    if n < min {
                        return Err(format!("{at}: {n} is below the minimum {min}"));
                    }
                }
                if let Some(max) = schema["maximum"].as_i64() {
                    if n > max {
                        return Err(format!("{at}: {n} is above the maximum {max}"));
                    }
                }
                Ok(())
            }
            Some("number") => value
                .is_number()
                .then_some(())
                .ok_or_else(|| format!("{at}: expected a number, got {value}")),
            Some("array") => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("{at}: expected an array, got {value}"))?;
                for (i, item) in items.iter().enumerate() {
                    self.validate(item, &schema["items"], &format!("{at}[{i}]"), request)?;
                }
                Ok(())
            }
            other => Err(format!("{at}: unsupported schema type {other:?}")),
        }
    }

    fn validate_object(
        &self,
        value: &Json,
        schema: &Yaml,
        at: &str,
        request: bool,
    ) -> Result<(), String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{at}: expected an object, got {value}"))?;
        for required in schema["required"].as_sequence().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: required field {name:?} is missing"));
            }
        }
        let properties = &schema["properties"];
        for (key, field) in object {
            let property = &properties[key.as_str()];
            let field_at = format!("{at}.{key}");
            if property.is_null() {
                let additional = &schema["additionalProperties"];
                if additional.is_mapping() {
                    self.validate(field, additional, &field_at, request)?;
                    continue;
                }
                return Err(format!("{field_at}: unknown field (not in the spec)"));
            }
            if request && property["readOnly"].as_bool() == Some(true) {
                return Err(format!("{field_at}: read-only field sent"));
            }
            self.validate(field, property, &field_at, request)?;
        }
        Ok(())
    }
}

fn yaml_equals_json(yaml: &Yaml, json: &Json) -> bool {
    match (yaml, json) {
        (Yaml::String(a), Json::String(b)) => a == b,
        (Yaml::Bool(a), Json::Bool(b)) => a == b,
        (Yaml::Number(a), Json::Number(b)) => a.as_i64() == b.as_i64() && a.as_f64() == b.as_f64(),
        // YAML reads an unquoted `2M` as a string, but `None` etc. too.
        _ => false,
    }
}
