//! Measurements: one row per measurement, one per foot, one per scan object, written in one
//! transaction so a failed insert leaves nothing behind.

use super::{Error, Store, is_unique_violation};
use crate::foot::{Feet, Foot, Side};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// A measurement to store.
#[derive(Debug, Clone)]
pub struct NewMeasurement {
    pub measurement_id: String,
    pub user_id: String,
    pub feet: Feet,
    pub scan_object_keys: Vec<String>,
    pub device: String,
    pub measured_at_ms: i64,
    pub created_at_ms: i64,
}

/// A stored measurement.
pub type StoredMeasurement = NewMeasurement;

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_token: String,
}

impl<T> Page<T> {
    /// Builds a page from what a query with `LIMIT page_size + 1` returned: an extra item only
    /// tells that more follow, and the token continues after the last item kept.
    pub(super) fn from_fetched(
        mut items: Vec<T>,
        page_size: u32,
        token_after: impl Fn(&T) -> String,
    ) -> Self {
        let more = items.len() > page_size as usize;
        items.truncate(page_size as usize);
        let next_token = match (more, items.last()) {
            (true, Some(last)) => token_after(last),
            _ => String::new(),
        };
        Page { items, next_token }
    }
}

/// The columns of a foot, in the order [`insert_foot`] binds them.
macro_rules! foot_columns {
    () => {
        "length_mm, width_mm, ball_girth_mm, instep_height_mm, heel_width_mm, arch_height_mm, \
         ball_of_foot_length_mm, toe1_offset_mm, toe2_offset_mm, toe3_offset_mm, \
         toe4_offset_mm, toe5_offset_mm, toe1_angle_deg, toe5_angle_deg"
    };
}

/// Statements that delete a measurement's rows, children first.
const DELETE_ROWS: [&str; 3] = [
    "DELETE FROM scan_objects WHERE measurement_id = $1",
    "DELETE FROM feet WHERE measurement_id = $1",
    "DELETE FROM measurements WHERE measurement_id = $1",
];

/// Statements that count a measurement's rows in each table.
const COUNT_ROWS: [&str; 3] = [
    "SELECT COUNT(*) FROM scan_objects WHERE measurement_id = $1",
    "SELECT COUNT(*) FROM feet WHERE measurement_id = $1",
    "SELECT COUNT(*) FROM measurements WHERE measurement_id = $1",
];

