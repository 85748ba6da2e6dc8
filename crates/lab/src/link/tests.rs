//! Unit tests of the link model: rates, delays, queueing, loss ratios, determinism and
//! Gilbert-Elliott bursts, all in simulated time.

use std::time::Duration;

use super::*;
use crate::loss::{GilbertElliott, LossModel, Probability};

const MS: Duration = Duration::from_millis(1);

fn mbit(rate: f64) -> Option<Bandwidth> {
    Some(Bandwidth::from_mbit(rate).unwrap())
}

fn delivered_at(verdict: Verdict) -> Duration {
    match verdict {
        Verdict::Delivered { at } => at,
        Verdict::Dropped(reason) => panic!("expected delivery, got a drop: {reason:?}"),
    }
}

fn lossy(model: LossModel) -> LinkConfig {
    LinkConfig {
        loss: model,
        ..LinkConfig::ideal()
    }
}

/// Offers `count` packets spaced 1 ms apart and returns the indices of those lost at random.
fn random_drop_indices(link: &mut LinkDirection, count: usize) -> Vec<usize> {
    (0..count)
        .filter(|&i| link.offer(MS * i as u32, 100) == Verdict::Dropped(DropReason::RandomLoss))
        .collect()
}

#[test]
fn transmission_time_is_size_over_rate_rounded_up() {
    let one_mbit = Bandwidth::from_mbit(1.0).unwrap();
    assert_eq!(one_mbit.transmission_time(1500), Duration::from_millis(12));
    assert_eq!(one_mbit.transmission_time(0), Duration::ZERO);
    let three_bps = Bandwidth::from_bits_per_sec(3).unwrap();
    // 8 bits at 3 bit/s = 2.666... s, rounded up to the nanosecond.
    assert_eq!(
        three_bps.transmission_time(1),
        Duration::from_nanos(2_666_666_667)
    );
}

#[test]
fn bandwidth_parses_megabits_and_rejects_nonsense() {
    assert_eq!(Bandwidth::from_mbit(0.25).unwrap().bits_per_sec(), 250_000);
    assert_eq!(
        Bandwidth::from_mbit(100.0).unwrap().bits_per_sec(),
        100_000_000
    );
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e9] {
        assert!(Bandwidth::from_mbit(bad).is_err(), "{bad} was accepted");
    }
    assert!(Bandwidth::from_bits_per_sec(0).is_none());
}

