//! Random packet loss processes of one link direction: none, independent (Bernoulli) loss, and
//! bursty loss after Gilbert and Elliott. This file owns the loss decision only; it reads no
//! clock and draws its randomness from the generator it is handed, always the same number of
//! draws per packet, so that a seed decides which packet numbers are lost whatever the timing.

use rand_chacha::rand_core::Rng;
use thiserror::Error;

/// A probability in `[0, 1]`, checked once where it is made.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Probability(f64);

/// A probability or percentage outside its range (or not a number).
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[error("probability {value} is outside [0, 1] (or {percent_hint})")]
pub struct InvalidProbability {
    value: f64,
    percent_hint: &'static str,
}

impl Probability {
    /// Never.
    pub const ZERO: Probability = Probability(0.0);
    /// Always.
    pub const ONE: Probability = Probability(1.0);

    /// A probability from a value in `[0, 1]`.
    pub fn new(value: f64) -> Result<Self, InvalidProbability> {
        if (0.0..=1.0).contains(&value) {
            Ok(Probability(value))
        } else {
            Err(InvalidProbability {
                value,
                percent_hint: "a fraction was expected",
            })
        }
    }

    /// A probability from a percentage in `[0, 100]`, the unit of `links.toml`.
    pub fn from_percent(percent: f64) -> Result<Self, InvalidProbability> {
        if (0.0..=100.0).contains(&percent) {
            Ok(Probability(percent / 100.0))
        } else {
            Err(InvalidProbability {
                value: percent / 100.0,
                percent_hint: "the percentage is outside [0, 100]",
            })
        }
    }

    /// The probability as a fraction in `[0, 1]`.
    pub fn value(self) -> f64 {
        self.0
    }

    /// One Bernoulli trial: `true` with this probability. Always consumes exactly one draw.
    fn trial(self, rng: &mut impl Rng) -> bool {
        // The top 53 bits of a draw give a uniform f64 in [0, 1) with every value equally likely.
        let uniform = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        uniform < self.0
    }
}

/// Parameters of the two-state Gilbert-Elliott loss model.
///
/// The channel is either Good or Bad. For each packet the loss is decided with the loss
/// probability of the current state, then the state moves on. In the classic Gilbert model
/// (`loss_in_good = 0`, `loss_in_bad = 1`) losses come in bursts whose mean length is
/// `1 / leave_bad` packets, and the long-run loss ratio is `enter_bad / (enter_bad + leave_bad)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving Good -> Bad after a packet (`p` in the literature).
    pub enter_bad: Probability,
    /// Probability of moving Bad -> Good after a packet (`r` in the literature).
    pub leave_bad: Probability,
    /// Loss probability while Good (`1 - k`).
    pub loss_in_good: Probability,
    /// Loss probability while Bad (`1 - h`).
    pub loss_in_bad: Probability,
}

impl GilbertElliott {
    /// The classic Gilbert model with a given long-run loss ratio and mean burst length in
    /// packets: everything is lost while Bad, nothing while Good.
    ///
    /// A burst mean below one packet is impossible (a burst has at least one packet), and the
    /// loss ratio must leave room for the Good state; both give an error.
    pub fn from_loss_and_burst(
        loss: Probability,
        mean_burst_packets: f64,
    ) -> Result<Self, InvalidProbability> {
        let leave_bad = Probability::new(1.0 / mean_burst_packets)?;
        if loss.0 >= 1.0 {
            return Err(InvalidProbability {
                value: loss.0,
                percent_hint: "a bursty loss ratio must be below 1",
            });
        }
        // Stationary loss = p / (p + r)  =>  p = loss * r / (1 - loss).
        let enter_bad = Probability::new(loss.0 * leave_bad.0 / (1.0 - loss.0))?;
        Ok(GilbertElliott {
            enter_bad,
            leave_bad,
            loss_in_good: Probability::ZERO,
            loss_in_bad: Probability::ONE,
        })
    }

    /// The long-run fraction of packets lost.
    pub fn mean_loss(&self) -> f64 {
        let (p, r) = (self.enter_bad.0, self.leave_bad.0);
        if p + r == 0.0 {
            // The chain never moves: it stays in its initial Good state.
            return self.loss_in_good.0;
        }
        let bad_share = p / (p + r);
        bad_share * self.loss_in_bad.0 + (1.0 - bad_share) * self.loss_in_good.0
    }
}

/// Which random loss a link direction applies before its queue.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum LossModel {
    /// No random loss.
    #[default]
    None,
    /// Each packet is lost independently with this probability (netem's `loss random`).
    Bernoulli(Probability),
    /// Bursty loss (netem's `loss gemodel`).
    GilbertElliott(GilbertElliott),
}

impl LossModel {
    /// Independent loss of `percent` percent of the packets; zero means no loss at all.
    pub fn from_percent(percent: f64) -> Result<Self, InvalidProbability> {
        let probability = Probability::from_percent(percent)?;
        Ok(if probability.0 == 0.0 {
            LossModel::None
        } else {
            LossModel::Bernoulli(probability)
        })
    }

    /// The long-run fraction of packets this model loses.
    pub fn mean_loss(&self) -> f64 {
        match self {
            LossModel::None => 0.0,
            LossModel::Bernoulli(p) => p.0,
            LossModel::GilbertElliott(ge) => ge.mean_loss(),
        }
    }
}

/// The state of a loss model over a packet sequence.
#[derive(Debug, Clone)]
pub(crate) struct LossProcess {
    model: LossModel,
    /// Gilbert-Elliott's current state; unused by the other models.
    in_bad_state: bool,
}

impl LossProcess {
    pub(crate) fn new(model: LossModel) -> Self {
        LossProcess {
            model,
            in_bad_state: false,
        }
    }

    /// Whether the next packet is lost. The number of draws depends only on the model, never
    /// on earlier outcomes, so packet `n` meets the same draws for a given seed.
    pub(crate) fn next_is_lost(&mut self, rng: &mut impl Rng) -> bool {
        match self.model {
            LossModel::None => false,
            LossModel::Bernoulli(p) => p.trial(rng),
            LossModel::GilbertElliott(ge) => {
                let loss = if self.in_bad_state {
                    ge.loss_in_bad
                } else {
                    ge.loss_in_good
                };
                let lost = loss.trial(rng);
                let switch = if self.in_bad_state {
                    ge.leave_bad
                } else {
                    ge.enter_bad
                };
                if switch.trial(rng) {
                    self.in_bad_state = !self.in_bad_state;
                }
                lost
            }
        }
    }
}
