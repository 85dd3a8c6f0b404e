//! chart.svg: ops/s per operation, one bar per module side by side, on a log scale (the
//! operations span six orders of magnitude, from key generation to session opening).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

/// One bar group per label; `series` are (name, one value per label, None where not
/// measured).
pub fn write_chart(
    path: &Path,
    title: &str,
    labels: &[&str],
    series: &[(String, Vec<Option<f64>>)],
) -> Result<(), String> {
    draw(path, title, labels, series).map_err(|e| format!("{}: {e}", path.display()))
}

fn draw(
    path: &Path,
    title: &str,
    labels: &[&str],
    series: &[(String, Vec<Option<f64>>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, values)| values.iter().flatten().copied())
        .filter(|value| *value > 0.0)
        .collect();
    // The axis spans whole decades around the values, so that every bar has a visible height.
    let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = values.iter().copied().fold(0.0, f64::max);
    let (bottom, top) = if values.is_empty() {
        (1.0, 10.0)
    } else {
        (
            10f64.powf(lowest.log10().floor() - 1.0).max(1e-3),
            10f64.powf(highest.log10().ceil()),
        )
    };
    let groups = labels.len().max(1);
    let width = (200 + 70 * groups) as u32;
    let root = SVGBackend::new(path, (width, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(190)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..groups as f64, (bottom..top).log_scale())?;
    // The mesh would centre a rotated label on its tick, half of it inside the plot: the
    // operation names are drawn below the axis instead, each starting at its group's centre.
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups + 1)
        .x_label_formatter(&|_| String::new())
        .y_desc("operations per second (log scale)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let label_style = TextStyle::from(("sans-serif", 13).into_font())
        .transform(FontTransform::Rotate90)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (index, label) in labels.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(index as f64 + 0.5, bottom));
        root.draw(&Text::new(
            label.to_string(),
            (x, y + 8),
            label_style.clone(),
        ))?;
    }
    let bar_width = 0.8 / series.len().max(1) as f64;
    for (index, (name, values)) in series.iter().enumerate() {
        let colour = Palette99::pick(index).to_rgba();
        let left_of = |group: usize| group as f64 + 0.1 + index as f64 * bar_width;
        let bars = values.iter().enumerate().filter_map(|(group, value)| {
            value.filter(|v| *v > 0.0).map(|value| {
                Rectangle::new(
                    [
                        (left_of(group), bottom),
                        (left_of(group) + bar_width, value),
                    ],
                    colour.filled(),
                )
            })
        });
        chart
            .draw_series(bars)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
