//! The ops view: each member with its heartbeat, each shard with its owner, epoch, queue depth
//! and active rooms. Built from Redis (leases, membership, the stats each member stores with
//! its heartbeat) and the broker (queue depths), so any replica answers for the whole cluster.

use std::collections::HashMap;

use chat_bus::SharedBus;
use serde::{Deserialize, Serialize};

use super::leases::{LeaseError, Leases};
use super::plan::pod_of;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub members: Vec<MemberView>,
    pub shards: Vec<ShardView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberView {
    pub member: String,
    pub pod: String,
    /// Since its last heartbeat (Redis' clock).
    pub heartbeat_age_ms: i64,
    pub draining: bool,
    pub shards_owned: usize,
    pub rooms_active: u64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShardView {
    pub shard: u16,
    pub owner: Option<String>,
    pub epoch: Option<i64>,
    /// Commands waiting (ready, not delivered); `None` when the broker did not say.
    pub queue_depth: Option<u64>,
    pub active_rooms: u64,
}

/// What a member stores with its heartbeat.
#[derive(Debug, Default, Deserialize)]
struct Stats {
    #[serde(default)]
    shards: HashMap<String, ShardStats>,
}

#[derive(Debug, Default, Deserialize)]
struct ShardStats {
    #[serde(default)]
    rooms: u64,
}

pub async fn build(leases: &Leases, bus: &SharedBus, member_ttl_ms: i64) -> Result<ClusterView, LeaseError> {
    let beat = leases.heartbeat("", std::time::Duration::ZERO, "").await?;
    let holders = leases.holders().await?;
    let ids: Vec<String> = beat.members.iter().map(|(id, _)| id.clone()).collect();
    let stats: Vec<Stats> = leases
        .stats(&ids)
        .await?
        .into_iter()
        .map(|json| json.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or_default())
        .collect();
    let depths: HashMap<u16, u64> = bus.shard_depths().await.map(|d| d.into_iter().collect()).unwrap_or_default();
    let rooms_of = |member: &str, shard: u16| -> u64 {
        ids.iter()
            .position(|id| id == member)
            .and_then(|i| stats[i].shards.get(&shard.to_string()))
            .map_or(0, |s| s.rooms)
    };
    let shards: Vec<ShardView> = holders
        .iter()
        .enumerate()
        .map(|(i, holder)| {
            let shard = i as u16;
            ShardView {
                shard,
                owner: holder.as_ref().map(|h| h.member.clone()),
                epoch: holder.as_ref().map(|h| h.epoch),
                queue_depth: depths.get(&shard).copied(),
                active_rooms: holder.as_ref().map_or(0, |h| rooms_of(&h.member, shard)),
            }
        })
        .collect();
    let members = beat
        .members
        .iter()
        .enumerate()
        .map(|(i, (id, expiry))| MemberView {
            member: id.clone(),
            pod: pod_of(id).to_owned(),
            heartbeat_age_ms: (beat.now_ms - (expiry - member_ttl_ms)).max(0),
            draining: beat.draining.contains(id),
            shards_owned: shards.iter().filter(|s| s.owner.as_deref() == Some(id.as_str())).count(),
            rooms_active: stats[i].shards.values().map(|s| s.rooms).sum(),
        })
        .collect();
    Ok(ClusterView { members, shards })
}
