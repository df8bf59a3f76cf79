//! Scaling room actors horizontally: several `rooms` replicas of one cluster share the shards
//! through Redis leases. Each scenario runs steady traffic (a [`Verifier`]) through whichever
//! replicas are alive, brings about a change or a fault, and asserts that nothing acknowledged
//! was lost, nothing applied twice and no client saw a room go backwards; it prints one
//! `SCALING <scenario>: ...` line (stderr) with those counts, the gaps after the fault and the
//! scenario's own figures (convergence, handoff, failover seconds).
//!
//! The short form (the default, `make test`) uses short cluster timings (lease 4 s) and 32
//! shards; `SCALING_FULL=1` runs production timings, 256 shards in the scale scenario and
//! longer traffic. The scenarios run one at a time (`serial`): each starts several processes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use e2e::cluster::*;
use e2e::{sql, Vhost};

/// Each replica owns `shards / replicas` shards, give or take this many, once converged.
const SLACK: f64 = 2.0;

/// Short or full form of a figure.
fn pick<T>(short: T, full_form: T) -> T {
    if full() {
        full_form
    } else {
        short
    }
}

/// How long traffic flows between the steps of a scenario.
fn settle_time() -> Duration {
    pick(Duration::from_secs(2), Duration::from_secs(10))
}

fn traffic() -> TrafficOptions {
    TrafficOptions { rooms: pick(8, 16), ..TrafficOptions::default() }
}

/// How long the replicas get to share the shards evenly after a change.
fn converge_limit(t: &Timings) -> Duration {
    // A member is seen (or forgotten) within its TTL, moves wait to stabilize, every lease may
    // have to expire once, and each move drains.
    Duration::from_millis(t.member_ttl_ms + t.stabilize_ms + 2 * t.lease_ttl_ms + 2 * t.handoff_drain_ms)
        + Duration::from_secs(pick(15, 60))
}

/// How long every room gets to be acknowledged again after a fault.
fn recover_limit(t: &Timings) -> Duration {
    Duration::from_millis(3 * t.lease_ttl_ms + t.takeover_after_ms) + Duration::from_secs(20)
}

/// `n` replicas with these timings (and the ops endpoint), converged.
async fn converged(opts: e2e::RoomsOptions, t: &Timings, n: usize) -> ReplicaSet {
    let mut opts = opts;
    for (k, v) in t.env() {
        opts = opts.env(&k, &v);
    }
    let set = ReplicaSet::start(opts, n).await;
    let since = Instant::now();
    if let Err(why) = set.wait_converged(SLACK, since, converge_limit(t)).await {
        panic!("the {n} replicas did not converge at the start: {why}");
    }
    set
}

/// The replica whose shards carry the most traffic rooms (1 when the ops endpoint does not
/// tell), and its shards: the one to hit, so that the failover is measured on several rooms.
async fn busiest(set: &ReplicaSet, v: &Verifier) -> (usize, Option<BTreeSet<u16>>) {
    let mut best: (usize, Option<BTreeSet<u16>>, usize) = (1, None, 0);
    for i in set.live() {
        let Some(owned) = set.owned_by(i).await else { continue };
        let rooms = v.rooms_on_shards(set.shards, &owned).len();
        if best.1.is_none() || rooms > best.2 {
            best = (i, Some(owned), rooms);
        }
    }
    (best.0, best.1)
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}"))
}

