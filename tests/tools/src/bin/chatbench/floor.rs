//! The floor target: a bare tokio WebSocket broadcast server with no broker and no store,
//! speaking the subset of the engine's protocol the benchmark uses (send -> ack + message to
//! every session of the room). Sessions name their room with `?room=`. Every figure of the
//! engine is read as "k x the floor".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Rooms = Arc<Mutex<HashMap<String, Vec<mpsc::Sender<Arc<str>>>>>>;

// The handshake callback's error type is tungstenite's (an HTTP response), not ours.
#[allow(clippy::result_large_err)]
pub fn serve(port: u16) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        // The line the services log when bound (port 0 picks a free port: this tells which).
        let port = listener.local_addr()?.port();
        println!("{}", serde_json::json!({"level": "INFO", "message": "listening", "port": port}));
        let rooms: Rooms = Arc::default();
        loop {
            let (tcp, _) = listener.accept().await?;
            let rooms = rooms.clone();
            tokio::spawn(async move {
                let mut room = String::new();
                let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, res| {
                    room = req
                        .uri()
                        .query()
                        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("room=")))
                        .unwrap_or("")
                        .to_owned();
                    Ok(res)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { return };
                let (mut sink, mut stream) = ws.split();
                let (tx, mut rx) = mpsc::channel::<Arc<str>>(256);
                rooms.lock().map(|mut r| r.entry(room.clone()).or_default().push(tx.clone())).ok();
                tokio::spawn(async move {
                    while let Some(text) = rx.recv().await {
                        if sink.send(Message::text(text.to_string())).await.is_err() {
                            break;
                        }
                    }
                });
                let mut seq = 0i64;
                while let Some(Ok(Message::Text(text))) = stream.next().await {
                    let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                    if frame["type"] != "send" {
                        continue;
                    }
                    seq += 1;
                    let ack = serde_json::json!({"type": "ack", "client_msg_id": frame["client_msg_id"], "room_id": room, "seq": seq});
                    let _ = tx.send(Arc::from(ack.to_string())).await;
                    let msg: Arc<str> = Arc::from(
                        serde_json::json!({"type": "message", "room_id": room, "seq": seq, "body": frame["body"]}).to_string(),
                    );
                    let members = rooms.lock().map(|r| r.get(&room).cloned().unwrap_or_default()).unwrap_or_default();
                    for m in members {
                        let _ = m.send(msg.clone()).await;
                    }
                }
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), anyhow::Error>(())
    })
}
