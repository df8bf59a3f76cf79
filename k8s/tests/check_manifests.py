#!/usr/bin/env python3
"""House rules for the rendered chat manifests, checked offline.

kubernetes-validate checks each object against the API schema; this script checks what the
schema cannot: that the objects fit together (Services, PDBs, NetworkPolicies, the
ServiceMonitor and the Ingress find their pods), that every pod meets the restricted Pod
Security Standard, that each service gets exactly the CHAT__ settings it knows (the
binaries refuse unknown keys at boot), that the NetworkPolicies let the token verifiers reach
authz, that the Ingress sends each path to its service (longest prefix) and never exposes
authz's /internal/ paths, that the static web client's server (web) reaches nothing and is
reached only by the ingress controller and Prometheus, that rooms scales as a cluster of
shard-lease holders should (several replicas, one HPA on CPU with a gentle scale-down, rolling
updates that add one pod before removing one, a PDB of one pod, no CPU limit), that an
operator's rooms-ops pod can reach rooms and nothing else, that each pod's shutdown (a
shell-less preStop sleep, then the binary's drain) fits its grace period, and, where the
optional coturn component is rendered (profile prod-coturn), that the TURN server cannot be
used to reach the cluster (denied-peer-ip and its NetworkPolicy), keeps its secret out of
ConfigMaps, shares it with rooms, and that its Service carries exactly its relay ports.

Usage: check_manifests.py PROFILE FILE.yaml [FILE.yaml ...]
       check_manifests.py --self-test PROFILE FILE.yaml
  PROFILE base, dev or prod: FILE is the rendered base or overlay; prod-coturn: the rendered
  overlays/prod-coturn (prod plus k8s/components/coturn).
  PROFILE jobs: the rendered prod overlay plus the plain files of k8s/jobs/ (authz
  administrative Job and CronJob, checked against the overlay's ServiceAccount, Services,
  NetworkPolicies and authz image).
  --self-test: FILE (a rendered base or overlay) must pass, and every deliberately broken copy
  of it in BREAKAGES must be caught with the expected finding.
Exit status 1 on any finding (or, with --self-test, on a breakage that goes unnoticed).
Needs PyYAML.
"""

import ipaddress
import json
import re
import sys
from urllib.parse import urlsplit

import yaml

SERVICES = ("rooms", "contacts", "line-gateway", "authz", "web")
# Servers of embedded static files (the web client): no database, bus, Redis or tokens, no
# state. Where a rule below asks something of every service that only the API services need
# (amqp settings, a schema, egress to PostgreSQL and RabbitMQ), these get their own, stricter
# rule instead: exactly the http and telemetry keys, no egress rule at all (DNS only), ingress
# from the ingress controller and Prometheus only, and the Ingress catch-all "/".
STATIC_SERVICES = ("web",)

# Where every service listens and how it logs.
HTTP_KEYS = {
    "CHAT__HTTP__HOST",
    "CHAT__HTTP__PORT",
    "CHAT__TELEMETRY__LOG_FORMAT",
}
# The ConfigMap chat-common: the four API services' shared keys.
COMMON_KEYS = HTTP_KEYS | {"CHAT__AMQP__SHARDS"}
DATABASE = {"CHAT__DATABASE__URL", "CHAT__DATABASE__SCHEMA"}
AMQP = {"CHAT__AMQP__URL"}
REDIS = {"CHAT__REDIS__URL"}
# Tokens are EdDSA JWTs issued by authz and verified with its JWKS. The HS256 secret
# (CHAT__AUTH__JWT_SECRET, Secret chat-auth) is for development only, never deployed.
AUTH = {"CHAT__AUTH__JWKS_URL"}
# rooms and contacts ask authz for decisions (/internal/v1/decide) with the shared internal token.
AUTHZ_CLIENT = {"CHAT__AUTHZ__URL", "CHAT__AUTHZ__INTERNAL_TOKEN"}
# authz's side of that token.
INTERNAL = {"CHAT__INTERNAL__TOKEN"}
NODE = {"CHAT__NODE__ID"}
# rooms' cluster ops endpoint (GET /internal/v1/cluster, POST .../members/{pod}/drain).
CLUSTER = {"CHAT__CLUSTER__ADMIN_TOKEN"}
CONTACTS_NODE = {"CHAT__CONTACTS__NODE_ID"}
# The LINE gateway: its node id, the key of its encrypted channel secrets, its media store, and
# rooms (who is in the room of a LINE medium).
LINE = {
    "CHAT__LINE__NODE_ID",
    "CHAT__LINE__SECRETS_KEY",
    "CHAT__MEDIA__PATH",
    "CHAT__MEDIA__PUBLIC_BASE_URL",
    "CHAT__ROOMS__URL",
}

# Which settings each service takes: anything else would stop it at boot. authz's own
# sections are http, database, amqp, tokens, login, internal and telemetry (tokens and login
# keep their defaults); it has no auth or redis section.
EXPECTED_KEYS = {
    "rooms": COMMON_KEYS | DATABASE | AMQP | REDIS | AUTH | AUTHZ_CLIENT | NODE | CLUSTER,
    "contacts": COMMON_KEYS | DATABASE | AMQP | AUTH | AUTHZ_CLIENT | CONTACTS_NODE,
    "line-gateway": COMMON_KEYS | DATABASE | AMQP | REDIS | AUTH | AUTHZ_CLIENT | LINE,
    "authz": COMMON_KEYS | DATABASE | AMQP | INTERNAL,
    # Static: http and telemetry only, set in its Deployment (chat-common's
    # CHAT__AMQP__SHARDS would stop it at boot: it has no amqp section).
    "web": HTTP_KEYS,
}
# rooms' [calls] settings where the coturn component is rendered: the ICE server URLs (ConfigMap
# chat-calls) and the secret shared with coturn (Secret chat-turn).
CALLS = {"CHAT__CALLS__STUN_URLS", "CHAT__CALLS__TURN_URLS", "CHAT__CALLS__TURN_SECRET"}
# Sections authz accepts (CHAT__<SECTION>__...): what its administrative Jobs may set.
AUTHZ_SECTIONS = {"HTTP", "DATABASE", "AMQP", "TOKENS", "LOGIN", "INTERNAL", "TELEMETRY"}
# What an authz command (bootstrap, rotate-key) needs: it connects the store and the bus.
AUTHZ_JOB_KEYS = DATABASE | AMQP | INTERNAL | {"CHAT__AMQP__SHARDS"}
# The services that verify tokens with authz's JWKS (and so must reach authz).
JWKS_CLIENTS = ("rooms", "contacts", "line-gateway")
# None: no database (CHAT__DATABASE__SCHEMA must not be set).
SCHEMAS = {"rooms": "rooms", "contacts": "contacts", "line-gateway": "line", "authz": "authz", "web": None}
# key -> (Secret, key in the Secret); None: the service's own key (<service>-url).
SECRET_ENV = {
    "CHAT__DATABASE__URL": ("chat-database", None),
    "CHAT__AMQP__URL": ("chat-amqp", "url"),
    "CHAT__AUTHZ__INTERNAL_TOKEN": ("chat-internal", "token"),
    "CHAT__INTERNAL__TOKEN": ("chat-internal", "token"),
    "CHAT__LINE__SECRETS_KEY": ("chat-line", "secrets-key"),
    "CHAT__CLUSTER__ADMIN_TOKEN": ("chat-cluster-admin", "token"),
    "CHAT__CALLS__TURN_SECRET": ("chat-turn", "secret"),
}
# Secrets no manifest may reference any more.
RETIRED_SECRETS = {"chat-auth": "the HS256 secret is gone; tokens are verified with authz's JWKS"}
AUTHZ_PORT = 8080

# Shutdown budget of every pod: terminationGracePeriodSeconds counts from the deletion and
# includes the preStop hook. The binaries exit within BINARY_EXIT_SECS of SIGTERM (rooms: shard
# release with a 5 s in-flight drain, then the HTTP drain), so preStop sleep + that + the margin
# must fit in the grace period. The images have no shell: a preStop hook can only be `sleep`
# (Kubernetes >= 1.30). rooms must have one (its endpoint must leave the ingress before it
# stops serving and hands its shards over).
GRACE_SECONDS = 30
BINARY_EXIT_SECS = 20
SHUTDOWN_MARGIN_SECS = 5
PRESTOP_SLEEP_REQUIRED = ("rooms",)

# rooms runs as a cluster (docs/scaling.md): a replica consumes a shard's queue only while it
# holds the shard's Redis lease, and the store refuses writes under an outdated epoch, so any
# number of replicas is safe. What these rules keep is the shape that moves shards gently:
# - at least ROOMS_MIN_REPLICAS replicas in base and prod (a lost replica moves a third of the
#   shards at most, and a node drain leaves two running);
# - exactly one HorizontalPodAutoscaler (autoscaling/v2) on the rooms Deployment, on CPU
#   utilisation, minReplicas >= the profile's floor, maxReplicas = the profile's ceiling
#   (ROOMS_MAX_REPLICAS at 256 shards: 10 or 11 shards a replica), scale-down only after
#   ROOMS_SCALE_DOWN_WINDOW_SECS of calm and at most one pod per minute (every scale-in is one
#   replica's handoff); no other autoscaler on rooms (two would fight over the count);
# - strategy RollingUpdate with maxSurge 1 and maxUnavailable 0: the new pod joins and takes
#   its share before an old one hands its shards over; minReadySeconds covers the 5 s
#   stabilization and a 5 s handoff drain (ROOMS_MIN_READY_SECS) before the next step;
# - the PodDisruptionBudget lets exactly one pod go at every replica count the HPA may choose
#   (maxUnavailable: 1; minAvailable: 2 would let a drain take 22 of 24 at once);
# - no CPU limit (below), the shutdown budget (above).
ROOMS_MIN_REPLICAS = 3
ROOMS_MAX_REPLICAS = 24
ROOMS_MIN_READY_SECS = 10
ROOMS_SCALE_DOWN_WINDOW_SECS = 300
# Objects that set a Deployment's replica count through spec.scaleTargetRef.
AUTOSCALER_KINDS = ("HorizontalPodAutoscaler", "ScaledObject")
# The labels of the operator's short-lived pod that runs `rooms cluster status|drain` (see
# k8s/README.md, "Scaling rooms"): it must reach rooms on 8080 and no other service, and no
# Service, PDB or Deployment may select it.
ROOMS_OPS_LABELS = {"app.kubernetes.io/name": "rooms-ops", "app.kubernetes.io/part-of": "chat"}

