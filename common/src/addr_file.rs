//! The addresses a server bound, written to a file once it serves (`--addr-file`): a server
//! started on port 0 tells whoever launched it (the test harness, `tribctl dev`) where it
//! listens, so nobody has to pick a free port and hope it is still free when the server binds.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `{"grpc": "127.0.0.1:41234", "admin": "127.0.0.1:41235"}`; `admin` is `null` when the admin
/// listener is off, `peer` appears for a control-plane member (its peer listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundAddrs {
    pub grpc: SocketAddr,
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum AddrFileError {
    #[error("address file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("address file {path}: not the expected JSON: {source}")]
    Format {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl BoundAddrs {
    /// Writes the file whole or not at all (a temp file beside it, then a rename), so a reader
    /// polling for it never sees half a file.
    pub fn write_atomically(&self, path: &Path) -> Result<(), AddrFileError> {
        let io = |source| AddrFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec(self).map_err(|source| AddrFileError::Format {
            path: path.to_path_buf(),
            source,
        })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, json).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The file's addresses; `Ok(None)` while it does not exist yet.
    pub fn read(path: &Path) -> Result<Option<Self>, AddrFileError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(AddrFileError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| AddrFileError::Format {
                path: path.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_read_back_and_no_temp_file_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addr.json");
        assert!(BoundAddrs::read(&path).unwrap().is_none());
        let a = BoundAddrs {
            grpc: "127.0.0.1:4000".parse().unwrap(),
            admin: None,
            peer: None,
        };
        a.write_atomically(&path).unwrap();
        assert_eq!(BoundAddrs::read(&path).unwrap(), Some(a));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, r#"{"grpc":"127.0.0.1:4000","admin":null}"#);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temp file was left behind");
    }

    #[test]
    fn a_damaged_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("addr.json");
        std::fs::write(&path, "{\"grpc\": 7}").unwrap();
        let e = BoundAddrs::read(&path).unwrap_err().to_string();
        assert!(e.contains("addr.json") && e.contains("JSON"), "{e}");
    }
}