impl Store {
    /// Stores `m`. Fails with [`Error::ScanTaken`] if a scan is already part of another
    /// measurement; then nothing is written.
    pub async fn insert_measurement(&self, m: &NewMeasurement) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        self.run(
            "INSERT INTO measurements (measurement_id, user_id, device, measured_at_ms, \
             created_at_ms) VALUES ($1, $2, $3, $4, $5)",
            |q| {
                q.bind(&m.measurement_id)
                    .bind(&m.user_id)
                    .bind(&m.device)
                    .bind(m.measured_at_ms)
                    .bind(m.created_at_ms)
                    .execute(&mut *tx)
            },
        )
        .await?;
        self.insert_foot(&mut tx, &m.measurement_id, Side::Left, &m.feet.left)
            .await?;
        self.insert_foot(&mut tx, &m.measurement_id, Side::Right, &m.feet.right)
            .await?;
        for (position, key) in m.scan_object_keys.iter().enumerate() {
            self.run(
                "INSERT INTO scan_objects (measurement_id, position, object_key) \
                 VALUES ($1, $2, $3)",
                |q| {
                    q.bind(&m.measurement_id)
                        .bind(position as i64)
                        .bind(key)
                        .execute(&mut *tx)
                },
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::ScanTaken { key: key.clone() }
                } else {
                    e.into()
                }
            })?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The measurement `measurement_id` of `user_id`, if it exists.
    pub async fn get_measurement(
        &self,
        user_id: &str,
        measurement_id: &str,
    ) -> Result<Option<StoredMeasurement>, Error> {
        let row = self
            .run(
                "SELECT measurement_id, user_id, device, measured_at_ms, created_at_ms \
                 FROM measurements WHERE user_id = $1 AND measurement_id = $2",
                |q| {
                    q.bind(user_id)
                        .bind(measurement_id)
                        .fetch_optional(&self.pool)
                },
            )
            .await?;
        match row {
            Some(row) => Ok(Some(self.complete(&row).await?)),
            None => Ok(None),
        }
    }

    /// A page of `user_id`'s measurements, newest scan first.
    pub async fn list_measurements(
        &self,
        user_id: &str,
        page_size: u32,
        page_token: &str,
    ) -> Result<Page<StoredMeasurement>, Error> {
        let (after_ms, after_id) = if page_token.is_empty() {
            (i64::MAX, String::new())
        } else {
            let (ms, id) = page_token.split_once('~').ok_or(Error::BadPageToken)?;
            (ms.parse().map_err(|_| Error::BadPageToken)?, id.to_owned())
        };
        let rows = self
            .run(
                "SELECT measurement_id, user_id, device, measured_at_ms, created_at_ms \
                 FROM measurements WHERE user_id = $1 \
                 AND (measured_at_ms < $2 OR (measured_at_ms = $2 AND measurement_id < $3)) \
                 ORDER BY measured_at_ms DESC, measurement_id DESC LIMIT $4",
                |q| {
                    q.bind(user_id)
                        .bind(after_ms)
                        .bind(&after_id)
                        .bind(i64::from(page_size) + 1)
                        .fetch_all(&self.pool)
                },
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(self.complete(row).await?);
        }
        Ok(Page::from_fetched(items, page_size, |last| {
            format!("{}~{}", last.measured_at_ms, last.measurement_id)
        }))
    }

    /// The scan object keys of a measurement, for deleting them before the rows.
    pub async fn scan_keys(&self, measurement_id: &str) -> Result<Vec<String>, Error> {
        let rows = self
            .run(
                "SELECT object_key FROM scan_objects WHERE measurement_id = $1 \
                 ORDER BY position",
                |q| q.bind(measurement_id).fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(Error::from))
            .collect()
    }

    /// Deletes the rows of a measurement; `false` when there were none.
    pub async fn delete_measurement(
        &self,
        user_id: &str,
        measurement_id: &str,
    ) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let found = self
            .run(
                "SELECT measurement_id FROM measurements \
                 WHERE user_id = $1 AND measurement_id = $2",
                |q| {
                    q.bind(user_id)
                        .bind(measurement_id)
                        .fetch_optional(&mut *tx)
                },
            )
            .await?
            .is_some();
        if found {
            for statement in DELETE_ROWS {
                self.run(statement, |q| q.bind(measurement_id).execute(&mut *tx))
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(found)
    }

    /// Counts rows of all measurement tables that mention `measurement_id`: lets tests see
    /// that nothing was left half-written.
    pub async fn rows_for_measurement(&self, measurement_id: &str) -> Result<i64, Error> {
        let mut total = 0;
        for statement in COUNT_ROWS {
            let row = self
                .run(statement, |q| q.bind(measurement_id).fetch_one(&self.pool))
                .await?;
            total += row.try_get::<i64, _>(0)?;
        }
        Ok(total)
    }

    async fn complete(&self, row: &AnyRow) -> Result<StoredMeasurement, Error> {
        let measurement_id: String = row.try_get("measurement_id")?;
        let feet_rows = self
            .run(
                concat!(
                    "SELECT side, ",
                    foot_columns!(),
                    " FROM feet WHERE measurement_id = $1"
                ),
                |q| q.bind(&measurement_id).fetch_all(&self.pool),
            )
            .await?;
        let mut left = None;
        let mut right = None;
        for r in &feet_rows {
            let side: String = r.try_get("side")?;
            let foot = read_foot(r)?;
            match side.as_str() {
                "left" => left = Some(foot),
                "right" => right = Some(foot),
                other => return Err(Error::Corrupt(format!("foot side {other:?}"))),
            }
        }
        let (Some(left), Some(right)) = (left, right) else {
            return Err(Error::Corrupt(format!(
                "measurement {measurement_id} lacks a foot"
            )));
        };
        Ok(StoredMeasurement {
            scan_object_keys: self.scan_keys(&measurement_id).await?,
            measurement_id,
            user_id: row.try_get("user_id")?,
            feet: Feet { left, right },
            device: row.try_get("device")?,
            measured_at_ms: row.try_get("measured_at_ms")?,
            created_at_ms: row.try_get("created_at_ms")?,
        })
    }

    async fn insert_foot(
        &self,
        tx: &mut Transaction<'static, Any>,
        measurement_id: &str,
        side: Side,
        f: &Foot,
    ) -> Result<(), Error> {
        let [t1, t2, t3, t4, t5] = f.toe_tip_offsets_mm;
        self.run(
            concat!(
                "INSERT INTO feet (measurement_id, side, ",
                foot_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16)"
            ),
            |q| {
                q.bind(measurement_id)
                    .bind(side.name())
                    .bind(f.length_mm)
                    .bind(f.width_mm)
                    .bind(f.ball_girth_mm)
                    .bind(f.instep_height_mm)
                    .bind(f.heel_width_mm)
                    .bind(f.arch_height_mm)
                    .bind(f.ball_of_foot_length_mm)
                    .bind(t1)
                    .bind(t2)
                    .bind(t3)
                    .bind(t4)
                    .bind(t5)
                    .bind(f.toe1_angle_deg)
                    .bind(f.toe5_angle_deg)
                    .execute(&mut **tx)
            },
        )
        .await?;
        Ok(())
    }
}

fn read_foot(r: &AnyRow) -> Result<Foot, Error> {
    Ok(Foot {
        length_mm: r.try_get("length_mm")?,
        width_mm: r.try_get("width_mm")?,
        ball_girth_mm: r.try_get("ball_girth_mm")?,
        instep_height_mm: r.try_get("instep_height_mm")?,
        heel_width_mm: r.try_get("heel_width_mm")?,
        arch_height_mm: r.try_get("arch_height_mm")?,
        ball_of_foot_length_mm: r.try_get("ball_of_foot_length_mm")?,
        toe_tip_offsets_mm: [
            r.try_get("toe1_offset_mm")?,
            r.try_get("toe2_offset_mm")?,
            r.try_get("toe3_offset_mm")?,
            r.try_get("toe4_offset_mm")?,
            r.try_get("toe5_offset_mm")?,
        ],
        toe1_angle_deg: r.try_get("toe1_angle_deg")?,
        toe5_angle_deg: r.try_get("toe5_angle_deg")?,
    })
}
