//! Picks the best size of a shoe for a pair of feet by comparing each size's inner dimensions
//! with the larger foot.
//!
//! The rule, in the order it decides:
//! 1. Length: inner length minus foot length must leave the category's toe allowance. Missing
//!    it counts per mm, and a short shoe counts double (toes hit the front; a long one only
//!    slips).
//! 2. Among equally good lengths, ball girth (inner girth minus foot girth within the
//!    category's window) and then inner width, when the catalog has it, decide.
//! 3. Ties go to the size whose length margin is nearest the middle of the allowance, then to
//!    the smaller size.
//!
//! Length is decided first because no girth makes up for toes at the front of the shoe: a size
//! whose length is good always beats one whose length is not.

use super::{to_tenth, to_thousandth};
use crate::foot::{Feet, Side};

/// Shoe categories, each with its own fitting windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Running,
    Walking,
    Casual,
    Dress,
    Boot,
}

/// A range of margins (shoe inner dimension minus foot dimension, mm) that fits well.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub min_mm: f64,
    pub max_mm: f64,
}

impl Window {
    const fn new(min_mm: f64, max_mm: f64) -> Self {
        Window { min_mm, max_mm }
    }

    fn centre(&self) -> f64 {
        (self.min_mm + self.max_mm) / 2.0
    }
}

/// The fitting windows of a category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Toe allowance: inner length minus foot length.
    pub length: Window,
    pub ball_girth: Window,
    pub width: Window,
}

impl Category {
    /// The windows this project fits the category with. The toe allowance of 10-15 mm is the
    /// usual one for everyday shoes; running shoes and boots get more room for the foot's
    /// swelling and thicker socks, dress shoes less because their leather uppers hold the foot.
    pub fn rules(self) -> Rules {
        let (length, ball_girth) = match self {
            Category::Running => (Window::new(12.0, 17.0), Window::new(-3.0, 6.0)),
            Category::Walking => (Window::new(10.0, 15.0), Window::new(-3.0, 6.0)),
            Category::Casual => (Window::new(10.0, 15.0), Window::new(-3.0, 6.0)),
            Category::Dress => (Window::new(8.0, 13.0), Window::new(-6.0, 3.0)),
            Category::Boot => (Window::new(12.0, 18.0), Window::new(-2.0, 8.0)),
        };
        Rules {
            length,
            ball_girth,
            width: Window::new(-3.0, 5.0),
        }
    }

    /// Lower-case name for explanations.
    pub fn name(self) -> &'static str {
        match self {
            Category::Running => "running",
            Category::Walking => "walking",
            Category::Casual => "casual",
            Category::Dress => "dress",
            Category::Boot => "boot",
        }
    }
}

/// Inner dimensions of one size of a shoe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InnerSize {
    pub inner_length_mm: f64,
    pub inner_ball_girth_mm: f64,
    /// `None` when the catalog does not know it.
    pub inner_width_mm: Option<f64>,
}

/// How a dimension fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Tight,
    Good,
    Loose,
}

/// The fit of one dimension with the numbers behind it. The margin is rounded to 0.1 mm
/// before it is judged, so the fit always agrees with the margin shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DimensionFit {
    pub fit: Fit,
    pub margin_mm: f64,
    pub window: Window,
}

impl DimensionFit {
    fn new(margin_mm: f64, window: Window) -> Self {
        let margin_mm = to_tenth(margin_mm);
        let fit = if margin_mm < window.min_mm {
            Fit::Tight
        } else if margin_mm > window.max_mm {
            Fit::Loose
        } else {
            Fit::Good
        };
        DimensionFit {
            fit,
            margin_mm,
            window,
        }
    }

    /// Millimetres outside the window, a tight miss counting double.
    fn miss_mm(&self) -> f64 {
        match self.fit {
            Fit::Tight => 2.0 * (self.window.min_mm - self.margin_mm),
            Fit::Loose => self.margin_mm - self.window.max_mm,
            Fit::Good => 0.0,
        }
    }
}

/// How one size fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeFit {
    /// Index of the size in the slice given to [`recommend`].
    pub index: usize,
    pub length: DimensionFit,
    pub ball_girth: DimensionFit,
    pub width: Option<DimensionFit>,
    /// Weighted mm outside the windows: length counts fully, girth half, width a quarter;
    /// to 0.1 mm.
    pub penalty: f64,
}

