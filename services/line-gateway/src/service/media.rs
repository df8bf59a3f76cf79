//! Media in the media store: members reading what LINE users sent them, members uploading
//! images and files to send, and LINE fetching those through signed links.
//!
//! Who may read a medium with a token: the member whose channel received it (or who uploaded
//! it), and the members of their tenant who are in the room it was posted to (asked of rooms
//! with the reader's own token). Anyone else is told it does not exist. LINE reads a medium
//! through a signed link (`media_links`), made when a member's message carrying it goes to
//! LINE, and only for a medium that member may share: theirs, or one of their tenant posted
//! in the same room.

use bytes::Bytes;
use chat_auth::Principal;
use chat_protocol::{now_ms, Body, RoomId, TenantId, UserId};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::path::Path;

use super::error::LineError;
use super::state::LineCore;
use crate::media::{
    essence, line_can_show, media_body, media_url, preview_key, upload_key, ByteStream, MediaKind, Stored,
    LINE_IMAGE_MAX_BYTES, LINE_PREVIEW_MAX_BYTES,
};
use crate::media_links::{engine_media_id, LinkRefusal};
use crate::store::{MediaRow, StoreError};

/// The longest name of an uploaded file, in characters.
const MAX_NAME_CHARS: usize = 255;

/// A member's upload: the room it is for, its name and type, and its content as it comes.
pub struct Upload<E> {
    pub room_id: RoomId,
    pub name: Option<String>,
    pub content_type: String,
    pub body: ByteStream<E>,
}

