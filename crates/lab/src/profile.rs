//! Link profiles of the study's evaluation scenarios, loaded from a `links.toml` file: each
//! scenario names its link types with their bandwidth (Mbit/s), one-way delay (ms) and random
//! loss (percent), and a loss sweep lists the loss percentages of the sweep experiment. A copy
//! of the study's file ships inside the crate ([`LinkProfiles::builtin`]) so the lab works
//! anywhere. This file owns parsing and checking of that format only; it builds
//! [`LinkConfig`]s but runs nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::link::{Bandwidth, InvalidBandwidth, LinkConfig, QueueLimit};
use crate::loss::{InvalidProbability, LossModel, Probability};

/// The study's `links.toml`, as shipped with the crate.
const BUILTIN_LINKS_TOML: &str = include_str!("../scenarios/links.toml");

/// Why a `links.toml` could not be used.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not TOML of the expected shape.
    #[error("links.toml: {0}")]
    Toml(#[from] toml::de::Error),
    /// A link's bandwidth is not a positive rate.
    #[error("scenario {scenario}, link {link}: {source}")]
    Bandwidth {
        /// The scenario's key.
        scenario: String,
        /// The link's name.
        link: String,
        /// The cause.
        source: InvalidBandwidth,
    },
    /// A link's or the sweep's loss is not a percentage.
    #[error("{place}: {source}")]
    Loss {
        /// Where the value was found.
        place: String,
        /// The cause.
        source: InvalidProbability,
    },
    /// A link's delay is negative or not a number.
    #[error("scenario {scenario}, link {link}: delay {delay_ms} ms is not a duration")]
    Delay {
        /// The scenario's key.
        scenario: String,
        /// The link's name.
        link: String,
        /// The offending value.
        delay_ms: f64,
    },
    /// Two links of a scenario share a name.
    #[error("scenario {scenario} names link {link} twice")]
    DuplicateLink {
        /// The scenario's key.
        scenario: String,
        /// The repeated name.
        link: String,
    },
}

/// One link type of a scenario, e.g. the smart home's `wifi`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkProfile {
    /// The link type's name (`wifi`, `zigbee`, `4g`, `3g`, `ethernet`).
    pub name: String,
    /// The link rate.
    pub bandwidth: Bandwidth,
    /// One-way delay.
    pub delay: Duration,
    /// Independent random loss per packet.
    pub loss: Probability,
}

impl LinkProfile {
    /// One direction of this link with the given queue: the profile's rate and delay, and
    /// its loss as independent (Bernoulli) loss, as netem's `loss random` applied it.
    pub fn link_config(&self, queue: QueueLimit) -> LinkConfig {
        LinkConfig {
            bandwidth: Some(self.bandwidth),
            delay: self.delay,
            loss: if self.loss.value() == 0.0 {
                LossModel::None
            } else {
                LossModel::Bernoulli(self.loss)
            },
            queue,
        }
    }

    /// The same link with another loss, as the loss sweep varies it.
    pub fn with_loss(&self, loss: Probability) -> LinkProfile {
        LinkProfile {
            loss,
            ..self.clone()
        }
    }
}

/// One evaluation scenario and its link types.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The scenario's key in the file (`smart_home`, `printer_farm`, `synthetic`).
    pub name: String,
    /// A sentence for reports.
    pub description: String,
    /// Its link types, in file order.
    pub links: Vec<LinkProfile>,
}

impl Scenario {
    /// The link type called `name`.
    pub fn link(&self, name: &str) -> Option<&LinkProfile> {
        self.links.iter().find(|link| link.name == name)
    }
}

/// Everything a `links.toml` describes.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkProfiles {
    scenarios: Vec<Scenario>,
    loss_sweep: Vec<Probability>,
}

impl LinkProfiles {
    /// The study's profiles, shipped with the crate.
    pub fn builtin() -> LinkProfiles {
        // The shipped file is parsed by the unit test `builtin_profiles_parse`, so this cannot
        // fail in a released build.
        #[allow(clippy::expect_used)]
        LinkProfiles::parse(BUILTIN_LINKS_TOML).expect("the shipped links.toml is valid")
    }

