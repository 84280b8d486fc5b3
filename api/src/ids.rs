//! Relay global IDs: opaque strings naming a type and a row (`base64url("Message:42")`).
use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{DomainError, DomainResult};

pub fn encode(kind: &str, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{kind}:{id}")))
}

/// Splits a global ID into its type name and row id; None when it is not one of ours.
pub fn parse(id: &str) -> Option<(String, i64)> {
    let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (kind, num) = text.split_once(':')?;
    let num: i64 = num.parse().ok()?;
    (num > 0).then(|| (kind.to_string(), num))
}

/// Decodes an ID argument that must name a `kind`; `field` names the argument in the error.
pub fn decode(id: &ID, kind: &str, field: &str) -> DomainResult<i64> {
    match parse(id) {
        Some((k, n)) if k == kind => Ok(n),
        _ => Err(DomainError::invalid(field, format!("not a {kind} ID"))),
    }
}

pub fn decode_opt(id: Option<&ID>, kind: &str, field: &str) -> DomainResult<Option<i64>> {
    id.map(|id| decode(id, kind, field)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_kinds() {
        let id = encode("Message", 42);
        assert_eq!(decode(&id, "Message", "id").unwrap(), 42);
        assert!(decode(&id, "Conversation", "id").is_err());
        assert!(decode(&ID("garbage!".into()), "Message", "id").is_err());
        assert!(parse(&URL_SAFE_NO_PAD.encode("Message:-1")).is_none());
    }
}
