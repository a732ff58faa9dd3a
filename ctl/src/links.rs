//! How tribctl reaches a server, member or data node alike: TLS or cleartext for each address,
//! and the same credentials on every connection (the client certificate in the handshake, the
//! bearer token in `authorization` on every call). Channels are built by
//! `tributary_common::tls::endpoint`, as the servers build theirs to each other.

use std::path::{Path, PathBuf};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tributary_common::grpc::STREAM_SECRET_HEADER;
use tributary_common::tls::{self, TlsError, TlsFiles};
use tributary_common::trace_context::{parse_traceparent, TRACEPARENT};

/// Why tribctl cannot set up its links; each names the flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{flag} {path}: {reason}")]
    File {
        flag: &'static str,
        path: String,
        reason: String,
    },
    #[error("--cert and --key go together: {0} is missing")]
    HalfIdentity(&'static str),
    #[error(
        "--cert/--key need the cluster CA too, to check the servers' certificates: give --ca \
         FILE (or TRIBUTARY_CA)"
    )]
    IdentityWithoutCa,
    #[error(
        "{addr}: TLS needs the cluster CA to check the server's certificate: give --ca FILE \
         (or TRIBUTARY_CA)"
    )]
    NoCa { addr: String },
    #[error("server address {addr:?}: {reason}")]
    Address { addr: String, reason: String },
    #[error("{what}: {reason}")]
    Secret { what: &'static str, reason: String },
    #[error("--resolve {entry:?}: want HOST:PORT=ADDR:PORT (the address a server is named by, and where to reach it)")]
    Resolve { entry: String },
    #[error("--traceparent (TRACEPARENT): {0}")]
    Traceparent(#[from] tributary_common::trace_context::BadTraceparent),
}

/// The credentials tribctl shows, as given on its command line.
#[derive(Debug, Default, Clone)]
pub struct LinkOptions {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A bearer token (an OIDC JWT), sent as `authorization: Bearer …`.
    pub token: Option<String>,
    /// Sent to data nodes on `Streams` calls (`x-tributary-stream-secret`).
    pub stream_secret: Option<String>,
    /// `HOST:PORT=ADDR:PORT`: reach the server named `HOST:PORT` (by `--server` or the
    /// catalogue) at `ADDR:PORT`, as curl's `--resolve`; its certificate must still name HOST.
    pub resolve: Vec<String>,
    /// A W3C trace context sent on every call (`traceparent`): the servers' spans of the
    /// command join that trace.
    pub traceparent: Option<String>,
}

/// Puts the caller's metadata on every call: the bearer token and the trace context always,
/// the stream secret on the channels made for a data node's `Streams` service.
#[derive(Clone, Default)]
pub struct CallAuth {
    bearer: Option<MetadataValue<Ascii>>,
    stream_secret: Option<MetadataValue<Ascii>>,
    traceparent: Option<MetadataValue<Ascii>>,
}

impl Interceptor for CallAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.bearer {
            req.metadata_mut().insert("authorization", v.clone());
        }
        if let Some(v) = &self.stream_secret {
            req.metadata_mut().insert(STREAM_SECRET_HEADER, v.clone());
        }
        if let Some(v) = &self.traceparent {
            req.metadata_mut().insert(TRACEPARENT, v.clone());
        }
        Ok(req)
    }
}

/// A channel whose every call carries tribctl's credentials.
pub type AuthChannel = InterceptedService<Channel, CallAuth>;

/// Everything needed to open a channel to any server of the cluster.
#[derive(Clone, Default)]
pub struct Links {
    /// The CA (always, when TLS is possible) and the client identity (when given).
    files: Option<TlsFiles>,
    bearer: Option<MetadataValue<Ascii>>,
    stream_secret: Option<MetadataValue<Ascii>>,
    /// `--resolve`: server address (HOST:PORT) → where to connect (ADDR:PORT).
    resolve: Vec<(String, String)>,
    traceparent: Option<MetadataValue<Ascii>>,
}

impl Links {
    /// Checks the files (readable, PEM that TLS can use) and secrets up front, so a mistake
    /// is reported naming its flag rather than as a failed handshake later.
    pub fn new(o: LinkOptions) -> Result<Links, LinkError> {
        let files = match (o.ca, o.cert, o.key) {
            (None, None, None) => None,
            (_, Some(_), None) => return Err(LinkError::HalfIdentity("--key")),
            (_, None, Some(_)) => return Err(LinkError::HalfIdentity("--cert")),
            (None, Some(_), Some(_)) => return Err(LinkError::IdentityWithoutCa),
            (Some(ca), cert, key) => {
                let files = TlsFiles {
                    cert_file: cert.unwrap_or_default(),
                    key_file: key.unwrap_or_default(),
                    ca_file: ca,
                };
                check_files(&files)?;
                Some(files)
            }
        };
        let bearer = o
            .token
            .map(|t| header_value("the bearer token", &format!("Bearer {}", t.trim())))
            .transpose()?
            .map(|mut v| {
                // Never kept in HTTP/2's header compression tables.
                v.set_sensitive(true);
                v
            });
        let stream_secret = o
            .stream_secret
            .map(|s| header_value("the stream secret", &s))
            .transpose()?
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        let resolve = o
            .resolve
            .iter()
            .map(|e| parse_resolve(e))
            .collect::<Result<_, _>>()?;
        let traceparent = o
            .traceparent
            .map(|t| -> Result<_, LinkError> {
                let t = t.trim();
                parse_traceparent(t)?;
                header_value("the traceparent", t)
            })
            .transpose()?;
        Ok(Links {
            files,
            bearer,
            stream_secret,
            resolve,
            traceparent,
        })
    }