PROFILES = {
    "base": {"replicas": {"contacts": 2, "line-gateway": 2, "authz": 2, "web": 2},
             "rooms_scale": (ROOMS_MIN_REPLICAS, ROOMS_MAX_REPLICAS), "shards": "256"},
    "prod": {"replicas": {"contacts": 2, "line-gateway": 2, "authz": 2, "web": 2},
             "rooms_scale": (ROOMS_MIN_REPLICAS, ROOMS_MAX_REPLICAS), "shards": "256"},
    # Small footprint: one rooms replica, the HPA from 1 to 2 (8 shards).
    "dev": {"replicas": {"contacts": 1, "line-gateway": 1, "authz": 1, "web": 1},
            "rooms_scale": (1, 2), "shards": "8"},
}
# prod with the optional TURN server (k8s/components/coturn, overlays/prod-coturn).
PROFILES["prod-coturn"] = dict(PROFILES["prod"], coturn=True)
# The Jobs are checked together with the rendered prod overlay (production values).
PROFILES["jobs"] = PROFILES["prod"]
SELF_TEST_PROFILES = ("base", "dev", "prod", "prod-coturn")

# coturn (k8s/components/coturn): what its relays must never reach. coturn's denied-peer-ip
# must cover each of these, and its NetworkPolicy's egress must except each: loopback,
# private, shared (CGNAT), link-local (cloud metadata), documentation, benchmarking, multicast
# and reserved ranges, and the IPv6 ones that embed IPv4 addresses or stay local. The
# cluster's pods, Services and nodes are in these ranges (if not, the overlay adds its own).
TURN_DENIED = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/32",
    "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
)
# Public addresses a relay must still reach: no denied-peer-ip range may match them under
# coturn's own range test (coturn_in_range), or every call through TURN fails.
TURN_PUBLIC_PEERS = ("1.1.1.1", "8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "2001:4860:4860::8888")
# turnserver.conf: options that must be there, and options that must not (the secret and the
# site's values are appended at start by the init container, from Secret chat-turn and
# ConfigMap coturn-site).
TURN_REQUIRED = ("use-auth-secret", "fingerprint", "no-multicast-peers", "no-tcp-relay",
                 "min-port", "max-port", "user-quota", "total-quota")
TURN_FORBIDDEN = {
    "static-auth-secret": "the shared secret in a ConfigMap (it comes from Secret chat-turn at start)",
    "lt-cred-mech": "static long-term users instead of the TURN REST API credentials",
    "user": "a static user",
    "no-auth": "no authentication",
    "allow-loopback-peers": "relays to loopback",
    "allowed-peer-ip": "a hole in denied-peer-ip",
    "server-relay": "no permission checks on relayed packets",
    "cli-password": "the telnet CLI",
    "web-admin": "the web admin",
    "tlsv1": "TLS 1.0",
    "tlsv1_1": "TLS 1.1",
    "external-ip": "a site value (ConfigMap coturn-site, appended at start)",
    "realm": "a site value (ConfigMap coturn-site, appended at start)",
}
# Default ports of the ICE URL schemes (RFC 7064, RFC 7065), and their default transports.
ICE_DEFAULT_PORTS = {"stun": 3478, "stuns": 5349, "turn": 3478, "turns": 5349}
ICE_DEFAULT_TRANSPORT = {"stun": "UDP", "stuns": "TCP", "turn": "UDP", "turns": "TCP"}

# Path prefix -> Service, as the public API is split between the services; "/" (the
# shortest prefix, so only what no API prefix claims) is the web client.
ROUTES = {
    "/": "web",
    "/v1/ws": "rooms",
    "/v1/rooms": "rooms",
    "/v1/notifications": "rooms",
    "/v1/contacts": "contacts",
    "/v1/me/line-profile": "contacts",
    "/v1/me/line-invite": "contacts",
    "/line": "line-gateway",
    "/v1/line": "line-gateway",
    "/v1/admin/line": "line-gateway",
    "/v1/auth": "authz",
    "/v1/me": "authz",
    "/v1/users": "authz",
    "/v1/admin": "authz",
}
# authz's service-to-service paths and rooms' cluster ops endpoint: no Ingress path may name
# them, and by longest prefix they may only fall to the catch-all "/" of a static service (which
# answers 404), never to authz or rooms.
PRIVATE_PATHS = ("/internal/v1/decide", "/internal/", "/internal/v1/cluster",
                 "/internal/v1/cluster/members/rooms-0/drain")
# Request paths -> the Service ingress-nginx sends them to (Prefix paths match element by
# element, the longest match wins): the API prefixes keep their services next to the "/"
# catch-all, and everything else falls to web.
RESOLVES = {
    "/": "web",
    "/app/app.js": "web",
    "/v1/ws": "rooms",
    "/v1/rooms/r1/messages": "rooms",
    "/v1/notifications": "rooms",
    "/v1/contacts": "contacts",
    "/v1/contacts/c1/block": "contacts",
    "/v1/me/line-profile": "contacts",
    "/v1/me/line-invite/qr.png": "contacts",
    "/v1/me": "authz",
    "/v1/me/password": "authz",
    "/v1/meow": "web",
    "/v1/auth/login": "authz",
    "/v1/users": "authz",
    "/v1/auth/jwks": "authz",
    "/v1/admin/users": "authz",
    "/v1/admin/line-access": "authz",
    "/v1/admin/line/channels/u1": "line-gateway",
    "/line/webhook/c1": "line-gateway",
    "/v1/line/media/m1": "line-gateway",
    "/v1/line/profiles": "line-gateway",
    "/internal/v1/decide": "web",
    "/internal/v1/cluster": "web",
}
# Who may reach every service's port (routes, /metrics): (namespace, pod labels).
INGRESS_CONTROLLER = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
PROMETHEUS = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
# ingress-nginx annotations that could route around the prefix table.
ROUTING_ANNOTATIONS = (
    "nginx.ingress.kubernetes.io/rewrite-target",
    "nginx.ingress.kubernetes.io/use-regex",
    "nginx.ingress.kubernetes.io/server-snippet",
    "nginx.ingress.kubernetes.io/configuration-snippet",
    "nginx.ingress.kubernetes.io/app-root",
)

# Metrics the dashboard must show.
DASHBOARD_METRICS = (
    "rooms_active",
    "rooms_commands_accepted_total",
    "rooms_commands_rejected_total",
    "rooms_delivery_latency_seconds",
    "rooms_ws_sessions",
    "rooms_shard_queue_depth",
    "rooms_dead_letter_depth",
    "rooms_stale_epoch_rejections_total",
    # Shard ownership (every rooms replica exports its own view).
    "rooms_shards_owned",
    "rooms_cluster_members",
    "rooms_shards_unowned",
    "rooms_lease_renew_seconds",
    "rooms_leases_lost_total",
    "rooms_handoff_seconds",
    "rooms_activation_seconds",
    "rooms_dedupe_hits_total",
    "rooms_dead_lettered_total",
    "http_requests_total",
    "http_request_duration_seconds",
)

# Alerts the PrometheusRule must carry.
ALERTS = (
    "RoomsDeadLetterQueueNotEmpty",
    "RoomsStaleEpochRejections",
    "RoomsDeliveryLatencyP99High",
    "RoomsShardsUnowned",
    "RoomsLeaseLost",
    "RoomsLeaseRenewSlow",
    "RoomsDeadLettered",
    "RoomsShardImbalance",
    "ChatServiceNotReady",
    "ChatServiceDown",
)
# Alerts about every service: their job/deployment regexes must match each of SERVICES.
SERVICE_ALERTS = ("ChatServiceNotReady", "ChatServiceDown", "ChatScrapeTargetDown", "ChatHighErrorRate")

findings = []


def finding(message):
    findings.append(message)


def selects(selector, labels):
    """Whether a matchLabels/matchExpressions selector selects these labels."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_security(name, pod):
    psc = pod.get("securityContext") or {}
    if pod.get("automountServiceAccountToken") is not False:
        finding(f"{name}: pod must set automountServiceAccountToken: false")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        finding(f"{name}: host namespaces are not allowed")
    if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        finding(f"{name}: pod seccompProfile must be RuntimeDefault")
    for volume in pod.get("volumes") or []:
        allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret"}
        kinds = set(volume) - {"name"}
        if not kinds <= allowed:
            finding(f"{name}: volume {volume['name']} of type {kinds} is not allowed by 'restricted'")
    for container in pod.get("initContainers", []) + pod["containers"]:
        csc = container.get("securityContext") or {}
        where = f"{name}/{container['name']}"
        run_as_non_root = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        run_as_user = csc.get("runAsUser", psc.get("runAsUser"))
        if run_as_non_root is not True:
            finding(f"{where}: runAsNonRoot must be true")
        if run_as_user in (None, 0):
            finding(f"{where}: runAsUser must be a non-zero uid")
        if csc.get("allowPrivilegeEscalation") is not False:
            finding(f"{where}: allowPrivilegeEscalation must be false")
        if csc.get("readOnlyRootFilesystem") is not True:
            finding(f"{where}: readOnlyRootFilesystem must be true")
        if csc.get("privileged"):
            finding(f"{where}: privileged is not allowed")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            finding(f"{where}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            finding(f"{where}: only NET_BIND_SERVICE may be added back")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            finding(f"{where}: seccompProfile must be RuntimeDefault or Localhost")


def container_settings(name, container, config_maps):
    """The environment a container receives: name -> (source kind, ...)."""
    keys = {}
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef")
        if source.get("prefix"):
            finding(f"{name}: envFrom prefix is not expected")
        if "configMapRef" in source:
            cm = config_maps.get(ref["name"])
            if cm is None:
                finding(f"{name}: ConfigMap {ref['name']} is not in the render")
                continue
            for key, value in cm.get("data", {}).items():
                keys[key] = ("configmap", value)
        else:
            finding(f"{name}: envFrom secretRef hides which keys it sets; use env secretKeyRef")
    for env in container.get("env") or []:
        if "value" in env:
            keys[env["name"]] = ("value", env["value"])
        elif "secretKeyRef" in (env.get("valueFrom") or {}):
            ref = env["valueFrom"]["secretKeyRef"]
            keys[env["name"]] = ("secret", ref["name"], ref["key"])
        elif "fieldRef" in (env.get("valueFrom") or {}):
            keys[env["name"]] = ("field", env["valueFrom"]["fieldRef"]["fieldPath"])
        else:
            keys[env["name"]] = ("other",)
    return keys


def check_setting_sources(name, service_name, keys, shards):
    """Secrets, schema and fixed values of the settings a service or job receives."""
    for key, (secret, secret_key) in SECRET_ENV.items():
        if key not in keys:
            continue
        secret_key = secret_key or f"{service_name}-url"
        if keys[key][0] != "secret" or keys[key][1:] != (secret, secret_key):
            finding(f"{name}: {key} must come from Secret {secret}, key {secret_key}")
    for key, value in keys.items():
        if value[0] == "secret" and value[1] in RETIRED_SECRETS:
            finding(f"{name}: {key} uses Secret {value[1]}: {RETIRED_SECRETS[value[1]]}")
    schema = SCHEMAS[service_name]
    if keys.get("CHAT__DATABASE__SCHEMA", (None, None))[1] != schema:
        finding(f"{name}: CHAT__DATABASE__SCHEMA must be {schema}" if schema else
                f"{name}: has no database, CHAT__DATABASE__SCHEMA must not be set")
    fixed = {"CHAT__HTTP__HOST": "0.0.0.0", "CHAT__HTTP__PORT": "8080",
             "CHAT__TELEMETRY__LOG_FORMAT": "json", "CHAT__AMQP__SHARDS": shards}
    for key, value in fixed.items():
        if key in keys and str(keys[key][1]) != value:
            finding(f"{name}: {key} is {keys[key][1]!r}, expected {value!r}")


def check_authz_url(name, key, url, service, path):
    """An in-cluster URL of the authz Service: its name, its http port, the given path."""
    if service is None:
        finding(f"{name}: {key} needs Service authz in the render")
        return
    parts = urlsplit(url)
    namespace = service["metadata"].get("namespace", "chat")
    hosts = {"authz", f"authz.{namespace}", f"authz.{namespace}.svc",
             f"authz.{namespace}.svc.cluster.local"}
    port = next((p["port"] for p in service["spec"]["ports"] if p.get("name") == "http"), None)
    if parts.scheme != "http" or parts.hostname not in hosts:
        finding(f"{name}: {key}={url!r} must be http://authz.{namespace}.svc.cluster.local...")
    if (parts.port or 80) != port:
        finding(f"{name}: {key}={url!r} uses port {parts.port or 80}, Service authz listens on {port}")
    if parts.path.rstrip("/") != path.rstrip("/") or parts.query or parts.fragment:
        finding(f"{name}: {key}={url!r} must have the path {path or '/'}")


def check_rooms_rollout(name, spec, scale):
    """rooms: replicas within the profile's range, one new pod before one old pod goes."""
    low, high = scale
    replicas = spec.get("replicas", 1)
    if not low <= replicas <= high:
        finding(f"{name}: replicas {replicas}, expected {low} to {high} (rooms runs as a cluster "
                "of shard-lease holders; the HPA takes it from there)")
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        finding(f"{name}: strategy must be RollingUpdate (is {strategy['type']}): the new pod joins "
                "and takes its shards before an old one hands its own over")
    elif rolling.get("maxUnavailable") not in (0, "0%") or rolling.get("maxSurge") != 1:
        finding(f"{name}: rolling update must be maxSurge 1, maxUnavailable 0 (is "
                f"{rolling.get('maxSurge', '25% (default)')} / {rolling.get('maxUnavailable', '25% (default)')}): "
                "one replica's shards move at a time and no replica goes before its successor is ready")
    if spec.get("minReadySeconds", 0) < ROOMS_MIN_READY_SECS:
        finding(f"{name}: minReadySeconds {spec.get('minReadySeconds', 0)}, at least {ROOMS_MIN_READY_SECS}: "
                "the next old pod must not get SIGTERM before the new one's shards arrived "
                "(5 s stabilization + 5 s handoff drain)")


def check_rooms_autoscaler(by_kind, deployment, profile):
    """rooms: exactly one autoscaling/v2 HPA on CPU, within the profile's range, gentle scale-down."""
    low, high = profile["rooms_scale"]
    scalers = [(kind, obj) for kind in AUTOSCALER_KINDS for obj in by_kind.get(kind, [])
               if (obj["spec"].get("scaleTargetRef") or {}).get("name") == "rooms"]
    hpas = [obj for kind, obj in scalers if kind == "HorizontalPodAutoscaler"]
    if len(scalers) != 1 or len(hpas) != 1:
        found = [kind + "/" + obj["metadata"]["name"] for kind, obj in scalers]
        finding(f"rooms needs exactly one autoscaler, a HorizontalPodAutoscaler; found {found or 'none'}")
    for hpa in hpas:
        where = f"HorizontalPodAutoscaler/{hpa['metadata']['name']}"
        spec = hpa["spec"]
        ref = spec.get("scaleTargetRef") or {}
        if hpa.get("apiVersion") != "autoscaling/v2":
            finding(f"{where}: apiVersion must be autoscaling/v2 (is {hpa.get('apiVersion')})")
        if ref.get("kind") != "Deployment" or ref.get("apiVersion") != "apps/v1":
            finding(f"{where}: scaleTargetRef must be the apps/v1 Deployment rooms")
        hpa_low, hpa_high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if hpa_low < low:
            finding(f"{where}: minReplicas {hpa_low}, at least {low}")
        if hpa_high != high:
            finding(f"{where}: maxReplicas {hpa_high}, expected {high} (the ceiling at "
                    f"{profile['shards']} shards; more replicas need more shards)")
        if hpa_high is not None and hpa_low > hpa_high:
            finding(f"{where}: minReplicas above maxReplicas")
        replicas = deployment["spec"].get("replicas", 1) if deployment else None
        if replicas is not None and hpa_high is not None and not hpa_low <= replicas <= hpa_high:
            finding(f"{where}: the Deployment's replicas {replicas} lie outside {hpa_low}..{hpa_high}")
        cpu = [m for m in spec.get("metrics") or []
               if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu"
               and ((m["resource"].get("target") or {}).get("type") == "Utilization")]
        if not cpu:
            finding(f"{where}: needs a Resource metric on cpu with a Utilization target")
        down = (spec.get("behavior") or {}).get("scaleDown") or {}
        if down.get("stabilizationWindowSeconds", 300) < ROOMS_SCALE_DOWN_WINDOW_SECS:
            finding(f"{where}: scaleDown.stabilizationWindowSeconds "
                    f"{down.get('stabilizationWindowSeconds')}, at least {ROOMS_SCALE_DOWN_WINDOW_SECS}: "
                    "every scale-in moves shards")
        policies = down.get("policies") or []
        if down.get("selectPolicy") != "Disabled" and (not policies or any(
                p.get("type") != "Pods" or p.get("value", 0) > 1 or p.get("periodSeconds", 0) < 60
                for p in policies)):
            finding(f"{where}: scaleDown must remove at most 1 pod per 60 s (type Pods, value 1, "
                    f"periodSeconds >= 60), is {policies or 'the default (100 % at once)'}")


def check_rooms_ops(by_kind, services, deployments):
    """The operator's rooms-ops pod reaches rooms on 8080 and nothing else; nothing selects it."""
    policies = by_kind.get("NetworkPolicy", [])
    rooms = deployments.get("rooms")
    if rooms is None:
        return
    egress_ok, ingress_ok = traffic_allowed(policies, ROOMS_OPS_LABELS,
                                            rooms["spec"]["template"]["metadata"]["labels"], 8080)
    if not egress_ok:
        finding("NetworkPolicy: a rooms-ops pod may not reach rooms on 8080 (egress); "
                "`rooms cluster status|drain` from inside the cluster would hang")
    if not ingress_ok:
        finding("NetworkPolicy: rooms does not admit a rooms-ops pod on 8080 (ingress)")
    for other, deployment in deployments.items():
        if other != "rooms" and traffic_allowed(policies, ROOMS_OPS_LABELS,
                                                deployment["spec"]["template"]["metadata"]["labels"], 8080)[0]:
            finding(f"NetworkPolicy: a rooms-ops pod may reach {other} on 8080; it needs rooms only")
    # Its own policies (not the namespace-wide DNS one): no ingress, egress to rooms on 8080.
    for np in policies:
        if not np["spec"]["podSelector"] or not selects(np["spec"]["podSelector"], ROOMS_OPS_LABELS):
            continue
        where = f"NetworkPolicy/{np['metadata']['name']}"
        if np["spec"].get("ingress"):
            finding(f"{where}: a rooms-ops pod accepts no connection; no ingress rule")
        for rule in np["spec"].get("egress") or []:
            ports = {p.get("port") for p in rule.get("ports") or [{}]}
            if not rule.get("to") or ports != {8080}:
                finding(f"{where}: a rooms-ops pod may only reach rooms pods on 8080 (rule {rule})")
    for service in services.values():
        if selects({"matchLabels": service["spec"].get("selector")}, ROOMS_OPS_LABELS):
            finding(f"Service/{service['metadata']['name']} selects rooms-ops pods")
    for kind in ("PodDisruptionBudget", "Deployment"):
        for obj in by_kind.get(kind, []):
            if selects(obj["spec"].get("selector"), ROOMS_OPS_LABELS):
                finding(f"{kind}/{obj['metadata']['name']} selects rooms-ops pods")


def check_shutdown_budget(name, service_name, pod):
    """preStop (sleep only: no shell in the images) + the binary's exit + margin <= grace."""
    grace = pod.get("terminationGracePeriodSeconds", 30)
    for container in pod["containers"]:
        pre_stop = (container.get("lifecycle") or {}).get("preStop")
        where = f"{name}/{container['name']}"
        if pre_stop is None:
            if service_name in PRESTOP_SLEEP_REQUIRED:
                finding(f"{where}: needs lifecycle.preStop.sleep (endpoint removal before SIGTERM)")
            continue
        if set(pre_stop) != {"sleep"}:
            finding(f"{where}: preStop must be a sleep action ({sorted(pre_stop)}): the image has no shell")
            continue
        seconds = pre_stop["sleep"].get("seconds")
        if not isinstance(seconds, int) or seconds < 1:
            finding(f"{where}: preStop sleep seconds must be a positive integer, is {seconds!r}")
            continue
        if seconds + BINARY_EXIT_SECS + SHUTDOWN_MARGIN_SECS > grace:
            finding(f"{where}: preStop sleep {seconds} s + {BINARY_EXIT_SECS} s drain + "
                    f"{SHUTDOWN_MARGIN_SECS} s margin exceed terminationGracePeriodSeconds {grace}")


def pdb_allowed_disruptions(pdb_spec, replicas):
    """Pods a PDB lets the eviction API take at this replica count (percentages rounded up, as
    the disruption controller does); None when the PDB sets neither field."""
    def scaled(value):
        if isinstance(value, int):
            return value
        return -(-int(str(value).rstrip("%")) * replicas // 100)
    if "maxUnavailable" in pdb_spec:
        return scaled(pdb_spec["maxUnavailable"])
    if "minAvailable" in pdb_spec:
        return replicas - scaled(pdb_spec["minAvailable"])
    return None


def port_matches(rule, port):
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port or
                            (isinstance(p.get("port"), int) and p.get("endPort") and
                             p["port"] <= port <= p["endPort"]) for p in ports)


def peer_matches(peer, labels, namespace="chat"):
    """Whether a NetworkPolicy peer admits a pod of this namespace with these labels."""
    if "ipBlock" in peer:
        return False  # pod IPs are not known offline; in-cluster peers must use selectors
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is not None and not selects(ns_selector, {"kubernetes.io/metadata.name": namespace}):
        return False
    pod_selector = peer.get("podSelector")
    if pod_selector is None:
        return ns_selector is not None
    if ns_selector is None and namespace != "chat":
        return False  # a podSelector alone means the policy's own namespace
    return selects(pod_selector, labels)


def traffic_allowed(policies, src_labels, dst_labels, port):
    """(egress allowed from src, ingress allowed to dst) on TCP port, both in namespace chat,
    under these NetworkPolicies (a pod no policy selects for a direction is unrestricted)."""
    def direction(kind, selected_labels, peer_labels, rules_key, peers_key):
        applying = [np for np in policies
                    if kind in np["spec"].get("policyTypes", ["Ingress"])
                    and selects(np["spec"]["podSelector"], selected_labels)]
        if not applying:
            return True
        return any(port_matches(rule, port) and
                   (not rule.get(peers_key) or any(peer_matches(p, peer_labels) for p in rule[peers_key]))
                   for np in applying for rule in np["spec"].get(rules_key) or [])
    return (direction("Egress", src_labels, dst_labels, "egress", "to"),
            direction("Ingress", dst_labels, src_labels, "ingress", "from"))


def admits(policies, dst_labels, src, port):
    """Whether the ingress policies of a chat pod admit a pod src = (namespace, labels) on port."""
    namespace, labels = src
    applying = [np for np in policies
                if "Ingress" in np["spec"].get("policyTypes", ["Ingress"])
                and selects(np["spec"]["podSelector"], dst_labels)]
    return not applying or any(
        port_matches(rule, port) and
        (not rule.get("from") or any(peer_matches(p, labels, namespace) for p in rule["from"]))
        for np in applying for rule in np["spec"].get("ingress") or [])


def resolve(routes, path):
    """The Service the longest Prefix path covering this request path routes to (None: none)."""
    covering = [prefix for prefix in routes if path_covers(prefix, path)]
    if not covering:
        return None
    return routes[max(covering, key=lambda prefix: len([e for e in prefix.split("/") if e]))]


def path_covers(prefix, path):
    """Whether an Ingress Prefix path matches this request path (element-wise)."""
    want = [e for e in prefix.split("/") if e]
    have = [e for e in path.split("/") if e]
    return have[:len(want)] == want


def job_pod_templates(by_kind):
    for job in by_kind.get("Job", []):
        yield f"Job/{job['metadata']['name']}", job, job["spec"]["template"]
    for cron in by_kind.get("CronJob", []):
        yield (f"CronJob/{cron['metadata']['name']}", cron,
               cron["spec"]["jobTemplate"]["spec"]["template"])


def check_jobs(profile, by_kind, config_maps, service_accounts, services, deployments):
    """authz administrative Jobs and CronJobs (k8s/jobs/)."""
    authz = deployments.get("authz")
    authz_image = authz["spec"]["template"]["spec"]["containers"][0]["image"] if authz else None
    templates = list(job_pod_templates(by_kind))
    if not templates:
        finding("profile jobs: no Job or CronJob found")
    commands = set()
    for name, owner, template in templates:
        pod = template["spec"]
        pod_labels = template["metadata"].get("labels", {})
        check_security(name, pod)
        if pod.get("restartPolicy") not in ("Never", "OnFailure"):
            finding(f"{name}: restartPolicy must be Never or OnFailure")
        sa = service_accounts.get(pod.get("serviceAccountName"))
        if sa is None:
            finding(f"{name}: ServiceAccount {pod.get('serviceAccountName')!r} is missing")
        elif sa.get("automountServiceAccountToken") is not False:
            finding(f"ServiceAccount/{sa['metadata']['name']}: automountServiceAccountToken must be false")
        if pod_labels.get("app.kubernetes.io/part-of") != "chat":
            finding(f"{name}: pod template lacks app.kubernetes.io/part-of=chat")
        # Job pods answer no request: no Service, PDB or Deployment may select them.
        for service in services.values():
            if selects({"matchLabels": service["spec"].get("selector")}, pod_labels):
                finding(f"{name}: Service/{service['metadata']['name']} selects the job's pods")
        for pdb in by_kind.get("PodDisruptionBudget", []):
            if selects(pdb["spec"].get("selector"), pod_labels):
                finding(f"{name}: PodDisruptionBudget/{pdb['metadata']['name']} selects the job's pods")
        for deployment in by_kind.get("Deployment", []):
            if selects(deployment["spec"]["selector"], pod_labels):
                finding(f"{name}: Deployment/{deployment['metadata']['name']} selects the job's pods")

        if len(pod["containers"]) != 1:
            finding(f"{name}: expected exactly one container")
        container = pod["containers"][0]
        image = container["image"]
        if not image.startswith("chat/authz") or (":" not in image and "@" not in image):
            finding(f"{name}: image {image} must be a tagged chat/authz")
        if image.endswith(":latest"):
            finding(f"{name}: image {image} uses the latest tag")
        if authz_image and image != authz_image:
            finding(f"{name}: image {image} differs from the authz Deployment's {authz_image}")
        resources = container.get("resources") or {}
        if "cpu" not in (resources.get("requests") or {}) or "memory" not in (resources.get("limits") or {}):
            finding(f"{name}: needs a CPU request and a memory limit")

        args = container.get("args") or []
        command = args[0] if args else None
        commands.add(command)
        if command == "bootstrap" and len(args) != 4:
            finding(f"{name}: usage is authz bootstrap <tenant> <name> <admin>")
        elif command == "rotate-key" and len(args) != 1:
            finding(f"{name}: usage is authz rotate-key")
        elif command not in ("bootstrap", "rotate-key"):
            finding(f"{name}: unexpected authz command {args}")
        if command == "rotate-key" and owner["kind"] == "CronJob" and \
                owner["spec"].get("concurrencyPolicy") != "Forbid":
            finding(f"{name}: concurrencyPolicy must be Forbid (two rotations in a row retire a live key)")

        keys = container_settings(name, container, config_maps)
        chat_keys = {k for k in keys if k.startswith("CHAT__")}
        unknown = sorted(k for k in chat_keys if k.split("__")[1] not in AUTHZ_SECTIONS)
        if unknown:
            finding(f"{name}: not accepted by authz {unknown}")
        if not AUTHZ_JOB_KEYS <= chat_keys:
            finding(f"{name}: settings missing {sorted(AUTHZ_JOB_KEYS - chat_keys)}")
        check_setting_sources(name, "authz", keys, profile["shards"])
        other = set(keys) - chat_keys
        wanted = {"AUTHZ_BOOTSTRAP_PASSWORD"} if command == "bootstrap" else set()
        if other != wanted:
            finding(f"{name}: environment besides CHAT__ should be {sorted(wanted)}, is {sorted(other)}")
        password = keys.get("AUTHZ_BOOTSTRAP_PASSWORD")
        if password is not None and password[0] != "secret":
            finding(f"{name}: AUTHZ_BOOTSTRAP_PASSWORD must come from a Secret")

        # Reachability: PostgreSQL and RabbitMQ out, nothing in.
        policies = [np for np in by_kind.get("NetworkPolicy", [])
                    if np["spec"]["podSelector"] and selects(np["spec"]["podSelector"], pod_labels)]
        if not policies:
            finding(f"{name}: no NetworkPolicy of its own (the namespace denies by default)")
        egress_ports = {p.get("port") for np in policies for rule in np["spec"].get("egress", [])
                        for p in rule.get("ports", [])}
        if not {5432, 5672} <= egress_ports:
            finding(f"{name}: egress lacks ports {sorted({5432, 5672} - egress_ports)}")
        if any(np["spec"].get("ingress") for np in policies):
            finding(f"{name}: job pods accept no connection; their NetworkPolicy opens ingress")
    if not {"bootstrap", "rotate-key"} <= commands:
        finding(f"profile jobs: expected a bootstrap Job and a rotate-key CronJob, found {sorted(map(str, commands))}")


# --- coturn (k8s/components/coturn) --------------------------------------------------------

def turn_options(text):
    """turnserver.conf as (option, value) pairs, as coturn reads it: the name ends at the first
    blank or '=', the value starts after the run of them."""
    options = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = re.split(r"[ =\t]+", line, maxsplit=1)
        options.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return options


def ip_ranges(values):
    """coturn's denied-peer-ip values ("a", "a-b") as (version, first, last) integers; None
    for a malformed one (coturn refuses to start on it)."""
    ranges = []
    for value in values:
        try:
            first, _, last = value.partition("-")
            low, high = ipaddress.ip_address(first.strip()), ipaddress.ip_address((last or first).strip())
        except ValueError:
            ranges.append(None)
            continue
        ranges.append((low.version, int(low), int(high)) if low.version == high.version else None)
    return ranges


def coturn_in_range(first, last, address):
    """coturn's ioa_addr_in_range (4.17, src/client/ns_turn_ioaddr.c) on ipaddress objects: a
    bound that is the unspecified address (0.0.0.0, ::) counts as "any", and addresses of
    different families compare by family number (IPv4 < IPv6), not as no match."""
    def less_eq(a, b):
        if a.version != b.version:
            return a.version < b.version
        return int(a) <= int(b)
    if int(first) == 0 or less_eq(first, address):
        return int(last) == 0 or less_eq(address, last)
    return False


def covered(network, ranges):
    """Whether the union of these (version, first, last) ranges covers the whole network."""
    spans = sorted((low, high) for version, low, high in ranges if version == network.version)
    reach = int(network.network_address)
    for low, high in spans:
        if low > reach:
            break
        reach = max(reach, high + 1)
        if reach > int(network.broadcast_address):
            return True
    return reach > int(network.broadcast_address)


def ice_url_port(url):
    """(port, protocol) an ICE server URL names (RFC 7064/7065 defaults); None if malformed."""
    match = re.fullmatch(r"(stuns?|turns?):(\[[^\]]+\]|[^:?\[\]]+)(?::(\d+))?(?:\?transport=(udp|tcp))?", url)
    if not match:
        return None
    scheme, _, port, transport = match.groups()
    return (int(port) if port else ICE_DEFAULT_PORTS[scheme],
            transport.upper() if transport else ICE_DEFAULT_TRANSPORT[scheme])


def check_coturn(by_kind, config_maps, service_accounts, services, deployments):
    """The TURN server: one pod behind a LoadBalancer, restricted, its relays fenced off from
    the cluster twice (denied-peer-ip, NetworkPolicy egress), the secret only in Secret
    chat-turn (shared with rooms), the Service's ports exactly its listener and relay ports,
    and rooms' TURN URLs pointing at those ports."""
    deployment = deployments.get("coturn")
    if deployment is None:
        finding("Deployment coturn is missing (profile prod-coturn renders k8s/components/coturn)")
        return
    name = "Deployment/coturn"
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    if spec.get("replicas", 1) != 1:
        finding(f"{name}: replicas {spec.get('replicas')}, expected 1: an allocation lives in one process, "
                "and the relay ports of one public address must reach it")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        finding(f"{name}: strategy must be Recreate (never two pods behind the relay ports)")
    if pod_labels.get("app.kubernetes.io/part-of") != "chat":
        finding(f"{name}: pod template lacks app.kubernetes.io/part-of=chat")
    check_security(name, pod)
    sa = service_accounts.get(pod.get("serviceAccountName"))
    if sa is None or sa.get("automountServiceAccountToken") is not False:
        finding(f"{name}: needs its ServiceAccount with automountServiceAccountToken: false")
    containers = pod.get("initContainers", []) + pod["containers"]
    images = {c["image"] for c in containers}
    for image in images:
        if not re.fullmatch(r"coturn/coturn:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", image):
            finding(f"{name}: image {image} must be coturn/coturn pinned to a version tag (not latest)")
    if len(images) > 1:
        finding(f"{name}: init and server containers should run the same image, have {sorted(images)}")
    for container in containers:
        resources = container.get("resources") or {}
        if "cpu" not in (resources.get("requests") or {}) or "memory" not in (resources.get("limits") or {}):
            finding(f"{name}/{container['name']}: needs a CPU request and a memory limit")
    if len(pod["containers"]) != 1:
        finding(f"{name}: expected exactly one container")
    server = pod["containers"][0]
    for probe in ("livenessProbe", "readinessProbe"):
        if not server.get(probe):
            finding(f"{name}: {probe} missing")

    # The secret: Secret chat-turn (the one rooms' CHAT__CALLS__TURN_SECRET reads), mounted by
    # the init container only, which writes the composed file into a memory-backed emptyDir.
    turn_secret = SECRET_ENV["CHAT__CALLS__TURN_SECRET"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    secret_volumes = {n for n, v in volumes.items() if "secret" in v}
    if {volumes[n]["secret"].get("secretName") for n in secret_volumes} != {turn_secret[0]}:
        finding(f"{name}: needs a volume of Secret {turn_secret[0]} (the secret rooms signs with), and no other Secret")
    for n in secret_volumes:
        items = volumes[n]["secret"].get("items")
        if items and turn_secret[1] not in {i.get("key") for i in items}:
            finding(f"{name}: volume {n} leaves out key {turn_secret[1]} of Secret {turn_secret[0]}")
    for container in pod["containers"]:
        if any(m["name"] in secret_volumes for m in container.get("volumeMounts") or []):
            finding(f"{name}/{container['name']}: the Secret is mounted in the server container; only the "
                    "init container reads it")
        for env in container.get("env") or []:
            if "secretKeyRef" in (env.get("valueFrom") or {}):
                finding(f"{name}/{container['name']}: {env['name']} from a Secret; the secret goes into the "
                        "composed turnserver.conf, not the environment")
    command = (server.get("command") or []) + (server.get("args") or [])
    conf_path = command[command.index("-c") + 1] if "-c" in command[:-1] else None
    conf_mounts = [m for m in server.get("volumeMounts") or []
                   if conf_path and conf_path.startswith(m["mountPath"].rstrip("/") + "/")]
    if not conf_mounts:
        finding(f"{name}: the server must read its composed configuration (-c FILE) from a mounted volume")
    for mount in conf_mounts:
        volume = volumes.get(mount["name"]) or {}
        if (volume.get("emptyDir") or {}).get("medium") != "Memory":
            finding(f"{name}: the composed configuration (it holds the secret) must be on an emptyDir "
                    "with medium Memory")
        if not mount.get("readOnly"):
            finding(f"{name}: the server mounts its configuration read-only")

    # turnserver.conf (the ConfigMap a volume of the pod mounts).
    confs = [config_maps[v["configMap"]["name"]]["data"]["turnserver.conf"] for v in volumes.values()
             if "configMap" in v and "turnserver.conf" in (config_maps.get(v["configMap"]["name"]) or {}).get("data", {})]
    if len(confs) != 1:
        finding(f"{name}: expected one ConfigMap with turnserver.conf among its volumes, found {len(confs)}")
        return
    options = turn_options(confs[0])
    names = [option for option, _ in options]
    values = {}
    for option, value in options:
        values.setdefault(option, []).append(value)
    where = "turnserver.conf"
    for option in TURN_REQUIRED:
        if option not in names:
            finding(f"{where}: {option} is missing")
    for option, why in TURN_FORBIDDEN.items():
        if option in names:
            finding(f"{where}: {option} must not be there: {why}")
    if any(v.lower() not in ("false", "0", "no", "off") for v in values.get("cli", [])):
        finding(f"{where}: cli must stay off")
    try:
        low, high = int(values["min-port"][-1]), int(values["max-port"][-1])
        user_quota, total_quota = int(values["user-quota"][-1]), int(values["total-quota"][-1])
    except (KeyError, ValueError):
        return
    relay_ports = set(range(low, high + 1))
    if not 1024 < low <= high:
        finding(f"{where}: relay ports {low}..{high} must be an unprivileged range")
    if not 0 < user_quota <= total_quota <= len(relay_ports):
        finding(f"{where}: expected 0 < user-quota ({user_quota}) <= total-quota ({total_quota}) <= the "
                f"{len(relay_ports)} relay ports")
    denied = ip_ranges(values.get("denied-peer-ip", []))
    if None in denied:
        finding(f"{where}: a denied-peer-ip is not an IP or IP-IP range of one family (coturn stops on it)")
    for cidr in TURN_DENIED:
        if not covered(ipaddress.ip_network(cidr), [r for r in denied if r]):
            finding(f"{where}: denied-peer-ip does not deny {cidr}: TURN could relay into it")
    for value in values.get("denied-peer-ip", []):
        first, _, last = value.partition("-")
        try:
            bounds = ipaddress.ip_address(first.strip()), ipaddress.ip_address((last or first).strip())
        except ValueError:
            continue
        public = [peer for peer in TURN_PUBLIC_PEERS if coturn_in_range(*bounds, ipaddress.ip_address(peer))]
        if public:
            finding(f"{where}: denied-peer-ip={value} also denies public peers such as {public[0]} (coturn "
                    "treats an unspecified bound as any and orders IPv4 before IPv6): every call through "
                    "TURN would fail")

    # The Service: LoadBalancer, source addresses kept, UDP 3478 and exactly the relay ports.
    service = services.get("coturn")
    if service is None or not selects({"matchLabels": service["spec"].get("selector")}, pod_labels):
        finding("Service/coturn missing or not selecting the coturn pod")
        service_ports = set()
    else:
        if service["spec"].get("type") != "LoadBalancer":
            finding("Service/coturn: type must be LoadBalancer (its public address is the relay address)")
        if service["spec"].get("externalTrafficPolicy") != "Local":
            finding("Service/coturn: externalTrafficPolicy must be Local: with Cluster, kube-proxy rewrites the "
                    "source, so coturn checks peers' permissions against a node address and tells clients a "
                    "wrong server-reflexive address")
        service_ports = {(p["port"], p.get("protocol", "TCP")) for p in service["spec"]["ports"]}
        for port in service["spec"]["ports"]:
            if port.get("targetPort", port["port"]) != port["port"]:
                finding(f"Service/coturn: port {port['port']} goes to {port.get('targetPort')}; coturn hands out "
                        "its own port numbers, they must be the same outside")
        udp = {p for p, protocol in service_ports if protocol == "UDP"} - {3478}
        if (3478, "UDP") not in service_ports:
            finding("Service/coturn: needs UDP 3478 (TURN and STUN)")
        if udp != relay_ports:
            finding(f"Service/coturn: relay ports differ from turnserver.conf's {low}..{high}: missing "
                    f"{len(relay_ports - udp)}, extra {sorted(udp - relay_ports)[:5]}")

    # The NetworkPolicy: in, the listener and relay ports from anywhere; out, UDP to public
    # addresses only (every TURN_DENIED range excepted), no TCP, no chat pod.
    policies = [np for np in by_kind.get("NetworkPolicy", [])
                if np["spec"]["podSelector"] and selects(np["spec"]["podSelector"], pod_labels)]
    if not policies:
        finding(f"{name}: no NetworkPolicy of its own")
    for np in policies:
        where = f"NetworkPolicy/{np['metadata']['name']}"
        if set(np["spec"].get("policyTypes", [])) != {"Ingress", "Egress"}:
            finding(f"{where}: policyTypes must be Ingress and Egress")
        open_udp = set()
        for rule in np["spec"].get("ingress") or []:
            for port in rule.get("ports") or []:
                if port.get("protocol") == "UDP" and isinstance(port.get("port"), int):
                    open_udp |= set(range(port["port"], port.get("endPort", port["port"]) + 1))
        if not relay_ports | {3478} <= open_udp:
            finding(f"{where}: ingress must admit UDP 3478 and the relay ports {low}..{high}")
        for rule in np["spec"].get("egress") or []:
            peers = rule.get("to") or []
            if not peers or any("ipBlock" not in peer for peer in peers):
                finding(f"{where}: coturn may reach any address or a pod by selector; its egress names "
                        "public ipBlocks only")
            if any(p.get("protocol", "TCP") != "UDP" for p in rule.get("ports") or [{}]):
                finding(f"{where}: egress opens TCP (or every protocol); coturn relays UDP only (no-tcp-relay)")
            for peer in peers:
                block = peer.get("ipBlock")
                if not block:
                    continue
                cidr = ipaddress.ip_network(block["cidr"])
                excepts = [ipaddress.ip_network(e) for e in block.get("except") or []]
                for denied_cidr in map(ipaddress.ip_network, TURN_DENIED):
                    if denied_cidr.version == cidr.version and denied_cidr.overlaps(cidr) and not any(
                            denied_cidr.version == e.version and denied_cidr.subnet_of(e) for e in excepts):
                        finding(f"{where}: egress to {cidr} does not except {denied_cidr}")

    # rooms' URLs name ports of this Service, and rooms shares the Secret (SECRET_ENV).
    calls = {}
    rooms = deployments.get("rooms")
    if rooms is not None:
        calls = container_settings("Deployment/rooms", rooms["spec"]["template"]["spec"]["containers"][0], config_maps)
    turn_urls = str(calls.get("CHAT__CALLS__TURN_URLS", ("", ""))[1] or "")
    stun_urls = str(calls.get("CHAT__CALLS__STUN_URLS", ("", ""))[1] or "")
    if not turn_urls:
        finding("Deployment/rooms: CHAT__CALLS__TURN_URLS is empty: rooms would hand out no TURN server")
    for url in filter(None, (u.strip() for u in f"{turn_urls},{stun_urls}".split(","))):
        port = ice_url_port(url)
        if port is None:
            finding(f"Deployment/rooms: {url!r} is not a stun:/turn: URL")
        elif service_ports and port not in service_ports:
            finding(f"Deployment/rooms: {url} names {port[1]} {port[0]}, Service coturn has no such port")
    for url in filter(None, turn_urls.split(",")):
        if not url.strip().startswith(("turn:", "turns:")):
            finding(f"Deployment/rooms: CHAT__CALLS__TURN_URLS holds {url!r}, not a turn: URL")


# --- self-test: deliberately broken copies of a good render --------------------------------

def _obj(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def _rooms(docs):
    return _obj(docs, "Deployment", "rooms")["spec"]


def _rooms_container(docs):
    return _rooms(docs)["template"]["spec"]["containers"][0]


def _hpa(docs):
    return _obj(docs, "HorizontalPodAutoscaler", "rooms")["spec"]


def _scale_down(docs):
    return _hpa(docs).setdefault("behavior", {}).setdefault("scaleDown", {})


def _pdb(docs, **fields):
    spec = _obj(docs, "PodDisruptionBudget", "rooms")["spec"]
    spec.pop("maxUnavailable", None)
    spec.pop("minAvailable", None)
    spec.update(fields)


def _second_autoscaler(docs, kind, api_version):
    extra = json.loads(json.dumps(_obj(docs, "HorizontalPodAutoscaler", "rooms")))
    extra["kind"], extra["apiVersion"] = kind, api_version
    extra["metadata"]["name"] = "rooms-extra"
    docs.append(extra)


def _too_few_or_many(profile):
    low, high = profile["rooms_scale"]
    return 1 if low > 1 else high + 1


# (what is broken, how (on the objects and the profile), a piece of the finding that must appear)
BREAKAGES = (
    ("rooms back to the old replica count", lambda d, p: _rooms(d).update(replicas=_too_few_or_many(p)),
     "Deployment/rooms: replicas"),
    ("strategy Recreate", lambda d, p: _rooms(d).update(strategy={"type": "Recreate"}),
     "strategy must be RollingUpdate"),
    ("rolling update maxUnavailable 1",
     lambda d, p: _rooms(d)["strategy"]["rollingUpdate"].update(maxUnavailable=1),
     "rolling update must be maxSurge 1, maxUnavailable 0"),
    ("rolling update maxSurge 3", lambda d, p: _rooms(d)["strategy"]["rollingUpdate"].update(maxSurge=3),
     "rolling update must be maxSurge 1, maxUnavailable 0"),
    ("no strategy (default 25 % / 25 %)", lambda d, p: _rooms(d).pop("strategy"),
     "rolling update must be maxSurge 1, maxUnavailable 0"),
    ("no minReadySeconds", lambda d, p: _rooms(d).pop("minReadySeconds"), "minReadySeconds"),
    ("HPA deleted", lambda d, p: d.remove(_obj(d, "HorizontalPodAutoscaler", "rooms")),
     "rooms needs exactly one autoscaler"),
    ("a second HPA on rooms",
     lambda d, p: _second_autoscaler(d, "HorizontalPodAutoscaler", "autoscaling/v2"),
     "rooms needs exactly one autoscaler"),
    ("a KEDA ScaledObject next to the HPA",
     lambda d, p: _second_autoscaler(d, "ScaledObject", "keda.sh/v1alpha1"),
     "rooms needs exactly one autoscaler"),
    ("HPA autoscaling/v1", lambda d, p: _obj(d, "HorizontalPodAutoscaler", "rooms").update(
        apiVersion="autoscaling/v1"), "apiVersion must be autoscaling/v2"),
    ("HPA maxReplicas doubled", lambda d, p: _hpa(d).update(maxReplicas=2 * p["rooms_scale"][1]),
     "HorizontalPodAutoscaler/rooms: maxReplicas"),
    ("HPA minReplicas below the floor", lambda d, p: _hpa(d).update(minReplicas=p["rooms_scale"][0] - 1),
     "HorizontalPodAutoscaler/rooms: minReplicas"),
    ("HPA on memory instead of CPU", lambda d, p: _hpa(d)["metrics"][0]["resource"].update(name="memory"),
     "needs a Resource metric on cpu"),
    ("HPA scale-down without stabilization",
     lambda d, p: _scale_down(d).update(stabilizationWindowSeconds=0), "stabilizationWindowSeconds"),
    ("HPA scale-down 4 pods a minute",
     lambda d, p: _scale_down(d).update(policies=[{"type": "Pods", "value": 4, "periodSeconds": 60}]),
     "scaleDown must remove at most 1 pod per 60 s"),
    ("HPA scale-down by percent",
     lambda d, p: _scale_down(d).update(policies=[{"type": "Percent", "value": 50, "periodSeconds": 60}]),
     "scaleDown must remove at most 1 pod per 60 s"),
    ("HPA without behavior (default: 100 % down every 15 s)", lambda d, p: _hpa(d).pop("behavior"),
     "scaleDown must remove at most 1 pod per 60 s"),
    ("PDB minAvailable 2", lambda d, p: _pdb(d, minAvailable=2), "PodDisruptionBudget/rooms: allows"),
    ("PDB maxUnavailable 2", lambda d, p: _pdb(d, maxUnavailable=2), "PodDisruptionBudget/rooms: allows"),
    ("PDB maxUnavailable 100%", lambda d, p: _pdb(d, maxUnavailable="100%"),
     "PodDisruptionBudget/rooms: allows"),
    ("PDB minAvailable 100%", lambda d, p: _pdb(d, minAvailable="100%"),
     "PodDisruptionBudget/rooms: allows no eviction"),
    ("CPU limit on rooms", lambda d, p: _rooms_container(d)["resources"]["limits"].update(cpu="2"),
     "no CPU limit on rooms"),
    ("no preStop on rooms", lambda d, p: _rooms_container(d).pop("lifecycle"),
     "needs lifecycle.preStop.sleep"),
    ("preStop sleep 10 s", lambda d, p: _rooms_container(d)["lifecycle"]["preStop"]["sleep"].update(seconds=10),
     "exceed terminationGracePeriodSeconds"),
    ("preStop exec", lambda d, p: _rooms_container(d)["lifecycle"].update(
        preStop={"exec": {"command": ["sleep", "5"]}}), "preStop must be a sleep action"),
    ("grace period 20 s", lambda d, p: _rooms(d)["template"]["spec"].update(terminationGracePeriodSeconds=20),
     "Deployment/rooms: terminationGracePeriodSeconds must be"),
    ("rooms-ops NetworkPolicy deleted", lambda d, p: d.remove(_obj(d, "NetworkPolicy", "rooms-ops")),
     "a rooms-ops pod may not reach rooms"),
    ("rooms-ops egress to every pod on 8080",
     lambda d, p: _obj(d, "NetworkPolicy", "rooms-ops")["spec"]["egress"][0].pop("to"),
     "a rooms-ops pod may reach authz"),
    ("rooms-ops egress to PostgreSQL",
     lambda d, p: _obj(d, "NetworkPolicy", "rooms-ops")["spec"]["egress"].append(
         {"ports": [{"protocol": "TCP", "port": 5432}]}),
     "a rooms-ops pod may only reach rooms pods on 8080"),
)



def _prefixed(docs, kind, prefix):
    """The object of this kind whose name is prefix or prefix-<hash> (generated ConfigMaps)."""
    return next(d for d in docs if d["kind"] == kind and re.fullmatch(
        re.escape(prefix) + r"(-[a-z0-9]{10})?", d["metadata"]["name"]))


def _turn_conf(docs, edit):
    data = _prefixed(docs, "ConfigMap", "coturn-config")["data"]
    data["turnserver.conf"] = edit(data["turnserver.conf"])


def _coturn_pod(docs):
    return _obj(docs, "Deployment", "coturn")["spec"]["template"]["spec"]


def _coturn_egress(docs):
    return _obj(docs, "NetworkPolicy", "coturn")["spec"]["egress"]


def _rooms_env(docs, key):
    return next(e for e in _rooms_container(docs)["env"] if e["name"] == key)


# The same, for the coturn component (profile prod-coturn).
COTURN_BREAKAGES = (
    ("the shared secret in the ConfigMap", lambda d, p: _turn_conf(d, lambda c: c + "static-auth-secret=north\n"),
     "static-auth-secret must not be there"),
    ("use-auth-secret left out", lambda d, p: _turn_conf(d, lambda c: c.replace("\nuse-auth-secret\n", "\n")),
     "use-auth-secret is missing"),
    ("10.0.0.0/8 no longer denied",
     lambda d, p: _turn_conf(d, lambda c: c.replace("denied-peer-ip=10.0.0.0-10.255.255.255\n", "")),
     "does not deny 10.0.0.0/8"),
    ("link-local denied only in part",
     lambda d, p: _turn_conf(d, lambda c: c.replace("169.254.0.0-169.254.255.255", "169.254.0.0-169.254.169.253")),
     "does not deny 169.254.0.0/16"),
    ("a CIDR in denied-peer-ip (coturn stops on it)",
     lambda d, p: _turn_conf(d, lambda c: c.replace("10.0.0.0-10.255.255.255", "10.0.0.0/8")),
     "not an IP or IP-IP range"),
    ("IPv6 loopback written from ::", lambda d, p: _turn_conf(d, lambda c: c.replace(
        "denied-peer-ip=::1\n", "denied-peer-ip=::-::1\n")), "also denies public peers such as 1.1.1.1"),
    ("a lone 0.0.0.0", lambda d, p: _turn_conf(d, lambda c: c + "denied-peer-ip=0.0.0.0\n"),
     "also denies public peers"),
    ("loopback peers allowed", lambda d, p: _turn_conf(d, lambda c: c + "allow-loopback-peers\n"),
     "allow-loopback-peers must not be there"),
    ("relay range wider than the Service", lambda d, p: _turn_conf(d, lambda c: re.sub(
        r"max-port=(\d+)", lambda m: f"max-port={int(m.group(1)) + 1}", c)), "relay ports differ"),
    ("externalTrafficPolicy Cluster",
     lambda d, p: _obj(d, "Service", "coturn")["spec"].update(externalTrafficPolicy="Cluster"),
     "externalTrafficPolicy must be Local"),
    ("a relay port sent elsewhere", lambda d, p: _obj(d, "Service", "coturn")["spec"]["ports"][-1].update(
        targetPort=40000), "they must be the same outside"),
    ("egress to every address", lambda d, p: _coturn_egress(d)[0].pop("to"), "coturn may reach any address"),
    ("egress without the link-local except", lambda d, p: _coturn_egress(d)[0]["to"][0]["ipBlock"]["except"].remove(
        "169.254.0.0/16"), "does not except 169.254.0.0/16"),
    ("TCP egress", lambda d, p: _coturn_egress(d)[0]["ports"].append({"protocol": "TCP"}), "egress opens TCP"),
    ("two coturn replicas", lambda d, p: _obj(d, "Deployment", "coturn")["spec"].update(replicas=2),
     "Deployment/coturn: replicas"),
    ("coturn image latest", lambda d, p: _coturn_pod(d)["containers"][0].update(image="coturn/coturn:latest"),
     "pinned to a version tag"),
    ("the Secret mounted in the server container", lambda d, p: _coturn_pod(d)["containers"][0]["volumeMounts"].append(
        {"name": "secret", "mountPath": "/etc/coturn-secret"}), "mounted in the server container"),
    ("the composed configuration on disk", lambda d, p: next(
        v for v in _coturn_pod(d)["volumes"] if v["name"] == "config")["emptyDir"].pop("medium"),
     "emptyDir with medium Memory"),
    ("rooms signs with another Secret", lambda d, p: _rooms_env(d, "CHAT__CALLS__TURN_SECRET")["valueFrom"][
        "secretKeyRef"].update(name="chat-internal"), "CHAT__CALLS__TURN_SECRET must come from Secret chat-turn"),
    ("a TURN URL on a port the Service lacks", lambda d, p: _prefixed(d, "ConfigMap", "chat-calls")["data"].update(
        CHAT__CALLS__TURN_URLS="turn:turn.example.com:3479?transport=udp"), "Service coturn has no such port"),
    ("rooms without its TURN URLs", lambda d, p: _prefixed(d, "ConfigMap", "chat-calls")["data"].pop(
        "CHAT__CALLS__TURN_URLS"), "CHAT__CALLS__TURN_URLS"),
)

def self_test(profile_name, path):
    """The render must pass; every breakage of a copy of it must be caught."""
    docs = load([path])
    failures = [f"the render itself: {message}" for message in check(profile_name, docs)]
    breakages = BREAKAGES + (COTURN_BREAKAGES if PROFILES[profile_name].get("coturn") else ())
    for label, breakage, expected in breakages:
        broken = json.loads(json.dumps(docs))
        try:
            breakage(broken, PROFILES[profile_name])
        except (KeyError, StopIteration, ValueError, IndexError, TypeError) as error:
            failures.append(f"{label}: could not break the render ({error!r}); update BREAKAGES")
            continue
        got = check(profile_name, broken)
        if not any(expected in message for message in got):
            failures.append(f"{label}: not caught (expected a finding with {expected!r}, got {got})")
    findings.clear()
    for failure in failures:
        print(f"  - {failure}")
    if failures:
        print(f"self-test: {len(failures)} failure(s) of {len(breakages)} breakages of {path} ({profile_name})")
        return 1
    print(f"self-test: {path} ({profile_name}) passes, {len(breakages)} broken copies caught")
    return 0


def load(files):
    docs = []
    for path in files:
        with open(path) as handle:
            docs += [doc for doc in yaml.safe_load_all(handle) if doc]
    return docs


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--self-test" and sys.argv[2] in SELF_TEST_PROFILES:
        return self_test(sys.argv[2], sys.argv[3])
    if len(sys.argv) < 3 or sys.argv[1] not in PROFILES:
        sys.exit(__doc__)
    profile_name, files = sys.argv[1], sys.argv[2:]
    rendered = " + ".join(files)
    docs = load(files)
    check(profile_name, docs)
    if findings:
        for message in findings:
            print(f"  - {message}")
        print(f"{len(findings)} finding(s) in {rendered} ({profile_name})")
        return 1
    print(f"house rules: {rendered} ({profile_name}): {len(docs)} objects, all checks passed")
    return 0


def check(profile_name, docs):
    """Every rule on these objects; the findings land in `findings` (emptied first)."""
    findings.clear()
    profile = PROFILES[profile_name]

    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    config_maps = {cm["metadata"]["name"]: cm for cm in by_kind.get("ConfigMap", [])}
    service_accounts = {sa["metadata"]["name"]: sa for sa in by_kind.get("ServiceAccount", [])}
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}

    namespaces = by_kind.get("Namespace", [])
    if not any(ns["metadata"]["name"] == "chat" and
               ns["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted"
               for ns in namespaces):
        finding("namespace chat with pod-security.kubernetes.io/enforce=restricted is missing")
    for doc in docs:
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != "chat":
            finding(f"{doc['kind']}/{doc['metadata']['name']} is not in namespace chat")

    for service_name in SERVICES:
        deployment = deployments.get(service_name)
        if deployment is None:
            finding(f"Deployment {service_name} is missing")
            continue
        spec = deployment["spec"]
        pod = spec["template"]["spec"]
        pod_labels = spec["template"]["metadata"]["labels"]
        name = f"Deployment/{service_name}"

        if service_name == "rooms":
            check_rooms_rollout(name, spec, profile["rooms_scale"])
        elif spec.get("replicas") != profile["replicas"][service_name]:
            finding(f"{name}: replicas {spec.get('replicas')}, expected {profile['replicas'][service_name]}")
        if pod.get("terminationGracePeriodSeconds") != GRACE_SECONDS:
            finding(f"{name}: terminationGracePeriodSeconds must be {GRACE_SECONDS}")
        check_shutdown_budget(name, service_name, pod)
        if pod_labels.get("app.kubernetes.io/part-of") != "chat":
            finding(f"{name}: pod template lacks app.kubernetes.io/part-of=chat (NetworkPolicies use it)")
        if not selects(spec["selector"], pod_labels):
            finding(f"{name}: selector does not select its own pod template")

        sa_name = pod.get("serviceAccountName")
        sa = service_accounts.get(sa_name)
        if sa is None:
            finding(f"{name}: ServiceAccount {sa_name!r} is missing")
        elif sa.get("automountServiceAccountToken") is not False:
            finding(f"ServiceAccount/{sa_name}: automountServiceAccountToken must be false")

        check_security(name, pod)
        if len(pod["containers"]) != 1:
            finding(f"{name}: expected exactly one container")
        container = pod["containers"][0]

        image = container["image"]
        if not image.startswith(f"chat/{service_name}"):
            finding(f"{name}: image {image} is not chat/{service_name}")
        if profile_name != "base" and ":" not in image and "@" not in image:
            finding(f"{name}: image {image} has no tag (set it with kustomize images:)")
        if image.endswith(":latest"):
            finding(f"{name}: image {image} uses the latest tag")

        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        if ports.get("http") != 8080:
            finding(f"{name}: container port 'http' must be 8080")
        for probe_name, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
            http_get = (container.get(probe_name) or {}).get("httpGet") or {}
            if http_get.get("path") != path or http_get.get("port") not in ("http", 8080):
                finding(f"{name}: {probe_name} must GET {path} on port http")

        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for key in ("cpu", "memory"):
            if key not in requests:
                finding(f"{name}: resources.requests.{key} is missing")
        if "memory" not in limits:
            finding(f"{name}: resources.limits.memory is missing")
        if service_name == "rooms" and "cpu" in limits:
            finding(f"{name}: no CPU limit on rooms (throttling stalls lease renewal)")

        # The settings this container receives, and that they are exactly the expected ones.
        keys = container_settings(name, container, config_maps)
        expected = EXPECTED_KEYS[service_name]
        if service_name == "rooms" and profile.get("coturn"):
            expected = expected | CALLS
        if set(keys) != expected:
            missing, extra = sorted(expected - set(keys)), sorted(set(keys) - expected)
            finding(f"{name}: settings differ; missing {missing}, not accepted by the binary {extra}")
        check_setting_sources(name, service_name, keys, profile["shards"])
        if "CHAT__NODE__ID" in keys and keys["CHAT__NODE__ID"] != ("field", "metadata.name"):
            finding(f"{name}: CHAT__NODE__ID must come from metadata.name")
        for node_key in ("CHAT__CONTACTS__NODE_ID", "CHAT__LINE__NODE_ID"):
            if node_key in keys and keys[node_key] != ("field", "metadata.name"):
                finding(f"{name}: {node_key} must come from metadata.name")
        if "CHAT__AUTH__JWKS_URL" in keys:
            check_authz_url(name, "CHAT__AUTH__JWKS_URL", str(keys["CHAT__AUTH__JWKS_URL"][1]),
                            services.get("authz"), "/v1/auth/jwks")
        if "CHAT__AUTHZ__URL" in keys:
            check_authz_url(name, "CHAT__AUTHZ__URL", str(keys["CHAT__AUTHZ__URL"][1]),
                            services.get("authz"), "")

        # The objects that must select this service's pods.
        service = services.get(service_name)
        if service is None or not selects({"matchLabels": service["spec"].get("selector")}, pod_labels):
            finding(f"Service/{service_name} missing or not selecting the pods")
        elif not any(p.get("name") == "http" and p.get("targetPort") in ("http", 8080)
                     for p in service["spec"]["ports"]):
            finding(f"Service/{service_name}: needs a port named http to the container's http port")
        pdbs = [pdb for pdb in by_kind.get("PodDisruptionBudget", [])
                if selects(pdb["spec"].get("selector"), pod_labels)]
        if not pdbs:
            finding(f"{name}: no PodDisruptionBudget selects its pods")
        # The replica counts to hold the PDBs against: the Deployment's, and for rooms every
        # count its HPA may choose (the profile's range).
        counts = {spec.get("replicas", 1)}
        if service_name == "rooms":
            counts |= set(range(profile["rooms_scale"][0], profile["rooms_scale"][1] + 1))
        for pdb in pdbs:
            for replicas in sorted(counts):
                # Node drains must be able to evict a pod even at one replica (dev runs one).
                allowed = pdb_allowed_disruptions(pdb["spec"], replicas)
                if allowed is not None and allowed < 1:
                    finding(f"PodDisruptionBudget/{pdb['metadata']['name']}: allows no eviction at "
                            f"{replicas} replica(s), node drains would hang; use maxUnavailable: 1")
                    break
                # rooms: one replica's shards at a time.
                if service_name == "rooms" and allowed is not None and allowed > 1:
                    finding(f"PodDisruptionBudget/{pdb['metadata']['name']}: allows {allowed} rooms pods "
                            f"down at once at {replicas} replicas; at most one (maxUnavailable: 1), so "
                            "only one replica's shards move at a time")
                    break
        own_policies = [np for np in by_kind.get("NetworkPolicy", [])
                        if np["spec"]["podSelector"] and selects(np["spec"]["podSelector"], pod_labels)]
        if not own_policies:
            finding(f"{name}: no NetworkPolicy of its own")
        for np in own_policies:
            ingress_ports = {p.get("port") for rule in np["spec"].get("ingress", []) for p in rule.get("ports", [])}
            if ingress_ports != {8080}:
                finding(f"NetworkPolicy/{np['metadata']['name']}: ingress should open port 8080 only")
            egress_ports = {p.get("port") for rule in np["spec"].get("egress", []) for p in rule.get("ports", [])}
            if service_name in STATIC_SERVICES:
                # Serves embedded files and calls nothing: Egress denied, no rule (DNS comes
                # from common/networkpolicy-dns.yaml).
                if "Egress" not in np["spec"].get("policyTypes", []) or np["spec"].get("egress"):
                    finding(f"NetworkPolicy/{np['metadata']['name']}: {service_name} calls nothing; "
                            "policyTypes must include Egress, with no egress rule")
                need = set()
            else:
                need = {5432, 5672}
            if service_name in ("rooms", "line-gateway"):
                need.add(6379)
            if service_name == "line-gateway":
                need.add(443)
            if not need <= egress_ports:
                finding(f"NetworkPolicy/{np['metadata']['name']}: egress lacks ports {sorted(need - egress_ports)}")
            if 443 in egress_ports and service_name != "line-gateway":
                finding(f"NetworkPolicy/{np['metadata']['name']}: only line-gateway may reach 443")
        # Every service is routed by the Ingress and scraped by Prometheus.
        for who, source in (("the ingress controller", INGRESS_CONTROLLER), ("Prometheus", PROMETHEUS)):
            if not admits(by_kind.get("NetworkPolicy", []), pod_labels, source, 8080):
                finding(f"{name}: its NetworkPolicies do not admit {who} on 8080")

    # authz is reachable on its port from the services that fetch its JWKS (rooms also asks
    # it for decisions), in both directions of the policies; authz itself calls no service.
    policies = by_kind.get("NetworkPolicy", [])
    pod_labels_of = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in deployments.items()}
    if "authz" in pod_labels_of:
        for client in JWKS_CLIENTS:
            if client not in pod_labels_of:
                continue
            egress_ok, ingress_ok = traffic_allowed(policies, pod_labels_of[client], pod_labels_of["authz"], AUTHZ_PORT)
            if not egress_ok:
                finding(f"NetworkPolicy: {client} may not reach authz on {AUTHZ_PORT} (egress)")
            if not ingress_ok:
                finding(f"NetworkPolicy: authz does not admit {client} on {AUTHZ_PORT} (ingress)")
        for other in SERVICES:
            if other != "authz" and other in pod_labels_of and \
                    traffic_allowed(policies, pod_labels_of["authz"], pod_labels_of[other], 8080)[0]:
                finding(f"NetworkPolicy: authz may reach {other} on 8080; it calls no other service")

    # Static services: no chat pod reaches them (only the ingress controller and Prometheus do),
    # and they reach no chat pod.
    for static in STATIC_SERVICES:
        if static not in pod_labels_of:
            continue
        for other, labels in pod_labels_of.items():
            if other == static:
                continue
            if traffic_allowed(policies, labels, pod_labels_of[static], 8080)[1]:
                finding(f"NetworkPolicy: {static} admits {other} on 8080; only the ingress controller "
                        "and Prometheus may reach it")
            if traffic_allowed(policies, pod_labels_of[static], labels, 8080)[0]:
                finding(f"NetworkPolicy: {static} may reach {other} on 8080; it calls nothing")

    # Retired objects: no Secret chat-auth in the render (and none referenced, see above).
    for secret in by_kind.get("Secret", []):
        if secret["metadata"]["name"] in RETIRED_SECRETS:
            finding(f"Secret/{secret['metadata']['name']}: {RETIRED_SECRETS[secret['metadata']['name']]}")

    default_deny = [np for np in by_kind.get("NetworkPolicy", [])
                    if np["spec"]["podSelector"] == {} and not np["spec"].get("ingress")
                    and "Ingress" in np["spec"].get("policyTypes", [])]
    if not default_deny:
        finding("no default-deny ingress NetworkPolicy")

    # Autoscalers: exactly one HPA of the expected shape on rooms (see ROOMS_MIN_REPLICAS);
    # every autoscaler must target a Deployment of the render with a sane range.
    check_rooms_autoscaler(by_kind, deployments.get("rooms"), profile)
    check_rooms_ops(by_kind, services, deployments)
    for kind in AUTOSCALER_KINDS:
        for scaler in by_kind.get(kind, []):
            target = (scaler["spec"].get("scaleTargetRef") or {}).get("name")
            where = f"{kind}/{scaler['metadata']['name']}"
            if target not in deployments:
                finding(f"{where}: target {target!r} is not a Deployment in the render")
            low = scaler["spec"].get("minReplicas", scaler["spec"].get("minReplicaCount", 1))
            high = scaler["spec"].get("maxReplicas", scaler["spec"].get("maxReplicaCount", low))
            if low > high:
                finding(f"{where}: minReplicas above maxReplicas")

    # Ingress: every prefix routes to the expected Service and port.
    routes = {}
    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                if path.get("pathType") != "Prefix":
                    finding(f"Ingress/{ingress['metadata']['name']}: {path['path']} should be pathType Prefix")
                if backend["port"].get("name") != "http":
                    finding(f"Ingress/{ingress['metadata']['name']}: {path['path']} should use port name http")
                routes[path["path"]] = backend["name"]
        if ingress["spec"].get("defaultBackend"):
            finding(f"Ingress/{ingress['metadata']['name']}: no defaultBackend (it would expose /internal/)")
        for annotation in ROUTING_ANNOTATIONS:
            if annotation in ingress["metadata"].get("annotations", {}):
                finding(f"Ingress/{ingress['metadata']['name']}: {annotation} could route around the path table")
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                for private in PRIVATE_PATHS:
                    # Only the catch-all "/" to a static service may cover it (that answers 404).
                    catch_all = path["path"] == "/" and path["backend"]["service"]["name"] in STATIC_SERVICES
                    if path_covers(path["path"], private) and not catch_all:
                        finding(f"Ingress/{ingress['metadata']['name']}: {path['path']} "
                                f"(to {path['backend']['service']['name']}) exposes {private}")
        if ingress["spec"].get("ingressClassName") != "nginx":
            finding(f"Ingress/{ingress['metadata']['name']}: ingressClassName should be nginx")
        annotations = ingress["metadata"].get("annotations", {})
        uses_ws = any(p["path"] == "/v1/ws" for r in ingress["spec"]["rules"] for p in r["http"]["paths"])
        if uses_ws and int(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")) < 600:
            finding(f"Ingress/{ingress['metadata']['name']}: WebSocket route needs a long proxy-read-timeout")
    for prefix in sorted(set(routes) | set(ROUTES)):
        if routes.get(prefix) != ROUTES.get(prefix):
            finding(f"Ingress: {prefix} routes to {routes.get(prefix)}, expected {ROUTES.get(prefix)}")
    # What each request path reaches by longest prefix (the Ingresses share one host).
    for path, expected in RESOLVES.items():
        if resolve(routes, path) != expected:
            finding(f"Ingress: {path} reaches {resolve(routes, path)}, expected {expected}")
    for private in PRIVATE_PATHS:
        reached = resolve(routes, private)
        if reached is not None and reached not in STATIC_SERVICES:
            finding(f"Ingress: {private} reaches {reached}; authz's private paths must stay off the Ingress")

    # ServiceMonitor selects every service's Service on the http port.
    monitors = by_kind.get("ServiceMonitor", [])
    if not monitors:
        finding("ServiceMonitor missing")
    for sm in monitors:
        for service_name in SERVICES:
            service = services.get(service_name)
            if service is None or not selects(sm["spec"]["selector"], service["metadata"].get("labels", {})):
                finding(f"ServiceMonitor/{sm['metadata']['name']} does not select Service {service_name}")
        if not any(e.get("port") == "http" and e.get("path") == "/metrics" for e in sm["spec"]["endpoints"]):
            finding(f"ServiceMonitor/{sm['metadata']['name']}: needs endpoint port http path /metrics")

    # PrometheusRule: the expected alerts exist.
    alert_names = {r.get("alert") for pr in by_kind.get("PrometheusRule", [])
                   for g in pr["spec"]["groups"] for r in g["rules"]}
    for alert in ALERTS:
        if alert not in alert_names:
            finding(f"PrometheusRule: alert {alert} missing")
    # The alerts about every service name each of them in their job/deployment regexes.
    for pr in by_kind.get("PrometheusRule", []):
        for group in pr["spec"]["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") not in SERVICE_ALERTS:
                    continue
                patterns = re.findall(r'(?:job|deployment)=~"([^"]*)"', rule["expr"])
                if not patterns:
                    finding(f"PrometheusRule: {rule['alert']} selects no job or deployment by regex")
                for pattern in patterns:
                    missing = [s for s in SERVICES if not re.fullmatch(pattern, s)]
                    if missing:
                        finding(f"PrometheusRule: {rule['alert']} ({pattern!r}) leaves out {missing}")

    # Grafana dashboard ConfigMap.
    dashboards = [cm for cm in config_maps.values()
                  if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    if not dashboards:
        finding("no ConfigMap labelled grafana_dashboard=1")
    for cm in dashboards:
        for file_name, text in cm.get("data", {}).items():
            try:
                dashboard = json.loads(text)
            except ValueError as error:
                finding(f"ConfigMap/{cm['metadata']['name']}: {file_name} is not JSON: {error}")
                continue
            exprs = " ".join(t.get("expr", "") for p in dashboard.get("panels", []) for t in p.get("targets", []))
            for metric in DASHBOARD_METRICS:
                if metric not in exprs:
                    finding(f"dashboard {file_name}: no panel shows {metric}")

    if profile.get("coturn"):
        check_coturn(by_kind, config_maps, service_accounts, services, deployments)
    if profile_name == "jobs":
        check_jobs(profile, by_kind, config_maps, service_accounts, services, deployments)
    return list(findings)


if __name__ == "__main__":
    sys.exit(main())
