//! The PNG chart: one bar panel per scenario, one bar per proxy, in the same colours
//! throughout. Throughput panels show req/s (msg/s for streams); the fixed-rate panel shows
//! p50 latency and the idle panels memory per connection, where lower is better.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Kind, Row, Scenario};
use crate::Error;

const PANEL_WIDTH: u32 = 420;
const PANEL_HEIGHT: u32 = 330;
const COLUMNS: usize = 4;
const TITLE_HEIGHT: u32 = 44;

/// Draws the chart of `scenarios` into `path`.
pub fn draw(scenarios: &[Scenario], font: &Path, path: &Path) -> Result<(), Error> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, super::leak_font(font)?)
        .map_err(|_| format!("{} is not a font plotters can use", font.display()))?;
    let columns = COLUMNS.min(scenarios.len()).max(1);
    let rows = scenarios.len().div_ceil(columns);
    let width = PANEL_WIDTH * u32::try_from(columns)?;
    let height = TITLE_HEIGHT + PANEL_HEIGHT * u32::try_from(rows)?;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(TITLE_HEIGHT);
    title.draw_text(
        "sekisho vs peers: same load, proxy pinned to one CPU",
        &("sans-serif", 22).into_font().color(&BLACK),
        (14, 12),
    )?;
    let panels = body.split_evenly((rows, columns));
    for (panel, scenario) in panels.iter().zip(scenarios) {
        draw_panel(panel, scenario)?;
    }
    root.present()?;
    Ok(())
}

/// What a panel plots for a row, and the axis description.
fn value(scenario: &Scenario, row: &Row) -> Option<f64> {
    match scenario.kind {
        Kind::Throughput => row.throughput(),
        Kind::FixedRate => row.latency("p50"),
        Kind::Idle => row.bytes_per_connection().map(|b| b / 1024.0),
    }
}

fn axis(scenario: &Scenario) -> String {
    match scenario.kind {
        Kind::Throughput => format!("{} (higher is better)", scenario.unit()),
        Kind::FixedRate => "p50 µs (lower is better)".to_owned(),
        Kind::Idle => "KiB per connection (lower is better)".to_owned(),
    }
}

fn draw_panel(
    panel: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    scenario: &Scenario,
) -> Result<(), Error> {
    let names: Vec<&str> = scenario.rows.iter().map(|r| r.proxy.as_str()).collect();
    let values: Vec<f64> = scenario
        .rows
        .iter()
        .map(|r| value(scenario, r).unwrap_or(0.0))
        .collect();
    let top = values.iter().copied().fold(0.0f64, f64::max).max(1.0) * 1.18;
    let count = names.len().max(1);
    let mut chart = ChartBuilder::on(panel)
        .caption(&scenario.title, ("sans-serif", 15))
        .margin(10)
        .x_label_area_size(24)
        .y_label_area_size(64)
        // A segmented 0..=n-1 axis has one segment per proxy.
        .build_cartesian_2d((0..count - 1).into_segmented(), 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .x_labels(count)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).map(|s| (*s).to_owned()).unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| short(*v))
        .y_desc(axis(scenario))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 12))
        .draw()?;
    chart.draw_series(values.iter().enumerate().map(|(i, v)| {
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), *v),
            ],
            colour(names.get(i).copied().unwrap_or("")).filled(),
        );
        bar.set_margin(0, 0, 6, 6);
        bar
    }))?;
    let label = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    chart.draw_series(scenario.rows.iter().enumerate().map(|(i, row)| {
        let text = match value(scenario, row) {
            Some(v) if row.errors() > 0 => format!("{} ({} err)", short(v), row.errors()),
            Some(v) => short(v),
            None => "n/a".to_owned(),
        };
        Text::new(
            text,
            (
                SegmentValue::CenterOf(i),
                values.get(i).copied().unwrap_or(0.0),
            ),
            label.clone(),
        )
    }))?;
    Ok(())
}

/// A proxy's colour; sekisho stands out.
fn colour(proxy: &str) -> RGBColor {
    match proxy {
        "direct" => RGBColor(150, 150, 150),
        "sekisho" => RGBColor(214, 69, 65),
        "nginx" => RGBColor(46, 139, 87),
        "haproxy" => RGBColor(52, 101, 164),
        "nghttpx" => RGBColor(117, 80, 123),
        _ => RGBColor(200, 160, 60),
    }
}

/// 950, 12.3k, 1.25M.
fn short(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.1}k", value / 1e3)
    } else if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
