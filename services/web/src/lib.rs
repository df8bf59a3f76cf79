//! The engine's web client: plain ES modules, a stylesheet and one HTML page (`assets/`),
//! embedded in the binary at build time and served at `/` (nothing is fetched at run time).
//! The client uses only the public API, on the same origin. Every answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only), and is revalidated by
//! the browser (`no-cache`), so a new build is picked up at once.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// An embedded file: its path under `/`, content type and content.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! module {
    ($name:literal) => {
        Asset {
            path: $name,
            content_type: "text/javascript; charset=utf-8",
            body: include_str!(concat!("../assets/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    module!("app.js"),
    module!("api.js"),
    module!("dom.js"),
    module!("state.js"),
    module!("rooms.js"),
    module!("contacts.js"),
    module!("admin.js"),
    module!("room-info.js"),
    module!("notifications.js"),
    module!("line-profile.js"),
    module!("line-user.js"),
    module!("call.js"),
    Asset { path: "style.css", content_type: "text/css; charset=utf-8", body: include_str!("../assets/style.css") },
];

const INDEX: &str = include_str!("../assets/index.html");

/// What the page may load: itself, the API and its WebSocket on this origin, images from here
/// or HTTPS (LINE profile pictures), nothing framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Mount the client: `/` and `/app/<file>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index)).route("/app/{file}", web::get().to(asset));
}

/// Debug builds only: `CHAT_WEB_CLIENT_DIR` names a folder whose files are served instead of
/// the embedded ones (the same names only), so the client can be worked on without a rebuild.
fn body_of(path: &str, embedded: &'static str) -> String {
    if cfg!(debug_assertions) {
        if let Some(dir) = std::env::var_os("CHAT_WEB_CLIENT_DIR") {
            if let Ok(text) = std::fs::read_to_string(std::path::Path::new(&dir).join(path)) {
                return text;
            }
        }
    }
    embedded.to_owned()
}

fn page(content_type: &'static str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

async fn index() -> HttpResponse {
    page("text/html; charset=utf-8", body_of("index.html", INDEX))
}

async fn asset(file: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.path == file.as_str()) {
        Some(asset) => page(asset.content_type, body_of(asset.path, asset.body)),
        None => HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(r#"{"error":{"code":"not_found","message":"no such file"}}"#),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{test, App};

    #[actix_rt::test]
    async fn the_page_and_its_modules_are_served_with_a_strict_policy_and_nothing_else_is() {
        let app = test::init_service(App::new().configure(super::configure)).await;
        for (uri, kind) in [("/", "text/html"), ("/app/app.js", "text/javascript"), ("/app/style.css", "text/css")] {
            let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
            assert_eq!(res.status(), 200, "{uri}");
            let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            assert!(header("content-type").starts_with(kind), "{uri}");
            assert!(header("content-security-policy").contains("script-src 'self'"), "{uri}");
            assert_eq!(header("x-content-type-options"), "nosniff");
        }
        let index = test::call_and_read_body(&app, test::TestRequest::get().uri("/").to_request()).await;
        let index = String::from_utf8(index.to_vec()).unwrap();
        assert!(index.contains(r#"<script type="module" src="/app/app.js">"#), "the page loads the client");
        for uri in ["/app/../Cargo.toml", "/app/missing.js", "/app/", "/app/index.html"] {
            let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
            assert_eq!(res.status(), 404, "{uri}");
        }
    }
}

#[cfg(test)]
mod embedded {
    #[test]
    fn every_file_of_the_client_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        for entry in std::fs::read_dir(dir).expect("assets") {
            let name = entry.expect("entry").file_name().into_string().expect("utf-8 name");
            let embedded = name == "index.html" || super::ASSETS.iter().any(|asset| asset.path == name);
            assert!(embedded, "{name} is in assets/ but not in ASSETS: the page would fail to load it");
        }
    }
}
