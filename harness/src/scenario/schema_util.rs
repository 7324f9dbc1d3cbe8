//! Small builders for the hand-written parts of the JSON Schema (types whose YAML form is
//! "a string or a map", which `derive(JsonSchema)` cannot express on its own).

use schemars::r#gen::SchemaGenerator;
use schemars::schema::{
    InstanceType, Metadata, ObjectValidation, Schema, SchemaObject, StringValidation,
    SubschemaValidation,
};

pub(crate) fn described(schema: Schema, description: &str) -> Schema {
    let mut obj = schema.into_object();
    obj.metadata = Some(Box::new(Metadata {
        description: Some(description.to_owned()),
        ..Metadata::default()
    }));
    Schema::Object(obj)
}

pub(crate) fn any_of(schemas: Vec<Schema>, description: &str) -> Schema {
    described(
        Schema::Object(SchemaObject {
            subschemas: Some(Box::new(SubschemaValidation {
                any_of: Some(schemas),
                ..SubschemaValidation::default()
            })),
            ..SchemaObject::default()
        }),
        description,
    )
}

pub(crate) fn string_with_pattern(pattern: &str, description: &str) -> Schema {
    described(
        Schema::Object(SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            string: Some(Box::new(StringValidation {
                pattern: Some(pattern.to_owned()),
                ..StringValidation::default()
            })),
            ..SchemaObject::default()
        }),
        description,
    )
}

pub(crate) fn instance(kind: InstanceType) -> Schema {
    Schema::Object(SchemaObject {
        instance_type: Some(kind.into()),
        ..SchemaObject::default()
    })
}

pub(crate) fn string_enum(values: &[&str]) -> Schema {
    Schema::Object(SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        enum_values: Some(values.iter().map(|v| serde_json::json!(v)).collect()),
        ..SchemaObject::default()
    })
}

pub(crate) fn array_of(item: Schema) -> Schema {
    Schema::Object(SchemaObject {
        instance_type: Some(InstanceType::Array.into()),
        array: Some(Box::new(schemars::schema::ArrayValidation {
            items: Some(item.into()),
            ..Default::default()
        })),
        ..SchemaObject::default()
    })
}

/// `{ key: <schema> }` with exactly that one key.
pub(crate) fn single_key(key: &str, value: Schema) -> Schema {
    let mut object = ObjectValidation::default();
    object.properties.insert(key.to_owned(), value);
    object.required.insert(key.to_owned());
    object.additional_properties = Some(Box::new(Schema::Bool(false)));
    Schema::Object(SchemaObject {
        instance_type: Some(InstanceType::Object.into()),
        object: Some(Box::new(object)),
        ..SchemaObject::default()
    })
}

pub(crate) fn subschema<T: schemars::JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}
