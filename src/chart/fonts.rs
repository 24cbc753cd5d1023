//! The installed fonts, as the chart renderers draw text with them.
//!
//! Text is laid out by resvg with the system fonts (fontconfig's directories, plus
//! `NETDIGEST_FONT_DIR` if set). ECharts asks for `sans-serif` (sometimes
//! "Microsoft YaHei"); generic families map to DejaVu Sans when present (Debian:
//! `fonts-dejavu-core`, Nix: `dejavu_fonts`), else to another common sans font, and
//! unknown families fall back to that sans font. Characters the font lacks (CJK,
//! emoji) come from any other installed font that has them.
//!
//! Invariant: the fonts are loaded once and shared ([`Fonts`] clones an `Arc`).

use std::sync::Arc;
use std::time::Instant;

use resvg::usvg::{self, fontdb};

use super::ChartError;

/// Sans-serif families tried, in order, for ECharts' `sans-serif`.
const SANS_FAMILIES: &[&str] = &[
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "FreeSans",
    "Arimo",
    "Nimbus Sans",
    "Cantarell",
    "Arial",
    "Helvetica",
];
const SERIF_FAMILIES: &[&str] = &[
    "DejaVu Serif",
    "Liberation Serif",
    "Noto Serif",
    "FreeSerif",
    "Tinos",
    "Nimbus Roman",
];
const MONO_FAMILIES: &[&str] = &[
    "DejaVu Sans Mono",
    "Liberation Mono",
    "Noto Sans Mono",
    "FreeMono",
    "Nimbus Mono PS",
];

/// The installed fonts, as the renderers draw text with them: loaded once, shared by
/// every renderer (cloning is cheap).
#[derive(Clone)]
pub struct Fonts {
    pub(super) db: Arc<fontdb::Database>,
    /// The family `sans-serif` resolves to.
    pub(super) sans: String,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts")
            .field("faces", &self.db.len())
            .field("sans", &self.sans)
            .finish()
    }
}

impl Fonts {
    /// The system's fonts (plus `NETDIGEST_FONT_DIR`'s).
    ///
    /// # Errors
    /// [`ChartError::NoFonts`] when no font is installed.
    pub fn load() -> Result<Self, ChartError> {
        let t = Instant::now();
        let (db, sans) = load_fonts()?;
        tracing::debug!(
            ms = t.elapsed().as_millis(),
            faces = db.len(),
            "charts: fonts loaded"
        );
        Ok(Fonts {
            db: Arc::new(db),
            sans,
        })
    }
}

/// System fonts (plus `NETDIGEST_FONT_DIR`), with generic families set; the sans
/// family's name.
fn load_fonts() -> Result<(fontdb::Database, String), ChartError> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    if let Some(dir) = std::env::var_os("NETDIGEST_FONT_DIR").filter(|d| !d.is_empty()) {
        db.load_fonts_dir(dir);
    }
    let first_family = db
        .faces()
        .find_map(|f| f.families.first().map(|(name, _)| name.clone()))
        .ok_or(ChartError::NoFonts)?;
    let pick = |db: &fontdb::Database, names: &[&str]| {
        names
            .iter()
            .find(|n| has_family(db, n))
            .map(|n| (*n).to_string())
    };
    let sans = pick(&db, SANS_FAMILIES).unwrap_or(first_family);
    let serif = pick(&db, SERIF_FAMILIES).unwrap_or_else(|| sans.clone());
    let mono = pick(&db, MONO_FAMILIES).unwrap_or_else(|| sans.clone());
    keep_in_memory(&mut db, &sans);
    db.set_sans_serif_family(sans.clone());
    db.set_serif_family(serif);
    db.set_monospace_family(mono);
    db.set_cursive_family(sans.clone());
    db.set_fantasy_family(sans.clone());
    Ok((db, sans))
}

/// Reads the files of `family`'s faces into memory: fontdb opens and maps a face's file
/// each time text is laid out with it (838 opens for one report's four charts), and
/// nearly every text of a chart is in the sans family. A file that cannot be read stays
/// where it is, used as before.
fn keep_in_memory(db: &mut fontdb::Database, family: &str) {
    let mut paths: Vec<std::path::PathBuf> = db
        .faces()
        .filter(|f| {
            f.families
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(family))
        })
        .filter_map(|f| match &f.source {
            fontdb::Source::File(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let ids: Vec<fontdb::ID> = db
            .faces()
            .filter(|f| matches!(&f.source, fontdb::Source::File(p) if *p == path))
            .map(|f| f.id)
            .collect();
        for id in ids {
            db.remove_face(id);
        }
        db.load_font_data(data);
    }
}

pub(super) fn has_family(db: &fontdb::Database, name: &str) -> bool {
    db.faces()
        .any(|f| f.families.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
}

/// usvg's default font selection, except that families not installed fall back to
/// the sans font (usvg's falls back to serif), and that any installed face is used
/// rather than dropping the text when nothing matches.
pub(super) fn font_selector(sans: String) -> usvg::FontSelectionFn<'static> {
    Box::new(move |font, db| {
        let mut families: Vec<fontdb::Family<'_>> = font
            .families()
            .iter()
            .map(|f| match f {
                usvg::FontFamily::Serif => fontdb::Family::Serif,
                usvg::FontFamily::SansSerif => fontdb::Family::SansSerif,
                usvg::FontFamily::Cursive => fontdb::Family::Cursive,
                usvg::FontFamily::Fantasy => fontdb::Family::Fantasy,
                usvg::FontFamily::Monospace => fontdb::Family::Monospace,
                usvg::FontFamily::Named(s) => fontdb::Family::Name(s),
            })
            .collect();
        families.push(fontdb::Family::Name(&sans));
        let stretch = match font.stretch() {
            usvg::FontStretch::UltraCondensed => fontdb::Stretch::UltraCondensed,
            usvg::FontStretch::ExtraCondensed => fontdb::Stretch::ExtraCondensed,
            usvg::FontStretch::Condensed => fontdb::Stretch::Condensed,
            usvg::FontStretch::SemiCondensed => fontdb::Stretch::SemiCondensed,
            usvg::FontStretch::Normal => fontdb::Stretch::Normal,
            usvg::FontStretch::SemiExpanded => fontdb::Stretch::SemiExpanded,
            usvg::FontStretch::Expanded => fontdb::Stretch::Expanded,
            usvg::FontStretch::ExtraExpanded => fontdb::Stretch::ExtraExpanded,
            usvg::FontStretch::UltraExpanded => fontdb::Stretch::UltraExpanded,
        };
        let style = match font.style() {
            usvg::FontStyle::Normal => fontdb::Style::Normal,
            usvg::FontStyle::Italic => fontdb::Style::Italic,
            usvg::FontStyle::Oblique => fontdb::Style::Oblique,
        };
        let query = fontdb::Query {
            families: &families,
            weight: fontdb::Weight(font.weight()),
            stretch,
            style,
        };
        db.query(&query).or_else(|| db.faces().next().map(|f| f.id))
    })
}
