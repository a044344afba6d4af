//! Thumbnails of shared images, made by the host from the decoded image and re-encoded as
//! PNG, so what a page shows is never the uploaded bytes themselves. Decoding is bounded in
//! pixels and memory: a "picture" that is not one, or one that would decompress to a
//! billion pixels, gets no thumbnail and costs little.

use std::path::Path;

use image::{ImageFormat, ImageReader};

use crate::protocol::ImageSize;

/// The largest side of a thumbnail, in pixels.
pub(crate) const THUMB_SIDE: u32 = 480;

/// Images larger than this on either side are not decoded.
const MAX_SIDE: u32 = 12_000;

/// Memory the decoder may allocate for one image.
const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Formats the host decodes (never SVG or anything that runs code).
const FORMATS: [ImageFormat; 5] = [
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
    ImageFormat::Bmp,
];

/// Writes a thumbnail of the image at `source` to `thumb`, and returns the image's size and
/// media type; `None` when it is not an image the host decodes, or too large to.
/// Blocking: run it off the async threads.
pub(crate) fn make(source: &Path, thumb: &Path) -> Option<(ImageSize, &'static str)> {
    let reader = ImageReader::open(source).ok()?.with_guessed_format().ok()?;
    let format = reader.format().filter(|f| FORMATS.contains(f))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    let mut reader = reader;
    reader.limits(limits);
    let decoded = match reader.decode() {
        Ok(image) => image,
        Err(e) => {
            tracing::debug!("no thumbnail for {}: {e}", source.display());
            return None;
        }
    };
    let size = ImageSize {
        width: decoded.width(),
        height: decoded.height(),
    };
    // Smaller pictures keep their size (re-encoded all the same); larger ones shrink.
    let small = if size.width <= THUMB_SIDE && size.height <= THUMB_SIDE {
        decoded
    } else {
        decoded.thumbnail(THUMB_SIDE, THUMB_SIDE)
    };
    let mut png = Vec::new();
    small
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .ok()?;
    crate::private::write_atomic(thumb, &png).ok()?;
    Some((size, format.to_mime_type()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_get_thumbnails_and_bombs_and_impostors_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("photo.png");
        image::RgbImage::from_fn(1200, 800, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
        })
        .save(&photo)
        .unwrap();
        let thumb = dir.path().join("photo.thumb.png");
        let (size, mime) = make(&photo, &thumb).expect("a thumbnail");
        assert_eq!((size.width, size.height, mime), (1200, 800, "image/png"));
        let small = image::open(&thumb).unwrap();
        assert_eq!((small.width(), small.height()), (480, 320));

        // A small picture is not blown up.
        let icon = dir.path().join("icon.png");
        image::RgbImage::new(64, 40).save(&icon).unwrap();
        let icon_thumb = dir.path().join("icon.thumb.png");
        make(&icon, &icon_thumb).expect("a thumbnail");
        let kept = image::open(&icon_thumb).unwrap();
        assert_eq!((kept.width(), kept.height()), (64, 40));

        // Not an image at all, whatever its name says.
        let fake = dir.path().join("fake.png");
        std::fs::write(&fake, b"<svg onload=alert(1)>").unwrap();
        assert!(make(&fake, &dir.path().join("t1")).is_none());

        // A PNG whose header claims 100,000 x 100,000 pixels (ten billion): refused from
        // the header, nothing allocated.
        let bomb = dir.path().join("bomb.png");
        let mut header = image::RgbImage::new(1, 1);
        header.put_pixel(0, 0, image::Rgb([1, 2, 3]));
        header.save(&bomb).unwrap();
        let mut bytes = std::fs::read(&bomb).unwrap();
        // IHDR's width and height follow the 8-byte signature, length and type.
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        std::fs::write(&bomb, &bytes).unwrap();
        assert!(make(&bomb, &dir.path().join("t2")).is_none());
        assert!(!dir.path().join("t2").exists());
    }
}
