//! The shoe catalog: a shoe row and its size rows, replaced together.

use super::{Error, Store};
use crate::catalog::{Shoe, ShoeSize, names};
use crate::sizing::recommend::InnerSize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

impl Store {
    /// Creates or replaces each shoe with all its sizes, all or none.
    pub async fn upsert_shoes(&self, shoes: &[Shoe]) -> Result<(), Error> {
        let mut tx = self.pool.begin().await?;
        for shoe in shoes {
            self.upsert_shoe(&mut tx, shoe).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The shoe `shoe_id`, if the catalog has it.
    pub async fn get_shoe(&self, shoe_id: &str) -> Result<Option<Shoe>, Error> {
        let row = self
            .run(
                "SELECT shoe_id, brand, model, category, gender, unit_system FROM shoes \
                 WHERE shoe_id = $1",
                |q| q.bind(shoe_id).fetch_optional(&self.pool),
            )
            .await?;
        match row {
            Some(row) => Ok(Some(self.complete_shoe(&row).await?)),
            None => Ok(None),
        }
    }

    /// A page of shoes ordered by id; the token is the last id of the previous page.
    pub async fn list_shoes(
        &self,
        page_size: u32,
        page_token: &str,
    ) -> Result<super::Page<Shoe>, Error> {
        let rows = self
            .run(
                "SELECT shoe_id, brand, model, category, gender, unit_system FROM shoes \
                 WHERE shoe_id > $1 ORDER BY shoe_id LIMIT $2",
                |q| {
                    q.bind(page_token)
                        .bind(i64::from(page_size) + 1)
                        .fetch_all(&self.pool)
                },
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(self.complete_shoe(row).await?);
        }
        Ok(super::Page::from_fetched(items, page_size, |last| {
            last.shoe_id.clone()
        }))
    }

    async fn complete_shoe(&self, row: &AnyRow) -> Result<Shoe, Error> {
        let shoe_id: String = row.try_get("shoe_id")?;
        let text = |col: &str| row.try_get::<String, _>(col);
        let corrupt =
            |what: &str, v: String| Error::Corrupt(format!("shoe {shoe_id}: {what} {v:?}"));
        let category = text("category")?;
        let gender = text("gender")?;
        let unit_system = text("unit_system")?;
        let size_rows = self
            .run(
                "SELECT size_mm, inner_length_mm, inner_ball_girth_mm, inner_width_mm, \
                 label_eu, label_uk, label_us FROM shoe_sizes WHERE shoe_id = $1 \
                 ORDER BY size_mm",
                |q| q.bind(&shoe_id).fetch_all(&self.pool),
            )
            .await?;
        let sizes = size_rows
            .iter()
            .map(|r| {
                let size_mm: i64 = r.try_get("size_mm")?;
                Ok(ShoeSize {
                    size_mm: u32::try_from(size_mm)
                        .map_err(|_| Error::Corrupt(format!("size_mm {size_mm}")))?,
                    inner: InnerSize {
                        inner_length_mm: r.try_get("inner_length_mm")?,
                        inner_ball_girth_mm: r.try_get("inner_ball_girth_mm")?,
                        inner_width_mm: r.try_get("inner_width_mm")?,
                    },
                    label_eu: r.try_get("label_eu")?,
                    label_uk: r.try_get("label_uk")?,
                    label_us: r.try_get("label_us")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Shoe {
            brand: text("brand")?,
            model: text("model")?,
            category: names::parse_category(&category)
                .ok_or_else(|| corrupt("category", category.clone()))?,
            gender: names::parse_gender(&gender)
                .ok_or_else(|| corrupt("gender", gender.clone()))?,
            unit_system: names::parse_unit_system(&unit_system)
                .ok_or_else(|| corrupt("unit system", unit_system.clone()))?,
            sizes,
            shoe_id: shoe_id.clone(),
        })
    }

    async fn upsert_shoe(
        &self,
        tx: &mut Transaction<'static, Any>,
        shoe: &Shoe,
    ) -> Result<(), Error> {
        self.run(
            "INSERT INTO shoes (shoe_id, brand, model, category, gender, unit_system) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (shoe_id) DO UPDATE SET \
             brand = excluded.brand, model = excluded.model, category = excluded.category, \
             gender = excluded.gender, unit_system = excluded.unit_system",
            |q| {
                q.bind(&shoe.shoe_id)
                    .bind(&shoe.brand)
                    .bind(&shoe.model)
                    .bind(names::category(shoe.category))
                    .bind(names::gender(shoe.gender))
                    .bind(names::unit_system(shoe.unit_system))
                    .execute(&mut **tx)
            },
        )
        .await?;
        self.run("DELETE FROM shoe_sizes WHERE shoe_id = $1", |q| {
            q.bind(&shoe.shoe_id).execute(&mut **tx)
        })
        .await?;
        for size in &shoe.sizes {
            self.run(
                "INSERT INTO shoe_sizes (shoe_id, size_mm, inner_length_mm, \
                 inner_ball_girth_mm, inner_width_mm, label_eu, label_uk, label_us) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                |q| {
                    q.bind(&shoe.shoe_id)
                        .bind(i64::from(size.size_mm))
                        .bind(size.inner.inner_length_mm)
                        .bind(size.inner.inner_ball_girth_mm)
                        .bind(size.inner.inner_width_mm)
                        .bind(&size.label_eu)
                        .bind(&size.label_uk)
                        .bind(&size.label_us)
                        .execute(&mut **tx)
                },
            )
            .await?;
        }
        Ok(())
    }
}
