//! [`run`]: one load run from start to report. Connects subscribers, publishers and idle
//! holders at the connect rate, waits until every subscription is granted, starts all
//! publishers at one instant, stops them after the duration, lets subscribers drain, and folds
//! what every client measured into a [`ScenarioReport`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::sleep_until;

use crate::client::{
    run_held_holder, run_holder, run_publisher, run_subscriber, PublisherPlan, Schedule,
    SubscriberOutcome,
};
use crate::error::BenchError;
use crate::held::HolderRings;
use crate::link::Link;
use crate::progress::{Phase, Progress};
use crate::spec::{LoadSpec, Target};
use crate::stats::{new_histogram, record, LatencySummary, LiveCounters, ScenarioReport};

/// How long publishers wait for the last acknowledgements after their duration ends.
const ACK_GRACE: Duration = Duration::from_secs(5);

/// A drain ends when no message arrived for this long: far longer than any gap in a broker
/// that is still flushing its queues on loopback.
const DRAIN_QUIET: Duration = Duration::from_millis(500);

/// What one client task hands back.
enum ClientResult {
    Subscriber(SubscriberOutcome),
    Done,
}

/// What one client task reports when it finishes.
struct TaskEnd {
    connect_latency: Option<Duration>,
    result: Result<ClientResult, BenchError>,
}

