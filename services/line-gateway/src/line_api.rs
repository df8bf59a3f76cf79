//! LINE's Messaging API, as this gateway calls it: `POST /v2/bot/message/push` (with
//! `X-Line-Retry-Key`), `GET /v2/bot/profile/{userId}` and, on the content API,
//! `GET /v2/bot/message/{messageId}/content` (read as a stream), each with the channel's access
//! token as a bearer token (never logged, never in an error) and a timeout. Every call is
//! counted (`line_api_calls_total{endpoint, status}`). The answers are classified here
//! (`classify_push`, pure): what is sent, what is retried and when, what is given up.
//!
//! awc's client is not `Send`: callers make one per task (`LineApi::client`) and run on actix's
//! local tasks.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;

use crate::media::ByteStream;
use crate::metrics::metrics;

/// The largest answer body read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// The longest part of an error answer kept in a reason.
const REASON_CHARS: usize = 300;

/// The wait after a 429 without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// LINE's message when the channel's monthly message quota is used up (a 429 that no retry
/// will cure this month).
const MONTHLY_LIMIT: &str = "You have reached your monthly limit.";

/// What became of one push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// 2xx: accepted, with the ids LINE gave the messages sent (in order; none if it named
    /// none).
    Sent(Vec<String>),
    /// 409 with `x-line-accepted-request-id`: an earlier request with this retry key was
    /// accepted; nothing was sent again.
    AlreadyAccepted(String),
    /// 429, not the quota: try again after the wait.
    RateLimited(Duration),
    /// 5xx, a timeout or a connection failure: try again with the same key.
    Retry(String),
    /// 429 "You have reached your monthly limit.": given up at once.
    Quota(String),
    /// Any other answer (other 4xx, 409 without the header): given up at once.
    Refused(String),
}

/// What a GET of the Messaging API (a LINE user's profile, a group's summary) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileOutcome<T = Profile> {
    Found(T),
    /// Not available (404: not a friend, blocked, no consent; another 4xx; an unreadable
    /// answer): the caller does without.
    Unavailable(String),
    /// 5xx, 429, a timeout or a connection failure: worth asking again.
    Retry(String),
}

/// A LINE group's summary.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary {
    pub group_name: String,
}

/// A LINE user's profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub display_name: String,
    #[serde(default)]
    pub picture_url: Option<String>,
}

/// How long a content download may take, body included.
pub(crate) const CONTENT_TIMEOUT: Duration = Duration::from_secs(300);

/// What asking LINE for a message's content came to.
pub enum ContentOutcome {
    /// 2xx: the content, to be read as it comes.
    Ready { content_type: Option<String>, length: Option<u64>, body: ByteStream<awc::error::PayloadError> },
    /// 202: LINE is still preparing (transcoding) video or audio: ask again later.
    Preparing,
    /// 404 or 410: LINE no longer has it.
    Gone,
    /// 5xx, 429, a timeout or a connection failure: worth asking again.
    Retry(String),
    /// Any other answer.
    Refused(String),
}

/// Where the Messaging API and the content API are and how long a call may take.
#[derive(Debug, Clone)]
pub struct LineApi {
    base_url: String,
    data_base_url: String,
    timeout: Duration,
}

impl LineApi {
    /// The content API is at `base_url` too until `with_data_api` says otherwise.
    pub fn new(base_url: &str, timeout: Duration) -> Self {
        let base_url = base_url.trim_end_matches('/').to_owned();
        Self { data_base_url: base_url.clone(), base_url, timeout }
    }

    /// The content API's base URL (`line.data_api_base_url`).
    pub fn with_data_api(mut self, data_base_url: &str) -> Self {
        data_base_url.trim_end_matches('/').clone_into(&mut self.data_base_url);
        self
    }

    /// A client for content downloads (a longer timeout: it covers the body).
    pub fn content_client(&self) -> awc::Client {
        awc::Client::builder().timeout(CONTENT_TIMEOUT.max(self.timeout)).disable_redirects().finish()
    }

