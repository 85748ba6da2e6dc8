//! `mquictt cert` as a deployment uses it: a CA, a server certificate for the broker's address
//! and a client certificate, then a broker whose TLS listener requires client certificates
//! issued by that CA, and `mquictt pub`/`sub` that get in with one and are refused without.

mod common;

use common::{assert_success, mquictt, BrokerProcess};

#[test]
fn certificates_from_mquictt_cert_secure_a_mutual_tls_listener() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path();
    assert_success(&mquictt(&["cert", "ca", "--out", "pki"], pki), "cert ca");
    assert_success(
        &mquictt(
            &[
                "cert",
                "server",
                "--ca",
                "pki",
                "--name",
                "127.0.0.1",
                "--out",
                "pki",
            ],
            pki,
        ),
        "cert server",
    );
    assert_success(
        &mquictt(
            &[
                "cert", "client", "--ca", "pki", "--name", "sensor-7", "--out", "pki",
            ],
            pki,
        ),
        "cert client",
    );
    for file in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "sensor-7.pem",
        "sensor-7.key",
    ] {
        assert!(
            pki.join("pki").join(file).exists(),
            "{file} was not written"
        );
    }
    // A second CA in the same place would silently orphan every certificate it issued.
    let again = mquictt(&["cert", "ca", "--out", "pki"], pki);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let p = |file: &str| pki.join("pki").join(file).to_string_lossy().into_owned();
    let config = pki.join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[[listener]]\nurl = \"tls://127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n\
             client_auth = \"required\"\nclient_ca = {:?}\n",
            p("server.pem"),
            p("server.key"),
            p("ca.pem"),
        ),
    )
    .unwrap();
    let broker = BrokerProcess::start_with(&["--config", config.to_str().unwrap()], 1);
    let url = format!("mqtts://127.0.0.1:{}", broker.port(0));
    let (ca, cert, key) = (p("ca.pem"), p("sensor-7.pem"), p("sensor-7.key"));

    let with_cert = mquictt(
        &[
            "pub",
            "--url",
            &url,
            "--cafile",
            &ca,
            "--cert",
            &cert,
            "--key",
            &key,
            "-t",
            "mtls/reading",
            "-m",
            "ok",
            "-q",
            "1",
            "-r",
        ],
        pki,
    );
    assert_success(&with_cert, "pub with a client certificate");
    let sub = mquictt(
        &[
            "sub", "--url", &url, "--cafile", &ca, "--cert", &cert, "--key", &key, "-t", "mtls/#",
            "-C", "1", "-v",
        ],
        pki,
    );
    assert_success(&sub, "sub with a client certificate");
    assert_eq!(
        String::from_utf8_lossy(&sub.stdout).trim(),
        "mtls/reading ok"
    );

    let without_cert = mquictt(
        &[
            "pub", "--url", &url, "--cafile", &ca, "-t", "mtls/x", "-m", "no",
        ],
        pki,
    );
    assert!(
        !without_cert.status.success(),
        "a client without a certificate got in"
    );
}

#[test]
fn a_client_certificate_needs_a_ca_first() {
    let dir = tempfile::tempdir().unwrap();
    let output = mquictt(
        &["cert", "client", "--ca", "nowhere", "--name", "x"],
        dir.path(),
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("mquictt cert ca"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
