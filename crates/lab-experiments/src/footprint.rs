//! Experiment 4, footprint: stripped sizes of a client-only binary (the client crate's
//! `mqtt_client` example: client, protocol and transport crates, no broker code) and of the
//! `mquictt` binary (broker and client tools) under the `release-small` profile; the per-crate
//! breakdown of both by cargo-bloat when it is installed; and the resident memory of an idle,
//! connected, subscribed client process per transport.
//!
//! With a source tree the binaries are built here (with symbols kept, so cargo-bloat can read
//! them, and stripped afterwards with binutils' `strip`, as the profile's `strip = true`
//! would). Without one, the binaries at hand are measured as they are, and the report says
//! which profile they came from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::connection::tempdir;
use crate::error::ExperimentError;
use crate::idle_memory::idle_rss;
use crate::plot::{self, Labels, Series};
use crate::settings::{Progress, Settings};
use crate::table::Table;
use crate::transports::Transport;

/// The client-only example's name.
pub const CLIENT_EXAMPLE: &str = "mqtt_client";

/// One measured binary.
#[derive(Debug, Clone, PartialEq)]
pub struct BinarySize {
    /// `client-only` or `mquictt`.
    pub name: String,
    /// The profile it was built with.
    pub profile: String,
    /// Size after stripping, bytes.
    pub stripped_bytes: u64,
    /// Size as built (with symbols), bytes.
    pub unstripped_bytes: u64,
}

/// One crate's share of a binary's code, from cargo-bloat.
#[derive(Debug, Clone, PartialEq)]
pub struct CrateSize {
    /// Which binary.
    pub binary: String,
    /// Crate name (`std`, `quinn_proto`, ...).
    pub crate_name: String,
    /// Bytes of `.text` attributed to it.
    pub bytes: u64,
}

/// Resident memory of one idle client process.
#[derive(Debug, Clone, PartialEq)]
pub struct RssSample {
    /// The program (`client-only` or `mquictt sub`).
    pub program: String,
    /// Transport of its connection.
    pub transport: Transport,
    /// VmRSS, KiB.
    pub rss_kib: u64,
}

/// What the experiment produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FootprintResults {
    /// Binary sizes.
    pub binaries: Vec<BinarySize>,
    /// Per-crate breakdown (empty without cargo-bloat).
    pub crates: Vec<CrateSize>,
    /// Idle client memory.
    pub rss: Vec<RssSample>,
    /// What could not be measured, and why.
    pub notes: Vec<String>,
}

/// The binaries to measure: (name, path, profile).
pub(crate) type Binaries = Vec<(String, PathBuf, String)>;

/// Runs the experiment and writes `footprint_*.csv` and the charts.
pub fn run(
    settings: &Settings,
    progress: &dyn Progress,
) -> Result<FootprintResults, ExperimentError> {
    progress.begin("footprint", 4);
    let work = tempdir(settings, "footprint")?;
    let mut results = FootprintResults::default();
    let binaries = match &settings.source_dir {
        Some(source) => {
            let built = build(source)?;
            progress.step("built release-small binaries");
            built
        }
        None => {
            results.notes.push(
                "No source tree given (`--source`): the binaries at hand were measured as built, \
                 not rebuilt with the release-small profile."
                    .to_owned(),
            );
            progress.step("no build");
            binaries_at_hand(settings)
        }
    };
    if !binaries.iter().any(|(name, ..)| name == "client-only") {
        results.notes.push(format!(
            "No client-only binary found (build it with `cargo build -p mquictt-client --example {CLIENT_EXAMPLE}`)."
        ));
    }
    for (name, path, profile) in &binaries {
        results
            .binaries
            .push(measure_size(name, path, profile, &work)?);
    }
    progress.step("sizes");
    match &settings.source_dir {
        Some(source) if cargo_bloat_available() => {
            for (name, package, target) in [
                (
                    "client-only",
                    "mquictt-client",
                    ["--example", CLIENT_EXAMPLE],
                ),
                ("mquictt", "mquictt", ["--bin", "mquictt"]),
            ] {
                match bloat(source, package, &target) {
                    Ok(crates) => {
                        results
                            .crates
                            .extend(crates.into_iter().map(|(crate_name, bytes)| CrateSize {
                                binary: name.to_owned(),
                                crate_name,
                                bytes,
                            }))
                    }
                    Err(e) => results.notes.push(format!("cargo-bloat on {name}: {e}")),
                }
            }
        }
        Some(_) => results.notes.push(
            "cargo-bloat is not installed (`cargo install cargo-bloat`): no per-crate breakdown."
                .to_owned(),
        ),
        None => results
            .notes
            .push("The per-crate breakdown needs a source tree (`--source`).".to_owned()),
    }
    progress.step("per-crate breakdown");
    results.rss = idle_rss(settings, &binaries, &work)?;
    progress.step("idle memory");
    write_outputs(&settings.out_dir, &results)?;
    progress.end("footprint");
    let _ = std::fs::remove_dir_all(&work);
    Ok(results)
}

