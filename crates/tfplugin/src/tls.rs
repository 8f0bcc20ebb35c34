//! go-plugin's automatic mutual TLS.
//!
//! The host puts a fresh self-signed client certificate into
//! `PLUGIN_CLIENT_CERT`; the plugin answers with its own fresh self-signed
//! certificate on the handshake line. Each side then accepts exactly the
//! other's certificate. The host verifies ours as a CA for `localhost`; we
//! accept a client only if it presents the very certificate from the
//! environment and proves it holds the key.
//!
//! go-plugin hosts use ECDSA P-521 keys, which `ring` cannot verify, so
//! P-521 handshake signatures are checked with the pure-Rust `p521` crate.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, PrivateKeyDer, PrivatePkcs8KeyDer,
    SignatureVerificationAlgorithm, UnixTime, alg_id,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `PLUGIN_CLIENT_CERT` holds no PEM certificate.
    #[error("the host's client certificate (PLUGIN_CLIENT_CERT) is not a PEM certificate: {0}")]
    ClientCertificate(String),
    /// Generating our certificate failed.
    #[error("could not generate the server certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the configuration.
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A freshly generated server certificate and its key.
#[derive(Debug)]
pub struct ServerIdentity {
    /// The certificate (DER), announced on the handshake line.
    pub cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

/// Generates a self-signed ECDSA P-256 certificate shaped like go-plugin's:
/// subject `O=HashiCorp, CN=localhost`, SAN `localhost`, a CA (the host uses
/// it as its trust root), usable for server and client auth.
pub fn generate_server_identity() -> Result<ServerIdentity, TlsError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::OrganizationName, "HashiCorp");
    dn.push(rcgen::DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyAgreement,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = params.self_signed(&key)?;
    Ok(ServerIdentity {
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    })
}

/// Parses the host's PEM client certificate.
pub fn parse_client_cert(pem: &str) -> Result<CertificateDer<'static>, TlsError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError::ClientCertificate(e.to_string()))
}

/// The rustls server configuration: our identity, exactly `client_cert`
/// accepted, ALPN `h2` (gRPC clients require it).
pub fn server_config(
    identity: &ServerIdentity,
    client_cert: CertificateDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(ExactClientCert {
        expected: client_cert,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![identity.cert_der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone())),
        )?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts exactly one client certificate.
#[derive(Debug)]
struct ExactClientCert {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for ExactClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms_for(dss.scheme))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms_for(dss.scheme))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self.algorithms.supported_schemes();
        schemes.push(SignatureScheme::ECDSA_NISTP521_SHA512);
        schemes
    }
}

impl ExactClientCert {
    fn algorithms_for(&self, scheme: SignatureScheme) -> &WebPkiSupportedAlgorithms {
        if scheme == SignatureScheme::ECDSA_NISTP521_SHA512 {
            &P521_ALGORITHMS
        } else {
            &self.algorithms
        }
    }
}

/// ECDSA over P-521 with SHA-512, for webpki.
#[derive(Debug)]
struct EcdsaP521Sha512;

impl SignatureVerificationAlgorithm for EcdsaP521Sha512 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        use p521::ecdsa::signature::Verifier;
        let key =
            p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let signature =
            p521::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        key.verify(message, &signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_SHA512
    }
}

static ECDSA_P521_SHA512: EcdsaP521Sha512 = EcdsaP521Sha512;

static P521_ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[&ECDSA_P521_SHA512],
    mapping: &[(
        SignatureScheme::ECDSA_NISTP521_SHA512,
        &[&ECDSA_P521_SHA512],
    )],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_identity_is_a_localhost_ca() {
        let id = generate_server_identity().unwrap();
        let der = id.cert_der.as_ref();
        // "localhost" appears (CN and SAN) and "HashiCorp" (O).
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"localhost"));
        assert!(contains(b"HashiCorp"));
        // basicConstraints cA = TRUE: 30 03 01 01 ff
        assert!(contains(&[0x30, 0x03, 0x01, 0x01, 0xff]));
        // A second identity is a different certificate.
        assert_ne!(generate_server_identity().unwrap().cert_der, id.cert_der);
    }

    #[test]
    fn client_cert_pem_parsing() {
        let id = generate_server_identity().unwrap();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                id.cert_der.as_ref()
            )
        );
        assert_eq!(parse_client_cert(&pem).unwrap(), id.cert_der);
        assert!(matches!(
            parse_client_cert("garbage"),
            Err(TlsError::ClientCertificate(_))
        ));
    }

    #[test]
    fn p521_signature_verification() {
        use p521::ecdsa::signature::Signer;
        // A scalar below the group order: 66 bytes, the top one zero.
        let mut scalar = [7_u8; 66];
        scalar[0] = 0;
        let signing = p521::ecdsa::SigningKey::from_slice(&scalar).unwrap();
        let public = p521::ecdsa::VerifyingKey::from(&signing);
        let public_sec1 = public.to_encoded_point(false);
        let signature: p521::ecdsa::Signature = signing.sign(b"handshake transcript");
        let der = signature.to_der();
        let alg = &ECDSA_P521_SHA512;
        assert!(
            alg.verify_signature(
                public_sec1.as_bytes(),
                b"handshake transcript",
                der.as_bytes()
            )
            .is_ok()
        );
        assert!(
            alg.verify_signature(
                public_sec1.as_bytes(),
                b"another transcript",
                der.as_bytes()
            )
            .is_err()
        );
        assert!(
            alg.verify_signature(&[4, 1, 2], b"handshake transcript", der.as_bytes())
                .is_err()
        );
    }

    #[test]
    fn verifier_accepts_only_the_expected_certificate() {
        let expected = generate_server_identity().unwrap().cert_der;
        let other = generate_server_identity().unwrap().cert_der;
        let verifier = ExactClientCert {
            expected: expected.clone(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        let now = UnixTime::now();
        assert!(verifier.verify_client_cert(&expected, &[], now).is_ok());
        assert!(verifier.verify_client_cert(&other, &[], now).is_err());
        assert!(verifier.client_auth_mandatory());
        assert!(
            verifier
                .supported_verify_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
        );
    }
}
