//! `ashi.v1.SizingService`: the sizing rules applied to stored measurements and catalog shoes.

use super::convert::size_to_pb;
use super::{Caller, Shared, store_status};
use crate::catalog::Shoe;
use crate::foot::Feet;
use crate::pb::sizing_service_server::SizingService;
use crate::pb::*;
use crate::sizing::{arch, diagnose, hallux, jis, recommend, toe};
use crate::validate::{self, FieldError, in_range};
use tonic::{Request, Response, Status};

/// Most shoes one RecommendSizes call may ask about.
pub const MAX_SHOES_PER_CALL: usize = 50;

/// The service.
pub struct Sizing(pub Shared);

impl Sizing {
    /// The feet of the measurement `r` names, if the caller may read it.
    async fn feet(&self, caller: &Caller, r: Option<&MeasurementRef>) -> Result<Feet, Status> {
        let r = r.ok_or_else(|| FieldError::new("measurement", "is required"))?;
        let user_id = validate::id("measurement.user_id", &r.user_id)?;
        caller.may_reach(user_id)?;
        let id = validate::id("measurement.measurement_id", &r.measurement_id)?;
        match self.0.reachable_measurement(caller, user_id, id).await? {
            Some(m) => Ok(m.feet),
            None => Err(Status::not_found(format!(
                "measurement {id} of user {user_id}"
            ))),
        }
    }

    async fn shoe(&self, field: &str, shoe_id: &str) -> Result<Shoe, Status> {
        let shoe_id = validate::id(field, shoe_id)?;
        self.0
            .store
            .get_shoe(shoe_id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("{field}: no shoe {shoe_id} in the catalog")))
    }
}

/// The JIS table a diagnosis reads, which the caller must name: the men's and women's tables
/// give the same foot different sizes and widths, and a measurement does not say which
/// applies, so no default would be right for everyone.
fn jis_table(table: i32) -> Result<jis::Table, FieldError> {
    const ACCEPTED: &str = "one of JIS_TABLE_MEN, JIS_TABLE_WOMEN (or 1, 2)";
    match JisTable::try_from(table) {
        Ok(JisTable::Men) => Ok(jis::Table::Men),
        Ok(JisTable::Women) => Ok(jis::Table::Women),
        Ok(JisTable::Unspecified) => {
            Err(FieldError::new("table", format!("is required; {ACCEPTED}")))
        }
        Err(_) => Err(FieldError::new(
            "table",
            format!("{table} is not a JIS table; {ACCEPTED}"),
        )),
    }
}

fn jis_to_pb(size: &jis::JisSize) -> JisSize {
    match *size {
        jis::JisSize::InTable {
            size_mm,
            class,
            class_girth_mm,
        } => JisSize {
            in_table: true,
            size_mm,
            width_class: class.label().into(),
            label: size.label(),
            class_girth_mm,
        },
        jis::JisSize::Outside { size_mm, .. } => JisSize {
            in_table: false,
            size_mm,
            width_class: String::new(),
            label: size.label(),
            class_girth_mm: 0.0,
        },
    }
}

fn foot_to_pb(d: &diagnose::FootDiagnosis) -> FootDiagnosis {
    let (index, estimated, arch_type) = match d.arch {
        Some((index, kind)) => (
            index.value,
            index.estimated,
            match kind {
                arch::ArchType::Low => ArchType::Low,
                arch::ArchType::Normal => ArchType::Normal,
                arch::ArchType::High => ArchType::High,
            },
        ),
        None => (0.0, false, ArchType::Unknown),
    };
    FootDiagnosis {
        jis: Some(jis_to_pb(&d.jis)),
        toe_shape: match d.toe_shape {
            toe::ToeShape::Egyptian => ToeShape::Egyptian,
            toe::ToeShape::Greek => ToeShape::Greek,
            toe::ToeShape::Square => ToeShape::Square,
        } as i32,
        arch_type: arch_type as i32,
        arch_height_index: index,
        arch_index_estimated: estimated,
        hallux_band: match d.hallux {
            hallux::HalluxBand::Normal => HalluxAngleBand::Normal,
            hallux::HalluxBand::Mild => HalluxAngleBand::Mild,
            hallux::HalluxBand::Moderate => HalluxAngleBand::Moderate,
            hallux::HalluxBand::Marked => HalluxAngleBand::Marked,
        } as i32,
        hallux_note: hallux::SCREENING_NOTE.into(),
    }
}