    /// Whether calls to `addr` go over TLS: `https://` says so, `http://` says not, and a
    /// bare `HOST:PORT` does when the cluster CA was given.
    pub fn uses_tls(&self, addr: &str) -> bool {
        if addr.starts_with("https://") {
            true
        } else if addr.starts_with("http://") {
            false
        } else {
            self.files.is_some()
        }
    }

    /// A lazily connecting channel to `addr` with the bearer token on every call.
    pub fn channel(&self, addr: &str) -> Result<AuthChannel, LinkError> {
        self.open(addr, None)
    }

    /// As [`Links::channel`], with the stream secret too (a data node's `Streams` service).
    pub fn streams_channel(&self, addr: &str) -> Result<AuthChannel, LinkError> {
        self.open(addr, self.stream_secret.clone())
    }

    fn open(
        &self,
        addr: &str,
        stream_secret: Option<MetadataValue<Ascii>>,
    ) -> Result<AuthChannel, LinkError> {
        let bad = |reason: String| LinkError::Address {
            addr: addr.to_string(),
            reason,
        };
        let hostport = addr
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        if !hostport
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            return Err(bad(
                "not HOST:PORT (optionally with http:// or https://)".into()
            ));
        }
        let files = match (self.uses_tls(addr), &self.files) {
            (false, _) => None,
            (true, Some(f)) => Some(f),
            (true, None) => {
                return Err(LinkError::NoCa {
                    addr: addr.to_string(),
                })
            }
        };
        // Under --resolve, connect to the address given for this one, and still expect the
        // certificate of the host it names.
        let (connect, expect_name) = match self.resolve.iter().find(|(from, _)| from == hostport) {
            Some((_, to)) => (to.as_str(), hostport.rsplit_once(':').map(|(h, _)| h)),
            None => (hostport, None),
        };
        let connect = match files {
            Some(_) => format!("https://{connect}"),
            None => format!("http://{connect}"),
        };
        let ep = tls::endpoint(&connect, files, expect_name).map_err(|e| tls_error(addr, e))?;
        let auth = CallAuth {
            bearer: self.bearer.clone(),
            stream_secret,
            traceparent: self.traceparent.clone(),
        };
        Ok(InterceptedService::new(ep.connect_lazy(), auth))
    }
}

/// One `--resolve` entry, `HOST:PORT=ADDR:PORT`.
fn parse_resolve(entry: &str) -> Result<(String, String), LinkError> {
    let is_hostport = |s: &str| {
        s.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
    };
    match entry.trim().split_once('=') {
        Some((from, to)) if is_hostport(from) && is_hostport(to) => {
            Ok((from.to_string(), to.to_string()))
        }
        _ => Err(LinkError::Resolve {
            entry: entry.to_string(),
        }),
    }
}

fn header_value(what: &'static str, v: &str) -> Result<MetadataValue<Ascii>, LinkError> {
    v.parse().map_err(|_| LinkError::Secret {
        what,
        reason: "not a valid header value (visible ASCII only, no line breaks)".into(),
    })
}

/// The flag a server config key of `TlsFiles` stands for on tribctl's command line.
fn flag_of(key: &str) -> &'static str {
    match key {
        "tls.ca_file" => "--ca",
        "tls.cert_file" => "--cert",
        _ => "--key",
    }
}

fn tls_error(addr: &str, e: TlsError) -> LinkError {
    match e {
        TlsError::File { key, path, reason } => LinkError::File {
            flag: flag_of(key),
            path,
            reason,
        },
        TlsError::Config(reason) => LinkError::Address {
            addr: addr.to_string(),
            reason,
        },
    }
}

