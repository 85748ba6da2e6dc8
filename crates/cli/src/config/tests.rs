//! Reading `mquictt.toml`: every key, defaults, and errors that name the key and the file.

use super::*;

fn parse(text: &str) -> Result<FileConfig, ConfigError> {
    FileConfig::parse(text, Path::new("test.toml"))
}

#[test]
fn empty_file_gives_library_defaults() {
    let config = parse("").unwrap();
    assert_eq!(
        config.broker_config(Path::new("test.toml")).unwrap(),
        BrokerConfig::default()
    );
}

#[test]
fn values_are_applied() {
    let config = parse(
        "[limits]\nconnect_timeout = \"3s\"\nmax_queued_messages = 5\nmax_queued_bytes = 4096\n\
         [mqtt]\nmaximum_qos = 1\n[sys]\ninterval = \"0s\"\n",
    )
    .unwrap()
    .broker_config(Path::new("test.toml"))
    .unwrap();
    assert_eq!(config.connect_timeout, Duration::from_secs(3));
    assert_eq!(config.max_queued_messages, 5);
    assert_eq!(config.max_queued_bytes, 4096);
    assert_eq!(config.maximum_qos, QoS::AtLeastOnce);
    assert_eq!(config.sys_interval, None);
}

#[test]
fn unknown_key_is_named_with_the_file() {
    let err = parse("[limits]\nmax_conections = 5\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml"), "{err}");
    assert!(err.contains("max_conections"), "{err}");
}

#[test]
fn example_file_parses_to_the_defaults() {
    let text = include_str!("../../../../examples/mquictt.toml");
    let config = parse(text).unwrap();
    assert_eq!(
        config.broker_config(Path::new("mquictt.toml")).unwrap(),
        BrokerConfig::default()
    );
    assert_eq!(config.listener.len(), DEFAULT_LISTENERS.len());
    for (section, url) in config.listener.iter().zip(DEFAULT_LISTENERS) {
        assert_eq!(section.url, *url);
        // QUIC settings shown in the example are the defaults.
        if let Some(policy) = section.quic_zero_rtt {
            assert_eq!(policy.policy(), EarlyDataPolicy::default());
        }
        if let Some(idle) = section.quic_idle_timeout {
            assert_eq!(idle, DEFAULT_QUIC_IDLE_TIMEOUT);
        }
        if let Some(streams) = section.quic_max_streams {
            assert_eq!(streams, mquictt_transport::DEFAULT_MAX_BIDI_STREAMS);
        }
        if let Some(discovery) = section.quic_mtu_discovery {
            assert_eq!(
                discovery,
                mquictt_transport::QuicServerOptions::default().mtu_discovery
            );
        }
        assert_eq!(
            section
                .checked_quic_max_udp_payload(Path::new("mquictt.toml"))
                .unwrap(),
            mquictt_transport::QuicServerOptions::default().max_udp_payload
        );
        if let Some(bytes) = section
            .checked_quic_socket_buffer(Path::new("mquictt.toml"))
            .unwrap()
        {
            assert_eq!(
                bytes,
                mquictt_transport::QuicServerOptions::default().socket_buffer
            );
        }
    }
}

#[test]
fn quic_settings_parse() {
    let config = parse(
        "[[listener]]\nurl = \"quic://127.0.0.1:14567\"\nquic_zero_rtt = \"connect-only\"\n\
         quic_idle_timeout = \"2m\"\n",
    )
    .unwrap();
    let l = &config.listener[0];
    assert_eq!(
        l.quic_zero_rtt.map(ZeroRttName::policy),
        Some(EarlyDataPolicy::ConnectOnly)
    );
    assert_eq!(l.quic_idle_timeout, Some(Duration::from_secs(120)));
    assert!(parse("[[listener]]\nurl = \"quic://x\"\nquic_zero_rtt = true\n").is_err());
}

#[test]
fn quic_stream_limit_and_mtu_discovery_parse() {
    let config = parse(
        "[[listener]]\nurl = \"quic://127.0.0.1:14567\"\nquic_max_streams = 3\n\
         quic_mtu_discovery = false\n",
    )
    .unwrap();
    let l = &config.listener[0];
    assert_eq!(l.quic_max_streams, Some(3));
    assert_eq!(l.quic_mtu_discovery, Some(false));
    assert_eq!(
        l.checked_quic_max_streams(Path::new("test.toml")).unwrap(),
        Some(3)
    );
    let absent = parse("[[listener]]\nurl = \"quic://x\"\n").unwrap();
    assert_eq!(absent.listener[0].quic_mtu_discovery, None);
    assert_eq!(absent.listener[0].quic_max_streams, None);
}