    /// The content of LINE message `message_id` (image, video, audio, file).
    pub async fn content(&self, client: &awc::Client, token: &SecretString, message_id: &str) -> ContentOutcome {
        if message_id.is_empty() || !message_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return ContentOutcome::Refused("not a LINE message id".into());
        }
        let span = line_span("GET", "/v2/bot/message/{messageId}/content");
        let sent = client
            .get(format!("{}/v2/bot/message/{message_id}/content", self.data_base_url))
            .insert_header(("Authorization", format!("Bearer {}", token.expose_secret())))
            .send()
            .instrument(span.clone())
            .await;
        let mut res = match sent {
            Ok(res) => res,
            Err(err) => {
                count("content", failure_label(&err));
                return ContentOutcome::Retry(format!("no answer from LINE: {err}"));
            }
        };
        let status = res.status().as_u16();
        count("content", &status.to_string());
        chat_kit::outbound::record_status(&span, status);
        match status {
            202 => ContentOutcome::Preparing,
            200..=299 => {
                let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let content_type = header("content-type").filter(|t| !t.trim().is_empty());
                let length = header("content-length").and_then(|l| l.trim().parse::<u64>().ok());
                ContentOutcome::Ready { content_type, length, body: Box::pin(res) }
            }
            _ => {
                let answer = res.body().limit(ANSWER_LIMIT).await.map(|b| b.to_vec()).unwrap_or_default();
                let reason = format!("LINE answered {status}: {}", error_message(&answer));
                match status {
                    404 | 410 => ContentOutcome::Gone,
                    429 | 500..=599 => ContentOutcome::Retry(reason),
                    _ => ContentOutcome::Refused(reason),
                }
            }
        }
    }

    /// A client for one task (awc's client is not `Send`).
    pub fn client(&self) -> awc::Client {
        awc::Client::builder().timeout(self.timeout).disable_redirects().finish()
    }

    /// Push `messages` (1 to 5 objects) to the LINE user `to` with the channel's token.
    pub async fn push(
        &self,
        client: &awc::Client,
        token: &SecretString,
        retry_key: Uuid,
        to: &str,
        messages: &[Value],
    ) -> PushOutcome {
        let body = json!({"to": to, "messages": messages});
        let span = line_span("POST", "/v2/bot/message/push");
        let sent = client
            .post(format!("{}/v2/bot/message/push", self.base_url))
            .insert_header(("Authorization", format!("Bearer {}", token.expose_secret())))
            .insert_header(("X-Line-Retry-Key", retry_key.to_string()))
            .send_json(&body)
            .instrument(span.clone())
            .await;
        let mut res = match sent {
            Ok(res) => res,
            Err(err) => {
                count("push", failure_label(&err));
                return PushOutcome::Retry(format!("no answer from LINE: {err}"));
            }
        };
        let status = res.status().as_u16();
        count("push", &status.to_string());
        chat_kit::outbound::record_status(&span, status);
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = header("retry-after");
        let accepted = header("x-line-accepted-request-id");
        let answer = res.body().limit(ANSWER_LIMIT).await.map(|b| b.to_vec()).unwrap_or_default();
        classify_push(status, retry_after.as_deref(), accepted.as_deref(), &answer)
    }

    /// The profile of the LINE user `user_id` (a friend of the channel).
    pub async fn profile(&self, client: &awc::Client, token: &SecretString, user_id: &str) -> ProfileOutcome {
        if user_id.is_empty() || !user_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return ProfileOutcome::Unavailable("not a LINE user id".into());
        }
        let url = format!("{}/v2/bot/profile/{user_id}", self.base_url);
        match self.get_json::<Profile>(client, token, ("profile", "/v2/bot/profile/{userId}"), url).await {
            ProfileOutcome::Found(profile) if profile.display_name.is_empty() => {
                ProfileOutcome::Unavailable("no display name".into())
            }
            outcome => outcome,
        }
    }

    /// The profile of a member of a LINE group (`GET /v2/bot/group/{groupId}/member/{userId}`)
    /// or of a multi-person chat (`.../room/{roomId}/member/{userId}`): LINE gives it for
    /// members who are not the account's friends too.
    pub async fn group_member_profile(
        &self,
        client: &awc::Client,
        token: &SecretString,
        group_id: &str,
        user_id: &str,
    ) -> ProfileOutcome {
        let ids_ok =
            [group_id, user_id].iter().all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()));
        let kind = match group_id.chars().next() {
            Some('C') => "group",
            Some('R') => "room",
            _ => return ProfileOutcome::Unavailable("not a LINE group id".into()),
        };
        if !ids_ok {
            return ProfileOutcome::Unavailable("not a LINE id".into());
        }
        let url = format!("{}/v2/bot/{kind}/{group_id}/member/{user_id}", self.base_url);
        let endpoint = ("group_member_profile", "/v2/bot/{group|room}/{groupId}/member/{userId}");
        match self.get_json::<Profile>(client, token, endpoint, url).await {
            ProfileOutcome::Found(profile) if profile.display_name.is_empty() => {
                ProfileOutcome::Unavailable("no display name".into())
            }
            outcome => outcome,
        }
    }

    /// The name of a LINE group (`GET /v2/bot/group/{groupId}/summary`); multi-person chats
    /// (`R...`) have none.
    pub async fn group_name(
        &self,
        client: &awc::Client,
        token: &SecretString,
        group_id: &str,
    ) -> ProfileOutcome<GroupSummary> {
        if !group_id.starts_with('C') || !group_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return ProfileOutcome::Unavailable("not a LINE group id".into());
        }
        let url = format!("{}/v2/bot/group/{group_id}/summary", self.base_url);
        self.get_json::<GroupSummary>(client, token, ("group_summary", "/v2/bot/group/{groupId}/summary"), url).await
    }

    /// GET a JSON object of the Messaging API, counted under `endpoint` (its metric label,
    /// and its path template for the span).
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        client: &awc::Client,
        token: &SecretString,
        (endpoint, route): (&str, &str),
        url: String,
    ) -> ProfileOutcome<T> {
        let span = line_span("GET", route);
        let request = client.get(url).insert_header(("Authorization", format!("Bearer {}", token.expose_secret())));
        let sent = request.send().instrument(span.clone()).await;
        let mut res = match sent {
            Ok(res) => res,
            Err(err) => {
                count(endpoint, failure_label(&err));
                return ProfileOutcome::Retry(format!("no answer from LINE: {err}"));
            }
        };
        let status = res.status().as_u16();
        count(endpoint, &status.to_string());
        chat_kit::outbound::record_status(&span, status);
        let answer = res.body().limit(ANSWER_LIMIT).await.map(|b| b.to_vec()).unwrap_or_default();
        match status {
            200..=299 => match serde_json::from_slice::<T>(&answer) {
                Ok(found) => ProfileOutcome::Found(found),
                Err(err) => ProfileOutcome::Unavailable(format!("unreadable answer: {err}")),
            },
            429 | 500..=599 => ProfileOutcome::Retry(format!("LINE answered {status}: {}", error_message(&answer))),
            _ => ProfileOutcome::Unavailable(format!("LINE answered {status}: {}", error_message(&answer))),
        }
    }
}

