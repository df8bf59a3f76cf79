//! The LINE "add friend" invite images of a member: the QR code of the add-friend URL and a
//! profile card (name, company, My ID, caption and that QR code), both as PNG.
//!
//! Text is drawn with `ab_glyph` using DejaVu Sans, which ships with this crate (see
//! `assets/DejaVu-LICENSE`). Characters DejaVu lacks (e.g. Japanese) are taken from optional
//! fallback fonts read from disk at startup ([`Fonts::with_fallbacks`]); a character no font
//! has is drawn as the shipped font's "missing glyph" box. Every text is user data: control
//! characters are skipped and text too wide for its area is cut with an ellipsis, so no input
//! makes rendering panic.

use std::io;
use std::path::{Path, PathBuf};

use ab_glyph::{point, Font, FontArc, GlyphId, PxScale, ScaleFont};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder, Luma, Rgb, RgbImage};
use qrcode::{EcLevel, QrCode};

/// Size in pixels of one QR module in [`qr_png`] (its quiet zone is 4 modules wide).
pub const QR_MODULE_PX: u32 = 8;
/// Width in pixels of the profile card made by [`card_png`].
pub const CARD_WIDTH: u32 = 600;
/// Height in pixels of the profile card made by [`card_png`].
pub const CARD_HEIGHT: u32 = 360;

/// Error correction level of every QR code made here (M: about 15% of the code can be lost).
const QR_EC_LEVEL: EcLevel = EcLevel::M;

const REGULAR_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const BOLD_TTF: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// Why an invite image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InviteImageError {
    /// The URL could not be put into a QR code (e.g. it is too long).
    #[error("cannot encode the QR code: {0}")]
    QrEncode(#[from] qrcode::types::QrError),
    /// The image could not be encoded as PNG.
    #[error("cannot encode the PNG: {0}")]
    PngEncode(#[from] image::ImageError),
    /// A fallback font file could not be read.
    #[error("cannot read the font file {path}: {source}")]
    FontRead { path: PathBuf, source: io::Error },
    /// A fallback font file is not a font `ab_glyph` can use.
    #[error("cannot load the font file {path}: {source}")]
    FontParse { path: PathBuf, source: ab_glyph::InvalidFont },
}

/// A PNG of the QR code of `url`: error correction level M, a quiet zone of 4 modules,
/// [`QR_MODULE_PX`] pixels per module, greyscale.
pub fn qr_png(url: &str) -> Result<Vec<u8>, InviteImageError> {
    let code = QrCode::with_error_correction_level(url, QR_EC_LEVEL)?;
    let img: GrayImage =
        code.render::<Luma<u8>>().quiet_zone(true).module_dimensions(QR_MODULE_PX, QR_MODULE_PX).build();
    encode_png(img.as_raw(), img.width(), img.height(), ExtendedColorType::L8)
}

/// What a profile card shows.
#[derive(Debug, Clone, Copy)]
pub struct Card<'a> {
    pub name: &'a str,
    pub company: &'a str,
    pub my_id: &'a str,
    pub add_friend_url: &'a str,
}

/// The fonts text is drawn with: the shipped DejaVu Sans (regular and bold) first, then the
/// fallback fonts in the order given. A character is drawn with the first font that has it.
#[derive(Debug, Clone)]
pub struct Fonts {
    regular: Vec<FontArc>,
    bold: Vec<FontArc>,
}

impl Fonts {
    /// Only the fonts shipped with this crate (DejaVu Sans: Latin, Greek, Cyrillic, …; no CJK).
    pub fn shipped() -> Fonts {
        // Both files are embedded and checked by the tests: parsing them cannot fail at run time.
        let regular = FontArc::try_from_slice(REGULAR_TTF).expect("the shipped DejaVuSans.ttf parses");
        let bold = FontArc::try_from_slice(BOLD_TTF).expect("the shipped DejaVuSans-Bold.ttf parses");
        Fonts { regular: vec![regular], bold: vec![bold] }
    }

    /// The shipped fonts followed by the fonts in `paths` (TrueType/OpenType files; for a
    /// collection, its first font), read now. The fallbacks serve both regular and bold text.
    pub fn with_fallbacks(paths: &[PathBuf]) -> Result<Fonts, InviteImageError> {
        let mut fonts = Fonts::shipped();
        for path in paths {
            let font = load_font(path)?;
            fonts.regular.push(font.clone());
            fonts.bold.push(font);
        }
        Ok(fonts)
    }
}

