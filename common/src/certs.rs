//! Making a cluster's certificates (rcgen): a CA, and certificates it signs for members
//! (`member-ID`), data nodes (`data-node-ID`) and clients (any name), each usable as a server
//! and as a client certificate, valid for the hosts given. `tribctl certs`, `tribctl dev` and
//! the tests make theirs here. A CA written once signs more certificates later.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::Path;

/// The name in a member's certificate (what peers pin).
pub fn member_name(id: u64) -> String {
    format!("member-{id}")
}

/// The name in a data node's certificate (what the control plane binds its id to).
pub fn data_node_name(id: u64) -> String {
    format!("data-node-{id}")
}

/// The data node id a certificate name stands for.
pub fn data_node_id(name: &str) -> Option<u64> {
    name.strip_prefix("data-node-")?.parse().ok()
}

/// The member id a certificate name stands for.
pub fn member_id(name: &str) -> Option<u64> {
    name.strip_prefix("member-")?.parse().ok()
}

#[derive(Debug, thiserror::Error)]
#[error("certificates: {0}")]
pub struct CertError(String);

fn err(e: impl std::fmt::Display) -> CertError {
    CertError(e.to_string())
}

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A CA that signs.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub pem: Pem,
}

impl Ca {
    /// A new self-signed CA, valid ten years.
    pub fn new(name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_after = rcgen::date_time_ymd(2036, 1, 1);
        let cert = params.clone().self_signed(&key).map_err(err)?;
        let pem = Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        Ok(Ca { params, key, pem })
    }

    /// The CA written before (its certificate and key PEM files), to sign more.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, CertError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| CertError(format!("{}: {e}", p.display())))
        };
        let (cert_pem, key_pem) = (read(cert_file)?, read(key_file)?);
        let key = KeyPair::from_pem(&key_pem).map_err(err)?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem).map_err(err)?;
        Ok(Ca {
            params,
            key,
            pem: Pem {
                cert: cert_pem,
                key: key_pem,
            },
        })
    }

    /// A certificate for `name` (its CN and first DNS name), valid for `hosts` (DNS names or
    /// IP addresses), for both server and client authentication, two years.
    pub fn sign(&self, name: &str, hosts: &[String]) -> Result<Pem, CertError> {
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        let mut sans = vec![SanType::DnsName(name.try_into().map_err(err)?)];
        for h in hosts {
            sans.push(match h.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(h.as_str().try_into().map_err(err)?),
            });
        }
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.not_after = rcgen::date_time_ymd(2028, 1, 1);
        let issuer = self.params.clone().self_signed(&self.key).map_err(err)?;
        let cert = params.signed_by(&key, &issuer, &self.key).map_err(err)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// Writes `pem` as `dir/NAME.pem` and `dir/NAME-key.pem` (the key readable by its owner only).
pub fn write(dir: &Path, name: &str, pem: &Pem) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let io = |p: &Path, e: std::io::Error| CertError(format!("{}: {e}", p.display()));
    let cert = dir.join(format!("{name}.pem"));
    std::fs::write(&cert, &pem.cert).map_err(|e| io(&cert, e))?;
    let key = dir.join(format!("{name}-key.pem"));
    write_private(&key, pem.key.as_bytes()).map_err(|e| io(&key, e))
}

/// Writes a file only its owner may read.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a new file: an existing one (a key replaced) is narrowed too,
    // before the new key is in it.
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn a_signed_certificate_names_its_holder_and_a_reloaded_ca_signs_alike() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("Tributary test CA").unwrap();
        write(dir.path(), "ca", &ca.pem).unwrap();
        let again = Ca::load(&dir.path().join("ca.pem"), &dir.path().join("ca-key.pem")).unwrap();
        for signer in [&ca, &again] {
            let p = signer
                .sign(
                    &data_node_name(3),
                    &["127.0.0.1".into(), "localhost".into()],
                )
                .unwrap();
            let der = rustls::pki_types::CertificateDer::from_pem_slice(p.cert.as_bytes()).unwrap();
            assert_eq!(crate::tls::cert_names(&der)[0], "data-node-3");
        }
        assert_eq!(data_node_id("data-node-12"), Some(12));
        assert_eq!(member_id("member-2"), Some(2));
        assert_eq!(data_node_id("member-2"), None);
    }
}