/// The client span of a call to LINE. No trace context goes to LINE: it is not ours to carry.
fn line_span(method: &str, route: &str) -> tracing::Span {
    chat_telemetry::client_span(method, "api.line.me", route)
}

fn count(endpoint: &str, status: &str) {
    metrics().api_calls.with_label_values(&[endpoint, status]).inc();
}

fn failure_label(err: &awc::error::SendRequestError) -> &'static str {
    match err {
        awc::error::SendRequestError::Timeout => "timeout",
        _ => "error",
    }
}

/// What a push's answer means.
pub fn classify_push(status: u16, retry_after: Option<&str>, accepted: Option<&str>, body: &[u8]) -> PushOutcome {
    let message = || error_message(body);
    match status {
        200..=299 => PushOutcome::Sent(sent_message_ids(body)),
        409 => match accepted.map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => PushOutcome::AlreadyAccepted(id.to_owned()),
            None => PushOutcome::Refused(format!("LINE answered 409 without an accepted request: {}", message())),
        },
        429 => {
            let message = message();
            if message.contains(MONTHLY_LIMIT) {
                PushOutcome::Quota(message)
            } else {
                PushOutcome::RateLimited(retry_after_delay(retry_after))
            }
        }
        500..=599 => PushOutcome::Retry(format!("LINE answered {status}: {}", message())),
        _ => PushOutcome::Refused(format!("LINE answered {status}: {}", message())),
    }
}

