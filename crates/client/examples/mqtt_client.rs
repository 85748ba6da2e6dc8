//! A client-only MQTT program, the size of what a device would ship: connects to a broker
//! over any transport (URL), subscribes to a filter and prints each message's topic and
//! payload; with `--publish TOPIC MESSAGE` it publishes once (QoS 1) and exits. Its binary
//! contains the client, protocol and transport crates and never the broker's code, which
//! the lab's footprint experiment measures under `--profile release-small`.
//!
//! ```text
//! cargo run -p mquictt-client --example mqtt_client -- quic://127.0.0.1 --cafile ca.pem --subscribe 'sensors/#'
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use mquictt_client::{Client, ClientOptions, ClientTlsSettings, Message, QoS, Subscription};

#[derive(Debug)]
enum Action {
    Subscribe(String),
    Publish(String, String),
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mqtt_client: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mqtt_client: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or(
        "usage: mqtt_client URL [--cafile FILE] (--subscribe FILTER | --publish TOPIC MESSAGE)",
    )?;
    let mut cafile: Option<PathBuf> = None;
    let mut action = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--cafile" => cafile = args.next().map(PathBuf::from),
            "--subscribe" => action = args.next().map(Action::Subscribe),
            "--publish" => {
                let topic = args.next().ok_or("--publish needs a topic")?;
                let message = args.next().ok_or("--publish needs a message")?;
                action = Some(Action::Publish(topic, message));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut options = ClientOptions::new(&url).map_err(|e| e.to_string())?;
    if let Some(cafile) = cafile {
        options =
            options.tls(ClientTlsSettings::trusting_ca_file(&cafile).map_err(|e| e.to_string())?);
    }
    let (client, mut messages) = Client::connect(options).await.map_err(|e| e.to_string())?;
    match action.ok_or("give --subscribe or --publish")? {
        Action::Publish(topic, message) => {
            let message = Message::new(topic, message)
                .map_err(|e| e.to_string())?
                .qos(QoS::AtLeastOnce);
            client
                .publish(message)
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
        }
        Action::Subscribe(filter) => {
            let subscription =
                Subscription::new(filter, QoS::AtLeastOnce).map_err(|e| e.to_string())?;
            client
                .subscribe(subscription)
                .await
                .map_err(|e| e.to_string())?;
            while let Some(message) = messages.recv().await {
                println!(
                    "{} {}",
                    message.topic.as_str(),
                    String::from_utf8_lossy(&message.payload)
                );
            }
        }
    }
    client.disconnect().await.map_err(|e| e.to_string())
}
