//! The rig's own PKI and client configuration: a throw-away certificate authority generated with
//! rcgen when the cluster starts, a server certificate it signs for `127.0.0.1` and `localhost`
//! (so kubectl, client-go and kube-rs verify the API server exactly as they would a real one),
//! the rustls server configuration (HTTP/1.1 only through ALPN, like an API server behind a
//! proxy that does not speak h2), and the kubeconfig file written next to it with the CA as
//! base64 `certificate-authority-data` and a bearer token.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA and the server credentials of one simulated cluster.
pub(super) struct Pki {
    /// PEM of the CA certificate (what `certificate-authority-data` carries, base64-encoded).
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl Pki {
    pub fn generate() -> Pki {
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sim-cluster-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("generate the server key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .expect("sign the server certificate");

        let chain: Vec<CertificateDer<'static>> =
            vec![server_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate and key");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Pki {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(config),
        }
    }
}

/// Write a kubeconfig with one cluster, user and context, all named `sim`, the context's
/// namespace set to `namespace`.
pub(super) fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    token: &str,
    namespace: &str,
) -> std::io::Result<()> {
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{
            "name": "sim",
            "cluster": {
                "server": server,
                "certificate-authority-data": base64(ca_pem.as_bytes()),
            }
        }],
        "users": [{ "name": "sim", "user": { "token": token } }],
        "contexts": [{
            "name": "sim",
            "context": { "cluster": "sim", "user": "sim", "namespace": namespace }
        }],
        "current-context": "sim",
    });
    let text = serde_saphyr::to_string(&doc).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// Standard base64 with padding (RFC 4648), what kubeconfig `*-data` fields hold.
pub(super) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
