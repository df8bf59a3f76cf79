//! `rooms cluster …`: the ops view on the command line (what `chatctl` would be), through the
//! ops endpoint of any replica.
//!
//! ```text
//! rooms cluster status [--url http://rooms:8080] [--json]
//! rooms cluster drain <pod> [--url …]
//! ```
//! The token is read from `CHAT__CLUSTER__ADMIN_TOKEN` (the same variable the service reads)
//! or from the file named by `--token-file`; it never appears on the command line.

use std::fmt::Write as _;

use anyhow::{bail, Context as _};

use crate::cluster::view::ClusterView;

const USAGE: &str = "usage: rooms cluster status [--url URL] [--token-file FILE] [--json]\n       \
                     rooms cluster drain POD [--url URL] [--token-file FILE]";

struct Args {
    command: String,
    pod: Option<String>,
    url: String,
    token: String,
    json: bool,
}

fn parse(args: &[String], env_token: Option<String>) -> anyhow::Result<Args> {
    let mut it = args.iter();
    let command = it.next().cloned().context(USAGE)?;
    let (mut pod, mut url, mut token_file, mut json) = (None, "http://127.0.0.1:8081".to_owned(), None, false);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => url = it.next().cloned().context(USAGE)?,
            "--token-file" => token_file = Some(it.next().cloned().context(USAGE)?),
            "--json" => json = true,
            other if !other.starts_with("--") && pod.is_none() => pod = Some(other.to_owned()),
            _ => bail!(USAGE),
        }
    }
    let token = match token_file {
        Some(file) => std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?.trim().to_owned(),
        None => env_token.unwrap_or_default(),
    };
    if token.is_empty() {
        bail!("set CHAT__CLUSTER__ADMIN_TOKEN or pass --token-file");
    }
    Ok(Args { command, pod, url: url.trim_end_matches('/').to_owned(), token, json })
}

/// Run `rooms cluster <args>`; the text to print.
pub async fn run(args: &[String]) -> anyhow::Result<String> {
    let args = parse(args, std::env::var("CHAT__CLUSTER__ADMIN_TOKEN").ok())?;
    match (args.command.as_str(), &args.pod) {
        ("status", None) => {
            let body = call(&args, awc::http::Method::GET, "/internal/v1/cluster").await?;
            if args.json {
                return Ok(String::from_utf8_lossy(&body).into_owned());
            }
            let view: ClusterView = serde_json::from_slice(&body).context("decoding the cluster view")?;
            Ok(render(&view))
        }
        ("drain", Some(pod)) => {
            let body =
                call(&args, awc::http::Method::POST, &format!("/internal/v1/cluster/members/{pod}/drain")).await?;
            Ok(format!("draining: {}", String::from_utf8_lossy(&body)))
        }
        _ => bail!(USAGE),
    }
}

/// One call to the ops endpoint: the body of a successful answer.
async fn call(args: &Args, method: awc::http::Method, path: &str) -> anyhow::Result<bytes::Bytes> {
    let client = awc::Client::builder().timeout(std::time::Duration::from_secs(10)).finish();
    let mut answer = client
        .request(method, format!("{}{path}", args.url))
        .insert_header(("Authorization", format!("Bearer {}", args.token)))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.url))?;
    let body = answer.body().limit(4 << 20).await.context("reading the answer")?;
    if !answer.status().is_success() {
        bail!("{} answered {}: {}", args.url, answer.status(), String::from_utf8_lossy(&body));
    }
    Ok(body)
}

/// The view as two tables: members, then shards.
pub fn render(view: &ClusterView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<40} {:>10} {:>7} {:>7}  DRAINING", "MEMBER", "HEARTBEAT", "SHARDS", "ROOMS");
    for m in &view.members {
        let beat = format!("{:.1} s", m.heartbeat_age_ms as f64 / 1000.0);
        let draining = if m.draining { "yes" } else { "no" };
        let _ = writeln!(out, "{:<40} {beat:>10} {:>7} {:>7}  {draining}", m.member, m.shards_owned, m.rooms_active);
    }
    let unowned = view.shards.iter().filter(|s| s.owner.is_none()).count();
    let _ = writeln!(out, "\n{} shards, {unowned} without an owner", view.shards.len());
    let _ = writeln!(out, "{:<6} {:<40} {:>8} {:>8} {:>7}", "SHARD", "OWNER", "EPOCH", "DEPTH", "ROOMS");
    for s in &view.shards {
        let owner = s.owner.as_deref().unwrap_or("-");
        let epoch = s.epoch.map_or("-".into(), |e| e.to_string());
        let depth = s.queue_depth.map_or("?".into(), |d| d.to_string());
        let _ =
            writeln!(out, "{:<6} {owner:<40} {epoch:>8} {depth:>8} {:>7}", format!("{:03}", s.shard), s.active_rooms);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::view::{MemberView, ShardView};

    #[test]
    fn the_tables_show_every_member_and_shard_and_count_the_unowned() {
        let view = ClusterView {
            members: vec![MemberView {
                member: "rooms-1/ab12".into(),
                pod: "rooms-1".into(),
                heartbeat_age_ms: 1500,
                draining: true,
                shards_owned: 1,
                rooms_active: 3,
            }],
            shards: vec![
                ShardView {
                    shard: 0,
                    owner: Some("rooms-1/ab12".into()),
                    epoch: Some(7),
                    queue_depth: Some(2),
                    active_rooms: 3,
                },
                ShardView { shard: 1, owner: None, epoch: None, queue_depth: None, active_rooms: 0 },
            ],
        };
        let text = render(&view);
        assert!(text.contains("rooms-1/ab12") && text.contains("1.5 s") && text.contains("yes"), "{text}");
        assert!(text.contains("2 shards, 1 without an owner"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("000") && l.contains(" 7 ") && l.contains(" 2 ")), "{text}");
    }

    #[test]
    fn the_token_never_comes_from_the_command_line() {
        let err = parse(&["status".into()], None).err().expect("no token, no call");
        assert!(err.to_string().contains("CHAT__CLUSTER__ADMIN_TOKEN"));
        assert!(parse(&["status".into(), "--token".into(), "x".into()], Some("t".into())).is_err());
        let args = parse(&["drain".into(), "rooms-2".into(), "--url".into(), "http://r:1/".into()], Some("t".into()));
        let args = args.expect("a drain");
        assert_eq!((args.pod.as_deref(), args.url.as_str(), args.token.as_str()), (Some("rooms-2"), "http://r:1", "t"));
    }
}
