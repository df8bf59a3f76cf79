//! One reconcile round, decided without I/O: from the live members, the leases as Redis holds
//! them and what this member is doing with each shard, which shards to acquire, which to hand
//! over and which are lost.
//!
//! - acquire a free shard this member should own, at once; any shard free for longer than
//!   `takeover_after`, whoever it was meant for (liveness, whatever the others see);
//! - hand over a shard another member should own once that member has been live for
//!   `stabilize` (so a flapping member moves nothing), at most `max_moves` per round;
//! - a shard this member holds whose lease names someone else, or nobody, is lost;
//! - a draining or shutting-down member acquires nothing and hands everything over (shutting
//!   down: all at once, the lease is what the next owner waits for).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::assign::assign;

/// What this member does with a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Free,
    Owned,
    /// A graceful release is under way; the lease is still held.
    Releasing,
}

/// A live member as this member sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// `<pod>/<boot id>`.
    pub id: String,
    pub draining: bool,
    /// When this member first saw it.
    pub first_seen: Instant,
}

impl Member {
    /// The pod part of the id: shards follow pod names, so a restarted pod gets its shards back.
    pub fn pod(&self) -> &str {
        pod_of(&self.id)
    }
}

pub fn pod_of(member: &str) -> &str {
    member.rsplit_once('/').map_or(member, |(pod, _)| pod)
}

pub struct Rules {
    pub takeover_after: Duration,
    pub stabilize: Duration,
    pub max_moves: usize,
}

pub struct Inputs<'a> {
    pub me: &'a str,
    pub now: Instant,
    pub members: &'a [Member],
    /// The member holding each shard's lease, if any.
    pub leases: &'a [Option<String>],
    pub local: &'a [Local],
    /// Since when each shard has been seen without a lease.
    pub free_since: &'a [Option<Instant>],
    /// Acquire nothing (Redis lost its data a moment ago, or this member is stopping).
    pub hold_back: bool,
    pub shutting_down: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub acquire: Vec<u16>,
    pub release: Vec<u16>,
    pub lost: Vec<u16>,
    /// Shards with no lease now.
    pub unowned: usize,
}

/// The desired owner (member id) of each shard, over the live members that are not draining.
pub fn desired(shards: u16, members: &[Member]) -> Vec<Option<String>> {
    let mut eligible: Vec<&Member> = members.iter().filter(|m| !m.draining).collect();
    eligible.sort_by(|a, b| a.pod().cmp(b.pod()).then_with(|| a.id.cmp(&b.id)));
    eligible.dedup_by(|a, b| a.pod() == b.pod()); // one incarnation per pod (the oldest id)
    let pods: Vec<&str> = eligible.iter().map(|m| m.pod()).collect();
    let owners = assign(shards, &pods);
    (0..usize::from(shards)).map(|s| owners.get(s).map(|i| eligible[*i].id.clone())).collect()
}

