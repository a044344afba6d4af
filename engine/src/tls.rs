//! TLS for every connection, with certificates checked by fingerprint, not by authority.
//!
//! Nobody on a LAN has a certificate a browser or an operating system trusts, so the usual
//! chain check means nothing here. Instead a client knows which key the host must have (from
//! the room's announcement, a `lanchat://` link, or its own memory of the host, see
//! [`crate::trust`]) and accepts exactly that certificate; with nothing known it accepts the
//! first one and remembers it. The handshake signature is still checked against the
//! certificate's key, so presenting a copied certificate without its key fails.
//!
//! Clients present their own installation's certificate, and the host accepts any: it only
//! learns who is who (see [`crate::identity`]). Browsers present none; they prove their key
//! in `join` instead (PROTOCOL.md, "Identity").
//!
//! TLS 1.3 only, ring's primitives, no session tickets (a resumed session would skip the
//! host's signature, and tickets cost memory per connection).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};

use crate::identity::{Fingerprint, Identity};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Why TLS could not be set up with an identity.
#[derive(Debug, thiserror::Error)]
#[error("the installation key cannot be used for TLS: {0}")]
pub struct TlsSetupError(#[from] rustls::Error);

/// The host's TLS settings: its identity, clients' certificates optional and taken as
/// identities.
pub fn server_config(identity: &Identity) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AnyClientKey(algorithms())))
        .with_single_cert(vec![identity.cert()], identity.key())?;
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Checks that an identity's key goes with its certificate.
pub(crate) fn check_identity(identity: &Identity) -> Result<(), TlsSetupError> {
    server_config(identity).map(drop)
}

/// What a client expects of the host's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this key (known from the announcement, a link, or remembered).
    Key(Fingerprint),
    /// Nothing known: accept any key, for the caller to show and remember (trust on first use).
    FirstUse,
}

/// The host key a client saw in its last handshake, readable after a refusal too (so the
/// warning can show the new key next to the expected one).
#[derive(Debug, Default)]
pub struct SeenKey(Mutex<Option<Fingerprint>>);

impl SeenKey {
    pub fn get(&self) -> Option<Fingerprint> {
        *self.0.lock().expect("never poisoned")
    }
}

/// A client's TLS settings for one connection.
pub fn client_config(
    identity: Option<&Identity>,
    expect: Expect,
    seen: Arc<SeenKey>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedHostKey {
            expect,
            seen,
            algorithms: algorithms(),
        }));
    let mut config = match identity {
        Some(identity) => builder.with_client_auth_cert(vec![identity.cert()], identity.key())?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct PinnedHostKey {
    expect: Expect,
    seen: Arc<SeenKey>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedHostKey {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        *self.seen.0.lock().expect("never poisoned") = Some(presented);
        match self.expect {
            Expect::Key(expected) if expected != presented => Err(
                rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure),
            ),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Accepts any client certificate whose key signs the handshake: the certificate is an
/// identity, not a credential.
#[derive(Debug)]
struct AnyClientKey(WebPkiSupportedAlgorithms);

impl ClientCertVerifier for AnyClientKey {
    fn client_auth_mandatory(&self) -> bool {
        // Browsers have no certificate; they prove their key in `join`.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
