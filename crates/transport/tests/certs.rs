//! Certificates: development certificates are created once and re-used, partial sets are not
//! overwritten, PEM loading errors name the file, private keys are private.

use std::fs;

use mquictt_transport::certs::{load_cert_chain, load_private_key, DEV_SERVER_NAMES};
use mquictt_transport::{CertError, DevCertificates};

#[test]
fn dev_certificates_are_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = dir.path().join("certs");
    let first = DevCertificates::load_or_create(&certs_dir).unwrap();
    assert!(first.created);
    let server_pem = fs::read(&first.server_cert).unwrap();
    let ca_pem = fs::read(&first.ca_cert).unwrap();

    let second = DevCertificates::load_or_create(&certs_dir).unwrap();
    assert!(!second.created);
    assert_eq!(second.server_fingerprint, first.server_fingerprint);
    assert_eq!(fs::read(&second.server_cert).unwrap(), server_pem);
    assert_eq!(fs::read(&second.ca_cert).unwrap(), ca_pem);

    // 32 bytes as colon-separated upper-case hex pairs.
    assert_eq!(first.server_fingerprint.len(), 32 * 3 - 1);
    assert!(first
        .server_fingerprint
        .split(':')
        .all(|pair| pair.len() == 2 && pair.chars().all(|c| c.is_ascii_hexdigit())));
    assert_eq!(DEV_SERVER_NAMES, ["localhost", "127.0.0.1", "::1"]);
}

#[test]
fn another_directory_gets_another_ca() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = DevCertificates::load_or_create(a.path()).unwrap();
    let second = DevCertificates::load_or_create(b.path()).unwrap();
    assert_ne!(first.server_fingerprint, second.server_fingerprint);
    assert_ne!(
        fs::read(&first.ca_cert).unwrap(),
        fs::read(&second.ca_cert).unwrap()
    );
}

#[test]
fn a_partial_set_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCertificates::load_or_create(dir.path()).unwrap();
    fs::remove_file(&certs.server_key).unwrap();
    let before = fs::read(&certs.server_cert).unwrap();
    match DevCertificates::load_or_create(dir.path()) {
        Err(CertError::IncompleteDevCertificates { missing, .. }) => {
            assert_eq!(missing, certs.server_key)
        }
        other => panic!("expected IncompleteDevCertificates, got {other:?}"),
    }
    assert_eq!(fs::read(&certs.server_cert).unwrap(), before);
}

#[cfg(unix)]
#[test]
fn private_keys_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCertificates::load_or_create(dir.path()).unwrap();
    for key in [&certs.ca_key, &certs.server_key] {
        let mode = fs::metadata(key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
}

#[test]
fn loading_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = load_cert_chain(&missing).unwrap_err();
    assert!(matches!(err, CertError::Read { .. }));
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let empty = dir.path().join("empty.pem");
    fs::write(&empty, "not a certificate\n").unwrap();
    let err = load_cert_chain(&empty).unwrap_err();
    assert!(
        matches!(err, CertError::NoCertificate(ref p) if p == &empty),
        "{err}"
    );
    assert!(err.to_string().contains("empty.pem"), "{err}");
    let err = load_private_key(&empty).unwrap_err();
    assert!(
        matches!(err, CertError::NoPrivateKey(ref p) if p == &empty),
        "{err}"
    );

    let broken = dir.path().join("broken.pem");
    fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = load_cert_chain(&broken).unwrap_err();
    assert!(matches!(err, CertError::Pem { .. }), "{err}");
    assert!(err.to_string().contains("broken.pem"), "{err}");

    // A key file is not a certificate file and the other way round.
    let certs = DevCertificates::load_or_create(&dir.path().join("dev")).unwrap();
    assert!(matches!(
        load_cert_chain(&certs.server_key),
        Err(CertError::NoCertificate(_))
    ));
    assert!(matches!(
        load_private_key(&certs.server_cert),
        Err(CertError::NoPrivateKey(_))
    ));
    assert_eq!(load_cert_chain(&certs.server_cert).unwrap().len(), 1);
    load_private_key(&certs.server_key).unwrap();
}

#[test]
fn issued_certificates_round_trip_through_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let certs = DevCertificates::load_or_create(dir.path()).unwrap();
    let ca = certs.authority().unwrap();
    let client = ca.issue_client("sensor-7").unwrap();
    let cert_path = dir.path().join("client.pem");
    let key_path = dir.path().join("client.key");
    client.write_pem(&cert_path, &key_path).unwrap();
    let identity = mquictt_transport::TlsIdentity::from_pem_files(&cert_path, &key_path).unwrap();
    assert_eq!(identity.cert_chain, vec![client.cert_der.clone()]);
    assert_eq!(ca.cert_der(), &certs.ca_certificates().unwrap()[0]);
}