pub fn reconcile(inputs: &Inputs<'_>, rules: &Rules) -> Plan {
    let shards = inputs.local.len() as u16;
    let desired = desired(shards, inputs.members);
    let members: HashMap<&str, &Member> = inputs.members.iter().map(|m| (m.id.as_str(), m)).collect();
    let me_draining = members.get(inputs.me).is_some_and(|m| m.draining);
    let giving_all = inputs.shutting_down || me_draining;
    let mut plan = Plan::default();
    for s in 0..shards {
        let i = usize::from(s);
        let holder = inputs.leases.get(i).and_then(|h| h.as_deref());
        let want = desired.get(i).and_then(|d| d.as_deref());
        if holder.is_none() {
            plan.unowned += 1;
        }
        match inputs.local[i] {
            Local::Owned | Local::Releasing if holder != Some(inputs.me) => plan.lost.push(s),
            Local::Releasing => {}
            Local::Owned => {
                let owed = match want {
                    Some(other) if other != inputs.me => {
                        members.get(other).is_some_and(|m| inputs.now.duration_since(m.first_seen) >= rules.stabilize)
                    }
                    _ => false,
                };
                if inputs.shutting_down || ((me_draining || owed) && plan.release.len() < rules.max_moves) {
                    plan.release.push(s);
                }
            }
            Local::Free if holder.is_none() && !inputs.hold_back && !giving_all => {
                let free_for = inputs.free_since[i].map_or(Duration::ZERO, |t| inputs.now.duration_since(t));
                if want == Some(inputs.me) || free_for >= rules.takeover_after {
                    plan.acquire.push(s);
                }
            }
            Local::Free => {}
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules =
        Rules { takeover_after: Duration::from_secs(3), stabilize: Duration::from_secs(5), max_moves: 32 };

    fn member(id: &str, age_secs: u64, now: Instant) -> Member {
        Member { id: id.into(), draining: false, first_seen: now - Duration::from_secs(age_secs) }
    }

    struct World {
        now: Instant,
        members: Vec<Member>,
        leases: Vec<Option<String>>,
        local: HashMap<String, Vec<Local>>,
    }

    impl World {
        fn new(shards: usize, ids: &[&str]) -> Self {
            let now = Instant::now() + Duration::from_secs(3600);
            Self {
                now,
                members: ids.iter().map(|id| member(id, 60, now)).collect(),
                leases: vec![None; shards],
                local: ids.iter().map(|id| (id.to_string(), vec![Local::Free; shards])).collect(),
            }
        }

        /// One round for every member in turn, acquisitions and releases applied at once.
        fn round(&mut self) -> usize {
            let mut moves = 0;
            let ids: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
            for id in ids {
                let free_since = vec![None; self.leases.len()];
                let local = self.local.get(&id).unwrap().clone();
                let plan = reconcile(
                    &Inputs {
                        me: &id,
                        now: self.now,
                        members: &self.members,
                        leases: &self.leases,
                        local: &local,
                        free_since: &free_since,
                        hold_back: false,
                        shutting_down: false,
                    },
                    &RULES,
                );
                let mine = self.local.get_mut(&id).unwrap();
                for s in plan.acquire {
                    self.leases[usize::from(s)] = Some(id.clone());
                    mine[usize::from(s)] = Local::Owned;
                    moves += 1;
                }
                for s in plan.release {
                    self.leases[usize::from(s)] = None;
                    mine[usize::from(s)] = Local::Free;
                }
            }
            moves
        }

        fn owned(&self, id: &str) -> usize {
            self.leases.iter().filter(|l| l.as_deref() == Some(id)).count()
        }
    }

    #[test]
    fn three_members_converge_to_even_shares_and_stay_there() {
        let mut w = World::new(256, &["a/1", "b/1", "c/1"]);
        for _ in 0..20 {
            w.round();
        }
        for id in ["a/1", "b/1", "c/1"] {
            assert!((84..=87).contains(&w.owned(id)), "{id}: {}", w.owned(id));
        }
        assert_eq!(w.round(), 0, "nothing moves once converged");
    }

    #[test]
    fn a_new_member_gets_shards_only_after_stabilizing_and_at_most_max_moves_per_round() {
        let mut w = World::new(256, &["a/1"]);
        w.round();
        assert_eq!(w.owned("a/1"), 256);
        w.members.push(member("b/1", 1, w.now));
        w.local.insert("b/1".into(), vec![Local::Free; 256]);
        assert_eq!(w.round(), 0, "b is too new: a keeps everything");
        w.members[1].first_seen = w.now - Duration::from_secs(6);
        let local = w.local["a/1"].clone();
        let plan = reconcile(
            &Inputs {
                me: "a/1",
                now: w.now,
                members: &w.members,
                leases: &w.leases,
                local: &local,
                free_since: &[None; 256],
                hold_back: false,
                shutting_down: false,
            },
            &RULES,
        );
        assert_eq!(plan.release.len(), 32, "capped");
        for _ in 0..10 {
            w.round();
        }
        assert_eq!((w.owned("a/1"), w.owned("b/1")), (128, 128));
    }

    #[test]
    fn a_lease_held_by_another_is_lost_and_a_long_free_shard_is_taken_by_anyone() {
        let now = Instant::now() + Duration::from_secs(3600);
        let members = vec![member("a/1", 60, now), member("b/1", 60, now)];
        let desired = desired(4, &members);
        // Shard 0 is held locally; another shard b should own is free.
        let not_mine = (1..4u16).find(|s| desired[usize::from(*s)].as_deref() != Some("a/1")).unwrap();
        let mut leases = vec![Some("b/1".to_string()); 4];
        let mut local = vec![Local::Free; 4];
        local[0] = Local::Owned;
        leases[usize::from(not_mine)] = None;
        let mut free_since = vec![None; 4];
        free_since[usize::from(not_mine)] = Some(now - Duration::from_secs(4));
        let inputs = Inputs {
            me: "a/1",
            now,
            members: &members,
            leases: &leases,
            local: &local,
            free_since: &free_since,
            hold_back: false,
            shutting_down: false,
        };
        let plan = reconcile(&inputs, &RULES);
        assert!(plan.lost.contains(&0));
        assert!(plan.acquire.contains(&not_mine));
        let held_back = reconcile(&Inputs { hold_back: true, ..inputs }, &RULES);
        assert!(held_back.acquire.is_empty(), "nothing acquired while held back");
    }

    #[test]
    fn a_draining_member_takes_nothing_and_hands_everything_over() {
        let mut w = World::new(16, &["a/1", "b/1"]);
        for _ in 0..5 {
            w.round();
        }
        w.members[0].draining = true;
        for _ in 0..5 {
            w.round();
        }
        assert_eq!((w.owned("a/1"), w.owned("b/1")), (0, 16));
    }

    #[test]
    fn shutting_down_releases_everything_at_once() {
        let now = Instant::now();
        let members = vec![member("a/1", 60, now)];
        let leases = vec![Some("a/1".to_string()); 64];
        let local = vec![Local::Owned; 64];
        let inputs = Inputs {
            me: "a/1",
            now,
            members: &members,
            leases: &leases,
            local: &local,
            free_since: &[None; 64],
            hold_back: true,
            shutting_down: true,
        };
        assert_eq!(reconcile(&inputs, &RULES).release.len(), 64);
    }
}
