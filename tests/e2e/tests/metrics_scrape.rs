//! Every metric the operators look at exists: the Grafana dashboards
//! (`k8s/base/monitoring/dashboards/*.json`, the PromQL of each panel's targets and of the
//! templating queries), the alert rules (`k8s/base/monitoring/prometheusrule.yaml`) and any
//! custom or external metric of an autoscaler (`k8s/base/rooms/hpa.yaml`, the overlays) name
//! only metrics that a running service exports, with labels it exports (or that Prometheus
//! attaches to every target).
//!
//! The e2e test starts every service as its real binary (authz, rooms, contacts, line-gateway
//! and the web client's `web`), makes a little traffic so that the labelled families have a
//! child (the `prometheus` crate prints no `# HELP`/`# TYPE` line for a vector without one),
//! scrapes `GET /metrics` of each and compares. The unit tests show the comparison failing on a
//! name or label that nothing exports.
//!
//! Metrics of other exporters are accepted by name only, listed in [`EXTERNAL`]. `process_*`
//! is deliberately not there: the workspace builds `prometheus` without its `process` feature,
//! so no service registers the process collector and a panel on `process_*` would stay empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use e2e::*;
use serde_json::{json, Value};

/// Metrics that other exporters provide (a name, or a prefix ending in `_`), with who does.
const EXTERNAL: &[(&str, &str)] = &[
    ("up", "Prometheus itself, one series per scrape target"),
    ("scrape_", "Prometheus itself, per scrape target"),
    ("kube_", "kube-state-metrics"),
    ("container_", "cAdvisor, in the kubelet"),
    ("kubelet_", "the kubelet"),
    ("node_", "node-exporter"),
];

/// Labels Prometheus attaches to every series it scrapes through the ServiceMonitor
/// (prometheus-operator's relabelling), whatever the service exports.
const TARGET_LABELS: &[&str] = &["job", "instance", "namespace", "pod", "service", "endpoint", "container"];

fn external(name: &str) -> Option<&'static str> {
    EXTERNAL
        .iter()
        .find(|(pattern, _)| if pattern.ends_with('_') { name.starts_with(pattern) } else { name == *pattern })
        .map(|(_, who)| *who)
}

/// PromQL, as far as names go: which metrics and which labels an expression refers to.
mod promql {
    use std::collections::BTreeSet;

    /// Aggregation operators: followed by `(` or by a grouping clause, never metrics.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    /// Keywords that are followed by a list of label names in parentheses.
    const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    /// Other keywords and literals.
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"];

    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Names {
        pub metrics: BTreeSet<String>,
        pub labels: BTreeSet<String>,
    }

    fn ident_start(c: char) -> bool {
        c.is_ascii_alphabetic() || c == '_' || c == ':'
    }