/// Environment for the builds: keep symbols (cargo-bloat reads them; we strip copies).
const KEEP_SYMBOLS: (&str, &str) = ("CARGO_PROFILE_RELEASE_SMALL_STRIP", "false");

fn target_dir(source: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| source.join("target"))
}

fn build(source: &Path) -> Result<Binaries, ExperimentError> {
    let args = [
        "build",
        "--profile",
        "release-small",
        "-p",
        "mquictt",
        "--bin",
        "mquictt",
        "-p",
        "mquictt-client",
        "--example",
        CLIENT_EXAMPLE,
    ];
    run_tool(
        Command::new("cargo")
            .args(args)
            .current_dir(source)
            .env(KEEP_SYMBOLS.0, KEEP_SYMBOLS.1),
    )?;
    let out = target_dir(source).join("release-small");
    Ok(vec![
        (
            "client-only".to_owned(),
            out.join("examples").join(CLIENT_EXAMPLE),
            "release-small".to_owned(),
        ),
        (
            "mquictt".to_owned(),
            out.join("mquictt"),
            "release-small".to_owned(),
        ),
    ])
}

fn binaries_at_hand(settings: &Settings) -> Binaries {
    let program = &settings.broker_program;
    // `target/<profile>/mquictt`: the directory names the profile.
    let profile = program
        .parent()
        .and_then(|d| d.file_name())
        .map_or("unknown".to_owned(), |p| p.to_string_lossy().into_owned());
    let mut binaries = Vec::new();
    if let Some(example) = program
        .parent()
        .map(|d| d.join("examples").join(CLIENT_EXAMPLE))
    {
        if example.exists() {
            binaries.push(("client-only".to_owned(), example, profile.clone()));
        }
    }
    binaries.push(("mquictt".to_owned(), program.clone(), profile));
    binaries
}

