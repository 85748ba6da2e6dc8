//! `mquictt sub`: subscribes to topic filters and prints every message it receives, one per
//! line (the payload, or the topic and the payload with `-v`), until `-C` messages arrived or
//! the user interrupts it. Reconnects and renews its subscriptions if the broker goes away.

use std::io::Write;
use std::time::Duration;

use mquictt_client::{Client, ClientError, Message, QoS, ReconnectPolicy, Subscription};

use super::publish::{parse_qos, ClientCommandError, ConnectionArgs};

/// `mquictt sub`
#[derive(Debug, clap::Args)]
#[command(disable_version_flag = true)]
pub struct SubArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Topic filter to subscribe to; repeat for more (`-t 'sensors/#' -t alerts`).
    #[arg(short = 't', long = "topic", value_name = "FILTER", required = true)]
    pub filters: Vec<String>,

    /// Maximum quality of service of the subscriptions: 0, 1 or 2.
    #[arg(short = 'q', long = "qos", value_name = "QOS", default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,

    /// Exit after this many messages.
    #[arg(short = 'C', long = "count", value_name = "COUNT")]
    pub count: Option<u64>,

    /// Print the topic before each payload.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Keep the session on the broker after disconnecting (Clean Start 0; with MQTT 5 a
    /// Session Expiry of one day): messages published meanwhile wait for the next run.
    /// Needs -i.
    #[arg(short = 'c', long = "disable-clean-session", requires = "client_id")]
    pub persistent: bool,

    /// Do not reconnect when the connection is lost.
    #[arg(long)]
    pub no_reconnect: bool,
}

/// Runs `mquictt sub`.
pub async fn run(args: SubArgs) -> Result<(), ClientCommandError> {
    if args.persistent && args.connection.client_id.is_empty() {
        return Err(ClientCommandError::Usage(
            "-c keeps a session on the broker, which needs a client identifier: add -i ID".into(),
        ));
    }
    let subscription = Subscription::to_all(&args.filters, args.qos)?;
    let mut options = args.connection.options()?;
    if args.persistent {
        options = options.clean_start(false);
        if args.connection.version.is_v5() {
            options = options.session_expiry(Duration::from_secs(24 * 60 * 60));
        }
    }
    if args.no_reconnect {
        options = options.reconnect(ReconnectPolicy::disabled());
    }
    let (client, mut messages) = Client::connect(options).await?;
    let granted = client.subscribe(subscription).await?;
    for (filter, code) in args.filters.iter().zip(&granted.reason_codes) {
        if code.is_error() {
            let _ = client.disconnect().await;
            return Err(ClientCommandError::SubscribeRefused {
                filter: filter.clone(),
                reason_code: *code,
            });
        }
    }

    let mut received = 0u64;
    let outcome = loop {
        if args.count.is_some_and(|count| received >= count) {
            break Ok(());
        }
        tokio::select! {
            message = messages.recv() => match message {
                Some(message) => {
                    print_message(&message, args.verbose)?;
                    received += 1;
                }
                None => break stopped(&client),
            },
            _ = tokio::signal::ctrl_c() => break Ok(()),
        }
    };
    client.disconnect().await?;
    outcome
}

/// Why the message stream ended: the client gave up reconnecting.
fn stopped(client: &Client) -> Result<(), ClientCommandError> {
    match client.status() {
        mquictt_client::ConnectionStatus::Closed(Some(cause)) => {
            Err(ClientError::ConnectionLost(cause).into())
        }
        _ => Ok(()),
    }
}

fn print_message(message: &Message, verbose: bool) -> Result<(), ClientCommandError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = (|| {
        if verbose {
            write!(out, "{} ", message.topic)?;
        }
        out.write_all(&message.payload)?;
        out.write_all(b"\n")?;
        // Line by line, so that a pipe sees each message as it arrives.
        out.flush()
    })();
    result.map_err(ClientCommandError::Write)
}
