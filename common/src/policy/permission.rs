//! The three permissions a policy grants or revokes, and a small set of them.

use std::fmt;
use tributary_proto::v1 as proto;

/// What a subject may do on a resource. None implies another: `WRITE` does not imply `READ`,
/// and `ADMIN` implies neither (as in Eclipse Ditto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 3] = [Permission::Read, Permission::Write, Permission::Admin];

    /// The name as policies spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::Admin => "ADMIN",
        }
    }

    /// Parses `READ`, `WRITE` or `ADMIN` (any case, as `tribctl policy check` takes it).
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "READ" => Ok(Permission::Read),
            "WRITE" => Ok(Permission::Write),
            "ADMIN" => Ok(Permission::Admin),
            _ => Err(format!(
                "unknown permission {raw:?} (want READ, WRITE or ADMIN)"
            )),
        }
    }

    /// From the wire value; `PERMISSION_UNSPECIFIED` and unknown numbers are refused.
    pub fn from_proto(raw: i32) -> Result<Self, String> {
        match proto::Permission::try_from(raw) {
            Ok(proto::Permission::Read) => Ok(Permission::Read),
            Ok(proto::Permission::Write) => Ok(Permission::Write),
            Ok(proto::Permission::Admin) => Ok(Permission::Admin),
            _ => Err(format!(
                "permission {raw} is not READ (1), WRITE (2) or ADMIN (3)"
            )),
        }
    }

    pub fn to_proto(self) -> proto::Permission {
        match self {
            Permission::Read => proto::Permission::Read,
            Permission::Write => proto::Permission::Write,
            Permission::Admin => proto::Permission::Admin,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Permission::Read => 1,
            Permission::Write => 2,
            Permission::Admin => 4,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of permissions; iterates and prints in the order READ, WRITE, ADMIN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u8);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);
    pub const ALL: PermissionSet = PermissionSet(7);

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    pub fn to_proto(self) -> Vec<i32> {
        self.iter().map(|p| p.to_proto() as i32).collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        iter.into_iter().for_each(|p| set.insert(p));
        set
    }
}

impl fmt::Display for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Permission::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// Whether an entry grants or revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Grant,
    Revoke,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Grant => "grant",
            Effect::Revoke => "revoke",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_unknown_ones_are_named() {
        assert_eq!(Permission::parse("read"), Ok(Permission::Read));
        assert_eq!(Permission::parse(" Admin "), Ok(Permission::Admin));
        let err = Permission::parse("EXECUTE").unwrap_err();
        assert!(err.contains("\"EXECUTE\"") && err.contains("READ, WRITE or ADMIN"));
        assert!(Permission::from_proto(0).is_err());
        assert_eq!(Permission::from_proto(2), Ok(Permission::Write));
    }

    #[test]
    fn a_set_prints_in_a_fixed_order() {
        let set: PermissionSet = [Permission::Admin, Permission::Read].into_iter().collect();
        assert_eq!(set.to_string(), "READ,ADMIN");
        assert!(!set.contains(Permission::Write));
        assert_eq!(set.to_proto(), vec![1, 3]);
    }
}
