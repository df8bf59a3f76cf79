//! The media store: the content of LINE users' images, video, audio and files, downloaded from
//! LINE at once (LINE deletes it after an unspecified time) and kept through `object_store`,
//! in a local directory (`media.store = "file"`) or S3-compatible storage (`"s3"`, keys from
//! the standard AWS environment variables). Content is written as a stream (a multipart
//! upload), never held whole in memory, and refused past `media.max_bytes`.
//!
//! Pure parts: the key of a LINE message's content (`content_key`, from the channel and
//! LINE's message id: a reprocessed event writes the same object), the media id
//! (`media_id`, likewise derived, so the room message of a reprocessed event is the same) and
//! the room body of a medium (`media_body`).

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use chat_protocol::Body;
use futures_util::{Stream, StreamExt};
use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::settings::{MediaBackend, MediaSettings};

/// The namespace of media ids (UUID v5 of the channel and LINE's message id).
const MEDIA_ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f3a_c2e1_9d84_4b07_a6e3_71c0_d92b_48f6);

/// Parts of a multipart upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// The route prefix of stored media.
pub const MEDIA_ROUTE: &str = "/v1/line/media";

/// The kinds of LINE messages with content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    File,
}

impl MediaKind {
    pub fn from_line(kind: &str) -> Option<Self> {
        match kind {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            "file" => Some(Self::File),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::File => "file",
        }
    }

    /// The name shown when LINE gives none (LINE sends mp4 video and m4a audio).
    pub fn default_name(self) -> Option<&'static str> {
        match self {
            Self::Image => None,
            Self::Video => Some("video.mp4"),
            Self::Audio => Some("audio.m4a"),
            Self::File => Some("file"),
        }
    }

    /// The kind of a member's upload: raster images LINE can show are images, the rest files.
    pub fn of_upload(content_type: &str) -> Self {
        if INLINE_IMAGE_TYPES.contains(&essence(content_type).as_str()) {
            Self::Image
        } else {
            Self::File
        }
    }

    /// The content type when LINE's answer has none.
    pub fn default_content_type(self) -> &'static str {
        match self {
            Self::Image => "image/jpeg",
            Self::Video => "video/mp4",
            Self::Audio => "audio/mp4",
            Self::File => "application/octet-stream",
        }
    }
}

/// Image types shown as images (others are files).
pub const INLINE_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The image types LINE takes in an image message.
const LINE_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png"];

/// The largest image LINE takes in an image message (10 MB).
pub const LINE_IMAGE_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The largest preview image LINE takes (1 MB): a larger image gets a made one.
pub const LINE_PREVIEW_MAX_BYTES: u64 = 1024 * 1024;

/// A content type's essence (`image/png; x=y` -> `image/png`), lowercased.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Whether LINE can show a medium of this type and size as an image.
pub fn line_can_show(content_type: &str, size: u64) -> bool {
    LINE_IMAGE_TYPES.contains(&essence(content_type).as_str()) && size <= LINE_IMAGE_MAX_BYTES
}

/// The store key of a member's upload: `uploads/<tenant>/<media id>`.
pub fn upload_key(tenant: &str, media_id: &str) -> Path {
    Path::from_iter([PathPart::from("uploads"), PathPart::from(tenant), PathPart::from(media_id)])
}

/// The store key of a medium's made preview: beside it, `<key>.preview`.
pub fn preview_key(store_key: &str) -> Result<Path, object_store::path::Error> {
    Path::parse(format!("{store_key}.preview"))
}

/// The store key of a LINE message's content: `line/<channel>/<message id>` (each part
/// encoded by `object_store`, so no id can climb out of its folder).
pub fn content_key(channel_id: &str, line_message_id: &str) -> Path {
    Path::from_iter([PathPart::from("line"), PathPart::from(channel_id), PathPart::from(line_message_id)])
}

