//! The consent link of a Connection: `<public-url>/connect/<namespace>/<name>/<signature>`.
//!
//! The signature, an HMAC under a key derived from the state key over the Connection's
//! namespace, name and uid, makes the link a capability: only who can read the Connection's
//! status (or is sent there by `POST /connect`) can start a consent that binds a provider
//! account to it. It holds no expiry, so the status it sits in is not rewritten on every
//! reconcile; it changes when the Connection is re-created (new uid) or the key is replaced.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use kube::ResourceExt;
use sha2::Sha256;

use super::state::StateKey;
use crate::api::Connection;

/// The link a person follows to authorize `conn`, when the operator has a public URL and a
/// key: without a key no link could be verified, and no link is better than one that fails.
pub fn connect_link(
    public_url: Option<&str>,
    key: Option<&StateKey>,
    conn: &Connection,
) -> Option<String> {
    let base = public_url?.trim_end_matches('/');
    let key = key?;
    let (namespace, name, uid) = (conn.namespace()?, conn.name_any(), conn.uid()?);
    let signature = signature(key, &namespace, &name, &uid);
    Some(format!("{base}/connect/{namespace}/{name}/{signature}"))
}

fn signature(key: &StateKey, namespace: &str, name: &str, uid: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, namespace, name, uid).finalize().into_bytes())
}

fn mac(key: &StateKey, namespace: &str, name: &str, uid: &str) -> Hmac<Sha256> {
    key.link_mac(&[namespace, name, uid])
}

/// Whether `given` is the link signature of this Connection; compared in constant time.
pub fn signed(key: &StateKey, namespace: &str, name: &str, uid: &str, given: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(given)
        .is_ok_and(|given| mac(key, namespace, name, uid).verify_slice(&given).is_ok())
}

#[cfg(test)]
mod tests {
    use super::{StateKey, signature, signed};

    #[test]
    fn a_link_signature_is_stable_and_fits_only_its_connection() {
        let key = StateKey::new(vec![7; 32]).unwrap();
        let sig = signature(&key, "acme", "acme-hubspot", "uid-1");
        assert_eq!(sig, signature(&key, "acme", "acme-hubspot", "uid-1"));
        assert_eq!(sig.len(), 43, "URL-safe, no padding: {sig}");
        assert!(signed(&key, "acme", "acme-hubspot", "uid-1", &sig));
        for (ns, name, uid) in [
            ("acme", "globex-hubspot", "uid-1"),
            ("globex", "acme-hubspot", "uid-1"),
            ("acme", "acme-hubspot", "uid-2"),
            // The length prefixes keep parts from sliding into each other.
            ("acm", "eacme-hubspot", "uid-1"),
        ] {
            assert!(!signed(&key, ns, name, uid, &sig), "{ns}/{name} {uid}");
        }
        let other = StateKey::new(vec![8; 32]).unwrap();
        assert!(!signed(&other, "acme", "acme-hubspot", "uid-1", &sig));
        for bad in ["", "<script>", &sig[..42], &format!("{sig}A")] {
            assert!(!signed(&key, "acme", "acme-hubspot", "uid-1", bad), "{bad}");
        }
        // Neither a state signature nor a PKCE verifier of the same key.
        assert_ne!(sig, key.pkce_verifier("acme"));
    }
}