impl SizeFit {
    fn rank_key(&self) -> (f64, f64, f64, usize) {
        (
            self.length.miss_mm(),
            other_miss_mm(&self.ball_girth, self.width.as_ref()),
            (self.length.margin_mm - self.length.window.centre()).abs(),
            self.index,
        )
    }
}

/// The chosen size and the reasoning.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub foot: Side,
    pub best: SizeFit,
    /// The next best sizes, best first, at most two.
    pub alternatives: Vec<SizeFit>,
    /// 1 when every dimension is good; `exp(-penalty / 6)`, so each 6 weighted mm outside the
    /// windows costs a factor e; to three decimals.
    pub confidence: f64,
    pub reasons: Vec<String>,
}

/// How one size fits `foot` under `rules`.
pub fn fit(rules: &Rules, foot: &crate::foot::Foot, index: usize, size: &InnerSize) -> SizeFit {
    let length = DimensionFit::new(size.inner_length_mm - foot.length_mm, rules.length);
    let ball_girth = DimensionFit::new(
        size.inner_ball_girth_mm - foot.ball_girth_mm,
        rules.ball_girth,
    );
    let width = size
        .inner_width_mm
        .map(|w| DimensionFit::new(w - foot.width_mm, rules.width));
    let penalty = to_tenth(length.miss_mm() + other_miss_mm(&ball_girth, width.as_ref()));
    SizeFit {
        index,
        length,
        ball_girth,
        width,
        penalty,
    }
}

/// The weighted miss of the dimensions after length: girth half, width a quarter.
fn other_miss_mm(ball_girth: &DimensionFit, width: Option<&DimensionFit>) -> f64 {
    0.5 * ball_girth.miss_mm() + 0.25 * width.map_or(0.0, |w| w.miss_mm())
}

