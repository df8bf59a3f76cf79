//! Which member should own which shard: rendezvous (highest random weight) hashing with
//! bounded loads. Every member computes the same answer from the same member list, with no
//! coordinator: members are ordered by name, each gets a capacity of `shards / n` (the first
//! `shards % n` one more), and each shard, in order, goes to the member that ranks it highest
//! among those with capacity left. So loads differ by at most one, and a member joining or
//! leaving moves few shards beyond its own share (the ranks of the others do not change).

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How much `member` wants `shard`.
fn weight(member: &str, shard: u16) -> u64 {
    xxh3_64_with_seed(member.as_bytes(), u64::from(shard))
}

/// The desired owner of each shard, as an index into `members` (which must be sorted and
/// without duplicates); empty when there are no members.
pub fn assign(shards: u16, members: &[&str]) -> Vec<usize> {
    let n = members.len();
    if n == 0 {
        return Vec::new();
    }
    let total = usize::from(shards);
    let mut capacity: Vec<usize> = (0..n).map(|i| total / n + usize::from(i < total % n)).collect();
    let mut ranked: Vec<usize> = (0..n).collect();
    (0..shards)
        .map(|shard| {
            ranked.sort_unstable_by_key(|i| std::cmp::Reverse(weight(members[*i], shard)));
            let owner = ranked.iter().copied().find(|i| capacity[*i] > 0).unwrap_or(ranked[0]);
            capacity[owner] = capacity[owner].saturating_sub(1);
            owner
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(shards: u16, members: &[&str]) -> Vec<usize> {
        let mut loads = vec![0; members.len()];
        for owner in assign(shards, members) {
            loads[owner] += 1;
        }
        loads
    }

    #[test]
    fn loads_differ_by_at_most_one_whatever_the_member_count() {
        for n in 1..=24 {
            let names: Vec<String> = (0..n).map(|i| format!("rooms-{i:02}")).collect();
            let members: Vec<&str> = names.iter().map(String::as_str).collect();
            let loads = loads(256, &members);
            let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
            assert!(max - min <= 1, "{n} members: {loads:?}");
            assert_eq!(loads.iter().sum::<usize>(), 256);
        }
    }

    #[test]
    fn a_member_joining_moves_little_more_than_its_share() {
        let before = assign(256, &["a", "b", "c"]);
        let after = assign(256, &["a", "b", "c", "d"]);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        // Its share is 64; bounded loads shift some more between the others.
        assert!((64..=110).contains(&moved), "moved {moved}");
        assert_eq!(assign(256, &["a", "b", "c"]), before, "the same members, the same answer");
    }

    #[test]
    fn no_members_no_owners() {
        assert!(assign(16, &[]).is_empty());
    }
}
