//! `memory.svg`: memory over time, drawn with plotters, one 800×400 panel per container (their
//! limits differ too much to share an axis). Each panel shows the working set as the highest
//! across pods (shaded area) and the pod that peaked (line), the limit and the allowed peak, the
//! VPA target with its lower–upper band when known, the stages shaded alternately with their
//! labels, the planned users on the right axis, OOM kills and restarts as vertical markers with a
//! label, the peak as a dot, and a legend under the plot. Without any sample the image says "no
//! memory data". Outside strings are made one-line and shortened here; plotters XML-escapes them.

use std::error::Error;
use std::io;

use chrono::Duration as ChronoDuration;
use plotters::chart::DualCoordChartContext;
use plotters::coord::types::{RangedCoordf64, RangedDateTime};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::escape::one_line;
use super::{ContainerRow, ReportView, Reporter};
use crate::judge::clock;
use crate::model::{Severity, Timestamp};
use crate::units::{format_bytes, format_percent};

/// Width of the image and height of one container's panel, in pixels.
pub const WIDTH: u32 = 800;
pub const PANEL_HEIGHT: u32 = 400;
const TITLE_HEIGHT: u32 = 32;
const LEGEND_HEIGHT: u32 = 46;
const FONT: &str = "sans-serif";
/// plotters writes `font-size` = size ÷ 1.24: 15.5 → 12.5 px, 18.6 → 15 px.
const LABEL_SIZE: f64 = 15.5;
const TITLE_SIZE: f64 = 18.6;
/// Average glyph width of the label font, in pixels, for layout estimates.
const CHAR_PX: f64 = 6.9;

const MEMORY: RGBColor = RGBColor(31, 119, 180);
const PEAK_POD: RGBColor = RGBColor(106, 61, 154);
const LIMIT: RGBColor = RGBColor(214, 39, 40);
const ALLOWED: RGBColor = RGBColor(230, 110, 0);
const VPA: RGBColor = RGBColor(44, 150, 44);
const USERS: RGBColor = RGBColor(100, 100, 100);
const STAGE_SHADE: RGBColor = RGBColor(236, 239, 243);
const RESTART: RGBColor = RGBColor(140, 86, 75);
const INK: RGBColor = RGBColor(40, 40, 40);
const PASS: RGBColor = RGBColor(30, 130, 60);
const WARN: RGBColor = RGBColor(180, 110, 0);

type Res<T = ()> = Result<T, Box<dyn Error>>;
type Chart<'a, 'b> = DualCoordChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<RangedDateTime<Timestamp>, RangedCoordf64>,
    Cartesian2d<RangedDateTime<Timestamp>, RangedCoordf64>,
>;
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Writes `memory.svg`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SvgReporter;

impl Reporter for SvgReporter {
    fn name(&self) -> &'static str {
        "svg"
    }

    fn file_name(&self) -> &'static str {
        "memory.svg"
    }

    fn render(&self, view: &ReportView, out: &mut dyn io::Write) -> io::Result<()> {
        out.write_all(render(view)?.as_bytes())
    }
}

/// The chart as an SVG document (an `<svg>` element, no XML declaration, so it also inlines
/// into HTML).
pub fn render(view: &ReportView) -> io::Result<String> {
    let mut buf = String::new();
    draw(view, &mut buf).map_err(|e| io::Error::other(format!("drawing memory.svg: {e}")))?;
    Ok(buf)
}

fn has_data(c: &ContainerRow) -> bool {
    !c.working_set.is_empty() || c.peak.is_some()
}