/// The ids of `sentMessages` in a push's answer.
fn sent_message_ids(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        #[serde(default)]
        sent_messages: Vec<SentMessage>,
    }
    #[derive(Deserialize)]
    struct SentMessage {
        id: String,
    }
    serde_json::from_slice::<Answer>(body)
        .map(|answer| answer.sent_messages.into_iter().map(|m| m.id).collect())
        .unwrap_or_default()
}

/// `Retry-After` in seconds (LINE's form); anything else waits the default.
pub fn retry_after_delay(header: Option<&str>) -> Duration {
    header
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, |secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The `message` of LINE's error answer (with its details), or the start of the body.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        message: String,
        #[serde(default)]
        property: Option<String>,
    }
    #[derive(Deserialize)]
    struct ErrorAnswer {
        message: String,
        #[serde(default)]
        details: Vec<Detail>,
    }
    let text = match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(answer) => {
            let mut text = answer.message;
            for detail in answer.details {
                match detail.property {
                    Some(property) => text.push_str(&format!(" ({property}: {})", detail.message)),
                    None => text.push_str(&format!(" ({})", detail.message)),
                }
            }
            text
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    text.chars().take(REASON_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_answers_are_classified() {
        assert_eq!(classify_push(200, None, None, b"{\"sentMessages\":[]}"), PushOutcome::Sent(vec![]));
        let two = br#"{"sentMessages":[{"id":"461230966842064897","quoteToken":"q1"},{"id":"461230966842064898"}]}"#;
        assert_eq!(
            classify_push(200, None, None, two),
            PushOutcome::Sent(vec!["461230966842064897".into(), "461230966842064898".into()])
        );
        assert_eq!(classify_push(200, None, None, b"not json"), PushOutcome::Sent(vec![]));
        assert_eq!(classify_push(409, None, Some("req-1"), b"{}"), PushOutcome::AlreadyAccepted("req-1".into()));
        assert!(matches!(classify_push(409, None, None, b"{}"), PushOutcome::Refused(_)));
        assert_eq!(
            classify_push(429, Some("7"), None, br#"{"message":"Too many requests"}"#),
            PushOutcome::RateLimited(Duration::from_secs(7))
        );
        assert_eq!(classify_push(429, None, None, b""), PushOutcome::RateLimited(Duration::from_secs(1)));
        assert_eq!(
            classify_push(429, Some("3"), None, br#"{"message":"You have reached your monthly limit."}"#),
            PushOutcome::Quota("You have reached your monthly limit.".into())
        );
        assert!(
            matches!(classify_push(500, None, None, b"oops"), PushOutcome::Retry(reason) if reason.contains("500"))
        );
        assert!(matches!(classify_push(503, None, None, b""), PushOutcome::Retry(_)));
        let refused = classify_push(
            400,
            None,
            None,
            br#"{"message":"The request body has 1 error(s)","details":[{"message":"must be specified","property":"messages[0].text"}]}"#,
        );
        assert_eq!(
            refused,
            PushOutcome::Refused(
                "LINE answered 400: The request body has 1 error(s) (messages[0].text: must be specified)".into()
            )
        );
        assert!(matches!(classify_push(401, None, None, b""), PushOutcome::Refused(_)));
    }

    #[test]
    fn retry_after_is_seconds_capped_with_a_default() {
        assert_eq!(retry_after_delay(Some("2")), Duration::from_secs(2));
        assert_eq!(retry_after_delay(Some("Wed, 21 Oct 2015 07:28:00 GMT")), Duration::from_secs(1));
        assert_eq!(retry_after_delay(Some("100000")), MAX_RETRY_AFTER);
        assert_eq!(retry_after_delay(None), Duration::from_secs(1));
    }

    #[test]
    fn long_error_bodies_are_cut() {
        assert_eq!(error_message("x".repeat(5_000).as_bytes()).chars().count(), REASON_CHARS);
    }

    /// The LINE Platform is https only: the client must speak TLS (a build without a TLS
    /// connector answers `SslIsNotSupported` before connecting at all).
    #[actix_web::test]
    async fn the_client_speaks_tls() {
        let api = LineApi::new("https://127.0.0.1:1", std::time::Duration::from_secs(2));
        let err = api.client().get("https://127.0.0.1:1/v2/bot/info").send().await.expect_err("nothing listens there");
        let text = format!("{err:?}");
        assert!(!text.contains("SslIsNotSupported"), "{text}");
    }
}
