//! What every experiment is told: where to write, how thorough to be (`quick` or full), how
//! many seeds, which scenarios and link types, where the brokers' programs are; and the
//! [`Progress`] callback through which a front end (the CLI's progress bar) follows a run.

use std::path::PathBuf;
use std::time::Duration;

use mquictt_lab::{LinkProfile, LinkProfiles, Scenario};

use crate::error::ExperimentError;

/// The settings shared by all experiments.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Output directory: CSV files, charts and `report.md` go here.
    pub out_dir: PathBuf,
    /// A few minutes for everything instead of the full study: one scenario and link type
    /// where the full run takes all, fewer messages, one seed.
    pub quick: bool,
    /// Seeds per configuration; each seed fixes the loss pattern of every link.
    pub seeds: u32,
    /// Scenarios to run (keys of `links.toml`); empty means all (quick: `smart_home`).
    pub scenarios: Vec<String>,
    /// Link types to run (`wifi`, `4g`...); empty means all (quick: `wifi`).
    pub links: Vec<String>,
    /// The link profiles, normally [`LinkProfiles::builtin`].
    pub profiles: LinkProfiles,
    /// The `mquictt` executable that runs our broker (`mquictt broker ...`).
    pub broker_program: PathBuf,
    /// Mosquitto, for the TCP and TLS rows of the delivery experiment; `None` leaves them out.
    pub mosquitto: Option<PathBuf>,
    /// The source tree the footprint experiment builds; `None` measures the binaries that
    /// exist (the running `mquictt` and a client-only binary beside it) without building.
    pub source_dir: Option<PathBuf>,
    /// QUIC path MTU discovery in our broker and the measured client (connection-cost
    /// experiment); on by default, as in the product.
    pub quic_mtu_discovery: bool,
}

impl Settings {
    /// Settings with the built-in profiles, three seeds (one when quick), Mosquitto where
    /// Debian installs it if it is there, and no source tree.
    pub fn new(out_dir: PathBuf, broker_program: PathBuf, quick: bool) -> Settings {
        let mosquitto = PathBuf::from("/usr/sbin/mosquitto");
        Settings {
            out_dir,
            quick,
            seeds: if quick { 1 } else { 3 },
            scenarios: Vec::new(),
            links: Vec::new(),
            profiles: LinkProfiles::builtin(),
            broker_program,
            mosquitto: mosquitto.exists().then_some(mosquitto),
            source_dir: None,
            quic_mtu_discovery: true,
        }
    }

    /// The scenarios selected, in file order.
    pub fn selected_scenarios(&self) -> Result<Vec<&Scenario>, ExperimentError> {
        if self.scenarios.is_empty() {
            let all: Vec<&Scenario> = self.profiles.scenarios().iter().collect();
            if self.quick {
                // One scenario: the smart home's if the profiles have it.
                let first = self
                    .profiles
                    .scenario("smart_home")
                    .or_else(|| all.first().copied());
                return Ok(first.into_iter().collect());
            }
            return Ok(all);
        }
        self.scenarios
            .iter()
            .map(|name| {
                self.profiles.scenario(name).ok_or_else(|| {
                    ExperimentError::Selection(format!(
                        "no scenario {name:?}; the profiles have {}",
                        self.profiles
                            .scenarios()
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            })
            .collect()
    }

    /// The link types of `scenario` selected, in file order.
    pub fn selected_links<'a>(
        &self,
        scenario: &'a Scenario,
    ) -> Result<Vec<&'a LinkProfile>, ExperimentError> {
        if self.links.is_empty() {
            if self.quick {
                let first = scenario.link("wifi").or_else(|| scenario.links.first());
                return Ok(first.into_iter().collect());
            }
            return Ok(scenario.links.iter().collect());
        }
        self.links
            .iter()
            .map(|name| {
                scenario.link(name).ok_or_else(|| {
                    ExperimentError::Selection(format!(
                        "scenario {} has no link type {name:?}",
                        scenario.name
                    ))
                })
            })
            .collect()
    }

    /// Seeds to run, 1..=seeds (at least one).
    pub fn seed_list(&self) -> Vec<u64> {
        (1..=u64::from(self.seeds.max(1))).collect()
    }

    /// Longest a run may take after its last message was sent before the missing ones count
    /// as lost: 10 s when quick, 20 s in the full run. Long enough for several TCP
    /// retransmission timeouts (200 ms doubling), short enough that a scenario with 40% loss
    /// finishes.
    pub fn drain_deadline(&self) -> Duration {
        if self.quick {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(20)
        }
    }
}

/// Follows the progress of an experiment; all methods have empty defaults.
pub trait Progress: Send + Sync {
    /// An experiment starts with `steps` runs ahead.
    fn begin(&self, _experiment: &str, _steps: u64) {}
    /// One run is done; `label` says which.
    fn step(&self, _label: &str) {}
    /// Something the user should read (a skipped part, a flagged run).
    fn note(&self, _message: &str) {}
    /// The experiment is over.
    fn end(&self, _experiment: &str) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
