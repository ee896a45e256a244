//! Checks what a client sends against plausible human ranges, naming the field that is wrong.
//! A value outside these ranges is a measurement error, not an unusual foot.

use crate::foot::{Feet, Foot};
use crate::pb;
use std::fmt;

/// A field that failed validation, with its full path (e.g. `right.ball_girth_mm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Plausible ranges, inclusive, in mm or degrees.
pub mod ranges {
    pub const LENGTH_MM: (f64, f64) = (100.0, 350.0);
    pub const WIDTH_MM: (f64, f64) = (40.0, 150.0);
    pub const BALL_GIRTH_MM: (f64, f64) = (120.0, 400.0);
    pub const INSTEP_HEIGHT_MM: (f64, f64) = (30.0, 130.0);
    pub const HEEL_WIDTH_MM: (f64, f64) = (30.0, 110.0);
    pub const ARCH_HEIGHT_MM: (f64, f64) = (20.0, 130.0);
    pub const BALL_OF_FOOT_LENGTH_MM: (f64, f64) = (70.0, 280.0);
    pub const TOE_TIP_OFFSET_MM: (f64, f64) = (0.0, 60.0);
    pub const TOE1_ANGLE_DEG: (f64, f64) = (0.0, 70.0);
    pub const TOE5_ANGLE_DEG: (f64, f64) = (0.0, 50.0);
}

/// Checks that `value` of `field` lies in `range`.
pub fn in_range(field: &str, value: f64, (min, max): (f64, f64)) -> Result<f64, FieldError> {
    if !value.is_finite() {
        return Err(FieldError::new(field, "must be a number"));
    }
    if value < min || value > max {
        return Err(FieldError::new(
            field,
            format!("{value} is outside the plausible range {min}-{max}"),
        ));
    }
    Ok(value)
}

/// Validates one foot; `side` prefixes field names.
pub fn foot(side: &str, dims: Option<&pb::FootDimensions>) -> Result<Foot, FieldError> {
    let dims = dims.ok_or_else(|| FieldError::new(side, "is required"))?;
    let f = |name: &str| format!("{side}.{name}");
    let length_mm = in_range(&f("length_mm"), dims.length_mm, ranges::LENGTH_MM)?;
    let width_mm = in_range(&f("width_mm"), dims.width_mm, ranges::WIDTH_MM)?;
    let ball_girth_mm = in_range(
        &f("ball_girth_mm"),
        dims.ball_girth_mm,
        ranges::BALL_GIRTH_MM,
    )?;
    let instep_height_mm = in_range(
        &f("instep_height_mm"),
        dims.instep_height_mm,
        ranges::INSTEP_HEIGHT_MM,
    )?;
    let heel_width_mm = in_range(
        &f("heel_width_mm"),
        dims.heel_width_mm,
        ranges::HEEL_WIDTH_MM,
    )?;
    let arch_height_mm = dims
        .arch_height_mm
        .map(|v| in_range(&f("arch_height_mm"), v, ranges::ARCH_HEIGHT_MM))
        .transpose()?;
    let ball_of_foot_length_mm = dims
        .ball_of_foot_length_mm
        .map(|v| {
            in_range(
                &f("ball_of_foot_length_mm"),
                v,
                ranges::BALL_OF_FOOT_LENGTH_MM,
            )
        })
        .transpose()?;
    if let Some(truncated) = ball_of_foot_length_mm
        && truncated >= length_mm
    {
        return Err(FieldError::new(
            f("ball_of_foot_length_mm"),
            format!("{truncated} must be shorter than the foot length {length_mm}"),
        ));
    }
    let offsets: [f64; 5] = dims.toe_tip_offsets_mm.as_slice().try_into().map_err(|_| {
        FieldError::new(
            f("toe_tip_offsets_mm"),
            format!(
                "needs exactly 5 values (toes 1-5), got {}",
                dims.toe_tip_offsets_mm.len()
            ),
        )
    })?;
    for (i, &offset) in offsets.iter().enumerate() {
        in_range(
            &format!("{side}.toe_tip_offsets_mm[{i}]"),
            offset,
            ranges::TOE_TIP_OFFSET_MM,
        )?;
    }
    let toe1_angle_deg = in_range(
        &f("toe1_angle_deg"),
        dims.toe1_angle_deg,
        ranges::TOE1_ANGLE_DEG,
    )?;
    let toe5_angle_deg = in_range(
        &f("toe5_angle_deg"),
        dims.toe5_angle_deg,
        ranges::TOE5_ANGLE_DEG,
    )?;
    Ok(Foot {
        length_mm,
        width_mm,
        ball_girth_mm,
        instep_height_mm,
        heel_width_mm,
        arch_height_mm,
        ball_of_foot_length_mm,
        toe_tip_offsets_mm: offsets,
        toe1_angle_deg,
        toe5_angle_deg,
    })
}