#[test]
fn mtu_discovery_is_off_unless_asked_for_or_given_a_ceiling() {
    let enabled = |extra: &str| {
        parse(&format!("[[listener]]\nurl = \"quic://x\"\n{extra}"))
            .unwrap()
            .listener[0]
            .quic_mtu_discovery_enabled()
    };
    assert!(!enabled(""));
    assert!(enabled("quic_mtu_discovery = true\n"));
    assert!(enabled("quic_max_udp_payload = 6500\n"));
    assert!(!enabled(
        "quic_max_udp_payload = 6500\nquic_mtu_discovery = false\n"
    ));
    assert!(!mquictt_transport::QuicServerOptions::default().mtu_discovery);
}

#[test]
fn wrong_quic_values_name_the_key_and_the_file() {
    let err = parse("[[listener]]\nurl = \"quic://x\"\nquic_mtu_discovery = \"off\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml"), "{err}");
    assert!(err.contains("quic_mtu_discovery"), "{err}");
    let err = parse("[[listener]]\nurl = \"quic://x\"\nquic_max_streams = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.toml") && err.contains("quic_max_streams"),
        "{err}"
    );
    for bad in [0, MAX_QUIC_STREAMS + 1] {
        let config = parse(&format!(
            "[[listener]]\nurl = \"quic://x\"\nquic_max_streams = {bad}\n"
        ))
        .unwrap();
        let err = config.listener[0]
            .checked_quic_max_streams(Path::new("test.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("listener.quic_max_streams"), "{err}");
    }
}

#[test]
fn quic_datagram_settings_parse() {
    let config = parse(
        "[[listener]]\nurl = \"quic://127.0.0.1:14567\"\nquic_max_udp_payload = 6500\n\
         quic_socket_buffer = 8388608\n",
    )
    .unwrap();
    let l = &config.listener[0];
    let path = Path::new("test.toml");
    assert_eq!(l.checked_quic_max_udp_payload(path).unwrap(), Some(6500));
    assert_eq!(l.checked_quic_socket_buffer(path).unwrap(), Some(8 << 20));
    // The ends of both ranges are accepted.
    for size in [1200, 65527] {
        let config = parse(&format!(
            "[[listener]]\nurl = \"quic://x\"\nquic_max_udp_payload = {size}\n"
        ))
        .unwrap();
        assert_eq!(
            config.listener[0]
                .checked_quic_max_udp_payload(path)
                .unwrap(),
            Some(size)
        );
    }
    let (smallest, largest) = quic_datagrams::SOCKET_BUFFER_RANGE.into_inner();
    for bytes in [smallest, largest] {
        let config = parse(&format!(
            "[[listener]]\nurl = \"quic://x\"\nquic_socket_buffer = {bytes}\n"
        ))
        .unwrap();
        let granted = config.listener[0].checked_quic_socket_buffer(path).unwrap();
        assert_eq!(granted, usize::try_from(bytes).ok());
    }
    let absent = parse("[[listener]]\nurl = \"quic://x\"\n").unwrap();
    assert_eq!(
        absent.listener[0]
            .checked_quic_max_udp_payload(path)
            .unwrap(),
        None
    );
    assert_eq!(
        absent.listener[0].checked_quic_socket_buffer(path).unwrap(),
        None
    );
}

#[test]
fn wrong_quic_datagram_values_name_the_key_and_the_file() {
    let path = Path::new("test.toml");
    for bad in [0, 1199, 65528, 100_000] {
        let config = parse(&format!(
            "[[listener]]\nurl = \"quic://x\"\nquic_max_udp_payload = {bad}\n"
        ))
        .unwrap();
        let err = config.listener[0]
            .checked_quic_max_udp_payload(path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("listener.quic_max_udp_payload"), "{err}");
        assert!(err.contains("1200..=65527"), "{err}");
    }
    for bad in [0u64, 1024, (256 << 20) + 1, 1 << 40] {
        let config = parse(&format!(
            "[[listener]]\nurl = \"quic://x\"\nquic_socket_buffer = {bad}\n"
        ))
        .unwrap();
        let err = config.listener[0]
            .checked_quic_socket_buffer(path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("listener.quic_socket_buffer"), "{err}");
    }
    // Values of the wrong type fail while parsing, naming the key.
    for text in [
        "quic_max_udp_payload = -1",
        "quic_max_udp_payload = \"6500\"",
        "quic_socket_buffer = \"4MiB\"",
        "quic_socket_buffer = -4",
    ] {
        let err = parse(&format!("[[listener]]\nurl = \"quic://x\"\n{text}\n"))
            .unwrap_err()
            .to_string();
        let key = text.split(' ').next().unwrap_or_default();
        assert!(err.contains("test.toml") && err.contains(key), "{err}");
    }
}

#[test]
fn listener_tables_parse() {
    let config = parse(
        "[[listener]]\nurl = \"tls://0.0.0.0:8883\"\ncert = \"s.pem\"\nkey = \"s.key\"\n\
         client_auth = \"required\"\nclient_ca = \"ca.pem\"\ntls_versions = \"1.3\"\n",
    )
    .unwrap();
    let l = &config.listener[0];
    assert_eq!(l.client_auth, Some(ClientAuthName::Required));
    assert_eq!(l.tls_versions, Some(TlsVersionsName::Tls13));
    assert!(parse("[[listener]]\nurl = \"tcp://x\"\nport = 1\n").is_err());
}

#[test]
fn security_keys_are_applied() {
    let file = parse(
        "password_file = \"passwd\"\nacl_file = \"acl\"\n\
         [[listener]]\nurl = \"tls://127.0.0.1:8883\"\ncertificate_username = \"cn\"\n\
         [limits]\nmax_pending_connections = 5\nconnection_rate = 0\n\
         publish_rate = 10\npublish_burst = 20\npublish_overload = \"disconnect\"\n\
         max_topic_levels = 8\nmax_subscriptions_per_client = 3\nmax_inflight = 4\n",
    )
    .unwrap();
    assert_eq!(file.password_file.as_deref(), Some(Path::new("passwd")));
    assert_eq!(file.acl_file.as_deref(), Some(Path::new("acl")));
    assert_eq!(
        file.listener[0].certificate_username,
        Some(CertificateUsernameName::Cn)
    );
    let config = file.broker_config(Path::new("test.toml")).unwrap();
    assert_eq!(config.max_pending_connections, 5);
    assert_eq!(config.connection_rate, None);
    assert_eq!(
        config.publish_rate,
        Some(RateLimit {
            per_second: 10,
            burst: 20
        })
    );
    assert_eq!(config.publish_overload, PublishOverload::Disconnect);
    assert_eq!(config.max_topic_levels, 8);
    assert_eq!(config.max_subscriptions_per_client, 3);
    assert_eq!(config.max_inflight, 4);
    let err = parse("[limits]\npublish_burst = 0\n")
        .unwrap()
        .broker_config(Path::new("test.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.publish_burst"), "{err}");
}

#[test]
fn bad_value_is_named() {
    let err = parse("[limits]\nconnect_timeout = \"soon\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("connect_timeout"), "{err}");
    let err = parse("[mqtt]\nmaximum_qos = 3\n")
        .unwrap()
        .broker_config(Path::new("test.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mqtt.maximum_qos") && err.contains("test.toml"),
        "{err}"
    );
}

#[test]
fn quic_threads_parse_within_their_bounds() {
    let threads = |value: &str| {
        parse(&format!(
            "[[listener]]\nurl = \"quic://x\"\nquic_threads = {value}\n"
        ))
        .unwrap()
        .listener[0]
            .checked_quic_threads(Path::new("test.toml"))
    };
    assert_eq!(threads("0").unwrap(), Some(0));
    assert_eq!(threads("4").unwrap(), Some(4));
    assert_eq!(
        threads(&MAX_QUIC_THREADS.to_string()).unwrap(),
        Some(MAX_QUIC_THREADS as usize)
    );
    let err = threads(&(MAX_QUIC_THREADS + 1).to_string())
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml"), "{err}");
    assert!(err.contains("listener.quic_threads"), "{err}");
    let absent = parse("[[listener]]\nurl = \"quic://x\"\n").unwrap();
    assert_eq!(
        absent.listener[0]
            .checked_quic_threads(Path::new("test.toml"))
            .unwrap(),
        None
    );
    let err = parse("[[listener]]\nurl = \"quic://x\"\nquic_threads = -1\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.toml") && err.contains("quic_threads"),
        "{err}"
    );
}

#[test]
fn idle_without_descriptor_is_read_and_a_wrong_value_names_the_key() {
    for (text, expected) in [
        ("auto", IdleWithoutDescriptor::Auto),
        ("always", IdleWithoutDescriptor::Always),
        ("never", IdleWithoutDescriptor::Never),
    ] {
        let config = parse(&format!("[limits]\nidle_without_descriptor = \"{text}\"\n"))
            .unwrap()
            .broker_config(Path::new("test.toml"))
            .unwrap();
        assert_eq!(config.idle_without_descriptor, expected);
    }
    let err = parse("[limits]\nidle_without_descriptor = \"sometimes\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.toml"), "{err}");
    assert!(err.contains("idle_without_descriptor"), "{err}");
    assert!(err.contains("always"), "the error lists the values: {err}");
}
