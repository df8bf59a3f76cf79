//! A small command-line client of the engine's WebSocket protocol.
//!
//! `chatcli listen <ws-url> <token>`: print every frame the server sends (one JSON per line).
//! `chatcli send <ws-url> <token> <room-id> <text>`: send one text message, print the ack.

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["listen", url, token] => listen(url, token).await,
        ["send", url, token, room, text] => send(url, token, room, text).await,
        _ => bail!("usage: chatcli listen <ws-url> <token> | chatcli send <ws-url> <token> <room-id> <text>"),
    }
}

async fn connect(
    url: &str,
    token: &str,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert("Authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request).await.context("connecting")?;
    Ok(ws)
}

async fn listen(url: &str, token: &str) -> anyhow::Result<()> {
    let mut ws = connect(url, token).await?;
    eprintln!("connected; waiting for messages (Ctrl-C to stop)");
    while let Some(frame) = ws.next().await {
        match frame? {
            Message::Text(text) => println!("{text}"),
            Message::Close(reason) => {
                eprintln!("closed: {reason:?}");
                break;
            }
            _ => {}
        }
    }
    Ok(())
}

async fn send(url: &str, token: &str, room: &str, text: &str) -> anyhow::Result<()> {
    let mut ws = connect(url, token).await?;
    let client_msg_id = format!("cli-{}", std::process::id());
    let frame = serde_json::json!({
        "type": "send", "room_id": room, "client_msg_id": client_msg_id,
        "body": {"type": "text", "text": text},
    });
    ws.send(Message::text(frame.to_string())).await?;
    let deadline = tokio::time::sleep(std::time::Duration::from_secs(10));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => bail!("no answer within 10 s"),
            frame = ws.next() => {
                let Some(frame) = frame else { bail!("connection closed") };
                if let Message::Text(t) = frame? {
                    let v: serde_json::Value = serde_json::from_str(&t)?;
                    if v["client_msg_id"] == client_msg_id.as_str() {
                        println!("{t}");
                        return if v["type"] == "ack" { Ok(()) } else { bail!("refused") };
                    }
                }
            }
        }
    }
}
