//! Preview images for LINE (pure, no I/O): LINE shows an image message's preview from a
//! separate URL of at most 1 MB; an image larger than that gets a made one, at most
//! `PREVIEW_EDGE` pixels on its longer side, as a JPEG.

use image::codecs::jpeg::JpegEncoder;

/// The longer side of a made preview, in pixels.
pub const PREVIEW_EDGE: u32 = 480;

/// The JPEG quality of a made preview.
const QUALITY: u8 = 80;

/// The most pixels an image to preview may have (a decompression bomb is refused, not
/// decoded): 40 megapixels, beyond what phones take.
const MAX_PIXELS: u64 = 40_000_000;

/// A preview JPEG of the image `bytes` (JPEG or PNG).
pub fn make(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let reader =
        image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let (width, height) = reader.into_dimensions().map_err(|e| e.to_string())?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!("{width}x{height} is more than {MAX_PIXELS} pixels"));
    }
    let decoded = image::load_from_memory(bytes).map_err(|e| e.to_string())?;
    let small = decoded.thumbnail(PREVIEW_EDGE, PREVIEW_EDGE).to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(&small).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_preview_is_a_small_jpeg_of_the_same_shape() {
        let preview = make(&png(1600, 800)).unwrap();
        let read = image::load_from_memory_with_format(&preview, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((read.width(), read.height()), (480, 240));
        assert!((preview.len() as u64) < 1024 * 1024);
    }

    #[test]
    fn what_is_not_an_image_is_refused() {
        assert!(make(b"not an image").is_err());
        assert!(make(&[]).is_err());
    }
}
