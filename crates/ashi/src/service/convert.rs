//! Conversions between the wire types and the domain types.

use crate::catalog::{Gender, Shoe, ShoeSize, UnitSystem};
use crate::pb;
use crate::sizing::recommend::{Category, InnerSize};
use crate::validate::FieldError;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn timestamp_from_ms(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn ms_from_timestamp(field: &str, t: &prost_types::Timestamp) -> Result<i64, FieldError> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(FieldError::new(field, "nanos must be 0-999999999"));
    }
    t.seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i64::from(t.nanos / 1_000_000)))
        .ok_or_else(|| FieldError::new(field, "is out of range"))
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    timestamp_from_ms(d.as_millis() as i64)
}

pub fn category_to_pb(c: Category) -> pb::ShoeCategory {
    match c {
        Category::Running => pb::ShoeCategory::Running,
        Category::Walking => pb::ShoeCategory::Walking,
        Category::Casual => pb::ShoeCategory::Casual,
        Category::Dress => pb::ShoeCategory::Dress,
        Category::Boot => pb::ShoeCategory::Boot,
    }
}

fn category_from_pb(v: i32) -> Option<Category> {
    Some(match pb::ShoeCategory::try_from(v).ok()? {
        pb::ShoeCategory::Running => Category::Running,
        pb::ShoeCategory::Walking => Category::Walking,
        pb::ShoeCategory::Casual => Category::Casual,
        pb::ShoeCategory::Dress => Category::Dress,
        pb::ShoeCategory::Boot => Category::Boot,
        pb::ShoeCategory::Unspecified => return None,
    })
}

fn gender_from_pb(v: i32) -> Option<Gender> {
    Some(match pb::Gender::try_from(v).ok()? {
        pb::Gender::Men => Gender::Men,
        pb::Gender::Women => Gender::Women,
        pb::Gender::Unisex => Gender::Unisex,
        pb::Gender::Unspecified => return None,
    })
}

fn unit_system_from_pb(v: i32) -> Option<UnitSystem> {
    Some(match pb::UnitSystem::try_from(v).ok()? {
        pb::UnitSystem::JisMm => UnitSystem::JisMm,
        pb::UnitSystem::Eu => UnitSystem::Eu,
        pb::UnitSystem::Uk => UnitSystem::Uk,
        pb::UnitSystem::Us => UnitSystem::Us,
        pb::UnitSystem::Unspecified => return None,
    })
}

pub fn size_to_pb(s: &ShoeSize) -> pb::ShoeSize {
    pb::ShoeSize {
        size_mm: s.size_mm,
        inner_length_mm: s.inner.inner_length_mm,
        inner_ball_girth_mm: s.inner.inner_ball_girth_mm,
        inner_width_mm: s.inner.inner_width_mm.unwrap_or(0.0),
        label_eu: s.label_eu.clone(),
        label_uk: s.label_uk.clone(),
        label_us: s.label_us.clone(),
    }
}

pub fn shoe_to_pb(s: &Shoe) -> pb::Shoe {
    pb::Shoe {
        shoe_id: s.shoe_id.clone(),
        brand: s.brand.clone(),
        model: s.model.clone(),
        category: category_to_pb(s.category) as i32,
        gender: match s.gender {
            Gender::Men => pb::Gender::Men,
            Gender::Women => pb::Gender::Women,
            Gender::Unisex => pb::Gender::Unisex,
        } as i32,
        unit_system: match s.unit_system {
            UnitSystem::JisMm => pb::UnitSystem::JisMm,
            UnitSystem::Eu => pb::UnitSystem::Eu,
            UnitSystem::Uk => pb::UnitSystem::Uk,
            UnitSystem::Us => pb::UnitSystem::Us,
        } as i32,
        sizes: s.sizes.iter().map(size_to_pb).collect(),
    }
}

/// A wire shoe as a checked catalog shoe; field names start with `shoe.`.
pub fn shoe_from_pb(s: pb::Shoe) -> Result<Shoe, FieldError> {
    let required = |field: &str| FieldError::new(format!("shoe.{field}"), "is required");
    Shoe {
        category: category_from_pb(s.category).ok_or_else(|| required("category"))?,
        gender: gender_from_pb(s.gender).ok_or_else(|| required("gender"))?,
        unit_system: unit_system_from_pb(s.unit_system).ok_or_else(|| required("unit_system"))?,
        sizes: s
            .sizes
            .into_iter()
            .map(|z| ShoeSize {
                size_mm: z.size_mm,
                inner: InnerSize {
                    inner_length_mm: z.inner_length_mm,
                    inner_ball_girth_mm: z.inner_ball_girth_mm,
                    inner_width_mm: (z.inner_width_mm != 0.0).then_some(z.inner_width_mm),
                },
                label_eu: z.label_eu,
                label_uk: z.label_uk,
                label_us: z.label_us,
            })
            .collect(),
        shoe_id: s.shoe_id,
        brand: s.brand,
        model: s.model,
    }
    .check("shoe.")
}
