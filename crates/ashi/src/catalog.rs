//! Shoes as the catalog knows them: per-size inner dimensions, which sizing compares feet with.

use crate::sizing::recommend::{Category, InnerSize};
use crate::validate::{FieldError, in_range};

/// Who a shoe is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Men,
    Women,
    Unisex,
}

/// The size system a brand labels a shoe in first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitSystem {
    JisMm,
    Eu,
    Uk,
    Us,
}

/// One size of a shoe.
#[derive(Debug, Clone, PartialEq)]
pub struct ShoeSize {
    /// Nominal size as a JIS foot length, mm.
    pub size_mm: u32,
    pub inner: InnerSize,
    /// The brand's labels; empty when not sold under that system.
    pub label_eu: String,
    pub label_uk: String,
    pub label_us: String,
}

/// A shoe with all its sizes, ordered by `size_mm`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shoe {
    pub shoe_id: String,
    pub brand: String,
    pub model: String,
    pub category: Category,
    pub gender: Gender,
    pub unit_system: UnitSystem,
    pub sizes: Vec<ShoeSize>,
}

/// Names used in the database and in CSV files.
pub mod names {
    use super::*;

    pub fn category(c: Category) -> &'static str {
        c.name()
    }

    pub fn parse_category(s: &str) -> Option<Category> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "running" => Category::Running,
            "walking" => Category::Walking,
            "casual" => Category::Casual,
            "dress" => Category::Dress,
            "boot" => Category::Boot,
            _ => return None,
        })
    }

    pub fn gender(g: Gender) -> &'static str {
        match g {
            Gender::Men => "men",
            Gender::Women => "women",
            Gender::Unisex => "unisex",
        }
    }

    pub fn parse_gender(s: &str) -> Option<Gender> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "men" => Gender::Men,
            "women" => Gender::Women,
            "unisex" => Gender::Unisex,
            _ => return None,
        })
    }

    pub fn unit_system(u: UnitSystem) -> &'static str {
        match u {
            UnitSystem::JisMm => "jis_mm",
            UnitSystem::Eu => "eu",
            UnitSystem::Uk => "uk",
            UnitSystem::Us => "us",
        }
    }

    pub fn parse_unit_system(s: &str) -> Option<UnitSystem> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "jis_mm" => UnitSystem::JisMm,
            "eu" => UnitSystem::Eu,
            "uk" => UnitSystem::Uk,
            "us" => UnitSystem::Us,
            _ => return None,
        })
    }
}

/// Plausible inner dimensions of a shoe, mm.
pub mod ranges {
    pub const SIZE_MM: (f64, f64) = (100.0, 350.0);
    pub const INNER_LENGTH_MM: (f64, f64) = (100.0, 400.0);
    pub const INNER_BALL_GIRTH_MM: (f64, f64) = (120.0, 420.0);
    pub const INNER_WIDTH_MM: (f64, f64) = (40.0, 170.0);
}

impl Shoe {
    /// Checks a shoe's sizes (field names prefixed with `prefix`, e.g. `shoe.`): plausible
    /// dimensions, at least one size, no size twice. Sorts sizes by `size_mm`.
    pub fn check(mut self, prefix: &str) -> Result<Shoe, FieldError> {
        crate::validate::id(&format!("{prefix}shoe_id"), &self.shoe_id)?;
        for (field, value) in [("brand", &self.brand), ("model", &self.model)] {
            if value.trim().is_empty() || value.len() > 200 {
                return Err(FieldError::new(
                    format!("{prefix}{field}"),
                    "must be 1-200 characters",
                ));
            }
        }
        if self.sizes.is_empty() {
            return Err(FieldError::new(
                format!("{prefix}sizes"),
                "needs at least one size",
            ));
        }
        for (i, size) in self.sizes.iter().enumerate() {
            let f = |name: &str| format!("{prefix}sizes[{i}].{name}");
            in_range(&f("size_mm"), f64::from(size.size_mm), ranges::SIZE_MM)?;
            in_range(
                &f("inner_length_mm"),
                size.inner.inner_length_mm,
                ranges::INNER_LENGTH_MM,
            )?;
            in_range(
                &f("inner_ball_girth_mm"),
                size.inner.inner_ball_girth_mm,
                ranges::INNER_BALL_GIRTH_MM,
            )?;
            if let Some(width) = size.inner.inner_width_mm {
                in_range(&f("inner_width_mm"), width, ranges::INNER_WIDTH_MM)?;
            }
        }
        self.sizes.sort_by_key(|s| s.size_mm);
        if let Some(pair) = self.sizes.windows(2).find(|w| w[0].size_mm == w[1].size_mm) {
            return Err(FieldError::new(
                format!("{prefix}sizes"),
                format!("size_mm {} appears twice", pair[0].size_mm),
            ));
        }
        Ok(self)
    }
}