    fn ident_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_' || c == ':'
    }

    /// The metric names (identifiers followed by `{`, `[` or standing alone, not functions,
    /// aggregations or keywords) and label names (in matchers and grouping clauses) of `expr`.
    /// Grafana's variables (`$namespace`, `${x}`, `$__rate_interval`) are skipped.
    pub fn names(expr: &str) -> Names {
        let chars: Vec<char> = expr.chars().collect();
        let mut out = Names::default();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '"' | '\'' | '`' => i = skip_string(&chars, i),
                '#' => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                }
                '{' => i = matchers(&chars, i, &mut out.labels),
                '[' => {
                    while i < chars.len() && chars[i] != ']' {
                        i += 1;
                    }
                    i += 1;
                }
                '$' => {
                    i += 1;
                    if i < chars.len() && chars[i] == '{' {
                        while i < chars.len() && chars[i] != '}' {
                            i += 1;
                        }
                        i += 1;
                    } else {
                        while i < chars.len() && ident_char(chars[i]) {
                            i += 1;
                        }
                    }
                }
                c if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) => {
                    // Numbers and durations: 0.99, 1e3, 0x1f, 5m, 1h30m.
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                        i += 1;
                    }
                }
                c if ident_start(c) => {
                    let start = i;
                    while i < chars.len() && ident_char(chars[i]) {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect();
                    let lower = word.to_ascii_lowercase();
                    let mut next = i;
                    while next < chars.len() && chars[next].is_whitespace() {
                        next += 1;
                    }
                    let call = chars.get(next) == Some(&'(');
                    if GROUPING.contains(&lower.as_str()) {
                        if call {
                            i = label_list(&chars, next, &mut out.labels);
                        }
                    } else if call || AGGREGATIONS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str()) {
                        // A function, an aggregation (before its grouping clause) or a keyword.
                    } else {
                        out.metrics.insert(word);
                    }
                }
                _ => i += 1,
            }
        }
        out
    }

    /// Past the string literal opening at `i` (backslash escapes; none in raw `` ` `` strings).
    fn skip_string(chars: &[char], mut i: usize) -> usize {
        let quote = chars[i];
        i += 1;
        while i < chars.len() && chars[i] != quote {
            if chars[i] == '\\' && quote != '`' {
                i += 1;
            }
            i += 1;
        }
        i + 1
    }

    /// The label names of the matchers `{a="x", b=~"y"}` opening at `i`; returns past `}`.
    fn matchers(chars: &[char], mut i: usize, labels: &mut BTreeSet<String>) -> usize {
        i += 1;
        while i < chars.len() && chars[i] != '}' {
            let c = chars[i];
            if c == '"' || c == '\'' || c == '`' {
                i = skip_string(chars, i);
            } else if ident_start(c) {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                labels.insert(chars[start..i].iter().collect());
            } else {
                i += 1;
            }
        }
        i + 1
    }

    /// The label names of `(a, b)` opening at `i`; returns past `)`.
    fn label_list(chars: &[char], mut i: usize, labels: &mut BTreeSet<String>) -> usize {
        i += 1;
        while i < chars.len() && chars[i] != ')' {
            if ident_start(chars[i]) {
                let start = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                labels.insert(chars[start..i].iter().collect());
            } else {
                i += 1;
            }
        }
        i + 1
    }

    /// A Grafana templating query: `label_values(<selector>, <label>)`, `query_result(<expr>)`,
    /// `label_values(<label>)`, or plain PromQL.
    pub fn grafana_query(query: &str) -> Names {
        let q = query.trim();
        if let Some(inner) = q.strip_prefix("label_values(").and_then(|r| r.strip_suffix(')')) {
            return match inner.rsplit_once(',') {
                Some((selector, label)) => {
                    let mut n = names(selector);
                    n.labels.insert(label.trim().to_owned());
                    n
                }
                None => Names { metrics: BTreeSet::new(), labels: BTreeSet::from([inner.trim().to_owned()]) },
            };
        }
        if let Some(inner) = q.strip_prefix("query_result(").and_then(|r| r.strip_suffix(')')) {
            return names(inner);
        }
        if q.starts_with("label_names(") || q.starts_with("metrics(") {
            return Names::default();
        }
        names(q)
    }
}

/// One PromQL expression an operator relies on, and where it is.
#[derive(Debug, Clone)]
struct Reference {
    /// Where: the file, and the panel, variable, rule or autoscaler metric.
    source: String,
    expr: String,
    names: promql::Names,
}

/// The repository's root (this crate is `tests/e2e`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The targets' `expr` of every panel (rows' nested panels too) and the templating queries.
fn dashboard_references(file: &Path) -> Vec<Reference> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let dashboard: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut out = Vec::new();
    fn panels(list: &Value, name: &str, out: &mut Vec<Reference>) {
        for panel in list.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let source = format!("dashboard {name}, panel {title:?}");
                    out.push(Reference { source, expr: expr.to_owned(), names: promql::names(expr) });
                }
            }
            panels(&panel["panels"], name, out);
        }
    }
    panels(&dashboard["panels"], &name, &mut out);
    for var in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"].as_str().or_else(|| var["query"].as_str()).unwrap_or("");
        if !query.is_empty() {
            let source = format!("dashboard {name}, variable {}", var["name"]);
            out.push(Reference { source, expr: query.to_owned(), names: promql::grafana_query(query) });
        }
    }
    out
}

/// The `expr:` values of a YAML file (inline, quoted, or a `|`/`>` block), with the alert or
/// record name above each when there is one. Enough YAML for rule files, without a parser.
fn yaml_exprs(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut rule = String::from("?");
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(name) = trimmed.strip_prefix("alert:").or_else(|| trimmed.strip_prefix("record:")) {
            rule = name.trim().to_owned();
        }
        if let Some(value) = trimmed.strip_prefix("expr:") {
            let value = value.trim();
            let indent = line.len() - line.trim_start().len();
            if value.starts_with('|') || value.starts_with('>') {
                let mut block = Vec::new();
                i += 1;
                while i < lines.len() && (lines[i].trim().is_empty() || indent_of(lines[i]) > indent) {
                    block.push(lines[i].trim());
                    i += 1;
                }
                out.push((rule.clone(), block.join("\n")));
                continue;
            }
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            out.push((rule.clone(), value.to_owned()));
        }
        i += 1;
    }
    out
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn rule_references(file: &Path) -> Vec<Reference> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    yaml_exprs(&text)
        .into_iter()
        .map(|(rule, expr)| Reference {
            source: format!("prometheusrule.yaml, {rule}"),
            names: promql::names(&expr),
            expr: expr.replace('\n', " "),
        })
        .collect()
}