fn load_font(path: &Path) -> Result<FontArc, InviteImageError> {
    let data = std::fs::read(path).map_err(|source| InviteImageError::FontRead { path: path.to_owned(), source })?;
    FontArc::try_from_vec(data).map_err(|source| InviteImageError::FontParse { path: path.to_owned(), source })
}

// The card's layout. The QR code sits in a square on the right; the text column on the left.
const HEADER_HEIGHT: u32 = 64;
const MARGIN: u32 = 32;
const QR_AREA: u32 = 240;
const QR_AREA_X: u32 = CARD_WIDTH - MARGIN - QR_AREA;
const QR_AREA_Y: u32 = HEADER_HEIGHT + (CARD_HEIGHT - HEADER_HEIGHT - QR_AREA) / 2;
const TEXT_X: u32 = MARGIN;
const TEXT_WIDTH: u32 = QR_AREA_X - 24 - TEXT_X;

const LINE_GREEN: Rgb<u8> = Rgb([0x06, 0xc7, 0x55]);
const WHITE: Rgb<u8> = Rgb([0xff, 0xff, 0xff]);
const NAME_COLOR: Rgb<u8> = Rgb([0x11, 0x11, 0x11]);
const COMPANY_COLOR: Rgb<u8> = Rgb([0x55, 0x55, 0x55]);
const ID_COLOR: Rgb<u8> = Rgb([0x33, 0x33, 0x33]);
const HINT_COLOR: Rgb<u8> = Rgb([0x88, 0x88, 0x88]);

/// At most this many glyphs are laid out on one line, so that even text of zero-width
/// characters (e.g. thousands of combining marks) costs bounded work.
const MAX_GLYPHS_PER_LINE: usize = 256;

/// A PNG profile card of exactly [`CARD_WIDTH`] x [`CARD_HEIGHT`] pixels (RGB): a LINE-green
/// header band with the caption "Add me on LINE", then the member's name (large, bold), the
/// company, "ID: <my_id>" and a hint to scan, and on the right the QR code of the add-friend URL
/// (error correction M, whole modules of equal size - 6 px for a short URL - with its quiet
/// zone, so it stays decodable). Text too wide for its area ends with "…".
pub fn card_png(fonts: &Fonts, card: &Card) -> Result<Vec<u8>, InviteImageError> {
    let code = QrCode::with_error_correction_level(card.add_friend_url, QR_EC_LEVEL)?;

    let mut img = RgbImage::from_pixel(CARD_WIDTH, CARD_HEIGHT, WHITE);
    fill_rect(&mut img, 0, 0, CARD_WIDTH, HEADER_HEIGHT, LINE_GREEN);

    let header = TextBox { x: TEXT_X, top: 0, width: CARD_WIDTH - 2 * MARGIN, height: HEADER_HEIGHT };
    draw_text(&mut img, &fonts.bold, "Add me on LINE", 28.0, header, 43.0, WHITE);

    let column = |top: u32, height: u32| TextBox { x: TEXT_X, top, width: TEXT_WIDTH, height };
    draw_text(&mut img, &fonts.bold, card.name, 34.0, column(96, 48), 36.0, NAME_COLOR);
    draw_text(&mut img, &fonts.regular, card.company, 20.0, column(150, 30), 22.0, COMPANY_COLOR);
    let id_line = format!("ID: {}", card.my_id);
    draw_text(&mut img, &fonts.regular, &id_line, 20.0, column(196, 30), 22.0, ID_COLOR);
    draw_text(&mut img, &fonts.regular, "Scan the QR code with the LINE app", 15.0, column(292, 24), 17.0, HINT_COLOR);

    draw_qr(&mut img, &code);
    encode_png(img.as_raw(), img.width(), img.height(), ExtendedColorType::Rgb8)
}

fn encode_png(raw: &[u8], width: u32, height: u32, color: ExtendedColorType) -> Result<Vec<u8>, InviteImageError> {
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(raw, width, height, color)?;
    Ok(png)
}

