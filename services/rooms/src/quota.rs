//! Per-user budgets of this node: posts (HTTP and WebSocket alike) and room creations, each a
//! token bucket keyed by user id (`governor`). Users whose buckets are full again are forgotten
//! periodically, so the key map holds only recently active users.
//!
//! The budgets are per node: behind a load balancer with N nodes a user can get up to N times
//! them. They protect each node's work, not a global allowance.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chat_protocol::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::settings::QuotaSettings;

/// One budget: `None` when its rate is 0 (off).
struct Budget(Option<DefaultKeyedRateLimiter<UserId>>);

impl Budget {
    fn new(per_minute: u32, burst: u32) -> Self {
        let Some(rate) = NonZeroU32::new(per_minute) else { return Self(None) };
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self(Some(RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))))
    }

    /// Take one token of `user`, or the wait until one is there.
    fn take(&self, user: &UserId) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        limiter.check_key(user).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    fn users(&self) -> usize {
        self.0.as_ref().map_or(0, |limiter| limiter.len())
    }
}

/// The budgets of every user on this node.
pub struct Quotas {
    posts: Budget,
    rooms: Budget,
}

impl Quotas {
    pub fn new(settings: &QuotaSettings) -> Self {
        Self {
            posts: Budget::new(settings.posts_per_minute, settings.posts_burst),
            rooms: Budget::new(settings.rooms_per_minute, settings.rooms_burst),
        }
    }

    /// Count one post of `user`; over budget, the wait until the next one is allowed.
    pub fn post(&self, user: &UserId) -> Result<(), Duration> {
        self.posts.take(user)
    }

    /// Count one room creation of `user`; over budget, the wait until the next one is allowed.
    pub fn create_room(&self, user: &UserId) -> Result<(), Duration> {
        self.rooms.take(user)
    }

    /// Forget the users whose buckets are full again (they are as if never seen).
    pub fn forget_idle(&self) {
        self.posts.forget_idle();
        self.rooms.forget_idle();
    }

    /// Users with a bucket in either budget (at most; a user can be in both).
    pub fn users(&self) -> usize {
        self.posts.users() + self.rooms.users()
    }

    /// Forget idle users every `every`, for as long as the node runs.
    pub async fn run_housekeeping(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.forget_idle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(posts_per_minute: u32, posts_burst: u32) -> QuotaSettings {
        QuotaSettings { posts_per_minute, posts_burst, rooms_per_minute: 1, rooms_burst: 1, forget_idle_every_secs: 60 }
    }

    #[test]
    fn a_user_gets_the_burst_then_a_wait_and_others_are_not_affected() {
        let quotas = Quotas::new(&settings(1, 3));
        let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
        for _ in 0..3 {
            assert!(quotas.post(&alice).is_ok());
        }
        let wait = quotas.post(&alice).expect_err("the fourth post is over budget");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
        assert!(quotas.post(&bob).is_ok(), "bob has his own bucket");
        // Room creations are a budget of their own.
        assert!(quotas.create_room(&alice).is_ok());
        assert!(quotas.create_room(&alice).is_err());
    }

    #[test]
    fn a_rate_of_zero_turns_the_budget_off() {
        let quotas = Quotas::new(&settings(0, 1));
        let alice = UserId::new("alice");
        for _ in 0..1000 {
            assert!(quotas.post(&alice).is_ok());
        }
        assert_eq!(quotas.posts.users(), 0);
    }

    #[test]
    fn users_whose_bucket_is_full_again_are_forgotten() {
        let quotas = Quotas::new(&settings(60_000, 1));
        assert!(quotas.post(&UserId::new("alice")).is_ok());
        assert_eq!(quotas.posts.users(), 1);
        // One token per millisecond: the bucket is full again almost at once.
        std::thread::sleep(Duration::from_millis(5));
        quotas.forget_idle();
        assert_eq!(quotas.posts.users(), 0);
    }
}