/// What a member's message carries to LINE instead of an engine media URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    /// The body with the signed link in place of the engine's URL (an image LINE cannot show
    /// becomes a file link).
    pub body: Body,
    /// The preview link of an image LINE shows.
    pub preview: Option<String>,
}

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

    /// Keep a member's upload for `upload.room_id` (the caller must be in it: rooms is asked
    /// with their `token`); its row, whose URL the member then posts in a message.
    pub async fn upload<E: std::fmt::Display>(
        &self,
        principal: &Principal,
        token: &str,
        upload: Upload<E>,
    ) -> Result<MediaRow, LineError> {
        let content_type = essence(&upload.content_type);
        let valid_type = content_type.split_once('/').is_some_and(|(kind, sub)| {
            let token = |part: &str| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
            };
            token(kind) && token(sub)
        });
        if !valid_type {
            return Err(LineError::UnsupportedMediaType);
        }
        let name = upload.name.map(|name| name.trim().to_owned()).filter(|name| !name.is_empty());
        if let Some(name) = &name {
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(LineError::InvalidField { field: "name", reason: "at most 255 characters" });
            }
            if name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
                return Err(LineError::InvalidField { field: "name", reason: "no control characters or slashes" });
            }
        }
        let in_room = !principal.user_id.is_line_user()
            && self
                .membership
                .is_member(token, &upload.room_id)
                .await
                .map_err(|err| LineError::RoomsUnavailable(err.0))?;
        if !in_room {
            return Err(LineError::RoomNotFound);
        }
        let media_id = uuid::Uuid::new_v4().to_string();
        let key = upload_key(principal.tenant.as_str(), &media_id);
        let size = match self.media.put_stream(&key, upload.body).await? {
            Stored::Done(size) => size,
            Stored::TooLarge => return Err(LineError::PayloadTooLarge(self.media.max_bytes)),
        };
        let kind = MediaKind::of_upload(&content_type);
        let row = MediaRow {
            media_id: media_id.clone(),
            // Not a LINE message's: no channel; the media id stands in for LINE's message id.
            channel_id: String::new(),
            line_message_id: media_id,
            store_key: key.to_string(),
            content_type,
            size,
            file_name: name,
            kind: kind.as_str().to_owned(),
            room_id: upload.room_id,
            owner: principal.user_id.clone(),
            tenant: principal.tenant.clone(),
            created_at_ms: now_ms(),
        };
        self.store.insert_media(&row).await?;
        Ok(row)
    }

    /// The engine's URL and room body of a stored medium (what the member posts).
    pub fn media_message(&self, row: &MediaRow) -> (String, Body) {
        let url = media_url(&self.media.public_base_url, &row.media_id);
        let kind = MediaKind::from_line(&row.kind).unwrap_or(MediaKind::File);
        let body = media_body(kind, url.clone(), row.file_name.clone(), Some(row.size));
        (url, body)
    }

    /// The medium a signed link names, for LINE (no token): `preview` asks for the image's
    /// preview (the image itself when it is small enough, else a made one, kept beside it).
    /// An altered link, or one to nothing, is `MediaNotFound`; an expired one `LinkExpired`.
    pub async fn linked_media(
        &self,
        media_id: &str,
        expires: u64,
        signature: &str,
        preview: bool,
    ) -> Result<MediaContent, LineError> {
        let now_secs = u64::try_from(now_ms() / 1000).unwrap_or_default();
        match self.links.verify(media_id, expires, signature, now_secs) {
            Ok(()) => {}
            Err(LinkRefusal::Invalid) => return Err(LineError::MediaNotFound),
            Err(LinkRefusal::Expired) => return Err(LineError::LinkExpired),
        }
        let row = self.store.media(media_id).await?.ok_or(LineError::MediaNotFound)?;
        let key = Path::parse(&row.store_key).map_err(|_| LineError::MediaNotFound)?;
        if preview && !line_can_show(&row.content_type, row.size) {
            // Only images LINE shows have a preview (a file's would not decode: a 500).
            return Err(LineError::MediaNotFound);
        }
        if preview && row.size > LINE_PREVIEW_MAX_BYTES {
            return self.made_preview(row, &key).await;
        }
        let body = self.media.get_stream(&key).await?.ok_or(LineError::MediaNotFound)?;
        Ok(MediaContent { row, body: body.boxed() })
    }

    /// The preview made of a large image (made once, then kept beside it).
    async fn made_preview(&self, row: MediaRow, key: &Path) -> Result<MediaContent, LineError> {
        let at = preview_key(&row.store_key).map_err(|_| LineError::MediaNotFound)?;
        let bytes = match self.media.get_bytes(&at, LINE_PREVIEW_MAX_BYTES).await? {
            Some(bytes) => bytes,
            None => {
                let _permit = self.previews.acquire().await.map_err(|_| LineError::MediaNotFound)?;
                let original =
                    self.media.get_bytes(key, LINE_IMAGE_MAX_BYTES).await?.ok_or(LineError::MediaNotFound)?;
                let made = tokio::task::spawn_blocking(move || crate::preview::make(&original))
                    .await
                    .map_err(|err| LineError::Preview(err.to_string()))?
                    .map_err(LineError::Preview)?;
                let made = Bytes::from(made);
                self.media.put_bytes(&at, made.clone()).await?;
                made
            }
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let row = MediaRow { content_type: "image/jpeg".into(), size, ..row };
        let body = futures_util::stream::once(async move { Ok::<_, object_store::Error>(bytes) });
        Ok(MediaContent { row, body: body.boxed() })
    }

    /// What `body`, posted by `sender` of `tenant` in `room_id`, carries to LINE when it holds
    /// an engine media URL the sender may share: the signed link, and the preview link of an
    /// image LINE can show. `None`: nothing to change (another URL, another medium, or one the
    /// sender may not share: it goes as it is, a link LINE users cannot open).
    pub async fn shared_for_line(
        &self,
        tenant: &TenantId,
        sender: &UserId,
        room_id: &RoomId,
        body: &Body,
    ) -> Result<Option<Shared>, StoreError> {
        let (url, name) = match body {
            Body::Image { url, name, .. } | Body::File { url, name, .. } => (url, name),
            _ => return Ok(None),
        };
        let Some(media_id) = engine_media_id(&self.media.public_base_url, url) else { return Ok(None) };
        let Some(row) = self.store.media(media_id).await? else { return Ok(None) };
        if !may_share(&row, tenant, sender, room_id) {
            tracing::info!(%media_id, %sender, "a medium the sender may not share goes to LINE as it is");
            return Ok(None);
        }
        let now_secs = u64::try_from(now_ms() / 1000).unwrap_or_default();
        let link = self.links.sign(media_id, now_secs);
        let name = name.clone().or_else(|| row.file_name.clone());
        let size = Some(row.size);
        let shows =
            self.links.is_https() && matches!(body, Body::Image { .. }) && line_can_show(&row.content_type, row.size);
        Ok(Some(if shows {
            Shared { body: Body::Image { url: link.original, name, size }, preview: Some(link.preview) }
        } else {
            Shared { body: Body::File { url: link.original, name, size }, preview: None }
        }))
    }
}

/// Whether `sender` may send the medium `row` to LINE from `room_id`: it is theirs, or their
/// tenant's and posted in that room.
pub(crate) fn may_share(row: &MediaRow, tenant: &TenantId, sender: &UserId, room_id: &RoomId) -> bool {
    &row.tenant == tenant && (&row.owner == sender || &row.room_id == room_id)
}