fn run_tool(command: &mut Command) -> Result<String, ExperimentError> {
    let line = format!("{command:?}");
    let output = command.output().map_err(|e| ExperimentError::Tool {
        command: line.clone(),
        message: e.to_string(),
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        return Err(ExperimentError::Tool {
            command: line,
            message: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn measure_size(
    name: &str,
    path: &Path,
    profile: &str,
    work: &Path,
) -> Result<BinarySize, ExperimentError> {
    let unstripped = std::fs::metadata(path)
        .map_err(|e| ExperimentError::io(path, e))?
        .len();
    let copy = work.join(format!("{name}.stripped"));
    std::fs::copy(path, &copy).map_err(|e| ExperimentError::io(&copy, e))?;
    run_tool(Command::new("strip").arg(&copy))?;
    let stripped = std::fs::metadata(&copy)
        .map_err(|e| ExperimentError::io(&copy, e))?
        .len();
    Ok(BinarySize {
        name: name.to_owned(),
        profile: profile.to_owned(),
        stripped_bytes: stripped,
        unstripped_bytes: unstripped,
    })
}

fn cargo_bloat_available() -> bool {
    Command::new("cargo")
        .args(["bloat", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `cargo bloat --crates` of one target, as (crate, bytes), largest first.
fn bloat(
    source: &Path,
    package: &str,
    target: &[&str; 2],
) -> Result<Vec<(String, u64)>, ExperimentError> {
    let json = run_tool(
        Command::new("cargo")
            .args(["bloat", "--profile", "release-small", "-p", package])
            .args(target)
            .args(["--crates", "-n", "0", "--message-format", "json"])
            .current_dir(source)
            .env(KEEP_SYMBOLS.0, KEEP_SYMBOLS.1),
    )?;
    Ok(parse_bloat_crates(&json))
}

/// The `crates` array of cargo-bloat's JSON: `{"name":"std","size":1234}` objects.
fn parse_bloat_crates(json: &str) -> Vec<(String, u64)> {
    let Some(start) = json.find("\"crates\"") else {
        return Vec::new();
    };
    let rest = json.get(start..).unwrap_or_default();
    let mut crates = Vec::new();
    for object in rest.split('{').skip(1) {
        let body = object.split('}').next().unwrap_or_default();
        let name = body
            .split("\"name\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next());
        let size = body
            .split("\"size\":")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse().ok());
        if let (Some(name), Some(size)) = (name, size) {
            crates.push((name.to_owned(), size));
        }
    }
    crates
}

fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

fn write_outputs(out: &Path, results: &FootprintResults) -> Result<(), ExperimentError> {
    binaries_table(results).write_csv(&out.join("footprint_binaries.csv"))?;
    let mut crates = Table::new(&["binary", "crate", "bytes"]);
    for c in &results.crates {
        crates.push(vec![
            c.binary.clone(),
            c.crate_name.clone(),
            c.bytes.to_string(),
        ]);
    }
    crates.write_csv(&out.join("footprint_crates.csv"))?;
    rss_table(results).write_csv(&out.join("footprint_rss.csv"))?;
    let names: Vec<String> = results
        .binaries
        .iter()
        .map(|b| format!("{} ({})", b.name, b.profile))
        .collect();
    plot::grouped_bars(
        out,
        "footprint_sizes",
        &Labels::new("Binary size", "binary", "KiB"),
        &names,
        &[
            Series {
                name: "stripped".to_owned(),
                values: results
                    .binaries
                    .iter()
                    .map(|b| b.stripped_bytes as f64 / 1024.0)
                    .collect(),
            },
            Series {
                name: "with symbols".to_owned(),
                values: results
                    .binaries
                    .iter()
                    .map(|b| b.unstripped_bytes as f64 / 1024.0)
                    .collect(),
            },
        ],
    )?;
    let transports = [Transport::Tcp, Transport::Tls13, Transport::Quic];
    let mut programs: Vec<String> = Vec::new();
    for r in &results.rss {
        if !programs.contains(&r.program) {
            programs.push(r.program.clone());
        }
    }
    plot::grouped_bars(
        out,
        "footprint_rss",
        &Labels::new(
            "Resident memory of an idle connected client",
            "transport",
            "KiB",
        ),
        &transports
            .iter()
            .map(|t| t.label().to_owned())
            .collect::<Vec<_>>(),
        &programs
            .iter()
            .map(|p| Series {
                name: p.clone(),
                values: transports
                    .iter()
                    .map(|t| {
                        results
                            .rss
                            .iter()
                            .find(|r| &r.program == p && r.transport == *t)
                            .map_or(f64::NAN, |r| r.rss_kib as f64)
                    })
                    .collect(),
            })
            .collect::<Vec<_>>(),
    )?;
    Ok(())
}

fn binaries_table(results: &FootprintResults) -> Table {
    let mut table = Table::new(&["binary", "profile", "stripped_kib", "with_symbols_kib"]);
    for b in &results.binaries {
        table.push(vec![
            b.name.clone(),
            b.profile.clone(),
            kib(b.stripped_bytes),
            kib(b.unstripped_bytes),
        ]);
    }
    table
}

fn rss_table(results: &FootprintResults) -> Table {
    let mut table = Table::new(&["program", "transport", "rss_kib"]);
    for r in &results.rss {
        table.push(vec![
            r.program.clone(),
            r.transport.label().to_owned(),
            r.rss_kib.to_string(),
        ]);
    }
    table
}

/// The footprint's section of the report.
pub fn report_section(results: &FootprintResults) -> String {
    let mut md = String::from("## 4. Footprint\n\n");
    md.push_str(
        "`client-only` is the client crate's `mqtt_client` example: a complete subscribing and \
         publishing program over every transport, linking the client, protocol and transport \
         crates and no broker code. `mquictt` is the full binary (broker, pub, sub, lab). \
         Stripped with binutils' `strip`.\n\n",
    );
    md.push_str(&binaries_table(results).to_markdown());
    md.push_str("\n![Binary sizes](footprint_sizes.png)\n\n");
    if !results.crates.is_empty() {
        md.push_str("Largest crates by code size (cargo-bloat `--crates`, `.text` only):\n\n");
        let mut table = Table::new(&["binary", "crate", "KiB"]);
        for binary in ["client-only", "mquictt"] {
            for c in results
                .crates
                .iter()
                .filter(|c| c.binary == binary)
                .take(12)
            {
                table.push(vec![c.binary.clone(), c.crate_name.clone(), kib(c.bytes)]);
            }
        }
        md.push_str(&table.to_markdown());
        md.push('\n');
    }
    md.push_str("Resident memory (VmRSS) of an idle client, connected and subscribed, one process per transport:\n\n");
    md.push_str(&rss_table(results).to_markdown());
    md.push_str("\n![Idle client memory](footprint_rss.png)\n\n");
    for note in &results.notes {
        let _ = writeln!(md, "- {note}");
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloat_json_crates_are_read() {
        let json = r#"{"file-size":100,"text-section-size":80,"crates":[{"name":"std","size":30},{"name":"quinn_proto","size":25}]}"#;
        assert_eq!(
            parse_bloat_crates(json),
            vec![("std".to_owned(), 30), ("quinn_proto".to_owned(), 25)]
        );
        assert!(parse_bloat_crates("{}").is_empty());
    }
}
