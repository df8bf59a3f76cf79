//! Members reading the media LINE users sent them: the medium's row, then its content from
//! the media store, as a stream.
//!
//! Who may read it: the member whose channel received it, and the members of their tenant who
//! are in the room the medium was posted to (a LINE group's room: asked of rooms with the
//! reader's own token). Anyone else is told it does not exist.

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

/// True when the caller is the member whose channel received the medium.
pub(crate) fn is_owner(principal: &Principal, row: &MediaRow) -> bool {
    principal.user_id == row.owner && principal.tenant == row.tenant
}

impl LineCore {
    /// The medium `media_id`, for the caller (`token`: theirs, to ask rooms whether they are in
    /// the medium's room); `MediaNotFound` when absent, gone from the store, or not the
    /// caller's to read.
    pub async fn media_for(
        &self,
        principal: &Principal,
        token: &str,
        media_id: &str,
    ) -> Result<MediaContent, LineError> {
        let row = self.store.media(media_id).await?.ok_or(LineError::MediaNotFound)?;
        let allowed = is_owner(principal, &row)
            || (principal.tenant == row.tenant
                && self
                    .membership
                    .is_member(token, &row.room_id)
                    .await
                    .map_err(|err| LineError::RoomsUnavailable(err.0))?);
        if !allowed {
            return Err(LineError::MediaNotFound);
        }
        let key = Path::parse(&row.store_key).map_err(|_| LineError::MediaNotFound)?;
        let body = self.media.get_stream(&key).await?.ok_or(LineError::MediaNotFound)?;
        Ok(MediaContent { row, body: body.boxed() })
    }
}
