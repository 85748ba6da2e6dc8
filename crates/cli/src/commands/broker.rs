//! `mquictt broker`: turns the config file and flags into listeners and a running broker, and
//! runs it until SIGINT or SIGTERM. What the broker does is the broker library's business;
//! this file only assembles it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mquictt_broker::auth::{certificate_username, AuthFileError, CertificateField};
use mquictt_broker::quic::idle_timeout_for;
use mquictt_broker::{
    Broker, FileAuthenticator, FileAuthenticatorConfig, NoStorage, QuicServing, Storage,
};
use mquictt_store::{DurableStorage, OnCorrupt};
use mquictt_transport::{
    certs, ClientAuth, DevCertificates, ListenUrl, Listener, ListenerOptions, ServerTlsSettings,
    TlsIdentity, TlsVersions, TransportKind,
};
use tokio::sync::watch;

use crate::cli::BrokerArgs;
use crate::config::{
    CertificateUsernameName, ClientAuthName, ConfigError, FileConfig, ListenerSection,
    OnCorruptName, StorageName, TlsVersionsName, ZeroRttName, DEFAULT_DATA_DIR, DEFAULT_LISTENERS,
    DEFAULT_QUIC_IDLE_TIMEOUT, MAX_QUIC_THREADS,
};
use crate::metrics_http;