/// Draws the QR code (with its quiet zone) centred in the QR square, each module a whole
/// number of pixels: no resampling, so the code stays as sharp as the URL's length allows.
fn draw_qr(img: &mut RgbImage, code: &QrCode) {
    const QUIET_ZONE: u32 = 4;
    let modules = u32::try_from(code.width()).unwrap_or(u32::MAX);
    let total = modules.saturating_add(2 * QUIET_ZONE);
    // A version 40 code is 177 + 8 modules wide, which still fits the 240 px square at 1 px.
    let module_px = (QR_AREA / total.max(1)).max(1);
    let side = total.saturating_mul(module_px);
    let x0 = QR_AREA_X + QR_AREA.saturating_sub(side) / 2;
    let y0 = QR_AREA_Y + QR_AREA.saturating_sub(side) / 2;
    fill_rect(img, x0, y0, side, side, WHITE);
    let colors = code.to_colors();
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let (mx, my) = (i % modules.max(1), i / modules.max(1));
        let x = x0 + (QUIET_ZONE + mx) * module_px;
        let y = y0 + (QUIET_ZONE + my) * module_px;
        fill_rect(img, x, y, module_px, module_px, Rgb([0, 0, 0]));
    }
}

/// Fills a rectangle, clipped to the image.
fn fill_rect(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
    let x_end = x.saturating_add(w).min(img.width());
    let y_end = y.saturating_add(h).min(img.height());
    for py in y.min(y_end)..y_end {
        for px in x.min(x_end)..x_end {
            img.put_pixel(px, py, color);
        }
    }
}

/// Where one line of text goes: nothing is drawn outside this box.
#[derive(Debug, Clone, Copy)]
struct TextBox {
    x: u32,
    top: u32,
    width: u32,
    height: u32,
}

/// One glyph of a laid-out line: which font of the chain, which glyph, its pen position and
/// where its advance ends (relative to the start of the line).
#[derive(Debug, Clone, Copy)]
struct Placed {
    font: usize,
    glyph: GlyphId,
    x: f32,
    end: f32,
    whitespace: bool,
}

/// The first font of `chain` that has `c`, or the first font's missing glyph.
fn pick(chain: &[FontArc], c: char) -> (usize, GlyphId) {
    chain.iter().enumerate().map(|(i, font)| (i, font.glyph_id(c))).find(|(_, id)| id.0 != 0).unwrap_or((0, GlyphId(0)))
}

/// Lays out `text` on one line of at most `max_width` pixels: control characters are
/// skipped, and if the text does not fit it is cut (with trailing spaces) and ends with "…".
fn layout(chain: &[FontArc], text: &str, scale: PxScale, max_width: f32) -> Vec<Placed> {
    let mut placed: Vec<Placed> = Vec::new();
    if chain.is_empty() {
        return placed;
    }
    let mut caret = 0.0f32;
    let mut overflow = false;
    for c in text.chars().filter(|c| !c.is_control()) {
        if placed.len() >= MAX_GLYPHS_PER_LINE {
            overflow = true;
            break;
        }
        let (font, glyph) = pick(chain, c);
        let scaled = chain[font].as_scaled(scale);
        if let Some(prev) = placed.last() {
            if prev.font == font {
                caret += scaled.kern(prev.glyph, glyph);
            }
        }
        let end = caret + scaled.h_advance(glyph);
        if end > max_width {
            overflow = true;
            break;
        }
        placed.push(Placed { font, glyph, x: caret, end, whitespace: c.is_whitespace() });
        caret = end;
    }
    if overflow {
        let (font, glyph) = pick(chain, '…');
        let advance = chain[font].as_scaled(scale).h_advance(glyph);
        while let Some(last) = placed.last() {
            if !last.whitespace && last.end + advance <= max_width {
                break;
            }
            placed.pop();
        }
        let x = placed.last().map_or(0.0, |last| last.end);
        if x + advance <= max_width {
            placed.push(Placed { font, glyph, x, end: x + advance, whitespace: false });
        }
    }
    placed
}

