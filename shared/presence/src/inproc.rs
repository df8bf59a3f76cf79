//! Presence inside one process (the standalone binary): one node, a count per user.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chat_protocol::UserId;

use crate::{NodeMap, Presence, PresenceError};

pub struct InProcPresence {
    node: String,
    sessions: Mutex<HashMap<UserId, usize>>,
}

impl InProcPresence {
    pub fn new(node: &str) -> Self {
        Self { node: node.to_owned(), sessions: Mutex::new(HashMap::new()) }
    }
}

#[async_trait]
impl Presence for InProcPresence {
    async fn session_opened(&self, user: &UserId) -> Result<(), PresenceError> {
        let mut sessions = self.sessions.lock().map_err(|_| PresenceError::Redis("poisoned".into()))?;
        *sessions.entry(user.clone()).or_default() += 1;
        Ok(())
    }

    async fn session_closed(&self, user: &UserId) -> Result<(), PresenceError> {
        let mut sessions = self.sessions.lock().map_err(|_| PresenceError::Redis("poisoned".into()))?;
        if let Some(count) = sessions.get_mut(user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                sessions.remove(user);
            }
        }
        Ok(())
    }

    async fn locate(&self, users: &[UserId]) -> Result<NodeMap, PresenceError> {
        let sessions = self.sessions.lock().map_err(|_| PresenceError::Redis("poisoned".into()))?;
        let online: Vec<UserId> = users.iter().filter(|u| sessions.contains_key(*u)).cloned().collect();
        let mut map = NodeMap::new();
        if !online.is_empty() {
            map.insert(self.node.clone(), online);
        }
        Ok(map)
    }

    async fn heartbeat(&self) -> Result<(), PresenceError> {
        Ok(())
    }

    async fn leave(&self) -> Result<(), PresenceError> {
        Ok(())
    }

    fn node_id(&self) -> &str {
        &self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_sessions_per_user() {
        let p = InProcPresence::new("n1");
        p.session_opened(&"a".into()).await.unwrap();
        p.session_opened(&"a".into()).await.unwrap();
        p.session_closed(&"a".into()).await.unwrap();
        let users = vec![UserId::new("a"), UserId::new("b")];
        assert_eq!(p.locate(&users).await.unwrap().get("n1"), Some(&vec![UserId::new("a")]));
        p.session_closed(&"a".into()).await.unwrap();
        assert!(p.locate(&users).await.unwrap().is_empty());
    }
}
