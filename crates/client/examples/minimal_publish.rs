//! The smallest useful device program on this client: publishes one message at QoS 1 over the
//! URL's transport, waits for the broker's acknowledgement and disconnects, on a
//! single-threaded runtime, without argument parser or log output. It is the floor against
//! which the `mquictt` client binary's size is judged (docs/benchmarks.md, "Footprint"):
//!
//! ```text
//! cargo build -p mquictt-client --example minimal_publish --profile release-small \
//!     --no-default-features --features quic
//! minimal_publish quic://127.0.0.1 sensors/1 21.5 mquictt-data/certs/ca.pem
//! ```

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;

use mquictt_client::{Client, ClientOptions, ClientTlsSettings, Message, QoS, ReconnectPolicy};

const USAGE: &str = "usage: minimal_publish URL TOPIC MESSAGE [CA_FILE]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, topic, payload, rest @ ..] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let ca_file = match rest {
        [] => None,
        [ca_file] => Some(Path::new(ca_file)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Box::<dyn Error>::from)
        .and_then(|runtime| runtime.block_on(publish(url, topic, payload, ca_file)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("minimal_publish: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn publish(
    url: &str,
    topic: &str,
    payload: &str,
    ca_file: Option<&Path>,
) -> Result<(), Box<dyn Error>> {
    // One attempt: a device program would retry on its own schedule (its next wake-up).
    let mut options = ClientOptions::new(url)?.reconnect(ReconnectPolicy::disabled());
    if let Some(ca_file) = ca_file {
        options = options.tls(ClientTlsSettings::trusting_ca_file(ca_file)?);
    }
    let (client, _messages) = Client::connect(options).await?;
    let message = Message::new(topic, payload.to_owned())?.qos(QoS::AtLeastOnce);
    let outcome = client.publish(message)?.await?;
    println!("{}", outcome.reason_code);
    client.disconnect().await?;
    Ok(())
}