/// Draws one line of `text` in `area`, its baseline `baseline` pixels below the area's top,
/// alpha-blending the glyphs' coverage into the image.
fn draw_text(
    img: &mut RgbImage,
    chain: &[FontArc],
    text: &str,
    size: f32,
    area: TextBox,
    baseline: f32,
    color: Rgb<u8>,
) {
    let scale = PxScale::from(size);
    let clip_x = (area.x as i64, area.x as i64 + area.width as i64);
    let clip_y = (area.top as i64, area.top as i64 + area.height as i64);
    let (img_w, img_h) = (img.width() as i64, img.height() as i64);
    for g in layout(chain, text, scale, area.width as f32) {
        let glyph = g.glyph.with_scale_and_position(scale, point(area.x as f32 + g.x, area.top as f32 + baseline));
        let Some(outlined) = chain[g.font].outline_glyph(glyph) else { continue };
        let bounds = outlined.px_bounds();
        let (left, top) = (bounds.min.x as i64, bounds.min.y as i64);
        outlined.draw(|gx, gy, coverage| {
            let (x, y) = (left + gx as i64, top + gy as i64);
            if x < clip_x.0 || x >= clip_x.1.min(img_w) || y < clip_y.0 || y >= clip_y.1.min(img_h) || x < 0 || y < 0 {
                return;
            }
            let alpha = coverage.clamp(0.0, 1.0);
            let pixel = img.get_pixel_mut(x as u32, y as u32);
            for (dst, src) in pixel.0.iter_mut().zip(color.0) {
                *dst = (*dst as f32 * (1.0 - alpha) + src as f32 * alpha).round() as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://line.me/R/ti/p/@abc1234x";

    fn card(name: &str) -> Card<'_> {
        Card { name, company: "Acme Trading Co., Ltd.", my_id: "abc1234x", add_friend_url: URL }
    }

    /// Every QR code rqrr finds in the PNG, decoded.
    fn decode_all(png: &[u8]) -> Vec<String> {
        let luma = image::load_from_memory(png).unwrap().to_luma8();
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(luma.width() as usize, luma.height() as usize, |x, y| {
                luma.get_pixel(x as u32, y as u32).0[0]
            });
        prepared.detect_grids().iter().filter_map(|grid| grid.decode().ok()).map(|(_, content)| content).collect()
    }

    fn text_width(placed: &[Placed]) -> f32 {
        placed.last().map_or(0.0, |p| p.end)
    }

    #[test]
    fn the_qr_png_decodes_to_the_url() {
        let png = qr_png(URL).unwrap();
        assert_eq!(decode_all(&png), vec![URL.to_owned()]);
    }

    #[test]
    fn the_qr_png_has_a_quiet_zone_of_4_modules_of_qr_module_px() {
        let png = qr_png(URL).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        let modules = QrCode::with_error_correction_level(URL, EcLevel::M).unwrap().width() as u32;
        assert_eq!(img.dimensions(), ((modules + 8) * QR_MODULE_PX, (modules + 8) * QR_MODULE_PX));
        let quiet = 4 * QR_MODULE_PX;
        // Light up to the quiet zone's edge, then the dark corner of the top-left finder.
        assert!((0..quiet).all(|i| img.get_pixel(i, i).0[0] == 255));
        assert_eq!(img.get_pixel(quiet, quiet).0[0], 0);
    }

    #[test]
    fn a_url_too_long_for_a_qr_code_is_an_error() {
        let url = format!("https://line.me/{}", "x".repeat(3000));
        assert!(matches!(qr_png(&url), Err(InviteImageError::QrEncode(_))));
        let long = Card { add_friend_url: &url, ..card("a") };
        assert!(matches!(card_png(&Fonts::shipped(), &long), Err(InviteImageError::QrEncode(_))));
    }

    #[test]
    fn the_card_has_the_documented_size_and_its_qr_decodes_to_the_url() {
        let png = card_png(&Fonts::shipped(), &card("Taro Yamada")).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (CARD_WIDTH, CARD_HEIGHT));
        assert_eq!(decode_all(&png), vec![URL.to_owned()]);
    }

    #[test]
    fn the_card_draws_the_name() {
        let blank = card_png(&Fonts::shipped(), &card("")).unwrap();
        let named = card_png(&Fonts::shipped(), &card("Taro Yamada")).unwrap();
        assert_ne!(blank, named);
    }

    #[test]
    fn hostile_names_do_not_panic_and_keep_the_qr_decodable() {
        let fonts = Fonts::shipped();
        let zalgo = format!("Z{}", "\u{0301}".repeat(10_000));
        let names = [
            "x".repeat(1000),
            "山田太郎".to_owned(),
            String::new(),
            "\u{0}\u{7}\n\r\t\u{1b}[31m\u{7f}\u{85}".to_owned(),
            "\u{202e}\u{200b}\u{feff}\u{fffd}\u{10ffff}".to_owned(),
            zalgo,
            " ".repeat(500),
            "🙂".repeat(300),
        ];
        for name in &names {
            let c = Card { name, company: name, my_id: name, add_friend_url: URL };
            let png = card_png(&fonts, &c).unwrap();
            let img = image::load_from_memory(&png).unwrap();
            assert_eq!((img.width(), img.height()), (CARD_WIDTH, CARD_HEIGHT));
            assert_eq!(decode_all(&png), vec![URL.to_owned()], "for a name of {} chars", name.chars().count());
        }
    }

    #[test]
    fn text_too_wide_is_cut_with_an_ellipsis() {
        let fonts = Fonts::shipped();
        let scale = PxScale::from(20.0);
        let placed = layout(&fonts.regular, &"word ".repeat(200), scale, 200.0);
        let ellipsis = fonts.regular[0].glyph_id('…');
        assert_eq!(placed.last().unwrap().glyph, ellipsis);
        assert!(text_width(&placed) <= 200.0);
        // No space is left before the ellipsis.
        let before = placed[placed.len() - 2].glyph;
        assert_ne!(before, fonts.regular[0].glyph_id(' '));

        let short = layout(&fonts.regular, "Taro", scale, 200.0);
        assert_eq!(short.len(), 4);
        assert!(short.iter().all(|p| p.glyph != ellipsis));

        // Not even the ellipsis fits: nothing is drawn.
        assert!(layout(&fonts.regular, "Taro", scale, 1.0).is_empty());
    }

    #[test]
    fn control_characters_are_skipped() {
        let fonts = Fonts::shipped();
        let scale = PxScale::from(20.0);
        let plain = layout(&fonts.regular, "ab", scale, 500.0);
        let with_controls = layout(&fonts.regular, "\u{0}a\n\u{1b}b\u{7f}", scale, 500.0);
        let ids = |p: &[Placed]| p.iter().map(|g| g.glyph).collect::<Vec<_>>();
        assert_eq!(ids(&plain), ids(&with_controls));
    }

    #[test]
    fn a_char_comes_from_the_first_font_that_has_it() {
        let shipped_path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/DejaVuSans.ttf"));
        let fonts = Fonts::with_fallbacks(&[shipped_path]).unwrap();
        assert_eq!(fonts.regular.len(), 2);
        assert_eq!(fonts.bold.len(), 2);
        // DejaVu has Latin: the shipped font; it has no CJK: the missing glyph of the first font.
        assert_eq!(pick(&fonts.regular, 'a').0, 0);
        assert_eq!(pick(&fonts.regular, '山'), (0, GlyphId(0)));
        // A fallback that has a char the first font lacks is used for it.
        let chain = [FontArc::try_from_slice(BOLD_TTF).unwrap(), FontArc::try_from_slice(REGULAR_TTF).unwrap()];
        let only_in_regular =
            ('\u{2000}'..='\u{ffff}').find(|&c| chain[0].glyph_id(c).0 == 0 && chain[1].glyph_id(c).0 != 0);
        if let Some(c) = only_in_regular {
            assert_eq!(pick(&chain, c).0, 1);
        }
    }

    /// Needs a Japanese font on the machine (not shipped: the operator configures one in
    /// `invite.fonts`); run with `cargo test -p contacts -- --ignored` after installing one.
    #[test]
    #[ignore = "needs a system CJK font, e.g. Debian's fonts-ipafont-gothic"]
    fn a_system_cjk_font_draws_japanese_names_when_installed() {
        let candidates = [
            "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
            "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
            "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
        ];
        let path = candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("a CJK font: apt-get install fonts-ipafont-gothic");
        let fonts = Fonts::with_fallbacks(&[path]).unwrap();
        assert_eq!(pick(&fonts.regular, '山').0, 1);
        let png = card_png(&fonts, &card("山田太郎")).unwrap();
        assert_eq!(decode_all(&png), vec![URL.to_owned()]);
    }

    #[test]
    fn a_missing_or_invalid_fallback_font_is_an_error() {
        let missing = Fonts::with_fallbacks(&[PathBuf::from("/nonexistent/font.ttf")]);
        assert!(matches!(missing, Err(InviteImageError::FontRead { .. })));
        let not_a_font = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/DejaVu-LICENSE"));
        assert!(matches!(Fonts::with_fallbacks(&[not_a_font]), Err(InviteImageError::FontParse { .. })));
    }
}
