//! The messages the experiments send: per scenario, a realistic topic and payload (a smart-home
//! sensor reading, a 3D printer's status report, a fixed-size synthetic record), each carrying
//! its sequence number so the receiver can match it to the send time; and the bulk and
//! per-topic flows of the loss sweep. The study's appendix B, meant to list its messages, was
//! left empty, so these are ours.

use bytes::Bytes;

/// What a scenario's publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A temperature and humidity sensor in a kitchen.
    SmartHome,
    /// A 3D printer reporting its job.
    PrinterFarm,
    /// A 64-byte record.
    Synthetic,
}

impl Workload {
    /// The workload of the scenario called `name` (synthetic for unknown names).
    pub fn for_scenario(name: &str) -> Workload {
        match name {
            "smart_home" => Workload::SmartHome,
            "printer_farm" => Workload::PrinterFarm,
            _ => Workload::Synthetic,
        }
    }

    /// The topic published to.
    pub fn topic(self) -> &'static str {
        match self {
            Workload::SmartHome => "home/groundfloor/kitchen/temp",
            Workload::PrinterFarm => "farm/hall-a/printer-07/status",
            Workload::Synthetic => "synthetic/load/0",
        }
    }

    /// The subscriber's filter (a wildcard, as a dashboard would use).
    pub fn filter(self) -> &'static str {
        match self {
            Workload::SmartHome => "home/+/+/temp",
            Workload::PrinterFarm => "farm/+/+/status",
            Workload::Synthetic => "synthetic/#",
        }
    }

    /// The topic of pair `pair` of a lab: the first level names the pair's own site (home,
    /// hall...), so pairs sharing a broker never see each other's messages.
    pub fn topic_for(self, pair: usize) -> String {
        own_site(self.topic(), pair)
    }

    /// The subscriber filter of pair `pair`.
    pub fn filter_for(self, pair: usize) -> String {
        own_site(self.filter(), pair)
    }

    /// Message number `seq` as JSON: the reading varies with `seq` so no two are alike.
    pub fn payload(self, seq: u32) -> Bytes {
        let wobble = f64::from(seq % 17) / 10.0;
        let text = match self {
            Workload::SmartHome => format!(
                "{{\"seq\":{seq},\"sensor\":\"kitchen-temp-1\",\"temp_c\":{:.1},\
                 \"humidity_pct\":{},\"battery_pct\":87}}",
                20.5 + wobble,
                45 + seq % 7
            ),
            Workload::PrinterFarm => format!(
                "{{\"seq\":{seq},\"printer\":\"printer-07\",\"state\":\"printing\",\
                 \"job\":\"bracket-v3.gcode\",\"progress_pct\":{:.1},\"layer\":{},\
                 \"layers\":260,\"nozzle_c\":{:.1},\"bed_c\":60.0,\"fan_pct\":80,\
                 \"filament_mm\":{},\"eta_s\":{}}}",
                f64::from(seq % 100),
                seq % 260,
                214.5 + wobble,
                1200 + seq * 3,
                5400u32.saturating_sub(seq * 20)
            ),
            Workload::Synthetic => {
                let head = format!("{{\"seq\":{seq},\"pad\":\"");
                let pad = 64usize.saturating_sub(head.len() + 2);
                format!("{head}{}\"}}", "x".repeat(pad))
            }
        };
        Bytes::from(text)
    }
}

fn own_site(name: &str, pair: usize) -> String {
    match name.split_once('/') {
        Some((first, rest)) => format!("{first}-{pair}/{rest}"),
        None => format!("{name}-{pair}"),
    }
}

/// A payload of exactly `size` bytes (at least the JSON head) carrying `seq`, for the bulk
/// and head-of-line flows.
pub fn sized_payload(seq: u32, size: usize) -> Bytes {
    let head = format!("{{\"seq\":{seq},\"pad\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    Bytes::from(format!("{head}{}\"}}", "x".repeat(pad)))
}

/// The sequence number in a payload made here: the digits after `"seq":`.
pub fn sequence_number(payload: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\"seq\":";
    let start = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = payload.get(start..)?;
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(digits.get(..end)?).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_sequence_number() {
        for workload in [
            Workload::SmartHome,
            Workload::PrinterFarm,
            Workload::Synthetic,
        ] {
            for seq in [0, 7, 99, 12345] {
                let payload = workload.payload(seq);
                assert_eq!(sequence_number(&payload), Some(seq), "{workload:?}");
                assert!(std::str::from_utf8(&payload).is_ok());
            }
        }
        assert_eq!(Workload::Synthetic.payload(3).len(), 64);
        assert!(Workload::PrinterFarm.payload(3).len() > 150);
        assert_eq!(sized_payload(5, 1024).len(), 1024);
        assert_eq!(sequence_number(&sized_payload(5, 1024)), Some(5));
        assert_eq!(sequence_number(b"no number"), None);
    }

    #[test]
    fn pairs_get_disjoint_topics() {
        let w = Workload::SmartHome;
        assert_eq!(w.topic_for(3), "home-3/groundfloor/kitchen/temp");
        assert!(mquictt_protocol::topic::matches_filter(
            &w.filter_for(3),
            &w.topic_for(3)
        ));
        assert!(!mquictt_protocol::topic::matches_filter(
            &w.filter_for(3),
            &w.topic_for(4)
        ));
    }

    #[test]
    fn filters_match_their_topics() {
        for workload in [
            Workload::SmartHome,
            Workload::PrinterFarm,
            Workload::Synthetic,
        ] {
            assert!(mquictt_protocol::topic::matches_filter(
                workload.filter(),
                workload.topic()
            ));
        }
    }
}