    /// Reads and checks a `links.toml` file.
    pub fn load(path: &Path) -> Result<LinkProfiles, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })?;
        LinkProfiles::parse(&text)
    }

    /// Parses and checks the text of a `links.toml`.
    pub fn parse(text: &str) -> Result<LinkProfiles, ProfileError> {
        let file: RawFile = toml::from_str(text)?;
        let mut scenarios = Vec::with_capacity(file.scenario.len());
        for (name, raw) in file.scenario {
            let mut links: Vec<LinkProfile> = Vec::with_capacity(raw.links.len());
            for link in raw.links {
                let checked = link.check(&name)?;
                if links.iter().any(|l| l.name == checked.name) {
                    return Err(ProfileError::DuplicateLink {
                        scenario: name,
                        link: checked.name,
                    });
                }
                links.push(checked);
            }
            scenarios.push(Scenario {
                name,
                description: raw.description,
                links,
            });
        }
        let loss_sweep = file
            .sweep
            .loss
            .loss_pct
            .into_iter()
            .map(|pct| {
                Probability::from_percent(pct).map_err(|source| ProfileError::Loss {
                    place: "sweep.loss".to_owned(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(LinkProfiles {
            scenarios,
            loss_sweep,
        })
    }

    /// All scenarios, ordered by name.
    pub fn scenarios(&self) -> &[Scenario] {
        &self.scenarios
    }

    /// The scenario called `name`.
    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// The loss values of the loss sweep, in file order (empty if the file has none).
    pub fn loss_sweep(&self) -> &[Probability] {
        &self.loss_sweep
    }
}

/// The file as written; checked into [`LinkProfiles`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    scenario: BTreeMap<String, RawScenario>,
    #[serde(default)]
    sweep: RawSweeps,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    description: String,
    links: Vec<RawLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    name: String,
    bandwidth_mbit: f64,
    delay_ms: f64,
    loss_pct: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweeps {
    #[serde(default)]
    loss: RawLossSweep,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLossSweep {
    #[serde(default)]
    loss_pct: Vec<f64>,
}

impl RawLink {
    fn check(self, scenario: &str) -> Result<LinkProfile, ProfileError> {
        let bandwidth = Bandwidth::from_mbit(self.bandwidth_mbit).map_err(|source| {
            ProfileError::Bandwidth {
                scenario: scenario.to_owned(),
                link: self.name.clone(),
                source,
            }
        })?;
        let delay = Duration::try_from_secs_f64(self.delay_ms / 1000.0).map_err(|_| {
            ProfileError::Delay {
                scenario: scenario.to_owned(),
                link: self.name.clone(),
                delay_ms: self.delay_ms,
            }
        })?;
        let loss =
            Probability::from_percent(self.loss_pct).map_err(|source| ProfileError::Loss {
                place: format!("scenario {scenario}, link {}", self.name),
                source,
            })?;
        Ok(LinkProfile {
            name: self.name,
            bandwidth,
            delay,
            loss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse() {
        let profiles = LinkProfiles::parse(BUILTIN_LINKS_TOML).unwrap();
        let names: Vec<&str> = profiles
            .scenarios()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["printer_farm", "smart_home", "synthetic"]);
        for scenario in profiles.scenarios() {
            let links: Vec<&str> = scenario.links.iter().map(|l| l.name.as_str()).collect();
            assert_eq!(links, ["wifi", "zigbee", "4g", "3g", "ethernet"]);
        }
        assert_eq!(LinkProfiles::builtin(), profiles);
    }

    #[test]
    fn builtin_values_match_the_study() {
        let profiles = LinkProfiles::builtin();
        let home = profiles.scenario("smart_home").unwrap();
        assert!(home.description.contains("Smart home"));
        let zigbee = home.link("zigbee").unwrap();
        assert_eq!(zigbee.bandwidth.bits_per_sec(), 250_000);
        assert_eq!(zigbee.delay, Duration::from_millis(5));
        assert_eq!(zigbee.loss.value(), 0.01);
        let wifi = profiles
            .scenario("synthetic")
            .unwrap()
            .link("wifi")
            .unwrap();
        assert_eq!(wifi.loss.value(), 0.4);
        let sweep: Vec<f64> = profiles.loss_sweep().iter().map(|p| p.value()).collect();
        assert_eq!(sweep, [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]);
    }

    #[test]
    fn profile_becomes_a_link_config() {
        let profiles = LinkProfiles::builtin();
        let three_g = profiles.scenario("smart_home").unwrap().link("3g").unwrap();
        let config = three_g.link_config(QueueLimit::Bytes(64_000));
        assert_eq!(config.bandwidth, Bandwidth::from_bits_per_sec(1_000_000));
        assert_eq!(config.delay, Duration::from_millis(40));
        assert_eq!(config.loss, LossModel::from_percent(1.5).unwrap());
        assert_eq!(config.queue, QueueLimit::Bytes(64_000));
        let clean = three_g
            .with_loss(Probability::ZERO)
            .link_config(QueueLimit::Unlimited);
        assert_eq!(clean.loss, LossModel::None);
    }

    #[test]
    fn rejects_bad_values() {
        let link =
            |fields: &str| format!("[scenario.s]\nlinks = [ {{ name = \"x\", {fields} }} ]\n");
        let cases = [
            link("bandwidth_mbit = 0.0, delay_ms = 1, loss_pct = 1.0"),
            link("bandwidth_mbit = 1.0, delay_ms = -1, loss_pct = 1.0"),
            link("bandwidth_mbit = 1.0, delay_ms = 1, loss_pct = 150.0"),
            link("bandwidth_mbit = 1.0, delay_ms = 1, loss_pct = 1.0, jitter_ms = 3"),
            link("bandwidth_mbit = 1.0, delay_ms = 1"),
            "[sweep.loss]\nloss_pct = [-2.0]\n".to_owned(),
            "[scenario.s]\nlinks = [ { name = \"x\", bandwidth_mbit = 1.0, delay_ms = 1, \
             loss_pct = 1.0 }, { name = \"x\", bandwidth_mbit = 2.0, delay_ms = 1, \
             loss_pct = 1.0 } ]\n"
                .to_owned(),
        ];
        for text in cases {
            assert!(LinkProfiles::parse(&text).is_err(), "accepted:\n{text}");
        }
    }

    #[test]
    fn sweep_and_description_are_optional() {
        let text = "[scenario.lab]\nlinks = [ { name = \"lan\", bandwidth_mbit = 10, \
                    delay_ms = 0.5, loss_pct = 0 } ]\n";
        let profiles = LinkProfiles::parse(text).unwrap();
        assert!(profiles.loss_sweep().is_empty());
        let lan = profiles.scenario("lab").unwrap().link("lan").unwrap();
        assert_eq!(lan.delay, Duration::from_micros(500));
        assert_eq!(profiles.scenario("lab").unwrap().description, "");
    }

    #[test]
    fn load_reports_the_missing_file() {
        let err = LinkProfiles::load(Path::new("no-such-dir/links.toml")).unwrap_err();
        assert!(err.to_string().contains("no-such-dir/links.toml"), "{err}");
    }
}