/// Validates both feet.
pub fn feet(
    left: Option<&pb::FootDimensions>,
    right: Option<&pb::FootDimensions>,
) -> Result<Feet, FieldError> {
    Ok(Feet {
        left: foot("left", left)?,
        right: foot("right", right)?,
    })
}

/// Checks an identifier a client chose or quoted: 1-128 characters of `[A-Za-z0-9._-]`, so it
/// is safe in object keys, URLs and logs.
pub fn id<'a>(field: &str, value: &'a str) -> Result<&'a str, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if value.len() > 128
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        || value.starts_with('.')
    {
        return Err(FieldError::new(
            field,
            "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-', not starting with '.'",
        ));
    }
    Ok(value)
}

/// The dimensions of [`Foot`] as the wire type, for storing and returning.
pub fn to_pb(foot: &Foot) -> pb::FootDimensions {
    pb::FootDimensions {
        length_mm: foot.length_mm,
        width_mm: foot.width_mm,
        ball_girth_mm: foot.ball_girth_mm,
        instep_height_mm: foot.instep_height_mm,
        heel_width_mm: foot.heel_width_mm,
        arch_height_mm: foot.arch_height_mm,
        ball_of_foot_length_mm: foot.ball_of_foot_length_mm,
        toe_tip_offsets_mm: foot.toe_tip_offsets_mm.to_vec(),
        toe1_angle_deg: foot.toe1_angle_deg,
        toe5_angle_deg: foot.toe5_angle_deg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> pb::FootDimensions {
        pb::FootDimensions {
            length_mm: 250.0,
            width_mm: 100.0,
            ball_girth_mm: 243.0,
            instep_height_mm: 65.0,
            heel_width_mm: 65.0,
            arch_height_mm: Some(62.0),
            ball_of_foot_length_mm: None,
            toe_tip_offsets_mm: vec![0.0, 4.0, 9.0, 15.0, 24.0],
            toe1_angle_deg: 12.0,
            toe5_angle_deg: 8.0,
        }
    }

    #[test]
    fn accepts_a_plausible_foot_and_round_trips() {
        let foot = foot("left", Some(&dims())).unwrap();
        assert_eq!(to_pb(&foot), dims());
    }

    #[test]
    fn names_the_wrong_field() {
        let err = foot(
            "right",
            Some(&pb::FootDimensions {
                length_mm: 90.0,
                ..dims()
            }),
        )
        .unwrap_err();
        assert_eq!(err.field, "right.length_mm");
        assert!(err.problem.contains("100-350"), "{err}");

        let err = foot(
            "left",
            Some(&pb::FootDimensions {
                toe_tip_offsets_mm: vec![0.0, 4.0, 90.0, 15.0, 24.0],
                ..dims()
            }),
        )
        .unwrap_err();
        assert_eq!(err.field, "left.toe_tip_offsets_mm[2]");

        let err = foot(
            "left",
            Some(&pb::FootDimensions {
                toe_tip_offsets_mm: vec![0.0, 4.0],
                ..dims()
            }),
        )
        .unwrap_err();
        assert!(err.problem.contains("exactly 5"), "{err}");

        let err = foot(
            "left",
            Some(&pb::FootDimensions {
                arch_height_mm: Some(f64::NAN),
                ..dims()
            }),
        )
        .unwrap_err();
        assert_eq!(err.field, "left.arch_height_mm");

        assert_eq!(feet(Some(&dims()), None).unwrap_err().field, "right");
    }

    #[test]
    fn ids_are_url_and_key_safe() {
        assert!(id("user_id", "user-42_a.b").is_ok());
        assert!(id("user_id", "").is_err());
        assert!(id("user_id", "../etc").is_err());
        assert!(id("user_id", "a/b").is_err());
        assert!(id("user_id", "a b").is_err());
    }
}
