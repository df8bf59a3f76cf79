//! The ops endpoints (not public: `/internal/` is not routed from outside): the cluster view
//! and draining a member. They answer only to the `cluster.admin_token` bearer; to anyone else,
//! and when no token is configured, they do not exist (404).

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chat_kit::openapi::ErrorBody;
use chat_kit::ApiError;
use chat_protocol::Refusal;
use secrecy::ExposeSecret;

use crate::cluster::view::ClusterView;
use crate::cluster::{view, ClusterSettings, Leases};

/// What the ops endpoints need; `leases` is `None` in the standalone (no cluster).
pub struct Ops {
    pub leases: Option<Leases>,
    pub bus: chat_bus::SharedBus,
    pub settings: ClusterSettings,
}

impl Ops {
    fn authorised(&self, req: &HttpRequest) -> Result<&Leases, ApiError> {
        let expected = self.settings.admin_token.expose_secret().as_bytes();
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::as_bytes)
            .unwrap_or_default();
        let matches = !expected.is_empty()
            && presented.len() == expected.len()
            && presented.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        match (&self.leases, matches) {
            (Some(leases), true) => Ok(leases),
            _ => Err(ApiError::new(Refusal::NotFound, "not found")),
        }
    }
}

fn unavailable(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&err)
}

/// `GET /internal/v1/cluster`: members and shards.
#[utoipa::path(
    tag = "cluster",
    operation_id = "cluster_view",
    summary = "the cluster: members with their heartbeats, shards with their owners",
    responses((status = 200, description = "the view", body = ClusterView), (status = 404, description = "without the cluster admin token, or without a cluster (the standalone), this endpoint does not exist (not_found)", body = ErrorBody)),
    security(("cluster_admin" = [])),
)]
#[get("/internal/v1/cluster")]
pub async fn show(req: HttpRequest, ops: web::Data<Ops>) -> Result<HttpResponse, ApiError> {
    let leases = ops.authorised(&req)?;
    let view = view::build(leases, &ops.bus, ops.settings.member_ttl_ms as i64).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(view))
}

/// `POST /internal/v1/cluster/members/{pod}/drain`: the live member(s) of that pod hand their
/// shards over and take none until they leave. 404 when no live member has that pod.
#[utoipa::path(
    tag = "cluster",
    operation_id = "cluster_drain",
    summary = "drain the live member(s) of a pod: they hand their shards over",
    params(("pod" = String, Path, description = "a pod name or a member id")),
    responses(
        (status = 202, description = "draining", body = Draining),
        (status = 404, description = "no such endpoint without the token (not_found), or no live member of that pod", body = ErrorBody),
    ),
    security(("cluster_admin" = [])),
)]
#[post("/internal/v1/cluster/members/{pod}/drain")]
pub async fn drain(req: HttpRequest, ops: web::Data<Ops>, pod: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let leases = ops.authorised(&req)?;
    let view = view::build(leases, &ops.bus, ops.settings.member_ttl_ms as i64).await.map_err(unavailable)?;
    let targets: Vec<&str> =
        view.members.iter().filter(|m| m.pod == *pod || m.member == *pod).map(|m| m.member.as_str()).collect();
    if targets.is_empty() {
        return Err(ApiError::new(Refusal::NotFound, "no live member of that pod"));
    }
    for member in &targets {
        leases.drain(member).await.map_err(unavailable)?;
    }
    Ok(HttpResponse::Accepted().json(Draining { draining: targets.into_iter().map(str::to_owned).collect() }))
}

/// The members that were told to drain.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Draining {
    draining: Vec<String>,
}
