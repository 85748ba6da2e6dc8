//! Starts a lab for manual trying: a broker and N clients, every client on one link type of a
//! scenario from the shipped `links.toml`, the broker on an ideal link. Prints the hosts and
//! how to run commands in them, then either runs the command given after `--` in client 0 or
//! waits for Ctrl-C; prints the relay's statistics on the way out.
//!
//! ```text
//! cargo run -p mquictt-lab --example lab_shell -- smart_home 4g 2 -- ping -c 5 10.200.0.1
//! ```

use std::process::ExitCode;

use mquictt_lab::{HostLink, Lab, LabOptions, LinkConfig, LinkProfiles, QueueLimit, Topology};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lab_shell: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (ours, command) = match args.iter().position(|a| a == "--") {
        Some(split) => (&args[..split], args.get(split + 1..).unwrap_or_default()),
        None => (&args[..], &[][..]),
    };
    let scenario_name = ours.first().map_or("smart_home", String::as_str);
    let link_name = ours.get(1).map_or("wifi", String::as_str);
    let clients: usize = match ours.get(2) {
        Some(n) => n.parse().map_err(|_| format!("not a client count: {n}"))?,
        None => 1,
    };

    let profiles = LinkProfiles::builtin();
    let scenario = profiles
        .scenario(scenario_name)
        .ok_or_else(|| format!("no scenario {scenario_name}"))?;
    let profile = scenario
        .link(link_name)
        .ok_or_else(|| format!("scenario {scenario_name} has no link {link_name}"))?;
    let client_link = HostLink::symmetric(profile.link_config(QueueLimit::default()));
    let topology = Topology::star(
        HostLink::symmetric(LinkConfig::ideal()),
        vec![client_link; clients],
    );
    // We wait for Ctrl-C ourselves, so that the statistics are printed before teardown.
    let options = LabOptions {
        handle_signals: false,
        ..LabOptions::default()
    };
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
    let lab = Lab::start_with(topology, options).map_err(|e| e.to_string())?;
    println!(
        "{scenario_name}/{link_name}: {} Mbit/s, {} ms one way, {}% loss, per client",
        profile.bandwidth.bits_per_sec() as f64 / 1e6,
        profile.delay.as_millis(),
        profile.loss.value() * 100.0
    );
    for host in lab.hosts() {
        println!(
            "  {:?} {} -> ip netns exec {} <command>",
            host.role(),
            host.addr(),
            host.namespace_name()
        );
    }
    match command.split_first() {
        Some((program, rest)) => {
            let client = lab
                .client(0)
                .ok_or("the command needs at least one client")?;
            let status = client.command(program).args(rest).status();
            println!("command: {status:?}");
        }
        None => {
            println!("Ctrl-C to stop");
            signals.forever().next();
        }
    }
    let stats = lab.finish().map_err(|e| e.to_string())?;
    println!("{stats:#?}");
    if stats.is_flagged() {
        println!(
            "flagged: p99 lateness {:?} exceeds {:?}",
            stats.lateness.p99, stats.lateness_threshold
        );
    }
    Ok(())
}
