//! The API surface: every method the server answers, its parameters in positional order, and
//! what it returns. The dispatcher binds parameters from this table, and `rpc.discover` and
//! MCP's `tools/list` describe this table, so the three cannot drift apart (SPEC §9, §12).
//! The session protocols' own messages (`initialize`, `shutdown`, `tools/call`, …) are not API
//! methods; [`crate::lifecycle`] knows them.

/// The type a parameter must have on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A JSON integer or a string of decimal digits.
    GroupId,
    /// A JSON string.
    Text,
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub summary: &'static str,
}

/// What a method does; the dispatcher matches on this, never on names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procedure {
    CreateGroup,
    UpdateGroup,
    RemoveGroup,
    GetGroup,
    GetAllGroups,
    Authenticate,
    Discover,
}

/// The shape of a successful result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// The new group's id (a JSON integer), or `false`.
    IdOrFalse,
    /// `true`, or `false` when the call did nothing.
    TrueOrFalse,
    /// A group object, or `false`.
    GroupOrFalse,
    /// An array of group objects.
    Groups,
    /// `true` (failures are errors).
    True,
    /// An OpenRPC document.
    Document,
}

#[derive(Debug)]
pub struct Method {
    pub name: &'static str,
    pub procedure: Procedure,
    /// In positional order.
    pub params: &'static [Param],
    pub returns: Returns,
    /// A short human-readable name (MCP's tool `title`).
    pub title: &'static str,
    pub summary: &'static str,
    /// Whether it touches storage (and so can fail with `-32603`).
    pub uses_storage: bool,
}

/// The most parameters any method takes.
pub const MAX_PARAMS: usize = 3;

const GROUP_ID: Param = Param {
    name: "group_id",
    ty: ParamType::GroupId,
    required: true,
    summary: "The group's id: an integer, or a string of decimal digits",
};
const NAME: Param = Param {
    name: "name",
    ty: ParamType::Text,
    required: true,
    summary: "1 to 100 characters, not only whitespace, unique (compared exactly)",
};
const NEW_NAME: Param = Param {
    required: false,
    summary: "A new name; null or absent keeps the name",
    ..NAME
};
const EXTERNAL_ID: Param = Param {
    name: "external_id",
    ty: ParamType::Text,
    required: false,
    summary: "Free text, at most 255 characters; default \"\"",
};
const NEW_EXTERNAL_ID: Param = Param {
    summary: "A new external id; null or absent keeps the external id",
    ..EXTERNAL_ID
};
const TOKEN: Param = Param {
    name: "token",
    ty: ParamType::Text,
    required: true,
    summary: "The server's token (SPEC §7)",
};

/// Every method the server answers. Names are case-sensitive.
pub const METHODS: &[Method] = &[
    Method {
        name: "createGroup",
        procedure: Procedure::CreateGroup,
        params: &[NAME, EXTERNAL_ID],
        returns: Returns::IdOrFalse,
        title: "Create a group",
        summary: "Create a group; false when the name is invalid or taken",
        uses_storage: true,
    },
    Method {
        name: "updateGroup",
        procedure: Procedure::UpdateGroup,
        params: &[GROUP_ID, NEW_NAME, NEW_EXTERNAL_ID],
        returns: Returns::TrueOrFalse,
        title: "Update a group",
        summary: "Rename a group or change its external id; false when there is no such group or the new name is invalid or taken",
        uses_storage: true,
    },
    Method {
        name: "removeGroup",
        procedure: Procedure::RemoveGroup,
        params: &[GROUP_ID],
        returns: Returns::TrueOrFalse,
        title: "Remove a group",
        summary: "Remove a group; false when there is no such group",
        uses_storage: true,
    },
    Method {
        name: "getGroup",
        procedure: Procedure::GetGroup,
        params: &[GROUP_ID],
        returns: Returns::GroupOrFalse,
        title: "Get a group",
        summary: "One group; false when there is no such group",
        uses_storage: true,
    },
    Method {
        name: "getAllGroups",
        procedure: Procedure::GetAllGroups,
        params: &[],
        returns: Returns::Groups,
        title: "List all groups",
        summary: "Every group, sorted by name (UTF-8 byte order)",
        uses_storage: true,
    },
    Method {
        name: "authenticate",
        procedure: Procedure::Authenticate,
        params: &[TOKEN],
        returns: Returns::True,
        title: "Authenticate",
        summary: "Unlock this connection when the server has a token (-32001 for a wrong one; 3 wrong ones close the connection)",
        uses_storage: false,
    },
    Method {
        name: "rpc.discover",
        procedure: Procedure::Discover,
        params: &[],
        returns: Returns::Document,
        title: "Describe this API",
        summary: "This API as an OpenRPC 1.2 document",
        uses_storage: false,
    },
];

/// The online dump (SPEC §13, `groupd dump --addr`): one consistent snapshot of every group and
/// the id counter. It is not in [`METHODS`]: it is administration, not the Group API, so neither
/// `rpc.discover` nor MCP's `tools/list` offers it (an agent has no use for a 60 MB answer).
/// Its result: `{"format":DUMP_FORMAT,"version":DUMP_VERSION,"next_id":N,"groups":[GROUP…]}`,
/// the groups in id order. Parameters are ignored.
pub const DUMP_METHOD: &str = "groupd.dump";
/// The `format` of a dump, in its header line and in [`DUMP_METHOD`]'s result.
pub const DUMP_FORMAT: &str = "groupd-dump";
/// The dump format's version.
pub const DUMP_VERSION: u64 = 1;

/// The method called `name`, if any.
pub fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

impl Method {
    /// Whether it is one of the Group API's procedures (SPEC §4), as opposed to the server's own
    /// `authenticate` and `rpc.discover`: these are MCP's tools.
    pub fn is_group_api(&self) -> bool {
        self.uses_storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_fits_the_argument_slots_and_names_are_unique() {
        assert!(METHODS.iter().all(|m| m.params.len() <= MAX_PARAMS));
        for (i, m) in METHODS.iter().enumerate() {
            assert!(
                METHODS[i + 1..].iter().all(|other| other.name != m.name),
                "{}",
                m.name
            );
        }
    }
}