/// The metric names of an autoscaler's `Pods`, `Object` and `External` metrics (`metric:` then
/// `name:`), comments left out (the HPA's file documents a custom metric it does not use yet).
fn autoscaler_references(file: &Path) -> Vec<Reference> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let lines: Vec<&str> =
        text.lines().map(|l| l.split_once('#').map_or(l, |(code, _)| code)).filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "metric:" {
            continue;
        }
        let indent = indent_of(line);
        for next in lines[i + 1..].iter().take_while(|l| indent_of(l) > indent) {
            if let Some(name) = next.trim().strip_prefix("name:") {
                let name = name.trim().trim_matches('"').to_owned();
                out.push(Reference {
                    source: format!("{}, autoscaler metric", file.display()),
                    expr: name.clone(),
                    names: promql::Names { metrics: BTreeSet::from([name]), labels: BTreeSet::new() },
                });
            }
        }
    }
    out
}

/// Every reference in the repository's monitoring and autoscaling manifests.
fn all_references() -> Vec<Reference> {
    let k8s = repo().join("k8s");
    let mut out = Vec::new();
    let dashboards = k8s.join("base/monitoring/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dashboards)
        .unwrap_or_else(|e| panic!("{}: {e}", dashboards.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard in {}", dashboards.display());
    for file in files {
        out.extend(dashboard_references(&file));
    }
    out.extend(rule_references(&k8s.join("base/monitoring/prometheusrule.yaml")));
    let mut scalers = vec![k8s.join("base/rooms/hpa.yaml")];
    for overlay in ["overlays/dev", "overlays/prod"] {
        for entry in std::fs::read_dir(k8s.join(overlay)).into_iter().flatten().flatten() {
            if entry.path().extension().is_some_and(|x| x == "yaml") {
                scalers.push(entry.path());
            }
        }
    }
    for file in scalers {
        out.extend(autoscaler_references(&file));
    }
    out
}

/// What the services export: each sample name with its label names and the service(s), and the
/// `# TYPE` of each family.
#[derive(Debug, Default)]
struct Exported {
    samples: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    types: BTreeMap<String, String>,
}

impl Exported {
    /// Add one service's text exposition.
    fn add(&mut self, service: &str, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some((name, kind)) = rest.split_once(' ') {
                    self.types.insert(name.to_owned(), kind.trim().to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            let entry = self.samples.entry(name.to_owned()).or_default();
            entry.1.insert(service.to_owned());
            if line[end..].starts_with('{') {
                entry.0.extend(sample_labels(&line[end..]));
            }
        }
    }

    /// Whether `name` (as PromQL writes it) is a series some service exports, or why not.
    fn check_metric(&self, name: &str) -> Result<(), String> {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some(kind) = self.types.get(base) {
                    return if kind == "histogram" || (kind == "summary" && suffix != "_bucket") {
                        self.samples.contains_key(name).then_some(()).ok_or_else(|| format!("{name}: no samples"))
                    } else {
                        Err(format!("{name}: {base} is a {kind}, it has no {suffix} series"))
                    };
                }
            }
        }
        match self.types.get(name).map(String::as_str) {
            Some("histogram") => Err(format!("{name} is a histogram: use {name}_bucket, _sum or _count")),
            _ if self.samples.contains_key(name) => Ok(()),
            _ => Err(format!("{name}: exported by no service")),
        }
    }

    /// The label names the series `name` carries.
    fn labels(&self, name: &str) -> BTreeSet<String> {
        self.samples.get(name).map(|(labels, _)| labels.clone()).unwrap_or_default()
    }
}

/// The label names of `{a="x",b="y\"z"}` in a sample line.
fn sample_labels(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 1;
    while i < chars.len() && chars[i] != '}' {
        let start = i;
        while i < chars.len() && chars[i] != '=' {
            i += 1;
        }
        out.push(chars[start..i].iter().collect::<String>().trim().trim_start_matches(',').trim().to_owned());
        i += 2; // `="`
        while i < chars.len() && chars[i] != '"' {
            if chars[i] == '\\' {
                i += 1;
            }
            i += 1;
        }
        i += 1;
        if i < chars.len() && chars[i] == ',' {
            i += 1;
        }
    }
    out
}

/// Every problem with `references` against `exported`: a metric nothing exports, a histogram
/// used without its suffix, a label neither the metrics of the expression nor Prometheus's
/// target carry. Empty when all is well.
fn findings(references: &[Reference], exported: &Exported) -> Vec<String> {
    let mut out = Vec::new();
    for r in references {
        let mut has_external = false;
        for metric in &r.names.metrics {
            if external(metric).is_some() {
                has_external = true;
            } else if let Err(why) = exported.check_metric(metric) {
                out.push(format!("{why}\n    in {}: {}", r.source, r.expr));
            }
        }
        // Labels of other exporters' series are not known here: only ours are checked.
        if has_external {
            continue;
        }
        let carried: BTreeSet<String> = r.names.metrics.iter().flat_map(|m| exported.labels(m)).collect();
        for label in &r.names.labels {
            if label != "__name__" && !TARGET_LABELS.contains(&label.as_str()) && !carried.contains(label) {
                out.push(format!(
                    "label {label:?} is carried by none of {:?}\n    in {}: {}",
                    r.names.metrics, r.source, r.expr
                ));
            }
        }
    }
    out
}

/// GET `/metrics` of a service.
async fn scrape(base: &str) -> String {
    let mut res = http().get(format!("{base}/metrics")).send().await.expect("GET /metrics");
    assert_eq!(res.status().as_u16(), 200, "{base}/metrics");
    let body = res.body().limit(8 << 20).await.expect("the exposition");
    String::from_utf8_lossy(&body).into_owned()
}

async fn send(method: &str, url: &str, token: &str, body: Option<Value>) -> Answer {
    call(method, url, Some(token), body.map(|b| b.to_string()).as_deref()).await
}

#[actix_rt::test]
async fn every_metric_the_dashboard_alerts_and_autoscaler_use_is_exported_by_a_running_service() {
    let mut references = all_references();
    assert!(references.len() >= 20, "the manifests' expressions were found: {references:#?}");
    // One more expression from the environment, to see this test fail on a name nothing
    // exports: METRICS_SCRAPE_EXTRA_EXPR='rate(rooms_bogus_total[5m])'.
    if let Ok(expr) = std::env::var("METRICS_SCRAPE_EXTRA_EXPR") {
        let names = promql::names(&expr);
        references.push(Reference { source: "METRICS_SCRAPE_EXTRA_EXPR".into(), expr, names });
    }

    let mut c = Cluster::start("metrics", &[]).await;
    c.start_contacts().await;
    c.start_line_gateway(&[]).await;
    let web = Service::start("web", &c.authz.name.clone(), c.authz.vhost.clone(), Vec::new()).await;

    // Traffic: a room, bob on a WebSocket, a message delivered to him, a command the room
    // refuses (bob recalling alice's message), the contacts and LINE APIs asked once, the page.
    let (alice, bob) = (c.login("acme", "alice").await, c.login("acme", "bob").await);
    let created = send(
        "POST",
        &format!("{}/v1/rooms", c.rooms.base()),
        &alice,
        Some(json!({"members": ["bob@acme"], "name": "metrics"})),
    )
    .await;
    assert!(created.status == 200 || created.status == 201, "create room: {}", created.body);
    let room = created.body["id"].as_str().expect("room id").to_owned();
    let mut ws = Ws::connect(&c.rooms.ws_url(), &bob).await;
    let body = json!({"client_msg_id": "m1", "body": {"type": "text", "text": "hello metrics"}});
    let posted = send("POST", &format!("{}/v1/rooms/{room}/messages", c.rooms.base()), &alice, Some(body)).await;
    assert_eq!(posted.status, 201, "post: {}", posted.body);
    ws.expect(15, "alice's message", |f| f["type"] == "message").await;
    let message = posted.body["message_id"].as_str().expect("message id").to_owned();
    let refused = send("DELETE", &format!("{}/v1/rooms/{room}/messages/{message}", c.rooms.base()), &bob, None).await;
    assert!(refused.status >= 400, "bob may not recall alice's message: {} {}", refused.status, refused.body);
    assert_eq!(send("GET", &format!("{}/v1/contacts", c.contacts()), &alice, None).await.status, 200);
    let profiles = send("GET", &format!("{}/v1/line/profiles?users=bob@acme", c.line_gateway()), &alice, None).await;
    assert!(
        profiles.status > 0 && profiles.status < 500,
        "line-gateway answers: {} {}",
        profiles.status,
        profiles.body
    );
    assert_eq!(call("GET", &format!("{}/", web.base()), None, None).await.status, 200);

    let services = [
        ("authz", c.authz.base()),
        ("rooms", c.rooms.base()),
        ("contacts", c.contacts()),
        ("line-gateway", c.line_gateway()),
        ("web", web.base()),
    ];
    // Gauges refreshed by background loops (queue depths every 5 s) may need a moment: scrape
    // until nothing is missing, 30 s at most, then fail with what still is.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let exported = loop {
        let mut exported = Exported::default();
        for (service, base) in &services {
            exported.add(service, &scrape(base).await);
        }
        let problems = findings(&references, &exported);
        if problems.is_empty() {
            break exported;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} problem(s) with the metrics the manifests use, after 30 s of scraping:\n{}",
            problems.len(),
            problems.join("\n")
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let metrics: BTreeSet<&String> = references.iter().flat_map(|r| &r.names.metrics).collect();
    eprintln!("{} expressions, {} metric names, all exported: {metrics:?}", references.len(), metrics.len());
    // For the record (not a failure): families no panel, alert or autoscaler looks at.
    let used: BTreeSet<&str> = metrics
        .iter()
        .map(|m| ["_bucket", "_sum", "_count"].iter().fold(m.as_str(), |m, s| m.strip_suffix(s).unwrap_or(m)))
        .collect();
    let unused: Vec<String> = exported
        .types
        .keys()
        .filter(|family| !used.contains(family.as_str()))
        .map(|family| {
            let sample = exported.samples.keys().find(|s| s.starts_with(family.as_str())).cloned().unwrap_or_default();
            let services = exported
                .samples
                .get(&sample)
                .map(|(_, s)| s.iter().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            format!("{family} ({services})")
        })
        .collect();
    eprintln!("exported, but on no panel, alert or autoscaler: {}", unused.join(", "));
    drop(ws);
}

/// Tests of the extraction and of the comparison, without services.
mod offline {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A small exposition as the services print it.
    fn exported() -> Exported {
        let mut e = Exported::default();
        e.add(
            "rooms",
            "# HELP rooms_active room actors\n# TYPE rooms_active gauge\nrooms_active 3\n\
             # HELP rooms_delivery_latency_seconds latency\n# TYPE rooms_delivery_latency_seconds histogram\n\
             rooms_delivery_latency_seconds_bucket{le=\"0.05\"} 1\nrooms_delivery_latency_seconds_bucket{le=\"+Inf\"} 1\n\
             rooms_delivery_latency_seconds_sum 0.01\nrooms_delivery_latency_seconds_count 1\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{service=\"rooms\",method=\"GET\",route=\"/v1/rooms/{room_id}\",status=\"200\"} 2\n",
        );
        e
    }

    fn reference(expr: &str) -> Reference {
        Reference { source: "test".to_owned(), expr: expr.to_owned(), names: promql::names(expr) }
    }

    #[test]
    fn metric_and_label_names_come_out_of_promql() {
        let n = promql::names(
            r#"histogram_quantile(0.99, sum by (namespace, le) (rate(rooms_delivery_latency_seconds_bucket{namespace="$namespace"}[$__rate_interval]))) > 0.05"#,
        );
        assert_eq!(n.metrics, set(&["rooms_delivery_latency_seconds_bucket"]));
        assert_eq!(n.labels, set(&["namespace", "le"]));
        let n = promql::names(
            "(max by (namespace) (rooms_shards_owned) / clamp_min(min by (namespace) (rooms_shards_owned), 1)) > 1.5 \
             and on (namespace) (rooms_active - rooms_ws_sessions offset 5m) > 2",
        );
        assert_eq!(n.metrics, set(&["rooms_shards_owned", "rooms_active", "rooms_ws_sessions"]));
        assert_eq!(n.labels, set(&["namespace"]));
        let n = promql::names(r#"topk(10, max(rooms_shard_queue_depth{shard!~"0.*", x=~'a"b'}) without (pod)) # up"#);
        assert_eq!(n.metrics, set(&["rooms_shard_queue_depth"]));
        assert_eq!(n.labels, set(&["shard", "x", "pod"]));
        assert_eq!(
            promql::names("sum(rate(http_requests_total[5m:1m] @ end()))").metrics,
            set(&["http_requests_total"])
        );
        let n = promql::grafana_query(r#"label_values(up{job=~"rooms|web"}, namespace)"#);
        assert_eq!((n.metrics, n.labels), (set(&["up"]), set(&["job", "namespace"])));
    }

    #[test]
    fn expressions_of_the_rule_file_are_read_inline_and_in_blocks() {
        let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: max(rooms_active) > 0\n        for: 5m\n\
                    \x20     - alert: B\n        expr: |\n          sum(rate(x_total[5m]))\n            > 1\n        labels:\n\
                    \x20         severity: warning\n      - record: r:c\n        expr: \"up == 0\"\n";
        let exprs = yaml_exprs(yaml);
        assert_eq!(
            exprs,
            vec![
                ("A".to_owned(), "max(rooms_active) > 0".to_owned()),
                ("B".to_owned(), "sum(rate(x_total[5m]))\n> 1".to_owned()),
                ("r:c".to_owned(), "up == 0".to_owned()),
            ]
        );
    }

    #[test]
    fn the_comparison_passes_on_exported_names_and_fails_on_anything_else() {
        let e = exported();
        let good = [
            reference(r#"sum by (pod) (rooms_active{namespace="chat"})"#),
            reference("histogram_quantile(0.99, sum by (le) (rate(rooms_delivery_latency_seconds_bucket[5m])))"),
            reference(r#"sum by (job, route) (rate(http_requests_total{status=~"5.."}[5m]))"#),
            reference("kube_deployment_status_replicas_available{deployment=\"rooms\"} == 0"),
            reference("up == 0"),
        ];
        assert_eq!(findings(&good, &e), Vec::<String>::new());
        let bad = [
            ("sum(rooms_activ)", "rooms_activ: exported by no service"),
            ("rate(rooms_delivery_latency_seconds[5m])", "is a histogram"),
            ("rate(rooms_active_bucket[5m])", "rooms_active is a gauge"),
            ("sum by (shard) (rooms_active)", "label \"shard\""),
            ("rate(http_requests_total{code=\"500\"}[5m])", "label \"code\""),
            ("process_resident_memory_bytes", "exported by no service"),
        ];
        for (expr, why) in bad {
            let found = findings(&[reference(expr)], &e);
            assert!(found.len() == 1 && found[0].contains(why), "{expr}: {found:?}");
        }
    }

    /// The real manifests' expressions, plus one bogus name in a copy of one of them: the
    /// comparison names exactly the bogus one (against an exposition holding every real name).
    #[test]
    fn a_bogus_name_in_a_copy_of_the_real_expressions_is_reported() {
        let mut references = all_references();
        assert!(references.iter().any(|r| r.source.starts_with("dashboard")), "dashboards read");
        assert!(references.iter().any(|r| r.source.starts_with("prometheusrule")), "rules read");
        // An exposition that has everything the real references name (histograms as such).
        let mut e = Exported::default();
        let mut text = String::new();
        for r in &references {
            let labels: Vec<String> = r.names.labels.iter().map(|l| format!("{l}=\"x\"")).collect();
            for m in r.names.metrics.iter().filter(|m| external(m).is_none()) {
                let base = m.strip_suffix("_bucket").unwrap_or(m);
                if base != m {
                    text.push_str(&format!("# TYPE {base} histogram\n"));
                }
                text.push_str(&format!("{m}{{{}}} 1\n", labels.join(",")));
            }
        }
        e.add("all", &text);
        assert_eq!(findings(&references, &e), Vec::<String>::new());
        let mut bogus = references[0].clone();
        bogus.expr = bogus.expr.replacen('(', "(rooms_no_such_metric_total + ", 1);
        bogus.names = promql::names(&bogus.expr);
        bogus.source = format!("a copy of {}", bogus.source);
        assert!(bogus.names.metrics.contains("rooms_no_such_metric_total"), "{bogus:?}");
        references.push(bogus);
        let found = findings(&references, &e);
        assert!(found.len() == 1 && found[0].starts_with("rooms_no_such_metric_total"), "{found:#?}");
    }
}
