//! The JSON Schema of a scenario file, printed by `authspec schema` for editors.

/// The JSON Schema (draft 7) of a scenario file.
pub fn json_schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(super::ScenarioFile);
    if let Some(meta) = schema.schema.metadata.as_mut() {
        meta.title = Some("authspec scenario".to_owned());
    }
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
