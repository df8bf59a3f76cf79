//! Members reading the media LINE users sent them: the medium's row, then its content from
//! the media store, as a stream.
//!
//! Who may read it, for now: the member whose channel received it and the members of their
//! tenant. The gateway has no room membership data; full checks against the room's members
//! come with group rooms. Anyone else (another tenant) is told it does not exist.

use bytes::Bytes;
use chat_auth::Principal;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path;

use super::error::LineError;
use super::state::LineCore;
use crate::store::MediaRow;

/// A medium to serve: its row (content type, size, name) and its content.
pub struct MediaContent {
    pub row: MediaRow,
    pub body: BoxStream<'static, Result<Bytes, object_store::Error>>,
}

/// True when the caller may read the medium: the member whose channel received it (the one
/// member of a LINE 1:1 room). Access by room membership comes with LINE group rooms.
pub(crate) fn may_read(principal: &Principal, row: &MediaRow) -> bool {
    principal.user_id == row.owner && principal.tenant == row.tenant
}

impl LineCore {
    /// The medium `media_id`, for the caller; `MediaNotFound` when absent, gone from the store,
    /// or not the caller's to read.
    pub async fn media_for(&self, principal: &Principal, media_id: &str) -> Result<MediaContent, LineError> {
        let row = self.store.media(media_id).await?.ok_or(LineError::MediaNotFound)?;
        if !may_read(principal, &row) {
            return Err(LineError::MediaNotFound);
        }
        let key = Path::parse(&row.store_key).map_err(|_| LineError::MediaNotFound)?;
        let body = self.media.get_stream(&key).await?.ok_or(LineError::MediaNotFound)?;
        Ok(MediaContent { row, body: body.boxed() })
    }
}