/// Recommends a size of a `category` shoe with `sizes` for `feet`; `None` when the shoe has no
/// sizes.
pub fn recommend(feet: &Feet, category: Category, sizes: &[InnerSize]) -> Option<Recommendation> {
    let rules = category.rules();
    let (side, foot) = feet.larger();
    let mut fits: Vec<SizeFit> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| fit(&rules, foot, i, size))
        .collect();
    fits.sort_by(|a, b| {
        a.rank_key()
            .partial_cmp(&b.rank_key())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut ranked = fits.into_iter();
    let best = ranked.next()?;
    let alternatives: Vec<SizeFit> = ranked.take(2).collect();
    let mut reasons = vec![format!(
        "Sized for the {} foot ({:.0} mm long, {:.0} mm ball girth), the larger one.",
        side.name(),
        foot.length_mm,
        foot.ball_girth_mm
    )];
    reasons.push(explain("Length", "toe allowance", &best.length, category));
    reasons.push(explain(
        "Ball girth",
        "girth margin",
        &best.ball_girth,
        category,
    ));
    if let Some(width) = &best.width {
        reasons.push(explain("Width", "width margin", width, category));
    }
    if best.length.fit != Fit::Good {
        reasons.push(format!(
            "No size of this shoe leaves {:.0} to {:.0} mm of toe allowance for this foot; this is the \
             closest.",
            rules.length.min_mm, rules.length.max_mm
        ));
    }
    Some(Recommendation {
        foot: side,
        confidence: to_thousandth((-best.penalty / 6.0).exp()),
        best,
        alternatives,
        reasons,
    })
}

fn explain(dimension: &str, what: &str, fit: &DimensionFit, category: Category) -> String {
    let verdict = match fit.fit {
        Fit::Tight => "tight",
        Fit::Good => "good",
        Fit::Loose => "loose",
    };
    format!(
        "{dimension}: {what} {:+.1} mm is {verdict} (good for {} shoes: {:+.0} to {:+.0} mm).",
        fit.margin_mm,
        category.name(),
        fit.window.min_mm,
        fit.window.max_mm
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foot::Foot;
    use crate::sizing::diagnose::tests::sample_foot;

    fn sizes(lengths_and_girths: &[(f64, f64)]) -> Vec<InnerSize> {
        lengths_and_girths
            .iter()
            .map(|&(l, g)| InnerSize {
                inner_length_mm: l,
                inner_ball_girth_mm: g,
                inner_width_mm: None,
            })
            .collect()
    }

    fn pair(foot: Foot) -> Feet {
        Feet {
            left: foot,
            right: foot,
        }
    }

    #[test]
    fn picks_the_size_with_the_toe_allowance() {
        // Foot 250 mm, girth 243 mm; walking shoe wants 10-15 mm of allowance.
        let shoe = sizes(&[
            (255.0, 240.0),
            (262.5, 243.0),
            (267.5, 246.0),
            (272.5, 249.0),
        ]);
        let r = recommend(&pair(sample_foot()), Category::Walking, &shoe).unwrap();
        assert_eq!(r.best.index, 1);
        assert_eq!(r.best.length.fit, Fit::Good);
        assert_eq!(r.best.length.margin_mm, 12.5);
        assert_eq!(r.best.ball_girth.fit, Fit::Good);
        assert_eq!(r.best.ball_girth.margin_mm, 0.0);
        assert_eq!(r.confidence, 1.0);
        // 267.5 is next (2.5 mm loose), then 272.5 (7.5 mm loose); 255 comes last: it is
        // 5 mm short, and a short miss counts double.
        let next: Vec<usize> = r.alternatives.iter().map(|a| a.index).collect();
        assert_eq!(next, vec![2, 3]);
        assert_eq!(r.alternatives[0].length.fit, Fit::Loose);
        assert_eq!(r.alternatives[1].penalty, 7.5);
        let short = fit(&Category::Walking.rules(), &sample_foot(), 0, &shoe[0]);
        assert_eq!(short.length.fit, Fit::Tight);
        assert_eq!(short.penalty, 10.0);
        assert!(r.reasons[1].contains("+12.5 mm is good"), "{:?}", r.reasons);
    }

    #[test]
    fn girth_decides_between_good_lengths() {
        // Both sizes leave a good allowance for a 250 mm foot; only the second fits the girth.
        let shoe = sizes(&[(260.0, 236.0), (264.0, 245.0)]);
        let r = recommend(&pair(sample_foot()), Category::Casual, &shoe).unwrap();
        assert_eq!(r.best.index, 1);
        assert_eq!(r.alternatives[0].ball_girth.fit, Fit::Tight);
        assert_eq!(r.alternatives[0].ball_girth.margin_mm, -7.0);
    }

    #[test]
    fn length_beats_girth() {
        // Size 0 fits the girth perfectly but leaves 3 mm at the toes; size 1 has the allowance
        // but is 5 mm loose in girth. Toes first.
        let shoe = sizes(&[(253.0, 243.0), (262.0, 254.0)]);
        let r = recommend(&pair(sample_foot()), Category::Walking, &shoe).unwrap();
        assert_eq!(r.best.index, 1);
        assert_eq!(r.best.ball_girth.fit, Fit::Loose);
        assert!(r.confidence < 1.0);
    }

    #[test]
    fn uses_the_larger_foot() {
        let left = sample_foot();
        let right = Foot {
            length_mm: 257.0,
            ..sample_foot()
        };
        let shoe = sizes(&[(262.5, 243.0), (267.5, 246.0), (272.5, 249.0)]);
        let r = recommend(&Feet { left, right }, Category::Walking, &shoe).unwrap();
        assert_eq!(r.foot, Side::Right);
        assert_eq!(r.best.index, 1); // 267.5 - 257 = 10.5
    }

    #[test]
    fn says_when_no_size_is_long_enough() {
        let shoe = sizes(&[(240.0, 230.0), (245.0, 233.0)]);
        let r = recommend(&pair(sample_foot()), Category::Walking, &shoe).unwrap();
        assert_eq!(r.best.index, 1);
        assert_eq!(r.best.length.fit, Fit::Tight);
        assert!(r.reasons.iter().any(|s| s.contains("No size")));
        assert!(r.confidence < 0.01);
    }

    #[test]
    fn no_sizes_no_recommendation() {
        assert!(recommend(&pair(sample_foot()), Category::Dress, &[]).is_none());
    }
}
