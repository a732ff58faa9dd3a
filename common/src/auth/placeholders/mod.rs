//! Eclipse Ditto's placeholders for OIDC `auth_subjects`: `{{ jwt:<claim-pointer> }}` with the
//! `fn:` pipeline functions `default`, `substring-before`, `substring-after`, `lower`,
//! `upper`, `replace`, `split`, `join` and `filter` (`eq`, `ne`, `exists`, `like`).
//!
//! Where this differs from Ditto, it is stricter and says so at config load: an unknown
//! function, a constant filter function Ditto does not know, or a placeholder other than
//! `jwt:` is a config error rather than a subject that silently never resolves. `fn:split`
//! takes its separator literally (Java's `split` reads a regex; for the separators anyone
//! uses, `' '` or `','`, the result is the same).

mod eval;
mod parse;
#[cfg(test)]
mod tests;

pub use parse::{Template, TemplateError, MAX_FUNCTIONS};
