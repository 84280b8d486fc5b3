//! Channel addresses: one canonical spelling per identity, so `+1 (415) 555-0101` and
//! `+14155550101`, or `Ana@Example.com` and `ana@example.com`, name the same contact.
use crate::domain::Channel;
use crate::error::{DomainError, DomainResult};

/// The kind of identity a channel address resolves to. SMS and WhatsApp share phone numbers,
/// so one number is one contact (and one conversation) on both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    Phone,
    Email,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Phone => "PHONE",
            IdentityKind::Email => "EMAIL",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    pub kind: IdentityKind,
    pub value: String,
}

pub fn normalize(channel: Channel, raw: &str, field: &str) -> DomainResult<Address> {
    match channel {
        Channel::Email => Ok(Address {
            kind: IdentityKind::Email,
            value: normalize_email(raw, field)?,
        }),
        Channel::Sms | Channel::Whatsapp => Ok(Address {
            kind: IdentityKind::Phone,
            value: normalize_phone(raw, field)?,
        }),
    }
}

/// E.164 (`+14155550101`). WhatsApp ids are the number without `+`, and some gateways add a
/// `whatsapp:` prefix; both are accepted. Numbers must be international (with country code).
pub fn normalize_phone(raw: &str, field: &str) -> DomainResult<String> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_prefix("whatsapp:").unwrap_or(trimmed).trim();
    let candidate = if trimmed.starts_with('+') {
        trimmed.to_string()
    } else if let Some(rest) = trimmed.strip_prefix("00") {
        format!("+{rest}")
    } else {
        format!("+{trimmed}")
    };
    let number = phonenumber::parse(None, &candidate).map_err(|e| {
        DomainError::invalid(
            field,
            format!("`{raw}` is not an international phone number ({e})"),
        )
    })?;
    if !phonenumber::is_valid(&number) {
        return Err(DomainError::invalid(
            field,
            format!("`{raw}` is not a valid phone number"),
        ));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Lower-cased `local@domain`, with a display name (`Ana <ana@x.org>`) stripped.
pub fn normalize_email(raw: &str, field: &str) -> DomainResult<String> {
    let trimmed = raw.trim();
    let inner = match (trimmed.rfind('<'), trimmed.rfind('>')) {
        (Some(a), Some(b)) if a < b => &trimmed[a + 1..b],
        _ => trimmed,
    };
    let email = inner.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains("..")
                && domain
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
                && !local
                    .chars()
                    .any(|c| c.is_whitespace() || c == '@' || c == '<' || c == '>')
        });
    if valid {
        Ok(email)
    } else {
        Err(DomainError::invalid(
            field,
            format!("`{raw}` is not an email address"),
        ))
    }
}

/// The WhatsApp id of a number: its E.164 digits without the `+`.
pub fn whatsapp_id(e164: &str) -> String {
    e164.trim_start_matches('+').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_spellings_collapse_to_e164() {
        for raw in [
            "+1 (415) 555-0101",
            "+14155550101",
            "14155550101",
            "whatsapp:+14155550101",
            "0014155550101",
        ] {
            assert_eq!(
                normalize_phone(raw, "from").unwrap(),
                "+14155550101",
                "{raw}"
            );
        }
        assert!(normalize_phone("hello", "from").is_err());
        assert!(normalize_phone("+1 555", "from").is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email("Ana@Example.com", "from").unwrap(),
            "ana@example.com"
        );
        assert_eq!(
            normalize_email("Ana <Ana@Example.com>", "from").unwrap(),
            "ana@example.com"
        );
        assert!(normalize_email("ana@", "from").is_err());
        assert!(normalize_email("not an email", "from").is_err());
        assert!(normalize_email("a@b", "from").is_err());
    }

    #[test]
    fn sms_and_whatsapp_share_the_phone_identity() {
        let sms = normalize(Channel::Sms, "+1 415 555 0101", "from").unwrap();
        let wa = normalize(Channel::Whatsapp, "14155550101", "from").unwrap();
        assert_eq!(sms, wa);
    }
}
