//! Policies: who (`issuer:subject`) is granted or revoked what on which resources, checked as
//! every server reads them (`tributary_common::policy`: Eclipse Ditto's model and limits), so
//! the catalogue never holds a policy that a member or data node could not enforce.

use super::fields::invalid;
use crate::error::CatalogError;
use tributary_proto::v1::Policy;

/// How much of a field path an error echoes (a path may carry a client's subject id).
const MAX_ECHOED: usize = 96;

pub(super) fn policy(p: &mut Policy) -> Result<(), CatalogError> {
    tributary_common::policy::Policy::from_proto(p)
        .map(|_| ())
        .map_err(|e| {
            let path = shortened(e.path());
            invalid(&path, e.to_string().replace(e.path(), &path))
        })
}

/// `text`, cut to [`MAX_ECHOED`] bytes (on a character boundary) with `…` when longer.
fn shortened(text: &str) -> String {
    if text.len() <= MAX_ECHOED {
        return text.to_string();
    }
    let mut end = MAX_ECHOED;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