/// The media id of a LINE message's content (stable: the same event gives the same URL).
pub fn media_id(channel_id: &str, line_message_id: &str) -> String {
    let name = format!("{}:{channel_id}:{line_message_id}", channel_id.len());
    uuid::Uuid::new_v5(&MEDIA_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// The engine's URL of a stored medium.
pub fn media_url(public_base_url: &str, media_id: &str) -> String {
    format!("{}{MEDIA_ROUTE}/{media_id}", public_base_url.trim_end_matches('/'))
}

/// The room body of a medium at `url`: an image, or a file (video, audio, file) with LINE's
/// file name or the kind's default name.
pub fn media_body(kind: MediaKind, url: String, name: Option<String>, size: Option<u64>) -> Body {
    let name = name.filter(|n| !n.trim().is_empty());
    match kind {
        MediaKind::Image => Body::Image { url, name, size },
        _ => Body::File { url, name: name.or_else(|| kind.default_name().map(str::to_owned)), size },
    }
}

/// The text posted instead of content larger than the limit.
pub fn too_large_text(kind: MediaKind, name: Option<&str>, size: Option<u64>, max_bytes: u64) -> String {
    let what = name.filter(|n| !n.trim().is_empty()).unwrap_or(kind.as_str());
    match size {
        Some(size) => format!("[{what}: {size} bytes, not kept: larger than the {max_bytes}-byte limit]"),
        None => format!("[{what}: not kept: larger than the {max_bytes}-byte limit]"),
    }
}

/// The room's text for a medium LINE was still preparing when the gateway stopped waiting.
pub fn not_ready_text(kind: MediaKind, name: Option<&str>) -> String {
    let what = name.filter(|n| !n.trim().is_empty()).unwrap_or(kind.as_str());
    format!("[{what}: not kept: LINE was still preparing it]")
}

/// A chunked body, as read from LINE.
pub type ByteStream<E> = Pin<Box<dyn Stream<Item = Result<Bytes, E>>>>;

/// What storing a stream came to.
#[derive(Debug)]
pub enum Stored {
    /// Written whole: its size.
    Done(u64),
    /// More than the limit: nothing kept.
    TooLarge,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media store: {0}")]
    Store(#[from] object_store::Error),
    #[error("reading the content: {0}")]
    Read(String),
    #[error("media store settings: {0}")]
    Settings(String),
}

/// The media store and its limits.
#[derive(Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    pub max_bytes: u64,
    pub public_base_url: String,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("store", &self.store.to_string())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl MediaStore {
    /// The store the settings name (the directory of `file` is created).
    pub fn from_settings(settings: &MediaSettings) -> Result<Self, MediaError> {
        let store: Arc<dyn ObjectStore> = match settings.store {
            MediaBackend::File => {
                std::fs::create_dir_all(&settings.path)
                    .map_err(|err| MediaError::Settings(format!("creating {}: {err}", settings.path)))?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&settings.path)?)
            }
            MediaBackend::S3 => {
                if settings.bucket.is_empty() {
                    return Err(MediaError::Settings("media.bucket is required with store = \"s3\"".into()));
                }
                // Keys and the rest from the standard AWS environment variables.
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&settings.bucket)
                    .with_allow_http(settings.allow_http);
                if !settings.region.is_empty() {
                    builder = builder.with_region(&settings.region);
                }
                if !settings.endpoint.is_empty() {
                    builder = builder.with_endpoint(&settings.endpoint);
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self::new(store, settings.max_bytes, &settings.public_base_url))
    }

    pub fn new(store: Arc<dyn ObjectStore>, max_bytes: u64, public_base_url: &str) -> Self {
        Self { store, max_bytes, public_base_url: public_base_url.trim_end_matches('/').to_owned() }
    }

    /// Write `body` under `key`, as it comes; past `max_bytes` the upload is aborted.
    pub async fn put_stream<E: std::fmt::Display>(
        &self,
        key: &Path,
        mut body: ByteStream<E>,
    ) -> Result<Stored, MediaError> {
        let upload = self.store.put_multipart(key).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut total: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    let _ = writer.abort().await;
                    return Err(MediaError::Read(err.to_string()));
                }
            };
            total = total.saturating_add(chunk.len() as u64);
            if total > self.max_bytes {
                let _ = writer.abort().await;
                return Ok(Stored::TooLarge);
            }
            if let Err(err) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                let _ = writer.abort().await;
                return Err(err.into());
            }
            writer.put(chunk);
        }
        writer.finish().await?;
        Ok(Stored::Done(total))
    }

    /// Write `bytes` under `key` at once (a made preview: small).
    pub async fn put_bytes(&self, key: &Path, bytes: Bytes) -> Result<(), MediaError> {
        self.store.put(key, bytes.into()).await?;
        Ok(())
    }

    /// The stored content under `key`, whole, when it is at most `max` bytes; `None` when
    /// absent or larger.
    pub async fn get_bytes(&self, key: &Path, max: u64) -> Result<Option<Bytes>, MediaError> {
        match self.store.get(key).await {
            Ok(found) if found.meta.size > max => Ok(None),
            Ok(found) => Ok(Some(found.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The stored content under `key`, as a stream; `None` when absent.
    pub async fn get_stream(
        &self,
        key: &Path,
    ) -> Result<Option<impl Stream<Item = Result<Bytes, object_store::Error>> + 'static>, MediaError> {
        match self.store.get(key).await {
            Ok(found) => Ok(Some(found.into_stream())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_keys_derive_from_the_channel_and_the_message_and_stay_in_their_folder() {
        assert_eq!(content_key("1657000001", "325708").as_ref(), "line/1657000001/325708");
        assert_eq!(content_key("1657000001", "325708"), content_key("1657000001", "325708"));
        assert_ne!(content_key("1657000001", "325708"), content_key("1657000002", "325708"));
        let odd = content_key("1657000001", "../../etc/passwd");
        assert_eq!(odd.parts().count(), 3, "{odd}");
        assert!(odd.as_ref().starts_with("line/1657000001/"), "{odd}");
        assert!(!odd.as_ref().contains("/../"), "{odd}");
    }

    #[test]
    fn media_ids_are_stable_per_channel_and_message() {
        assert_eq!(media_id("1", "2"), media_id("1", "2"));
        assert_ne!(media_id("1", "2"), media_id("2", "2"));
        assert_ne!(media_id("1", "23"), media_id("12", "3"));
        assert!(uuid::Uuid::parse_str(&media_id("1", "2")).is_ok());
        assert_eq!(media_url("http://127.0.0.1:8083/", "m1"), "http://127.0.0.1:8083/v1/line/media/m1");
    }

    #[test]
    fn images_are_images_and_the_rest_files_with_a_name() {
        let url = || "https://engine/v1/line/media/m".to_owned();
        assert_eq!(
            media_body(MediaKind::Image, url(), None, Some(12)),
            Body::Image { url: url(), name: None, size: Some(12) }
        );
        assert_eq!(
            media_body(MediaKind::Video, url(), None, Some(5)),
            Body::File { url: url(), name: Some("video.mp4".into()), size: Some(5) }
        );
        assert_eq!(
            media_body(MediaKind::Audio, url(), Some(" ".into()), None),
            Body::File { url: url(), name: Some("audio.m4a".into()), size: None }
        );
        assert_eq!(
            media_body(MediaKind::File, url(), Some("report.pdf".into()), Some(9)),
            Body::File { url: url(), name: Some("report.pdf".into()), size: Some(9) }
        );
        assert_eq!(MediaKind::from_line("sticker"), None);
        assert_eq!(MediaKind::from_line("audio"), Some(MediaKind::Audio));
        assert!(too_large_text(MediaKind::Video, None, Some(99), 10).contains("video: 99 bytes"));
    }

    #[test]
    fn uploads_are_images_when_raster_and_line_shows_jpeg_and_png_up_to_10_mb() {
        assert_eq!(MediaKind::of_upload("image/png"), MediaKind::Image);
        assert_eq!(MediaKind::of_upload("IMAGE/JPEG; q=1"), MediaKind::Image);
        assert_eq!(MediaKind::of_upload("image/svg+xml"), MediaKind::File);
        assert_eq!(MediaKind::of_upload("application/pdf"), MediaKind::File);
        assert!(line_can_show("image/jpeg", LINE_IMAGE_MAX_BYTES));
        assert!(!line_can_show("image/jpeg", LINE_IMAGE_MAX_BYTES + 1));
        assert!(!line_can_show("image/gif", 10));
        assert_eq!(upload_key("acme", "../x").parts().count(), 3);
        assert_eq!(preview_key("uploads/acme/m1").unwrap().as_ref(), "uploads/acme/m1.preview");
    }

    #[actix_web::test]
    async fn a_stream_is_stored_whole_or_not_at_all_past_the_limit() {
        let dir = std::env::temp_dir().join(format!("line-media-{}", uuid::Uuid::new_v4().simple()));
        let settings = MediaSettings {
            store: MediaBackend::File,
            path: dir.to_string_lossy().into_owned(),
            bucket: String::new(),
            region: String::new(),
            endpoint: String::new(),
            allow_http: false,
            max_bytes: 10,
            public_base_url: "http://x".into(),
            line_base_url: String::new(),
            link_ttl_days: 1,
        };
        let media = MediaStore::from_settings(&settings).unwrap();
        let chunks = |parts: Vec<&'static [u8]>| -> ByteStream<std::io::Error> {
            Box::pin(futures_util::stream::iter(parts.into_iter().map(|p| Ok(Bytes::from_static(p)))))
        };
        let key = content_key("c", "1");
        assert!(matches!(media.put_stream(&key, chunks(vec![b"hello", b" you"])).await.unwrap(), Stored::Done(9)));
        let mut read = Vec::new();
        let mut stream = media.get_stream(&key).await.unwrap().unwrap();
        while let Some(chunk) = stream.next().await {
            read.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(read, b"hello you");

        let big = content_key("c", "2");
        assert!(matches!(media.put_stream(&big, chunks(vec![b"hello", b" world"])).await.unwrap(), Stored::TooLarge));
        assert!(media.get_stream(&big).await.unwrap().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
