//! Compares a served schema with the API contract: every contract name must be served with a
//! compatible type (outputs may be stricter, inputs may be looser, nothing required added).
use std::collections::HashMap;

use async_graphql_parser::parse_schema;
use async_graphql_parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeDefinition, TypeKind,
    TypeSystemDefinition,
};

fn types(sdl: &str) -> HashMap<String, TypeDefinition> {
    let doc = parse_schema(sdl).unwrap_or_else(|e| panic!("schema does not parse: {e}"));
    doc.definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some((t.node.name.node.to_string(), t.node)),
            _ => None,
        })
        .collect()
}

/// Output positions: the served type may be non-null where the contract allows null.
fn output_ok(contract: &Type, served: &Type) -> bool {
    (contract.nullable || !served.nullable) && base_ok(&contract.base, &served.base, output_ok)
}

/// Input positions: the served type may accept null where the contract requires a value.
fn input_ok(contract: &Type, served: &Type) -> bool {
    (!contract.nullable || served.nullable) && base_ok(&contract.base, &served.base, input_ok)
}

fn base_ok(contract: &BaseType, served: &BaseType, inner: fn(&Type, &Type) -> bool) -> bool {
    match (contract, served) {
        (BaseType::Named(a), BaseType::Named(b)) => a == b,
        (BaseType::List(a), BaseType::List(b)) => inner(a, b),
        _ => false,
    }
}

fn check_inputs(
    owner: &str,
    contract: &[&InputValueDefinition],
    served: &[&InputValueDefinition],
    problems: &mut Vec<String>,
) {
    for c in contract {
        match served.iter().find(|s| s.name.node == c.name.node) {
            None => problems.push(format!("{owner}: `{}` is missing", c.name.node)),
            Some(s) if !input_ok(&c.ty.node, &s.ty.node) => problems.push(format!(
                "{owner}: `{}` is {} in the contract but {} served",
                c.name.node, c.ty.node, s.ty.node
            )),
            Some(_) => {}
        }
    }
    for s in served {
        let known = contract.iter().any(|c| c.name.node == s.name.node);
        if !known && !s.ty.node.nullable && s.default_value.is_none() {
            problems.push(format!("{owner}: served adds required `{}`", s.name.node));
        }
    }
}

fn check_fields(
    owner: &str,
    contract: &[&FieldDefinition],
    served: &[&FieldDefinition],
    problems: &mut Vec<String>,
) {
    for c in contract {
        let Some(s) = served.iter().find(|s| s.name.node == c.name.node) else {
            problems.push(format!("{owner}.{} is missing", c.name.node));
            continue;
        };
        if !output_ok(&c.ty.node, &s.ty.node) {
            problems.push(format!(
                "{owner}.{} is {} in the contract but {} served",
                c.name.node, c.ty.node, s.ty.node
            ));
        }
        let ca: Vec<_> = c.arguments.iter().map(|a| &a.node).collect();
        let sa: Vec<_> = s.arguments.iter().map(|a| &a.node).collect();
        check_inputs(
            &format!("{owner}.{}(args)", c.name.node),
            &ca,
            &sa,
            problems,
        );
    }
}

/// Every way `served` breaks `contract`; empty when it keeps every promise.
pub fn breaking_changes(contract: &str, served: &str) -> Vec<String> {
    let contract = types(contract);
    let served = types(served);
    let mut problems = Vec::new();
    for (name, c) in &contract {
        let Some(s) = served.get(name) else {
            problems.push(format!("type {name} is missing"));
            continue;
        };
        match (&c.kind, &s.kind) {
            (TypeKind::Scalar, TypeKind::Scalar) => {}
            (TypeKind::Object(co), TypeKind::Object(so)) => {
                for i in &co.implements {
                    if !so.implements.iter().any(|x| x.node == i.node) {
                        problems.push(format!("{name} no longer implements {}", i.node));
                    }
                }
                let cf: Vec<_> = co.fields.iter().map(|f| &f.node).collect();
                let sf: Vec<_> = so.fields.iter().map(|f| &f.node).collect();
                check_fields(name, &cf, &sf, &mut problems);
            }
            (TypeKind::Interface(ci), TypeKind::Interface(si)) => {
                let cf: Vec<_> = ci.fields.iter().map(|f| &f.node).collect();
                let sf: Vec<_> = si.fields.iter().map(|f| &f.node).collect();
                check_fields(name, &cf, &sf, &mut problems);
            }
            (TypeKind::Enum(ce), TypeKind::Enum(se)) => {
                for v in &ce.values {
                    if !se
                        .values
                        .iter()
                        .any(|x| x.node.value.node == v.node.value.node)
                    {
                        problems.push(format!("enum {name} lacks {}", v.node.value.node));
                    }
                }
            }
            (TypeKind::InputObject(ci), TypeKind::InputObject(si)) => {
                let cf: Vec<_> = ci.fields.iter().map(|f| &f.node).collect();
                let sf: Vec<_> = si.fields.iter().map(|f| &f.node).collect();
                check_inputs(&format!("input {name}"), &cf, &sf, &mut problems);
            }
            (TypeKind::Union(cu), TypeKind::Union(su)) => {
                for m in &cu.members {
                    if !su.members.iter().any(|x| x.node == m.node) {
                        problems.push(format!("union {name} lacks {}", m.node));
                    }
                }
            }
            _ => problems.push(format!("{name} changed kind")),
        }
    }
    problems.sort();
    problems
}

#[cfg(test)]
mod tests {
    use super::breaking_changes;

    const CONTRACT: &str =
        "type Query { a(x: Int): String! b: [Int!] } input I { f: Int! } enum E { X Y }";

    #[test]
    fn accepts_stricter_outputs_and_looser_inputs() {
        let served = "type Query { a(x: Int, y: Int): String! b: [Int!]! c: Int } input I { f: Int g: Int } enum E { X Y Z }";
        assert!(breaking_changes(CONTRACT, served).is_empty());
    }

    #[test]
    fn reports_each_break() {
        let served = "type Query { a(x: Int!, z: Int!): String b: [Int] } input I { f: Int! h: Int! } enum E { X }";
        let problems = breaking_changes(CONTRACT, served);
        assert_eq!(problems.len(), 6, "{problems:#?}");
    }
}