#[actix_rt::test]
async fn scale_out_from_one_to_three_and_back_in_to_one_moves_shards_without_loss() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    let shards = pick(32, 256);
    let mut set = converged(replica_options("scale", shards), &t, 1).await;
    let mut v = Verifier::start(set.endpoints(), traffic()).await;
    v.run_for(settle_time()).await;

    let out = v.fault("scale-out");
    set.add().await;
    set.add().await;
    let converged_out = set.wait_converged(SLACK, out, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
    let owned_out = set.shards_owned().await;
    let (handoff_sum, handoff_count) = set.handoffs().await;
    assert!(handoff_count >= 1.0, "shards moved to the new replicas but no handoff was measured");
    v.note("converge_out_s", format!("{converged_out:.2}"));
    v.note("owned_after_out", format!("{owned_out:?}"));
    v.note("handoffs_out", handoff_count);
    v.note("handoff_out_mean_s", format!("{:.3}", handoff_sum / handoff_count));
    v.run_for(settle_time()).await;

    let before_in = set.handoffs().await;
    let scale_in = v.fault("scale-in");
    for i in [2, 1] {
        let status = set.terminate(i, 30).await;
        assert!(status.is_some_and(|s| s.success()), "replica {i} did not exit cleanly on SIGTERM: {status:?}");
    }
    let terminated_s = scale_in.elapsed().as_secs_f64();
    let converged_in =
        set.wait_converged(SLACK, scale_in, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
    let after_in = set.handoffs().await;
    v.note("terminate_two_s", format!("{terminated_s:.2}"));
    v.note("converge_in_s", format!("{converged_in:.2}"));
    v.note("handoffs_in_r0", after_in.1 - before_in.1);
    v.note("handoff_in_mean_s", format!("{:.3}", (after_in.0 - before_in.0) / (after_in.1 - before_in.1).max(1.0)));
    v.run_for(settle_time()).await;

    v.stop().await;
    let report = v.report(&format!("scale 1->3->1 ({shards} shards)"));
    report.assert_clean();
}

#[actix_rt::test]
async fn sigkill_of_one_of_three_replicas_mid_traffic_fails_over_without_loss() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    let shards = 32;
    let mut set = converged(replica_options("kill", shards), &t, 3).await;
    let mut v = Verifier::start(set.endpoints(), traffic()).await;
    v.run_for(settle_time()).await;

    let (victim, owned) = busiest(&set, &v).await;
    let killed = v.fault("sigkill");
    set.kill(victim);
    v.wait_all_recovered(killed, recover_limit(&t)).await;
    let converged = set.wait_converged(SLACK, killed, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
    v.run_for(settle_time()).await;

    v.stop().await;
    let victim_rooms = owned.as_ref().map(|o| v.rooms_on_shards(shards, o));
    // Failover: the longest stretch without an acknowledgement of the rooms whose shards the
    // killed replica owned (and, apart, from the kill to their first acknowledgement).
    let (failover, first_ack) = match &victim_rooms {
        Some(rooms) if !rooms.is_empty() => (v.outage_of(rooms, Some("sigkill")), v.gap_of(rooms, Some("sigkill"))),
        _ => (None, None),
    };
    v.note("victim", victim);
    v.note("victim_shards", owned.as_ref().map_or("?".to_owned(), |o| o.len().to_string()));
    v.note("victim_rooms", victim_rooms.as_ref().map_or("?".to_owned(), |r| format!("{r:?}")));
    v.note("failover_s", secs(failover));
    v.note("failover_first_ack_s", secs(first_ack));
    v.note("converge_s", format!("{converged:.2}"));
    let report = v.report("sigkill 1 of 3");
    report.assert_clean();
}

#[actix_rt::test]
async fn a_rolling_restart_of_three_replicas_loses_nothing() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    let mut set = converged(replica_options("roll", 32), &t, 3).await;
    let mut v = Verifier::start(set.endpoints(), traffic()).await;
    v.run_for(settle_time()).await;

    let mut steps = Vec::new();
    for i in 0..3 {
        let began = v.fault(&format!("roll r{i}"));
        let status = set.terminate(i, 30).await;
        assert!(status.is_some_and(|s| s.success()), "replica {i} did not exit cleanly on SIGTERM: {status:?}");
        let exited = began.elapsed().as_secs_f64();
        set.restart(i).await;
        set.wait_owns_shards(i, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
        let converged =
            set.wait_converged(SLACK, began, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
        steps.push(format!("r{i}:exit={exited:.1}s,converged={converged:.1}s"));
    }
    v.note("steps", steps.join(","));
    v.run_for(settle_time()).await;

    v.stop().await;
    let report = v.report("rolling restart of 3");
    report.assert_clean();
}

#[actix_rt::test]
async fn a_redis_restart_that_loses_every_lease_loses_no_message() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    let mut redis = PrivateRedis::new().await;
    let opts = replica_options("redis", 32).env("CHAT__REDIS__URL", &redis.url());
    let set = converged(opts, &t, 3).await;
    let mut v = Verifier::start(set.endpoints(), traffic()).await;
    v.run_for(settle_time()).await;

    let down = v.fault("redis restart");
    redis.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.start().await;
    v.wait_all_recovered(down, recover_limit(&t)).await;
    let converged = set.wait_converged(SLACK, down, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
    v.run_for(settle_time()).await;

    v.stop().await;
    let all: Vec<usize> = (0..v.rooms().len()).collect();
    // No room acknowledged anything for this long (the leases are all gone with Redis' data).
    v.note("unavailability_s", secs(v.global_outage("redis restart")));
    v.note("room_outage_max_s", secs(v.outage_of(&all, Some("redis restart"))));
    v.note("converge_s", format!("{converged:.2}"));
    let report = v.report("redis restart (data lost)");
    report.assert_clean();
}

#[actix_rt::test]
async fn a_rabbitmq_restart_keeps_the_queued_commands_and_loses_no_message() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    let mut rabbit = PrivateRabbit::new().await;
    let first_start = rabbit.last_startup;
    let mut opts = replica_options("rabbit", 32).env("CHAT__AMQP__URL", &rabbit.url());
    opts.vhost = Some(Vhost::external());
    let set = converged(opts, &t, 3).await;
    let mut v = Verifier::start(set.endpoints(), traffic()).await;
    v.run_for(settle_time()).await;

    let down = v.fault("rabbitmq restart");
    rabbit.restart().await;
    let back = down.elapsed();
    v.wait_all_recovered(down, recover_limit(&t) + Duration::from_secs(30)).await;
    let converged = set.wait_converged(SLACK, down, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
    v.run_for(settle_time()).await;

    v.stop().await;
    let all: Vec<usize> = (0..v.rooms().len()).collect();
    v.note("broker_first_start_s", format!("{:.1}", first_start.as_secs_f64()));
    v.note("broker_restart_s", format!("{:.1}", back.as_secs_f64()));
    v.note("unavailability_s", secs(v.global_outage("rabbitmq restart")));
    v.note("room_outage_max_s", secs(v.outage_of(&all, Some("rabbitmq restart"))));
    v.note("converge_s", format!("{converged:.2}"));
    let report = v.report("rabbitmq restart");
    report.assert_clean();
}

/// What tells that replica `i` was fenced out: its stale-epoch rejections and lost leases.
async fn fenced(set: &ReplicaSet, i: usize) -> f64 {
    set.metric(i, "rooms_stale_epoch_rejections_total").await.unwrap_or(0.0)
        + set.metric(i, "rooms_leases_lost_total").await.unwrap_or(0.0)
}

#[actix_rt::test]
async fn a_replica_stopped_past_its_lease_is_fenced_out_and_the_cluster_converges_again() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    let mut set = converged(replica_options("sigstop", 32), &t, 3).await;
    let mut v = Verifier::start(set.endpoints(), traffic()).await;
    v.run_for(settle_time()).await;

    let (victim, owned) = busiest(&set, &v).await;
    let before = fenced(&set, victim).await;
    let stopped = v.fault("sigstop");
    set.stop(victim);
    tokio::time::sleep(2 * t.lease_ttl()).await;
    set.cont(victim);
    let resumed = v.fault("sigcont");
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let now = fenced(&set, victim).await;
        if now > before || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    v.wait_all_recovered(stopped, recover_limit(&t)).await;
    let converged = set.wait_converged(SLACK, resumed, converge_limit(&t)).await.unwrap_or_else(|why| panic!("{why}"));
    v.run_for(settle_time()).await;

    v.stop().await;
    let victim_rooms = owned.as_ref().map(|o| v.rooms_on_shards(set.shards, o)).unwrap_or_default();
    v.note("victim", victim);
    v.note("victim_rooms", format!("{victim_rooms:?}"));
    v.note("victim_outage_s", secs(v.outage_of(&victim_rooms, Some("sigstop"))));
    v.note("stale_or_lease_lost_before", before);
    v.note("stale_or_lease_lost_after", after);
    v.note("converge_after_cont_s", format!("{converged:.2}"));
    let report = v.report("sigstop 1 of 3 past its lease");
    report.assert_clean();
    assert!(
        after > before,
        "the resumed replica counted no stale-epoch rejection and no lost lease ({before} -> {after}): {}",
        report.line()
    );
}

#[actix_rt::test]
async fn a_poison_command_is_dead_lettered_while_its_shard_carries_on() {
    let _one_at_a_time = serial().await;
    let t = Timings::for_run();
    // Few shards and many rooms: several traffic rooms share the poisoned room's shard.
    let shards = 8;
    let opts = replica_options("poison", shards).env("CHAT__AMQP__DELIVERY_LIMIT", "3");
    let set = converged(opts, &t, 2).await;
    let mut v = Verifier::start(set.endpoints(), TrafficOptions { rooms: 12, ..traffic() }).await;
    v.run_for(settle_time()).await;

    // The shard with the most traffic rooms, and a room of it whose stored row is corrupt.
    let mut by_shard: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for r in 0..v.rooms().len() {
        by_shard.entry(v.shard_of(r, shards)).or_default().push(r);
    }
    let (shard, neighbours) =
        by_shard.iter().max_by_key(|(_, rooms)| rooms.len()).map(|(s, r)| (*s, r.clone())).unwrap();
    let poison = loop {
        let id = uuid::Uuid::now_v7().to_string();
        if chat_protocol::shard_of(&chat_protocol::RoomId::new(id.clone()), shards) == shard {
            break id;
        }
    };
    sql(&format!(
        "INSERT INTO \"{}\".rooms (id, tenant, kind, name, created_at, updated_at) \
         VALUES ('{poison}', 'acme', 'no-such-kind', 'poison', 0, 0)",
        set.name
    ));

    // A post into it, straight onto its shard's queue (the HTTP front door refuses a room it
    // cannot read): every delivery fails, the broker gives up after 3.
    let settings = chat_bus::BrokerSettings {
        url: set.amqp_url(),
        prefix: format!("{}.", set.name),
        shards,
        prefetch: 1,
        heartbeat_secs: 10,
        delivery_limit: 3,
    };
    let bus = chat_bus::connect(&settings).await.expect("connecting to the replicas' broker");
    let user = v.rooms()[neighbours[0]].members[0].clone();
    let envelope = chat_protocol::bus::CommandEnvelope {
        command_id: format!("poison-{poison}"),
        room_id: chat_protocol::RoomId::new(poison.clone()),
        actor: chat_protocol::UserId::new(format!("{user}@{TENANT}")),
        tenant: chat_protocol::TenantId::new(TENANT),
        reply_to: None,
        issued_at_ms: chat_protocol::now_ms(),
        command: chat_protocol::bus::RoomCommand::Post {
            client_msg_id: Some("poison".into()),
            body: serde_json::from_value(serde_json::json!({"type": "text", "text": "poison"})).expect("a text body"),
        },
    };
    let payload = serde_json::to_vec(&envelope).expect("an envelope encodes");
    let poisoned = v.fault("poison");
    bus.publish_command(shard, &envelope.command_id, payload).await.expect("the poison command is queued");

    // It ends in the dead-letter queue; the replicas' metrics say so.
    let deadline = Instant::now() + Duration::from_secs(pick(60, 120));
    let (depth_metric, dead_lettered_metric, broker_depth) = loop {
        let depth = set.metric_total("rooms_dead_letter_depth").await;
        let dead_lettered = set.metric_total("rooms_dead_lettered_total").await;
        let broker = bus.dead_letter_depth().await.unwrap_or(0);
        if ((depth >= 1.0 || dead_lettered >= 1.0) && broker >= 1) || Instant::now() > deadline {
            break (depth, dead_lettered, broker);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let dead_lettered_after = poisoned.elapsed().as_secs_f64();
    // The other rooms of that shard kept being answered.
    let carried_on = v.wait_rooms_acked_after(poisoned, &neighbours, Duration::from_secs(10)).await;
    v.run_for(settle_time()).await;

    v.stop().await;
    v.note("poison_shard", shard);
    v.note("shard_neighbours", format!("{neighbours:?}"));
    v.note("neighbours_gap_s", secs(v.gap_of(&neighbours, Some("poison"))));
    v.note("dead_letter_depth_metric", depth_metric);
    v.note("dead_lettered_total_metric", dead_lettered_metric);
    v.note("dead_letter_queue_depth", broker_depth);
    v.note("dead_lettered_after_s", format!("{dead_lettered_after:.1}"));
    let report = v.report("poison command");
    report.assert_clean();
    assert!(carried_on.is_ok(), "the poisoned shard's other rooms stalled: {carried_on:?}");
    assert!(broker_depth >= 1, "the poison command is not in the dead-letter queue: {}", report.line());
    assert!(
        depth_metric >= 1.0 || dead_lettered_metric >= 1.0,
        "no replica reports the dead letter (rooms_dead_letter_depth, rooms_dead_lettered_total): {}",
        report.line()
    );
}

// Checks of the harness itself, which pass with today's single-process engine too.

#[actix_rt::test]
async fn verifier_sees_no_loss_with_one_replica() {
    let _one_at_a_time = serial().await;
    let mut set = ReplicaSet::start(replica_options("vsane", 4), 1).await;
    let mut v = Verifier::start(set.endpoints(), TrafficOptions { rooms: 4, ..TrafficOptions::default() }).await;
    v.run_for(Duration::from_secs(2)).await;
    // A crash and a restart with the same node id: the senders retry, the clients reconnect
    // and sync, the gap is measured.
    let killed = v.fault("sigkill+restart r0");
    set.restart(0).await;
    v.wait_all_recovered(killed, Duration::from_secs(60)).await;
    v.run_for(Duration::from_secs(2)).await;
    v.stop().await;
    let report = v.report("one replica, killed and restarted");
    report.assert_clean();
    assert_eq!(report.unsettled, 0, "{}", report.line());
    assert_eq!(report.undelivered, 0, "the clients resync what they missed: {}", report.line());
    assert!(report.reconnects >= report.clients as u64, "every client reconnected: {}", report.line());
    assert!(report.gap_max.is_some_and(|g| g > 0.0), "{}", report.line());
}

#[actix_rt::test]
async fn private_redis_and_rabbitmq_restart_under_one_replica() {
    let _one_at_a_time = serial().await;
    let mut redis = PrivateRedis::new().await;
    let mut rabbit = PrivateRabbit::new().await;
    let first_start = rabbit.last_startup;
    let mut opts =
        replica_options("private", 4).env("CHAT__REDIS__URL", &redis.url()).env("CHAT__AMQP__URL", &rabbit.url());
    opts.vhost = Some(Vhost::external());
    let mut set = ReplicaSet::start(opts, 1).await;
    let queues = String::from_utf8_lossy(&rabbit.ctl(&["-q", "list_queues", "name", "type"]).stdout).into_owned();
    let quorum: BTreeSet<&str> =
        queues.lines().filter(|l| l.ends_with("quorum")).filter_map(|l| l.split_whitespace().next()).collect();
    assert!(quorum.iter().any(|q| q.ends_with("rooms.cmd.s000")), "the shard queues on the private broker: {queues}");
    let mut v = Verifier::start(set.endpoints(), TrafficOptions { rooms: 3, ..TrafficOptions::default() }).await;
    v.run_for(Duration::from_secs(2)).await;

    // The broker restarts on the same data: its quorum queues and what they hold survive. The
    // replica is restarted after it (how replicas ride out a broker restart by themselves is
    // the business of the scenario above; this checks the harness).
    let broker_down = v.fault("rabbitmq restart");
    rabbit.restart().await;
    let broker_back = broker_down.elapsed();
    set.restart(0).await;
    v.wait_all_recovered(broker_down, Duration::from_secs(90)).await;
    let queues_after = String::from_utf8_lossy(&rabbit.ctl(&["-q", "list_queues", "name"]).stdout).into_owned();
    for q in &quorum {
        assert!(queues_after.lines().any(|l| l.trim() == *q), "quorum queue {q} survived the restart: {queues_after}");
    }

    let redis_down = v.fault("redis restart");
    redis.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.start().await;
    v.wait_all_recovered(redis_down, Duration::from_secs(60)).await;
    v.run_for(Duration::from_secs(2)).await;

    v.stop().await;
    v.note("broker_first_start_s", format!("{:.1}", first_start.as_secs_f64()));
    v.note("broker_restart_s", format!("{:.1}", broker_back.as_secs_f64()));
    v.note("broker_second_start_s", format!("{:.1}", rabbit.last_startup.as_secs_f64()));
    v.note("quorum_queues", quorum.len());
    let report = v.report("private redis and rabbitmq restarts, one replica");
    report.assert_clean();
}