/// Reads every file as TLS will: the CA as trust roots, the certificate and key as the
/// identity of a TLS endpoint (built, never connected).
fn check_files(files: &TlsFiles) -> Result<(), LinkError> {
    let file = |flag, path: &Path, reason: String| LinkError::File {
        flag,
        path: path.display().to_string(),
        reason,
    };
    tls::read_roots(&files.ca_file).map_err(|e| match e {
        TlsError::File { path, reason, .. } => LinkError::File {
            flag: "--ca",
            path,
            reason,
        },
        TlsError::Config(reason) => file("--ca", &files.ca_file, reason),
    })?;
    for (flag, path) in [("--cert", &files.cert_file), ("--key", &files.key_file)] {
        if !path.as_os_str().is_empty() {
            let text =
                std::fs::read_to_string(path).map_err(|e| file(flag, path, e.to_string()))?;
            let want = if flag == "--cert" {
                "CERTIFICATE-----"
            } else {
                "PRIVATE KEY-----"
            };
            if !text.contains(want) {
                return Err(file(
                    flag,
                    path,
                    format!("holds no PEM {}", want.trim_end_matches('-').to_lowercase()),
                ));
            }
        }
    }
    tls::endpoint("https://localhost:1", Some(files), None).map_err(|e| match e {
        TlsError::Config(reason) => LinkError::File {
            flag: "--cert/--key",
            path: format!(
                "{} / {}",
                files.cert_file.display(),
                files.key_file.display()
            ),
            reason: format!("{reason}: TLS cannot use them (is the key the certificate's?)"),
        },
        other => tls_error("https://localhost:1", other),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_addresses_follow_the_ca_and_schemes_decide_alone() {
        let plain = Links::default();
        assert!(!plain.uses_tls("127.0.0.1:7100"));
        assert!(!plain.uses_tls("http://127.0.0.1:7100"));
        assert!(plain.uses_tls("https://127.0.0.1:7100"));
        let e = plain
            .channel("https://127.0.0.1:7100")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("--ca")));
        let e = plain.channel("nohost").err().map(|e| e.to_string());
        assert!(
            e.is_some_and(|e| e.contains("HOST:PORT")),
            "bad address named"
        );
    }

    #[test]
    fn every_call_carries_the_token_and_streams_calls_the_secret() -> anyhow::Result<()> {
        let links = Links::new(LinkOptions {
            token: Some(" abc.def.ghi\n".into()),
            stream_secret: Some("s3cret".into()),
            ..Default::default()
        })?;
        let mut plain = CallAuth {
            bearer: links.bearer.clone(),
            ..Default::default()
        };
        let mut streams = CallAuth {
            bearer: links.bearer.clone(),
            stream_secret: links.stream_secret.clone(),
            ..Default::default()
        };
        let req = plain.call(Request::new(()))?;
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        assert_eq!(auth, Some("Bearer abc.def.ghi"));
        assert!(req.metadata().get(STREAM_SECRET_HEADER).is_none());
        let req = streams.call(Request::new(()))?;
        let secret = req
            .metadata()
            .get(STREAM_SECRET_HEADER)
            .and_then(|v| v.to_str().ok());
        assert_eq!(secret, Some("s3cret"));
        Ok(())
    }

    #[test]
    fn the_traceparent_given_goes_on_every_call_and_a_bad_one_is_named() -> anyhow::Result<()> {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let links = Links::new(LinkOptions {
            traceparent: Some(format!(" {tp}\n")),
            ..Default::default()
        })?;
        let mut auth = CallAuth {
            traceparent: links.traceparent.clone(),
            ..Default::default()
        };
        let req = auth.call(Request::new(()))?;
        let sent = req
            .metadata()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok());
        assert_eq!(sent, Some(tp));
        let e = Links::new(LinkOptions {
            traceparent: Some("00-abc-01".into()),
            ..Default::default()
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("--traceparent") && e.contains("00-abc-01"),
            "{e}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn resolve_entries_are_checked_and_map_a_server_to_another_address() -> anyhow::Result<()>
    {
        for bad in [
            "data-node-1:7200",
            "data-node-1=127.0.0.1:7201",
            "a:1=b",
            "=b:2",
        ] {
            let e = Links::new(LinkOptions {
                resolve: vec![bad.into()],
                ..Default::default()
            })
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(e.contains("--resolve") && e.contains(bad), "{bad}: {e}");
        }
        let links = Links::new(LinkOptions {
            resolve: vec!["data-node-1:7200=127.0.0.1:7201".into()],
            ..Default::default()
        })?;
        assert_eq!(
            links.resolve,
            vec![("data-node-1:7200".to_string(), "127.0.0.1:7201".to_string())]
        );
        links.channel("data-node-1:7200")?;
        links.channel("http://data-node-2:7200")?;
        Ok(())
    }

    #[test]
    fn half_identities_and_bad_files_name_their_flag() {
        let o = |ca: Option<&str>, cert: Option<&str>, key: Option<&str>| LinkOptions {
            ca: ca.map(PathBuf::from),
            cert: cert.map(PathBuf::from),
            key: key.map(PathBuf::from),
            ..Default::default()
        };
        let err = |o| {
            Links::new(o)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(o(Some("ca"), Some("c"), None)).contains("--key is missing"));
        assert!(err(o(None, Some("c"), Some("k"))).contains("--ca"));
        let e = err(o(Some("/nonexistent/ca.pem"), None, None));
        assert!(e.starts_with("--ca /nonexistent/ca.pem"), "{e}");
        let token = LinkOptions {
            token: Some("a\nb".into()),
            ..Default::default()
        };
        assert!(err(token).contains("bearer token"));
    }
}
