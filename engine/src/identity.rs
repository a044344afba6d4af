//! This installation's identity: a long-lived key and a self-signed certificate, made on
//! first use and kept owner-only in the config directory (`identity.json`).
//!
//! A host presents it in every TLS handshake, so clients can tell the real host from an
//! impostor announcing the same room; a client presents it too, so the host knows a person
//! by their installation rather than by the nickname they type. What people compare is the
//! certificate's SHA-256 [`Fingerprint`], or its [`Fingerprint::short_code`] read aloud.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The file in the config directory that holds the identity.
pub const FILE_NAME: &str = "identity.json";

/// The SHA-256 of a certificate (DER), or of a browser's public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// 64 lowercase hex digits, as in TXT records and links.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Four groups of five digits, for two people to compare by voice ("4 8 2 1 0 ...").
    /// 66 bits: finding another key with the same code takes about 2^66 key generations.
    pub fn short_code(&self) -> String {
        let groups: Vec<String> = self.0[..16]
            .chunks(4)
            .map(|c| {
                let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                format!("{:05}", n % 100_000)
            })
            .collect();
        groups.join(" ")
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short_code())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a key fingerprint (64 hex digits)")]
pub struct BadFingerprint(String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes)
            .map_err(|_| BadFingerprint(text.chars().take(80).collect()))?;
        Ok(Self(bytes))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A key and its self-signed certificate.
pub struct Identity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?})", self.fingerprint)
    }
}

/// Why the identity could not be made, read or kept.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot make a key: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({why}); move it away to make a new identity (people who know this computer will be warned that its key changed)")]
    Damaged { path: PathBuf, why: String },
    #[error("cannot save {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct Saved {
    /// The certificate, DER as hex.
    cert: String,
    /// The PKCS#8 private key, DER as hex.
    key: String,
}

impl Identity {
    /// A new key (ECDSA P-256, what every browser's TLS accepts) and certificate.
    pub fn generate() -> Result<Self, IdentityError> {
        let key_pair = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec!["lanchat.local".to_owned()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "LAN Chat installation");
        // Long-lived on purpose: the key is pinned by fingerprint, not checked by date.
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(4000, 1, 1);
        let cert = params.self_signed(&key_pair)?;
        Ok(Self::from_der(
            cert.der().to_vec(),
            key_pair.serialize_der(),
        ))
    }

    fn from_der(cert: Vec<u8>, key: Vec<u8>) -> Self {
        let fingerprint = Fingerprint::of(&cert);
        Self {
            cert: CertificateDer::from(cert),
            key: PrivatePkcs8KeyDer::from(key),
            fingerprint,
        }
    }

    /// The identity kept in `dir`, made and saved (owner-only) on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let _ = crate::private::ensure_dir(dir);
                let damaged = |why: String| IdentityError::Damaged {
                    path: path.clone(),
                    why,
                };
                let saved: Saved =
                    serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
                let cert = hex::decode(&saved.cert).map_err(|e| damaged(e.to_string()))?;
                let key = hex::decode(&saved.key).map_err(|e| damaged(e.to_string()))?;
                let identity = Self::from_der(cert, key);
                // A key that does not go with its certificate would fail every handshake.
                crate::tls::check_identity(&identity).map_err(|e| damaged(e.to_string()))?;
                Ok(identity)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate()?;
                let saved = Saved {
                    cert: hex::encode(&identity.cert),
                    key: hex::encode(identity.key.secret_pkcs8_der()),
                };
                let json = serde_json::to_vec_pretty(&saved).expect("strings serialize");
                crate::private::write_atomic(&path, &json)
                    .map_err(|source| IdentityError::Write { path, source })?;
                Ok(identity)
            }
            Err(source) => Err(IdentityError::Read { path, source }),
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub(crate) fn cert(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path()).unwrap();
        let again = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let other = Identity::generate().unwrap();
        assert_ne!(first.fingerprint(), other.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(
            dir.path().join(FILE_NAME),
            b"{\"cert\":\"00\",\"key\":\"zz\"}",
        )
        .unwrap();
        let damaged = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(damaged, IdentityError::Damaged { .. }),
            "{damaged}"
        );
    }

    #[test]
    fn fingerprints_read_back_and_codes_are_four_groups_of_five_digits() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(fp.to_hex().parse::<Fingerprint>().unwrap(), fp);
        assert!("abc".parse::<Fingerprint>().is_err());
        let code = Fingerprint([0; 32]).short_code();
        assert_eq!(code, "00000 00000 00000 00000");
        let code = Fingerprint::of(b"x").short_code();
        assert_eq!(code.len(), 23);
        assert!(code
            .split(' ')
            .all(|g| g.len() == 5 && g.chars().all(|c| c.is_ascii_digit())));
    }
}
