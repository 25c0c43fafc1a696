//! Identicons: a small symmetric picture drawn from a comment's `avatar_seed`, as inline SVG.
//!
//! replyguard derives the seed from a keyed hash of the author's email, so one author gets the
//! same picture on every comment of one site and nobody can work back to the email. The seed is
//! an opaque string: hashing it first (SHA-256) makes the picture depend on all of it, whatever
//! its format. Any language can draw the same: a 5×5 grid mirrored left to right, its cells
//! and colour taken from the hash's bits.

use sha2::{Digest, Sha256};

/// Cells on a side.
const GRID: usize = 5;

/// Columns drawn from the hash; the rest mirror them.
const DRAWN: usize = GRID.div_ceil(2);

/// An `<svg>` element, `size` pixels square, for `seed`; an erased author (an empty seed) gets
/// a plain grey disc.
pub fn svg(seed: &str, size: u32) -> String {
    let open = format!(
        r#"<svg class="avatar" width="{size}" height="{size}" viewBox="0 0 {GRID} {GRID}" aria-hidden="true" shape-rendering="crispEdges">"#
    );
    if seed.is_empty() {
        return format!(r##"{open}<circle cx="2.5" cy="2.5" r="2.5" fill="#c8ccd0"/></svg>"##);
    }
    let hash = Sha256::digest(seed.as_bytes());
    // Two bytes pick the hue; the saturation and lightness stay readable on white.
    let hue = u16::from_be_bytes([hash[0], hash[1]]) % 360;
    let mut cells = String::new();
    for row in 0..GRID {
        for column in 0..DRAWN {
            let bit = row * DRAWN + column;
            let filled = (hash[2 + bit / 8] >> (bit % 8)) & 1 == 1;
            if !filled {
                continue;
            }
            let mirror = GRID - 1 - column;
            cells.push_str(&cell(column, row));
            if mirror != column {
                cells.push_str(&cell(mirror, row));
            }
        }
    }
    format!(
        r##"{open}<rect width="{GRID}" height="{GRID}" fill="#f0f2f4"/><g fill="hsl({hue} 55% 50%)">{cells}</g></svg>"##
    )
}

/// One filled cell of the grid.
fn cell(x: usize, y: usize) -> String {
    format!(r#"<rect x="{x}" y="{y}" width="1" height="1"/>"#)
}