fn draw(view: &ReportView, buf: &mut String) -> Res {
    if !view.containers.iter().any(has_data) {
        let root = SVGBackend::with_string(buf, (WIDTH, PANEL_HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let center = (WIDTH as i32 / 2, PANEL_HEIGHT as i32 / 2);
        let big = (FONT, 30.0)
            .into_font()
            .color(&INK)
            .pos(Pos::new(HPos::Center, VPos::Center));
        root.draw_text("no memory data", &big, (center.0, center.1 - 16))?;
        let small = (FONT, LABEL_SIZE)
            .into_font()
            .color(&USERS)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let line = format!(
            "{}: no memory sample was recorded, so there is nothing to chart",
            shorten(&view.scenario, 40)
        );
        root.draw_text(&line, &small, (center.0, center.1 + 22))?;
        root.present()?;
        return Ok(());
    }
    let n = view.containers.len() as u32;
    let root = SVGBackend::with_string(buf, (WIDTH, PANEL_HEIGHT * n)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, row) in root
        .split_evenly((n as usize, 1))
        .iter()
        .zip(&view.containers)
    {
        panel(view, row, area)?;
    }
    root.present()?;
    Ok(())
}

/// The panel's title: container, peak, when; and the worst result on the right.
fn title(row: &ContainerRow, area: &Area<'_>) -> Res {
    let worst = row.results.values().copied().max();
    let failing: Vec<&str> = row
        .results
        .iter()
        .filter(|(_, s)| Some(**s) == worst)
        .map(|(r, _)| r.id())
        .collect();
    let (status, color) = match worst {
        Some(Severity::Fail) => (format!("FAIL: {}", failing.join(", ")), LIMIT),
        Some(Severity::Inconclusive) => ("INCONCLUSIVE".to_string(), WARN),
        Some(Severity::Warn) => (format!("WARN: {}", failing.join(", ")), WARN),
        Some(Severity::Skipped) => (format!("PASS, not judged: {}", failing.join(", ")), PASS),
        Some(Severity::Pass) => ("PASS".to_string(), PASS),
        None => (String::new(), INK),
    };
    let status = shorten(&status, 40);
    let right = (FONT, TITLE_SIZE)
        .into_font()
        .style(FontStyle::Bold)
        .color(&color);
    let right = right.pos(Pos::new(HPos::Right, VPos::Center));
    area.draw_text(
        &status,
        &right,
        (WIDTH as i32 - 12, TITLE_HEIGHT as i32 / 2 + 2),
    )?;
    let room = WIDTH as i32 - 24 - text_px(&status, TITLE_SIZE) - 24;
    let name = shorten(&row.container, 32);
    let mut candidates = vec![name.clone()];
    if let (Some(peak), Some(at)) = (row.peak, row.peak_at) {
        let share = row
            .peak_share_of_limit()
            .map(|s| format!(" ({} of limit)", crate::units::format_share(s)))
            .unwrap_or_default();
        let base = format!(
            "{name}: peak {}{share} at {}",
            format_bytes(peak),
            clock(at)
        );
        if let Some(stage) = &row.peak_stage {
            candidates.insert(0, format!("{base}, {}", one_line(stage)));
        }
        candidates.insert(candidates.len() - 1, base);
    }
    let chosen = candidates
        .iter()
        .find(|c| text_px(c, TITLE_SIZE) * 11 / 10 <= room)
        .unwrap_or(&name);
    let left = (FONT, TITLE_SIZE)
        .into_font()
        .style(FontStyle::Bold)
        .color(&INK);
    area.draw_text(
        chosen,
        &left.pos(Pos::new(HPos::Left, VPos::Center)),
        (12, TITLE_HEIGHT as i32 / 2 + 2),
    )?;
    Ok(())
}

/// Byte axis unit: MiB up to 4 GiB, GiB above.
fn unit(top: u64) -> (f64, &'static str) {
    if top >= 4 << 30 {
        ((1u64 << 30) as f64, "GiB")
    } else {
        ((1u64 << 20) as f64, "MiB")
    }
}

fn panel(view: &ReportView, row: &ContainerRow, area: &Area<'_>) -> Res {
    let (title_area, rest) = area.split_vertically(TITLE_HEIGHT);
    title(row, &title_area)?;
    let (plot_area, legend_area) =
        rest.split_vertically(PANEL_HEIGHT - TITLE_HEIGHT - LEGEND_HEIGHT);
    if !has_data(row) {
        let style = (FONT, 22.0)
            .into_font()
            .color(&USERS)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let (w, h) = plot_area.dim_in_pixel();
        plot_area.draw_text(
            "no memory data for this container",
            &style,
            (w as i32 / 2, h as i32 / 2),
        )?;
        return Ok(());
    }

    // Time range: the run, widened to every point and marker.
    let restarts: Vec<_> = view.restarts_of(&row.container).collect();
    let times = row
        .working_set
        .iter()
        .chain(&row.peak_pod_series)
        .map(|p| p.at)
        .chain(row.peak_at)
        .chain(restarts.iter().map(|r| r.at));
    let (mut t0, mut t1) = (view.started_at, view.ended_at);
    for t in times {
        t0 = t0.min(t);
        t1 = t1.max(t);
    }
    if t1 <= t0 {
        t1 = t0 + ChronoDuration::seconds(1);
    }

    // Byte range: everything drawn except a VPA band reaching far above.
    let top = [row.limit, row.peak, row.vpa_target, row.allowed_peak]
        .into_iter()
        .flatten()
        .chain(row.working_set.iter().map(|p| p.bytes))
        .max()
        .unwrap_or(0)
        .max(1 << 20);
    let (scale, unit_name) = unit(top);
    let y = |b: u64| b as f64 / scale;
    let ymax = y(top) * 1.15;
    let umax = (view.peak_users().max(1) as f64) * 1.15;

    let mut chart = ChartBuilder::on(&plot_area)
        .margin_top(4)
        .margin_left(4)
        .margin_right(8)
        .x_label_area_size(24)
        .y_label_area_size(72)
        .right_y_label_area_size(58)
        .build_cartesian_2d(t0..t1, 0f64..ymax)?
        .set_secondary_coord(t0..t1, 0f64..umax);

    // Stages, shaded alternately, under everything else.
    chart.draw_series(view.stages.iter().enumerate().map(|(i, s)| {
        let fill = if i % 2 == 0 { STAGE_SHADE } else { WHITE };
        Rectangle::new([(s.start, 0.0), (s.end, ymax)], fill.filled())
    }))?;
    if let Some((lo, hi)) = row.vpa_lower.zip(row.vpa_upper) {
        let (lo, hi) = (y(lo).min(ymax), y(hi).min(ymax));
        chart.draw_series(std::iter::once(Rectangle::new(
            [(t0, lo), (t1, hi)],
            VPA.mix(0.13).filled(),
        )))?;
    }
    let label_font = (FONT, LABEL_SIZE).into_font().color(&INK);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.07))
        .axis_style(BLACK.mix(0.45))
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&|t: &Timestamp| clock(*t))
        .y_label_formatter(&|v: &f64| {
            if scale > (1u64 << 20) as f64 {
                format!("{v:.1} {unit_name}")
            } else {
                format!("{v:.0} {unit_name}")
            }
        })
        .label_style(label_font.clone())
        .draw()?;
    if !view.stages.is_empty() {
        chart
            .configure_secondary_axes()
            .y_labels(6)
            .y_label_formatter(&|u: &f64| format!("{u:.0}"))
            .y_desc("users")
            .axis_style(BLACK.mix(0.45))
            .label_style(label_font.clone().color(&USERS))
            .draw()?;
    }

    // Memory: the max over pods as an area, the peak pod as a line on top.
    chart.draw_series(
        AreaSeries::new(
            row.working_set.iter().map(|p| (p.at, y(p.bytes))),
            0.0,
            MEMORY.mix(0.2),
        )
        .border_style(MEMORY.stroke_width(2)),
    )?;
    if !row.peak_pod_series.is_empty() {
        chart.draw_series(LineSeries::new(
            row.peak_pod_series.iter().map(|p| (p.at, y(p.bytes))),
            PEAK_POD.mix(0.9).stroke_width(1),
        ))?;
    }

    // The planned users, on the right axis.
    let users: Vec<(Timestamp, f64)> = view
        .stages
        .iter()
        .flat_map(|s| [(s.start, s.from_users as f64), (s.end, s.to_users as f64)])
        .collect();
    chart.draw_secondary_series(LineSeries::new(users, USERS.mix(0.75).stroke_width(2)))?;

    // Thresholds and markers; their labels go where they collide with no other label.
    let mut labels = Labels::new(&chart);
    stage_labels(view, &chart, ymax, &mut labels)?;
    let hline = |b: u64| vec![(t0, y(b)), (t1, y(b))];
    let mid = t0 + (t1 - t0) / 2;
    let line_spots = |v: f64, first: VPos, second: VPos| -> Vec<Spot> {
        vec![
            ((t0, v), HPos::Left, first),
            ((t1, v), HPos::Right, first),
            ((t0, v), HPos::Left, second),
            ((t1, v), HPos::Right, second),
            ((mid, v), HPos::Center, first),
            ((mid, v), HPos::Center, second),
        ]
    };
    if let Some(limit) = row.limit {
        chart.draw_series(LineSeries::new(hline(limit), LIMIT.stroke_width(2)))?;
        let text = format!("limit {}", format_bytes(limit));
        labels.place(
            &chart,
            &line_spots(y(limit), VPos::Bottom, VPos::Top),
            &text,
            LIMIT,
        )?;
    }
    if let Some(allowed) = row.allowed_peak {
        chart.draw_series(DashedLineSeries::new(
            hline(allowed),
            9,
            5,
            ALLOWED.stroke_width(2),
        ))?;
        let text = format!(
            "allowed peak {} ({} headroom)",
            format_bytes(allowed),
            format_percent(view.policy.headroom)
        );
        labels.place(
            &chart,
            &line_spots(y(allowed), VPos::Top, VPos::Bottom),
            &text,
            ALLOWED,
        )?;
    }
    if let Some(target) = row.vpa_target {
        chart.draw_series(DashedLineSeries::new(
            hline(target),
            6,
            4,
            VPA.stroke_width(2),
        ))?;
        let text = format!("VPA target {}", format_bytes(target));
        labels.place(
            &chart,
            &line_spots(y(target), VPos::Bottom, VPos::Top),
            &text,
            VPA,
        )?;
    }

    // The peak: a dot and its value.
    if let (Some(peak), Some(at)) = (row.peak, row.peak_at) {
        chart.draw_series(std::iter::once(Circle::new((at, y(peak)), 4, INK.filled())))?;
        let p = (at, y(peak));
        let spots = [
            (p, HPos::Right, VPos::Bottom),
            (p, HPos::Left, VPos::Bottom),
            (p, HPos::Right, VPos::Top),
            (p, HPos::Left, VPos::Top),
        ];
        labels.place(&chart, &spots, &format!("peak {}", format_bytes(peak)), INK)?;
    }

    // OOM kills and restarts: a vertical marker and a label in the first free row near the top.
    let top_px = chart.plotting_area().get_pixel_range().1.start;
    for r in &restarts {
        let color = if r.oom_killed { LIMIT } else { RESTART };
        chart.draw_series(DashedLineSeries::new(
            vec![(r.at, 0.0), (r.at, ymax)],
            5,
            3,
            color.stroke_width(2),
        ))?;
        let what = if r.oom_killed { "OOM kill" } else { "restart" };
        let text = format!("{what} {}", shorten_left(&r.pod, 30));
        let spots: Vec<Spot> = (0..8)
            .flat_map(|k| {
                let v = pixel_to_value(&chart, top_px + 30 + 18 * k, ymax);
                [
                    ((r.at, v), HPos::Right, VPos::Center),
                    ((r.at, v), HPos::Left, VPos::Center),
                ]
            })
            .collect();
        labels.place(&chart, &spots, &text, color)?;
    }

    legend(view, row, !restarts.is_empty(), &legend_area)
}

#[path = "svg_layout.rs"]
mod layout;
use layout::{legend, pixel_to_value, shorten, shorten_left, stage_labels, text_px, Labels, Spot};

#[cfg(test)]
#[path = "svg_tests.rs"]
mod tests;
