//! The Group API's vocabulary and its rules that need no storage: what a group is, which names
//! are valid, the changes a write can ask for ([`WriteOp`]) and what became of them
//! ([`WriteOutcome`], [`Refusal`]).
//!
//! Validation lives here and only here, so the dispatcher and every storage backend agree by
//! construction on what `createGroup` and `updateGroup` accept (SPEC §4).

/// Longest name, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest external id, in Unicode scalar values.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// A stored group. Ids start at 1; 0 never names a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: u64,
    pub name: String,
    pub external_id: String,
}

/// A group as storage holds it, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupRef<'a> {
    pub id: u64,
    pub name: &'a str,
    pub external_id: &'a str,
}

impl<'a> GroupRef<'a> {
    /// A group from its id and its stored `(name, external_id)`.
    pub fn from_row(id: u64, (name, external_id): (&'a str, &'a str)) -> Self {
        GroupRef {
            id,
            name,
            external_id,
        }
    }

    pub fn to_owned(self) -> Group {
        Group {
            id: self.id,
            name: self.name.to_owned(),
            external_id: self.external_id.to_owned(),
        }
    }
}

/// A name is 1 to 100 characters and not only whitespace. It is otherwise kept verbatim: no
/// trimming, no case folding, no normalisation.
pub fn name_is_valid(name: &str) -> bool {
    !name.chars().all(char::is_whitespace) && name.chars().count() <= MAX_NAME_CHARS
}

/// Whether a group called `current` may be renamed `new`: to a valid name, or to its own name,
/// which a row written by Kanboard into PostgreSQL may hold whatever its length (SPEC §14).
/// Every backend applies this, since only storage knows the current name.
pub fn rename_is_valid(current: &str, new: &str) -> bool {
    new == current || name_is_valid(new)
}

pub fn external_id_is_valid(external_id: &str) -> bool {
    external_id.chars().count() <= MAX_EXTERNAL_ID_CHARS
}

/// A change to the groups, already validated by the Group API rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Create {
        name: String,
        external_id: String,
    },
    /// `None` leaves a field unchanged.
    Update {
        id: u64,
        name: Option<String>,
        external_id: Option<String>,
    },
    Remove {
        id: u64,
    },
}

/// What one [`WriteOp`] did once its commit is durable (see [`crate::storage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created(u64),
    Applied,
    /// Nothing changed: no such group, or the name is taken.
    Refused(Refusal),
}

/// Why a procedure reported failure (`false`). The wire's `false` carries no reason; MCP's
/// `tools/call` says it in words (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoSuchGroup,
    NameTaken,
    InvalidName,
    InvalidExternalId,
}

impl Refusal {
    /// What failed, in one line. `group_id` and `name` are the call's own arguments (`group_id`
    /// as the client wrote it), when it had them.
    pub fn describe(self, group_id: Option<&str>, name: Option<&str>) -> String {
        match self {
            Refusal::NoSuchGroup => format!("no group with id {}", group_id.unwrap_or("given")),
            Refusal::NameTaken => match name {
                Some(name) => format!("a group named {} already exists", quoted(name)),
                None => "a group with that name already exists".to_owned(),
            },
            Refusal::InvalidName => {
                format!("name must be 1 to {MAX_NAME_CHARS} characters and not blank")
            }
            Refusal::InvalidExternalId => {
                format!("external_id must be at most {MAX_EXTERNAL_ID_CHARS} characters")
            }
        }
    }
}

/// `name` as a JSON string, so quotes and control characters in it stay readable.
fn quoted(name: &str) -> String {
    serde_json::Value::from(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spec_section_4() {
        assert!(name_is_valid("Ops"));
        assert!(name_is_valid(" Ops "));
        assert!(!name_is_valid(""));
        assert!(!name_is_valid(" \t\u{3000}"));
        assert!(name_is_valid(&"é".repeat(100)));
        assert!(!name_is_valid(&"é".repeat(101)));
        assert!(external_id_is_valid(&"x".repeat(255)));
        assert!(!external_id_is_valid(&"x".repeat(256)));
    }

    #[test]
    fn refusals_say_what_failed_in_one_line() {
        assert_eq!(
            Refusal::NoSuchGroup.describe(Some("7"), None),
            "no group with id 7"
        );
        assert_eq!(
            Refusal::NameTaken.describe(None, Some("Ops \"A\"\n")),
            r#"a group named "Ops \"A\"\n" already exists"#
        );
        assert_eq!(
            Refusal::InvalidName.describe(None, Some("")),
            "name must be 1 to 100 characters and not blank"
        );
    }
}