#[test]
fn lone_packet_takes_serialization_plus_delay() {
    let config = LinkConfig {
        bandwidth: mbit(8.0),
        delay: 20 * MS,
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    // 1000 bytes at 8 Mbit/s = 1 ms on the wire.
    let at = delivered_at(link.offer(5 * MS, 1000));
    assert_eq!(at, 5 * MS + MS + 20 * MS);
}

#[test]
fn infinitely_fast_link_only_delays() {
    let config = LinkConfig {
        delay: 7 * MS,
        queue: QueueLimit::Bytes(1),
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    for _ in 0..100 {
        assert_eq!(delivered_at(link.offer(3 * MS, 1500)), 10 * MS);
    }
}

#[test]
fn burst_is_serialized_back_to_back() {
    let config = LinkConfig {
        bandwidth: mbit(12.0),
        delay: 5 * MS,
        queue: QueueLimit::Unlimited,
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    // 1500 bytes at 12 Mbit/s = 1 ms each.
    for k in 1..=10u32 {
        assert_eq!(
            delivered_at(link.offer(Duration::ZERO, 1500)),
            k * MS + 5 * MS
        );
    }
    assert_eq!(link.backlog_bytes(Duration::ZERO), 15_000);
    assert_eq!(link.backlog_bytes(4 * MS), 9_000);
    assert_eq!(link.backlog_bytes(10 * MS), 0);
}

#[test]
fn spaced_packets_do_not_queue() {
    let config = LinkConfig {
        bandwidth: mbit(12.0),
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    for k in 0..50u32 {
        let arrival = 2 * MS * k;
        assert_eq!(delivered_at(link.offer(arrival, 1500)), arrival + MS);
    }
}

#[test]
fn saturated_link_delivers_at_its_rate() {
    let rate = Bandwidth::from_mbit(3.0).unwrap();
    let config = LinkConfig {
        bandwidth: Some(rate),
        queue: QueueLimit::Unlimited,
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    let mut last = Duration::ZERO;
    let mut bytes = 0u64;
    // Offer twice the rate: 1200-byte packets every 1.6 ms = 6 Mbit/s.
    for k in 0..5_000u32 {
        let size = 1200;
        last = delivered_at(link.offer(Duration::from_micros(1600) * k, size));
        bytes += size as u64;
    }
    let measured = bytes as f64 * 8.0 / last.as_secs_f64();
    let expected = rate.bits_per_sec() as f64;
    assert!(
        (measured - expected).abs() / expected < 1e-6,
        "measured {measured} bit/s, expected {expected}"
    );
}

#[test]
fn byte_limit_drops_tail_and_frees_room_as_packets_leave() {
    let config = LinkConfig {
        bandwidth: mbit(12.0),
        queue: QueueLimit::Bytes(3000),
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    assert_eq!(delivered_at(link.offer(Duration::ZERO, 1500)), MS);
    assert_eq!(delivered_at(link.offer(Duration::ZERO, 1500)), 2 * MS);
    assert_eq!(
        link.offer(Duration::ZERO, 1500),
        Verdict::Dropped(DropReason::QueueFull)
    );
    // With 3000 bytes queued the limit is reached: not even one more byte fits.
    assert_eq!(
        link.offer(Duration::ZERO, 1),
        Verdict::Dropped(DropReason::QueueFull)
    );
    // Once the first packet has left, there is room for one more.
    assert_eq!(delivered_at(link.offer(MS, 1500)), 3 * MS);
    assert_eq!(link.counters().queue_drops, 2);
    assert_eq!(link.counters().delivered, 3);
    assert_eq!(link.counters().offered, 5);
}

#[test]
fn time_limit_drops_packets_that_would_wait_too_long() {
    let config = LinkConfig {
        bandwidth: mbit(12.0),
        queue: QueueLimit::Time(5 * MS),
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    // Packet k of a burst would wait k ms: packets 0..=5 fit, the rest are dropped.
    let verdicts: Vec<Verdict> = (0..10).map(|_| link.offer(Duration::ZERO, 1500)).collect();
    for (k, verdict) in verdicts.iter().enumerate() {
        if k <= 5 {
            assert_eq!(
                *verdict,
                Verdict::Delivered {
                    at: MS * (k as u32 + 1)
                }
            );
        } else {
            assert_eq!(*verdict, Verdict::Dropped(DropReason::QueueFull));
        }
    }
}

#[test]
fn earlier_arrival_is_taken_as_now() {
    let config = LinkConfig {
        bandwidth: mbit(12.0),
        delay: MS,
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 1, 0);
    assert_eq!(delivered_at(link.offer(10 * MS, 1500)), 12 * MS);
    // Arrives "before" the previous packet: queued behind it, never before it.
    assert_eq!(delivered_at(link.offer(2 * MS, 1500)), 13 * MS);
}

#[test]
fn randomly_lost_packets_do_not_use_the_link() {
    let config = LinkConfig {
        bandwidth: mbit(12.0),
        loss: LossModel::Bernoulli(Probability::new(0.5).unwrap()),
        queue: QueueLimit::Unlimited,
        ..LinkConfig::ideal()
    };
    let mut link = LinkDirection::new(config, 9, 0);
    let mut delivered = 0u32;
    for _ in 0..200 {
        if let Verdict::Delivered { at } = link.offer(Duration::ZERO, 1500) {
            delivered += 1;
            assert_eq!(at, MS * delivered);
        }
    }
    assert_eq!(link.counters().delivered, u64::from(delivered));
    assert_eq!(link.counters().random_drops, 200 - u64::from(delivered));
}

#[test]
fn bernoulli_loss_ratio_matches_setting() {
    for (percent, seed) in [(1.0, 1), (2.0, 2), (10.0, 3), (40.0, 4)] {
        let mut link =
            LinkDirection::new(lossy(LossModel::from_percent(percent).unwrap()), seed, 0);
        let count = 200_000;
        let lost = random_drop_indices(&mut link, count).len();
        let measured = lost as f64 / count as f64 * 100.0;
        // The standard deviation is at most 0.11 points here; 0.5 points is > 4 sigma.
        assert!(
            (measured - percent).abs() < 0.5,
            "{percent}% configured, {measured}% measured"
        );
    }
}

#[test]
fn no_loss_and_total_loss_are_exact() {
    let mut clean = LinkDirection::new(lossy(LossModel::from_percent(0.0).unwrap()), 1, 0);
    assert!(random_drop_indices(&mut clean, 10_000).is_empty());
    let mut dead = LinkDirection::new(lossy(LossModel::from_percent(100.0).unwrap()), 1, 0);
    assert_eq!(random_drop_indices(&mut dead, 1_000).len(), 1_000);
}

#[test]
fn same_seed_and_stream_drop_the_same_packet_numbers() {
    let model = LossModel::from_percent(5.0).unwrap();
    let first = random_drop_indices(&mut LinkDirection::new(lossy(model), 42, 3), 10_000);
    let again = random_drop_indices(&mut LinkDirection::new(lossy(model), 42, 3), 10_000);
    assert!(!first.is_empty());
    assert_eq!(first, again);
    let other_stream = random_drop_indices(&mut LinkDirection::new(lossy(model), 42, 4), 10_000);
    let other_seed = random_drop_indices(&mut LinkDirection::new(lossy(model), 43, 3), 10_000);
    assert_ne!(first, other_stream);
    assert_ne!(first, other_seed);
}

#[test]
fn random_drops_do_not_depend_on_timing_or_size() {
    let config = LinkConfig {
        bandwidth: mbit(1.0),
        loss: LossModel::from_percent(10.0).unwrap(),
        queue: QueueLimit::Unlimited,
        ..LinkConfig::ideal()
    };
    let mut spaced = LinkDirection::new(config, 7, 0);
    let mut burst = LinkDirection::new(config, 7, 0);
    let is_random_drop = |v: Verdict| v == Verdict::Dropped(DropReason::RandomLoss);
    for k in 0..5_000u32 {
        let a = is_random_drop(spaced.offer(MS * 20 * k, 64));
        let b = is_random_drop(burst.offer(Duration::ZERO, 1500));
        assert_eq!(a, b, "packet {k} differs");
    }
}

#[test]
fn gilbert_elliott_has_the_configured_loss_and_burst_length() {
    let loss = Probability::from_percent(5.0).unwrap();
    let model = GilbertElliott::from_loss_and_burst(loss, 4.0).unwrap();
    assert!((model.mean_loss() - 0.05).abs() < 1e-12);
    let mut link = LinkDirection::new(lossy(LossModel::GilbertElliott(model)), 11, 0);
    let count = 400_000;
    let dropped = random_drop_indices(&mut link, count);
    let measured_loss = dropped.len() as f64 / count as f64;
    assert!(
        (measured_loss - 0.05).abs() < 0.005,
        "measured loss {measured_loss}"
    );
    let bursts = 1 + dropped.windows(2).filter(|w| w[1] != w[0] + 1).count();
    let mean_burst = dropped.len() as f64 / bursts as f64;
    assert!(
        (mean_burst - 4.0).abs() < 0.4,
        "mean burst length {mean_burst}, expected 4"
    );
}

#[test]
fn bernoulli_losses_are_not_bursty() {
    let mut link = LinkDirection::new(lossy(LossModel::from_percent(5.0).unwrap()), 5, 0);
    let dropped = random_drop_indices(&mut link, 200_000);
    let bursts = 1 + dropped.windows(2).filter(|w| w[1] != w[0] + 1).count();
    let mean_burst = dropped.len() as f64 / bursts as f64;
    // Independent loss: mean run length 1 / (1 - p) = 1.053.
    assert!(
        (mean_burst - 1.0 / 0.95).abs() < 0.05,
        "mean burst {mean_burst}"
    );
}

#[test]
fn gilbert_elliott_rejects_impossible_settings() {
    let five = Probability::from_percent(5.0).unwrap();
    assert!(GilbertElliott::from_loss_and_burst(five, 0.5).is_err());
    assert!(GilbertElliott::from_loss_and_burst(Probability::ONE, 3.0).is_err());
}

#[test]
fn probabilities_are_range_checked() {
    assert!(Probability::new(1.5).is_err());
    assert!(Probability::new(-0.1).is_err());
    assert!(Probability::new(f64::NAN).is_err());
    assert!(Probability::from_percent(101.0).is_err());
    assert_eq!(Probability::from_percent(2.5).unwrap().value(), 0.025);
    assert_eq!(LossModel::from_percent(0.0).unwrap(), LossModel::None);
}
