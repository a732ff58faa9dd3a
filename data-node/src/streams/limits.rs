//! What one published message may carry, and how long a subject a call may name
//! (`[limits]`): checked before anything is looked up or stored; over a limit the call (or,
//! in `PublishStream`, that message's ack) is `INVALID_ARGUMENT` naming `limits.<key>`.

use crate::error::{Error, Result};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct PublishLimits {
    pub max_subject_bytes: usize,
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

impl PublishLimits {
    /// A subject or filter named by request field `field`.
    pub fn subject(&self, field: &str, subject: &str) -> Result<()> {
        if subject.len() > self.max_subject_bytes {
            return Err(Error::invalid(
                field,
                format!(
                    "is {} bytes, over limits.max_subject_bytes ({})",
                    subject.len(),
                    self.max_subject_bytes
                ),
            ));
        }
        Ok(())
    }

    /// A message's subject and headers.
    pub fn message(&self, subject: &str, headers: &HashMap<String, String>) -> Result<()> {
        self.subject("subject", subject)?;
        if headers.len() > self.max_headers {
            return Err(Error::invalid(
                "headers",
                format!(
                    "{} headers, over limits.max_headers ({})",
                    headers.len(),
                    self.max_headers
                ),
            ));
        }
        let bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > self.max_header_bytes {
            return Err(Error::invalid(
                "headers",
                format!(
                    "{bytes} bytes, over limits.max_header_bytes ({})",
                    self.max_header_bytes
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_named() {
        let l = PublishLimits {
            max_subject_bytes: 8,
            max_headers: 2,
            max_header_bytes: 10,
        };
        let h = |n: usize, len: usize| -> HashMap<String, String> {
            (0..n).map(|i| (format!("h{i}"), "v".repeat(len))).collect()
        };
        assert!(l.message("a.b", &h(2, 3)).is_ok());
        for (subject, headers, key) in [
            ("a.b.c.d.e", h(0, 0), "limits.max_subject_bytes"),
            ("a.b", h(3, 0), "limits.max_headers"),
            ("a.b", h(2, 4), "limits.max_header_bytes"),
        ] {
            let e = l.message(subject, &headers).expect_err(key).to_string();
            assert!(e.contains(key), "{e}");
        }
        assert!(l
            .subject("filter_subject", "orders.>.x.y")
            .expect_err("long filter")
            .to_string()
            .contains("filter_subject"));
    }
}