fn dimension_to_pb(d: &recommend::DimensionFit) -> DimensionFit {
    DimensionFit {
        fit: match d.fit {
            recommend::Fit::Tight => Fit::Tight,
            recommend::Fit::Good => Fit::Good,
            recommend::Fit::Loose => Fit::Loose,
        } as i32,
        margin_mm: d.margin_mm,
        good_min_mm: d.window.min_mm,
        good_max_mm: d.window.max_mm,
    }
}

fn size_fit_to_pb(shoe: &Shoe, f: &recommend::SizeFit) -> SizeFit {
    SizeFit {
        size: shoe.sizes.get(f.index).map(size_to_pb),
        length: Some(dimension_to_pb(&f.length)),
        ball_girth: Some(dimension_to_pb(&f.ball_girth)),
        width: f.width.as_ref().map(dimension_to_pb),
        penalty: f.penalty,
    }
}

/// Recommends a size of `shoe` for `feet`.
fn recommendation(feet: &Feet, shoe: &Shoe) -> Result<Recommendation, Status> {
    let inner: Vec<recommend::InnerSize> = shoe.sizes.iter().map(|s| s.inner).collect();
    let r = recommend::recommend(feet, shoe.category, &inner).ok_or_else(|| {
        Status::failed_precondition(format!("shoe {} has no sizes", shoe.shoe_id))
    })?;
    Ok(Recommendation {
        shoe_id: shoe.shoe_id.clone(),
        foot: r.foot.name().into(),
        best: Some(size_fit_to_pb(shoe, &r.best)),
        confidence: r.confidence,
        alternatives: r
            .alternatives
            .iter()
            .map(|a| size_fit_to_pb(shoe, a))
            .collect(),
        reasons: r.reasons,
    })
}

#[tonic::async_trait]
impl SizingService for Sizing {
    async fn diagnose_foot(
        &self,
        request: Request<DiagnoseFootRequest>,
    ) -> Result<Response<DiagnoseFootResponse>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let table = jis_table(req.table)?;
        let tolerance = match req.toe_tolerance_mm {
            Some(t) => in_range("toe_tolerance_mm", t, (0.0, 10.0))?,
            None => self.0.toe_tolerance_mm,
        };
        let feet = self.feet(&caller, req.measurement.as_ref()).await?;
        let d = diagnose::feet(table, tolerance, &feet);
        Ok(Response::new(DiagnoseFootResponse {
            left: Some(foot_to_pb(&d.left)),
            right: Some(foot_to_pb(&d.right)),
            length_difference_mm: d.length_difference_mm,
            width_difference_mm: d.width_difference_mm,
            ball_girth_difference_mm: d.ball_girth_difference_mm,
            notes: d.notes,
        }))
    }

    async fn recommend_size(
        &self,
        request: Request<RecommendSizeRequest>,
    ) -> Result<Response<Recommendation>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        let feet = self.feet(&caller, req.measurement.as_ref()).await?;
        let shoe = self.shoe("shoe_id", &req.shoe_id).await?;
        Ok(Response::new(recommendation(&feet, &shoe)?))
    }

    async fn recommend_sizes(
        &self,
        request: Request<RecommendSizesRequest>,
    ) -> Result<Response<RecommendSizesResponse>, Status> {
        let (caller, req) = Caller::from_request(request)?;
        if req.shoe_ids.is_empty() || req.shoe_ids.len() > MAX_SHOES_PER_CALL {
            return Err(FieldError::new(
                "shoe_ids",
                format!("needs 1-{MAX_SHOES_PER_CALL} shoe ids"),
            )
            .into());
        }
        let feet = self.feet(&caller, req.measurement.as_ref()).await?;
        let mut recommendations = Vec::with_capacity(req.shoe_ids.len());
        for (i, id) in req.shoe_ids.iter().enumerate() {
            let shoe = self.shoe(&format!("shoe_ids[{i}]"), id).await?;
            recommendations.push(recommendation(&feet, &shoe)?);
        }
        Ok(Response::new(RecommendSizesResponse { recommendations }))
    }
}
