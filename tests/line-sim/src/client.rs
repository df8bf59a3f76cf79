//! A client of the simulator's `/_sim/` API for tests (awc: run it on an actix runtime, e.g.
//! under `#[actix_rt::test]`).

use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{Channel, Group, Profile, RecordedRequest, Script, ScriptedResponse, WebhookRequest, WebhookResult};

/// Longer than the simulator's own webhook timeout, so its answer always arrives.
const TIMEOUT: Duration = Duration::from_secs(60);
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The simulator at `base_url`.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    http: awc::Client,
}

impl Client {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http: awc::Client::builder().timeout(TIMEOUT).finish(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Send `req` with `body` (JSON unless `content_type` says otherwise); the answer's body
    /// when 2xx, else an error with the status and body.
    async fn call(
        &self,
        req: awc::ClientRequest,
        body: Option<(Vec<u8>, &str)>,
    ) -> anyhow::Result<actix_web::web::Bytes> {
        let what = format!("{} {}", req.get_method(), req.get_uri());
        let sent = match body {
            Some((bytes, content_type)) => req.insert_header(("content-type", content_type)).send_body(bytes).await,
            None => req.send().await,
        };
        let mut answer = sent.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        let bytes = answer.body().limit(BODY_LIMIT).await.with_context(|| format!("{what}: reading the body"))?;
        if !answer.status().is_success() {
            bail!("{what}: {} {}", answer.status(), String::from_utf8_lossy(&bytes));
        }
        Ok(bytes)
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let req = self.http.post(format!("{}{path}", self.base_url));
        let bytes = self.call(req, Some((serde_json::to_vec(body)?, "application/json"))).await?;
        serde_json::from_slice(&bytes).with_context(|| format!("POST {path}: the answer is not the JSON expected"))
    }

    async fn get_json<T: DeserializeOwned>(&self, req: awc::ClientRequest) -> anyhow::Result<T> {
        let bytes = self.call(req, None).await?;
        serde_json::from_slice(&bytes).context("the answer is not the JSON expected")
    }

    /// `POST /_sim/channels`.
    pub async fn register_channel(&self, channel: &Channel) -> anyhow::Result<()> {
        self.post_json::<_, serde_json::Value>("/_sim/channels", channel).await.map(drop)
    }

    /// `POST /_sim/profiles`.
    pub async fn add_profile(&self, profile: &Profile) -> anyhow::Result<()> {
        self.post_json::<_, serde_json::Value>("/_sim/profiles", profile).await.map(drop)
    }

    /// `POST /_sim/groups`: a LINE group the channel's account is in (its summary).
    pub async fn add_group(&self, group: &Group) -> anyhow::Result<()> {
        self.post_json::<_, serde_json::Value>("/_sim/groups", group).await.map(drop)
    }

    /// `PUT /_sim/content/{message_id}`: what `GET /v2/bot/message/{message_id}/content` serves.
    pub async fn put_content(&self, message_id: &str, content_type: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let req = self.http.put(format!("{}/_sim/content/{message_id}", self.base_url));
        self.call(req, Some((bytes, content_type))).await.map(drop)
    }

    /// `DELETE /_sim/content/{message_id}`: LINE deleted it (404 from then on).
    pub async fn delete_content(&self, message_id: &str) -> anyhow::Result<()> {
        let req = self.http.delete(format!("{}/_sim/content/{message_id}", self.base_url));
        self.call(req, None).await.map(drop)
    }

    /// `POST /_sim/script`: the next requests to `path` get `responses` in order.
    pub async fn script(&self, path: &str, responses: Vec<ScriptedResponse>) -> anyhow::Result<()> {
        let script = Script { path: path.to_owned(), responses };
        self.post_json::<_, serde_json::Value>("/_sim/script", &script).await.map(drop)
    }

    /// `DELETE /_sim/script`: drop every answer still scripted.
    pub async fn clear_scripts(&self) -> anyhow::Result<()> {
        let req = self.http.delete(format!("{}/_sim/script", self.base_url));
        self.call(req, None).await.map(drop)
    }

    /// `GET /_sim/requests`: every request received, in order, optionally only those to `path`
    /// (as sent or as the spec's template) and of `channel_id`.
    pub async fn requests(&self, path: Option<&str>, channel_id: Option<&str>) -> anyhow::Result<Vec<RecordedRequest>> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(p) = path {
            query.push(("path", p));
        }
        if let Some(c) = channel_id {
            query.push(("channel_id", c));
        }
        let req = self.http.get(format!("{}/_sim/requests", self.base_url)).query(&query)?;
        self.get_json(req).await
    }

    /// `GET /_sim/invalid`: the requests that broke the spec.
    pub async fn invalid(&self) -> anyhow::Result<Vec<RecordedRequest>> {
        self.get_json(self.http.get(format!("{}/_sim/invalid", self.base_url))).await
    }

    /// Fails listing them when any request broke the spec.
    pub async fn assert_no_invalid(&self) -> anyhow::Result<()> {
        let invalid = self.invalid().await?;
        if !invalid.is_empty() {
            bail!("requests to the LINE simulator broke the spec: {}", serde_json::to_string_pretty(&invalid)?);
        }
        Ok(())
    }

    /// `DELETE /_sim/requests`.
    pub async fn clear_requests(&self) -> anyhow::Result<()> {
        let req = self.http.delete(format!("{}/_sim/requests", self.base_url));
        self.call(req, None).await.map(drop)
    }

    /// `POST /_sim/webhook`: sign and deliver events; the target's answer and the exact body.
    pub async fn send_webhook(&self, webhook: &WebhookRequest) -> anyhow::Result<WebhookResult> {
        self.post_json("/_sim/webhook", webhook).await
    }
}
