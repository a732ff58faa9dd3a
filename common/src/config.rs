//! Config loading, the same for every server: defaults, then the TOML file, then
//! `TRIBUTARY_<SECTION>__<KEY>` environment variables, then command-line flags.

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// Loads `T` from its defaults, an optional TOML file, the environment and `flags`
/// (a serializable struct whose `None` fields are skipped). The error names the bad key.
pub fn load<T, F>(file: Option<&Path>, flags: &F) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default,
    F: Serialize,
{
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                file.display()
            )));
        }
        fig = fig.merge(Toml::file(file));
    }
    fig = fig
        .merge(Env::prefixed("TRIBUTARY_").split("__"))
        .merge(Serialized::defaults(flags));
    fig.extract().map_err(|e| {
        let key = e.path.join(".");
        let msg = e.kind.to_string();
        if key.is_empty() {
            ConfigError(msg)
        } else {
            ConfigError(format!("key `{key}`: {msg}"))
        }
    })
}