/// Runs `spec` against `target`, showing `progress`, and reports what was measured. Client
/// failures are counted in the report; only an invalid spec is an error.
pub async fn run(
    target: &Target,
    spec: &LoadSpec,
    progress: &Progress,
) -> Result<ScenarioReport, BenchError> {
    spec.check(target)?;
    let subscribers = spec.scenario.subscribers(spec.clients);
    let publishers = spec.scenario.publishers(spec.clients);
    let holders = spec.scenario.idle_connections(spec.clients);
    let total = subscribers + publishers + holders;
    let held = hold_without_descriptors(target, spec, holders, total);
    let counters = Arc::new(LiveCounters::default());
    let target = Arc::new(target.clone());
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (go_tx, go_rx) = watch::channel(None::<Schedule>);
    let (stop_tx, stop_rx) = watch::channel(false);
    progress.start(spec, total, counters.clone());

    let began = Instant::now();
    let slot = |i: usize| match spec.connect_rate {
        Some(rate) => began + Duration::from_secs_f64(i as f64 / rate),
        None => began,
    };
    let mut subscriber_tasks = JoinSet::new();
    let mut publisher_tasks = JoinSet::new();
    let mut holder_tasks = JoinSet::new();
    for i in 0..total {
        let role = if i < subscribers {
            Role::Subscriber(i)
        } else if i < subscribers + publishers {
            Role::Publisher(i - subscribers)
        } else {
            Role::Holder(i - subscribers - publishers)
        };
        let task = client_task(ClientContext {
            target: target.clone(),
            spec: spec.clone(),
            role,
            global_index: i,
            connect_at: slot(i),
            counters: counters.clone(),
            ready: ready_tx.clone(),
            go: go_rx.clone(),
            stop: stop_rx.clone(),
            held: held.clone(),
        });
        match role {
            Role::Subscriber(_) => subscriber_tasks.spawn(task),
            Role::Publisher(_) => publisher_tasks.spawn(task),
            Role::Holder(_) => holder_tasks.spawn(task),
        };
    }
    drop(ready_tx);
    // Every client reports once, connected (and subscribed) or failed.
    for _ in 0..total {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }

    progress.phase(Phase::Running);
    // A short lead time so every publisher task sees the schedule before it starts.
    let start = Instant::now() + Duration::from_millis(20);
    let schedule = Schedule {
        start,
        end: start + spec.duration,
        ack_grace: ACK_GRACE,
    };
    go_tx.send_replace(Some(schedule));
    let mut ends = Vec::with_capacity(total);
    if publishers > 0 {
        while let Some(joined) = publisher_tasks.join_next().await {
            ends.push(joined);
        }
    } else {
        // Without publishers the run lasts its duration; with only idle holders, it ends
        // sooner if none is left to hold (the broker closed them all, say).
        let only_holders = holders > 0 && subscribers == 0;
        let end = sleep_until(schedule.end.into());
        tokio::pin!(end);
        loop {
            tokio::select! {
                () = &mut end => break,
                joined = holder_tasks.join_next(), if only_holders => match joined {
                    Some(joined) => ends.push(joined),
                    None => break,
                },
            }
        }
    }
    let publish_elapsed = start.elapsed();
    if publishers > 0 && subscribers > 0 {
        progress.phase(Phase::Draining);
        drain(spec, &counters).await;
    }
    stop_tx.send_replace(true);
    while let Some(joined) = subscriber_tasks.join_next().await {
        ends.push(joined);
    }
    while let Some(joined) = holder_tasks.join_next().await {
        ends.push(joined);
    }
    if let Some(rings) = &held {
        rings.close();
    }
    progress.finish();

    let mut latency = new_histogram();
    let mut connect_latency = new_histogram();
    let mut duplicates = 0;
    let mut last_receive: Option<Instant> = None;
    let mut first_error = None;
    for end in ends {
        let end = match end {
            Ok(end) => end,
            Err(join_error) => {
                first_error.get_or_insert_with(|| format!("client task failed: {join_error}"));
                continue;
            }
        };
        if let Some(d) = end.connect_latency {
            record(&mut connect_latency, d);
        }
        match end.result {
            Ok(ClientResult::Subscriber(outcome)) => {
                merge(&mut latency, &outcome.latency);
                duplicates += outcome.duplicates;
                last_receive = last_receive.max(outcome.last_receive);
            }
            Ok(ClientResult::Done) => {}
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }

    let sent = LiveCounters::get(&counters.sent);
    let received = LiveCounters::get(&counters.received);
    let expected = spec
        .scenario
        .receivers_per_message(spec.clients)
        .map(|per_message| sent * per_message);
    let delivery_elapsed =
        last_receive.map_or(Duration::ZERO, |last| last.saturating_duration_since(start));
    let unique = received.saturating_sub(duplicates);
    Ok(ScenarioReport {
        scenario: spec.scenario,
        transport: target.url.kind,
        url: target.url.to_string(),
        qos: spec.qos,
        payload_size: spec.payload_size,
        clients: spec.clients,
        publishers,
        subscribers,
        rate: spec.rate,
        duration: spec.duration,
        publish_started: start,
        publish_elapsed,
        delivery_elapsed,
        sent,
        acked: LiveCounters::get(&counters.acked),
        expected,
        received,
        duplicates,
        lost: expected.map(|expected| expected.saturating_sub(unique)),
        sent_per_sec: per_second(sent, publish_elapsed),
        delivered_per_sec: per_second(unique, delivery_elapsed),
        latency: LatencySummary::of(&latency),
        connect_latency: LatencySummary::of(&connect_latency),
        connected: LiveCounters::get(&counters.connected),
        connect_failed: LiveCounters::get(&counters.connect_failed),
        client_errors: LiveCounters::get(&counters.client_errors),
        first_error,
    })
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

fn merge(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Both histograms come from `new_histogram`, so they have the same bounds and `add`
    // cannot fail on range.
    let _ = into.add(from);
}

/// Waits until every expected message arrived, nothing arrived for [`DRAIN_QUIET`], or the
/// spec's drain time passed.
async fn drain(spec: &LoadSpec, counters: &LiveCounters) {
    let expected = spec
        .scenario
        .receivers_per_message(spec.clients)
        .map(|per_message| LiveCounters::get(&counters.sent) * per_message);
    let deadline = Instant::now() + spec.drain;
    let mut last_count = LiveCounters::get(&counters.received);
    let mut last_change = Instant::now();
    loop {
        let received = LiveCounters::get(&counters.received);
        if expected.is_some_and(|expected| received >= expected) {
            return;
        }
        let now = Instant::now();
        if received != last_count {
            last_count = received;
            last_change = now;
        }
        if now >= deadline || now.duration_since(last_change) >= DRAIN_QUIET {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Subscriber(usize),
    Publisher(usize),
    Holder(usize),
}

struct ClientContext {
    target: Arc<Target>,
    spec: LoadSpec,
    role: Role,
    global_index: usize,
    connect_at: Instant,
    counters: Arc<LiveCounters>,
    ready: mpsc::UnboundedSender<()>,
    go: watch::Receiver<Option<Schedule>>,
    stop: watch::Receiver<bool>,
    /// Where idle holders wait without a descriptor, when the run needs more connections
    /// than the open-file limit allows.
    held: Option<Arc<HolderRings>>,
}

async fn client_task(cx: ClientContext) -> TaskEnd {
    sleep_until(cx.connect_at.into()).await;
    let (tag, index) = match cx.role {
        Role::Subscriber(i) => ('s', i),
        Role::Publisher(i) => ('p', i),
        Role::Holder(i) => ('c', i),
    };
    let client_id = format!("{}{tag}{index}", cx.target.client_id_prefix);
    let (link, connect_latency) = match Link::connect(&cx.target, cx.global_index, &client_id).await
    {
        Ok(connected) => connected,
        Err(e) => {
            LiveCounters::add(&cx.counters.connect_failed, 1);
            let _ = cx.ready.send(());
            return TaskEnd {
                connect_latency: None,
                result: Err(e),
            };
        }
    };
    LiveCounters::add(&cx.counters.connected, 1);
    let result = drive(link, &cx, index).await;
    if result.is_err() {
        LiveCounters::add(&cx.counters.client_errors, 1);
    }
    TaskEnd {
        connect_latency: Some(connect_latency),
        result,
    }
}

/// Finishes the role's setup (SUBSCRIBE), signals readiness exactly once, and runs the role's
/// main loop.
async fn drive(
    mut link: Link,
    cx: &ClientContext,
    index: usize,
) -> Result<ClientResult, BenchError> {
    let keep_alive = cx.target.keep_alive;
    let counters = cx.counters.clone();
    match cx.role {
        Role::Subscriber(_) => {
            let setup = match cx.spec.subscribe_filter(index) {
                Ok(filter) => link.subscribe(filter, cx.spec.qos).await,
                Err(e) => Err(e),
            };
            let _ = cx.ready.send(());
            setup?;
            LiveCounters::add(&counters.subscribed, 1);
            run_subscriber(link, keep_alive, cx.stop.clone(), counters)
                .await
                .map(ClientResult::Subscriber)
        }
        Role::Publisher(_) => {
            let _ = cx.ready.send(());
            let plan = PublisherPlan {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                topic: cx.spec.publish_topic(index)?,
                qos: cx.spec.qos,
                payload_size: cx.spec.payload_size,
                rate: cx.spec.rate,
                phase: phase(&cx.spec, index),
                inflight: cx.spec.inflight,
                keep_alive,
            };
            let mut go = cx.go.clone();
            let schedule = match go.wait_for(Option::is_some).await {
                Ok(schedule) => *schedule,
                Err(_) => None,
            };
            let schedule = schedule.ok_or(BenchError::Closed)?;
            run_publisher(link, plan, schedule, counters).await?;
            Ok(ClientResult::Done)
        }
        Role::Holder(_) => {
            let _ = cx.ready.send(());
            match &cx.held {
                Some(rings) => {
                    let key = cx.global_index as u64;
                    run_held_holder(link, rings.clone(), key, keep_alive, cx.stop.clone()).await?
                }
                None => run_holder(link, keep_alive, cx.stop.clone()).await?,
            }
            Ok(ClientResult::Done)
        }
    }
}

/// Rings for the idle holders of a run over plain TCP that asks for more connections than fit
/// under the open-file limit (less what the process needs besides); `None` for any other run,
/// or where sockets cannot be held without descriptors.
fn hold_without_descriptors(
    target: &Target,
    spec: &LoadSpec,
    holders: usize,
    total: usize,
) -> Option<Arc<HolderRings>> {
    /// Descriptors the process needs besides its connections.
    const RESERVED: u64 = 64;
    let soft = rlimit::Resource::NOFILE.get().ok()?.0;
    if holders == 0
        || target.url.kind != mquictt_transport::TransportKind::Tcp
        || total as u64 + RESERVED <= soft
    {
        return None;
    }
    match HolderRings::open(soft) {
        Ok(rings) => {
            tracing::info!(
                holders,
                open_file_limit = soft,
                "idle connections wait without file descriptors"
            );
            if spec.connect_rate.is_none() {
                // Each needs its descriptor until its CONNACK came.
                tracing::warn!("connecting more clients at once than the open-file limit allows: pass --connect-rate (3000, say) so that those still connecting fit");
            }
            Some(rings)
        }
        Err(e) => {
            tracing::warn!(error = %e, "idle connections past the open-file limit will fail: they cannot be held without descriptors here");
            None
        }
    }
}

/// Offset of publisher `index`'s first message: publishers are spread evenly over one period
/// of the rate.
fn phase(spec: &LoadSpec, index: usize) -> std::time::Duration {
    let publishers = spec.scenario.publishers(spec.clients).max(1);
    match spec.rate {
        Some(rate) => {
            Duration::from_secs_f64((index % publishers) as f64 / publishers as f64 / rate)
        }
        None => Duration::ZERO,
    }
}
