//! A validated foot: the shape sizing works on. Built only by [`crate::validate`], so a `Foot`
//! always holds plausible values.

/// Which foot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Side {
    /// The lower-case name used in field paths and explanations.
    pub fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// Dimensions of one foot in millimetres and degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Foot {
    pub length_mm: f64,
    pub width_mm: f64,
    pub ball_girth_mm: f64,
    pub instep_height_mm: f64,
    pub heel_width_mm: f64,
    /// Dorsal height at 50% of foot length, when measured.
    pub arch_height_mm: Option<f64>,
    /// Heel to the first metatarsophalangeal joint, when measured.
    pub ball_of_foot_length_mm: Option<f64>,
    /// Toes 1 to 5: distance of each tip behind the foremost toe tip.
    pub toe_tip_offsets_mm: [f64; 5],
    pub toe1_angle_deg: f64,
    pub toe5_angle_deg: f64,
}

/// Both feet of one measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feet {
    pub left: Foot,
    pub right: Foot,
}

impl Feet {
    /// The foot a shoe size must fit: the longer one, or the one with the larger ball girth
    /// when both are equally long.
    pub fn larger(&self) -> (Side, &Foot) {
        let (l, r) = (&self.left, &self.right);
        if r.length_mm > l.length_mm
            || (r.length_mm == l.length_mm && r.ball_girth_mm > l.ball_girth_mm)
        {
            (Side::Right, r)
        } else {
            (Side::Left, l)
        }
    }
}