/// Prints a line on standard output for whoever watches the broker. A closed standard output
/// (a supervisor's log pipe gone, `| head`) must not end the broker, as `println!` would by
/// panicking, so a failed write is dropped.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("listener `{url}`: {message}")]
    Listener { url: String, message: String },
    #[error(
        "listener `{url}` binds the non-loopback address {ip} but no authentication is \
         configured; anyone who can reach it could connect. Set `password_file` (see `mquictt \
         passwd`) or `client_auth = \"required\"`, set `allow_anonymous = true` in the config \
         file if open access is intended, or bind 127.0.0.1"
    )]
    AnonymousOnNetwork { url: String, ip: IpAddr },
    #[error(transparent)]
    Auth(#[from] AuthFileError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("development certificate in {dir}: {source}")]
    DevCert {
        dir: PathBuf,
        source: certs::CertError,
    },
    #[error(transparent)]
    Store(#[from] mquictt_store::StoreError),
    #[error(transparent)]
    Broker(#[from] mquictt_broker::BrokerError),
    #[error("metrics endpoint {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A listener as resolved from the file or the command line.
#[derive(Debug)]
struct ListenerPlan {
    url: ListenUrl,
    section: ListenerSection,
    /// `quic_max_udp_payload` of the section, checked.
    quic_max_udp_payload: Option<u16>,
    /// `quic_socket_buffer` of the section, checked.
    quic_socket_buffer: Option<usize>,
    /// `quic_threads` of the section, checked.
    quic_threads: Option<usize>,
}

/// Runs the broker until a shutdown signal arrives.
pub async fn run(args: BrokerArgs) -> Result<(), StartError> {
    let shutdown_signals = ShutdownSignals::register();
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("<defaults>"));
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let broker_config = file.broker_config(&config_path)?;
    // Every connection is a file: under a soft limit of 1,024 the 1,000th client would be
    // refused whatever `max_connections` says.
    crate::open_files::raise_for(
        broker_config.max_connections as u64,
        "max_connections",
        broker_config.idle_without_descriptor != mquictt_broker::IdleWithoutDescriptor::Never,
    );
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let plans = listener_plans(&args, &file, &config_path)?;
    check_anonymous(
        &plans,
        file.allow_anonymous == Some(true),
        file.password_file.is_some(),
    )?;
    let authenticator = Arc::new(FileAuthenticator::new(FileAuthenticatorConfig {
        password_file: file.password_file.clone(),
        acl_file: file.acl_file.clone(),
        allow_anonymous: file.allow_anonymous,
    })?);
    if file.password_file.is_some() || file.acl_file.is_some() {
        authenticator.watch(AUTH_FILE_POLL);
        #[cfg(unix)]
        tokio::spawn(reload_on_sighup(authenticator.clone()));
    }
    let handshake_timeout = broker_config.connect_timeout;

    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let dev_certs = if plans
        .iter()
        .any(|p| p.url.kind.is_encrypted() && p.section.cert.is_none())
    {
        Some(dev_certificates(&data_dir)?)
    } else {
        None
    };

    let server_keep_alive = broker_config.server_keep_alive;
    let storage = open_storage(&file, &data_dir)?;
    let broker = Broker::new(broker_config, storage, authenticator)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_tasks = Vec::new();
    // `--threads` was applied when the runtime was built (`main.rs`).
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    for plan in &plans {
        let tls = server_tls(plan, dev_certs.as_ref(), &config_path)?;
        let serving = quic_serving(&plan.section, server_keep_alive);
        let mut options = ListenerOptions {
            // TLS, WebSocket and QUIC handshakes get the same bound as CONNECT.
            handshake_timeout,
            ..ListenerOptions::default()
        };
        if let Some(idle) = serving.idle_timeout {
            options.quic.idle_timeout = idle;
        }
        if let Some(streams) = plan.section.quic_max_streams {
            options.quic.max_bidi_streams = streams;
        }
        options.quic.mtu_discovery = plan.section.quic_mtu_discovery_enabled();
        if let Some(size) = plan.quic_max_udp_payload {
            options.quic.max_udp_payload = Some(size);
        }
        if let Some(bytes) = plan.quic_socket_buffer {
            options.quic.socket_buffer = bytes;
        }
        // A QUIC connection's tasks hand work to each other for every datagram batch; on
        // threads of their own they never cross cores (docs/quic.md, *Threads*).
        options.quic.threads = plan
            .quic_threads
            .or(args.quic_threads.map(usize::from))
            // `--threads` allows more worker threads than a listener may have.
            .unwrap_or(workers.min(MAX_QUIC_THREADS as usize));
        let quic_threads = options.quic.threads;
        let listener = Listener::bind_with_options(&plan.url, &tls, options)
            .await
            .map_err(|e| StartError::Listener {
                url: plan.section.url.clone(),
                message: format!("{e} (is another broker already using this port?)"),
            })?;
        say!("listening on {} ({})", plan.url, listener.local_addr());
        match quic_threads {
            _ if plan.url.kind != TransportKind::Quic => {}
            0 => say!("QUIC connections of {}: on the worker threads", plan.url),
            1 => say!("QUIC connections of {}: on a thread of their own", plan.url),
            n => say!(
                "QUIC connections of {}: on {n} threads of their own",
                plan.url
            ),
        }
        let certificate_field = plan.section.certificate_username.map(|name| match name {
            CertificateUsernameName::Cn => CertificateField::CommonName,
            CertificateUsernameName::San => CertificateField::SubjectAltName,
        });
        accept_tasks.push(tokio::spawn(accept_loop(
            listener,
            broker.clone(),
            serving,
            certificate_field,
            stop_rx.clone(),
        )));
    }
    if let Some(addr) = file.metrics.listen {
        let server = metrics_http::bind(addr)
            .await
            .map_err(|source| StartError::Metrics { addr, source })?;
        let bound = server.local_addr().unwrap_or(addr);
        say!("metrics on http://{bound}/metrics");
        tokio::spawn(metrics_http::serve(server, broker.clone(), stop_rx.clone()));
    }
    say!("worker threads: {workers}");

    shutdown_signals.wait().await;
    say!("shutting down");
    stop_tx.send_replace(true);
    for task in accept_tasks {
        let _ = task.await;
    }
    broker.shutdown().await;
    Ok(())
}

/// The store the config asks for: durable in the data directory unless `storage = "memory"`.
fn open_storage(file: &FileConfig, data_dir: &Path) -> Result<Arc<dyn Storage>, StartError> {
    if file.storage == Some(StorageName::Memory) {
        say!("storage: memory (nothing survives a restart)");
        // The router holds the live state; a memory store would only duplicate it.
        return Ok(Arc::new(NoStorage));
    }
    let on_corrupt = match file.on_corrupt_store {
        Some(OnCorruptName::Refuse) => OnCorrupt::Refuse,
        Some(OnCorruptName::MoveAside) | None => OnCorrupt::MoveAside,
    };
    let (storage, moved) = DurableStorage::open(data_dir, on_corrupt)?;
    if let Some(moved) = moved {
        eprintln!(
            "warning: the store in {} was damaged ({}); it was moved to {} and the broker starts \
             with an empty store",
            data_dir.display(),
            moved.reason,
            moved.to.display()
        );
    }
    say!("storage: durable in {}", storage.location().display());
    Ok(Arc::new(storage))
}

fn listener_plans(
    args: &BrokerArgs,
    file: &FileConfig,
    config_path: &Path,
) -> Result<Vec<ListenerPlan>, StartError> {
    let sections: Vec<ListenerSection> = if !args.listen.is_empty() {
        args.listen
            .iter()
            .map(|url| ListenerSection {
                url: url.clone(),
                ..ListenerSection::default()
            })
            .collect()
    } else if !file.listener.is_empty() {
        file.listener.clone()
    } else {
        DEFAULT_LISTENERS
            .iter()
            .map(|url| ListenerSection {
                url: (*url).to_string(),
                ..ListenerSection::default()
            })
            .collect()
    };
    sections
        .into_iter()
        .map(|section| {
            let url = ListenUrl::parse(&section.url).map_err(|e| StartError::Listener {
                url: section.url.clone(),
                message: format!(
                    "{e} (in {}; expected e.g. tcp://127.0.0.1:1883, ws://127.0.0.1:8083/mqtt, \
                     tls://0.0.0.0:8883, wss://0.0.0.0:8084/mqtt, quic://127.0.0.1:14567)",
                    config_path.display()
                ),
            })?;
            section.checked_quic_max_streams(config_path)?;
            Ok(ListenerPlan {
                url,
                quic_max_udp_payload: section.checked_quic_max_udp_payload(config_path)?,
                quic_socket_buffer: section.checked_quic_socket_buffer(config_path)?,
                quic_threads: section.checked_quic_threads(config_path)?,
                section,
            })
        })
        .collect()
}

/// How often the password and ACL files are checked for changes.
const AUTH_FILE_POLL: Duration = Duration::from_secs(2);

/// Anonymous access is allowed by default only where nobody else can reach the broker: a
/// listener on another address needs passwords or required client certificates, unless open
/// access is asked for.
fn check_anonymous(
    plans: &[ListenerPlan],
    allow_anonymous: bool,
    passwords: bool,
) -> Result<(), StartError> {
    if allow_anonymous || passwords {
        return Ok(());
    }
    for plan in plans {
        let ip = plan.url.addr.ip();
        let certificates_required = plan.url.kind.is_encrypted()
            && plan.section.client_auth == Some(ClientAuthName::Required);
        if !ip.is_loopback() && !certificates_required {
            return Err(StartError::AnonymousOnNetwork {
                url: plan.section.url.clone(),
                ip,
            });
        }
    }
    Ok(())
}

fn dev_certificates(data_dir: &Path) -> Result<DevCertificates, StartError> {
    let dir = data_dir.join("certs");
    let certs = DevCertificates::load_or_create(&dir).map_err(|source| StartError::DevCert {
        dir: dir.clone(),
        source,
    })?;
    let verb = if certs.created { "created" } else { "using" };
    say!(
        "{verb} development certificate {} (SHA-256 {}); clients trust it with --cafile {}",
        certs.server_cert.display(),
        certs.server_fingerprint,
        certs.ca_cert.display()
    );
    Ok(certs)
}

fn server_tls(
    plan: &ListenerPlan,
    dev: Option<&DevCertificates>,
    config_path: &Path,
) -> Result<ServerTlsSettings, StartError> {
    let listener_error = |message: String| StartError::Listener {
        url: plan.section.url.clone(),
        message: format!("{message} (in {})", config_path.display()),
    };
    if !plan.url.kind.is_encrypted() {
        return Ok(ServerTlsSettings::default());
    }
    let section = &plan.section;
    let identity = match (&section.cert, &section.key, dev) {
        (Some(cert), Some(key), _) => {
            TlsIdentity::from_pem_files(cert, key).map_err(|e| listener_error(e.to_string()))?
        }
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(listener_error(
                "`cert` and `key` must be given together".to_string(),
            ))
        }
        (None, None, Some(dev)) => dev
            .server_identity()
            .map_err(|e| listener_error(e.to_string()))?,
        (None, None, None) => {
            return Err(listener_error("no certificate configured".to_string()));
        }
    };
    let client_cas = match &section.client_ca {
        Some(path) => certs::load_cert_chain(path).map_err(|e| listener_error(e.to_string()))?,
        None => Vec::new(),
    };
    let client_auth =
        match section.client_auth.unwrap_or(ClientAuthName::None) {
            ClientAuthName::None => ClientAuth::None,
            mode if client_cas.is_empty() => {
                return Err(listener_error(format!(
                "`client_auth = \"{}\"` needs `client_ca`, the CA file client certificates must \
                 chain to",
                if mode == ClientAuthName::Optional { "optional" } else { "required" }
            )))
            }
            ClientAuthName::Optional => ClientAuth::Optional(client_cas),
            ClientAuthName::Required => ClientAuth::Required(client_cas),
        };
    let versions = match section.tls_versions.unwrap_or(TlsVersionsName::Both) {
        TlsVersionsName::Both => TlsVersions::Tls12AndTls13,
        TlsVersionsName::Tls12 => TlsVersions::OnlyTls12,
        TlsVersionsName::Tls13 => TlsVersions::OnlyTls13,
    };
    let mut settings = ServerTlsSettings::new(identity)
        .with_client_auth(client_auth)
        .with_quic_zero_rtt(zero_rtt_policy(section).accepts_zero_rtt());
    settings.versions = versions;
    Ok(settings)
}

/// The 0-RTT replay policy of a listener section.
fn zero_rtt_policy(section: &ListenerSection) -> mquictt_broker::EarlyDataPolicy {
    section
        .quic_zero_rtt
        .map(ZeroRttName::policy)
        .unwrap_or_default()
}

/// How a listener serves QUIC connections: its 0-RTT policy, and an idle timeout of at least
/// one and a half Server Keep Alives. Other transports ignore it.
fn quic_serving(
    section: &ListenerSection,
    server_keep_alive: Option<std::time::Duration>,
) -> QuicServing {
    let configured = section
        .quic_idle_timeout
        .unwrap_or(DEFAULT_QUIC_IDLE_TIMEOUT);
    QuicServing {
        early_data: zero_rtt_policy(section),
        idle_timeout: Some(idle_timeout_for(configured, server_keep_alive)),
    }
}

#[cfg(unix)]
async fn reload_on_sighup(authenticator: Arc<FileAuthenticator>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; authentication files reload only on change");
        return;
    };
    while hangup.recv().await.is_some() {
        match authenticator.reload() {
            Ok(()) => say!("reloaded authentication files"),
            Err(e) => {
                tracing::warn!(error = %e, "reload failed; keeping the previous rules");
            }
        }
    }
}

async fn accept_loop(
    mut listener: Listener,
    broker: Broker,
    serving: QuicServing,
    certificate_field: Option<CertificateField>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let accepted = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(url = %listener.url(), error = %e, "listener stopped");
                        return;
                    }
                };
                let certificate_username = certificate_field.and_then(|field| {
                    let der = accepted.peer.client_cert_der.as_ref()?;
                    certificate_username(der, field)
                });
                // QUIC connections are served with their data streams (multi-stream mode).
                // The task is not awaited: a connection ends on its own or with the broker.
                drop(broker.spawn_accepted(accepted, certificate_username, &serving));
            }
            _ = stop.changed() => return,
        }
    }
}

/// SIGINT and SIGTERM, registered before the listeners announce themselves, so a signal sent
/// as soon as the broker says it is listening shuts it down cleanly instead of killing it.
struct ShutdownSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: Option<&mut tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = next(self.terminate.as_mut()) => {}
                () = next(self.interrupt.as_mut()) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
