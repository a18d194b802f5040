//! Layout helpers of `memory.svg`: text width estimates and shortening of outside strings, the
//! label placer that puts each threshold, peak and restart label where it covers no other label,
//! the stage labels along the top of a panel, and the legend strip under it. Drawing only; what
//! to draw comes from `svg`.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::escape::one_line;
use super::super::{text, ContainerRow, ReportView};
use super::{
    Area, Chart, Res, ALLOWED, CHAR_PX, FONT, INK, LABEL_SIZE, LIMIT, MEMORY, PEAK_POD, USERS, VPA,
    WIDTH,
};
use crate::model::Timestamp;

/// An outside string as one line of at most `max` characters.
pub(super) fn shorten(s: &str, max: usize) -> String {
    let s = one_line(s);
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An outside string as one line of at most `max` characters, keeping its end (a pod's
/// distinguishing suffix).
pub(super) fn shorten_left(s: &str, max: usize) -> String {
    let s = one_line(s);
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    let tail: String = s.chars().skip(n + 1 - max).collect();
    format!("…{tail}")
}

pub(super) fn text_px(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * CHAR_PX * size / LABEL_SIZE).ceil() as i32
}

/// The value on the byte axis at pixel row `py`.
pub(super) fn pixel_to_value(chart: &Chart<'_, '_>, py: i32, ymax: f64) -> f64 {
    let (_, ys) = chart.plotting_area().get_pixel_range();
    let h = (ys.end - ys.start).max(1) as f64;
    ymax * (ys.end - py) as f64 / h
}

/// Where a label may go: an anchor in chart coordinates and the side of it the text sits on.
pub(super) type Spot = ((Timestamp, f64), HPos, VPos);

/// A spot with the text's offset from the anchor, its box relative to the anchor and in pixels.
type Candidate = (Spot, (i32, i32), [i32; 4], [i32; 4]);

/// The labels of one panel, as pixel boxes, so each new one avoids those placed before it.
pub(super) struct Labels {
    taken: Vec<[i32; 4]>,
    plot: [i32; 4],
}

fn overlaps(a: &[i32; 4], b: &[i32; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

impl Labels {
    pub(super) fn new(chart: &Chart<'_, '_>) -> Labels {
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        Labels {
            taken: Vec::new(),
            plot: [xs.start, ys.start, xs.end, ys.end],
        }
    }

    /// Offset of the text from its anchor, and its box relative to the anchor.
    fn geometry(text: &str, h: HPos, v: VPos) -> ((i32, i32), [i32; 4]) {
        let w = text_px(text, LABEL_SIZE);
        let dx = match h {
            HPos::Left => 6,
            HPos::Right => -6,
            HPos::Center => 0,
        };
        let dy = match v {
            VPos::Bottom => -3,
            VPos::Top => 3,
            VPos::Center => 0,
        };
        let (x0, x1) = match h {
            HPos::Left => (dx - 2, dx + w + 2),
            HPos::Right => (dx - w - 2, dx + 2),
            HPos::Center => (-w / 2 - 2, w / 2 + 2),
        };
        let (y0, y1) = match v {
            VPos::Bottom => (dy - 15, dy + 1),
            VPos::Top => (dy - 1, dy + 15),
            VPos::Center => (-8, 8),
        };
        ((dx, dy), [x0, y0, x1, y1])
    }

    /// Draws `text` at the first spot that stays inside the plot and clear of earlier labels
    /// (else the first clear one, else the first), on a half-transparent white box.
    pub(super) fn place(
        &mut self,
        chart: &Chart<'_, '_>,
        spots: &[Spot],
        text: &str,
        color: RGBColor,
    ) -> Res {
        let candidates: Vec<Candidate> = spots
            .iter()
            .map(|&(at, h, v)| {
                let (ax, ay) = chart.backend_coord(&at);
                let (offset, r) = Self::geometry(text, h, v);
                (
                    (at, h, v),
                    offset,
                    r,
                    [ax + r[0], ay + r[1], ax + r[2], ay + r[3]],
                )
            })
            .collect();
        let clear = |b: &[i32; 4]| !self.taken.iter().any(|t| overlaps(t, b));
        let inside = |b: &[i32; 4]| {
            b[0] >= self.plot[0]
                && b[1] >= self.plot[1]
                && b[2] <= self.plot[2]
                && b[3] <= self.plot[3]
        };
        let Some(pick) = candidates
            .iter()
            .find(|c| inside(&c.3) && clear(&c.3))
            .or_else(|| candidates.iter().find(|c| clear(&c.3)))
            .or_else(|| candidates.first())
        else {
            return Ok(());
        };
        let ((at, h, v), offset, r, absolute) = *pick;
        self.taken.push(absolute);
        let style = (FONT, LABEL_SIZE)
            .into_font()
            .color(&color)
            .pos(Pos::new(h, v));
        let element = EmptyElement::at(at)
            + Rectangle::new([(r[0], r[1]), (r[2], r[3])], WHITE.mix(0.8).filled())
            + Text::new(text.to_string(), offset, style);
        chart.plotting_area().draw(&element)?;
        Ok(())
    }
}

/// Stage labels along the top of the plot: "2 · hold 100" when it fits, else "1 · ramp", else
/// the stage number; their boxes are reserved so no other label covers them.
pub(super) fn stage_labels(
    view: &ReportView,
    chart: &Chart<'_, '_>,
    ymax: f64,
    labels: &mut Labels,
) -> Res {
    let size = LABEL_SIZE - 1.0;
    let style = (FONT, size)
        .into_font()
        .color(&USERS)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for s in &view.stages {
        let (a, b) = (
            chart.backend_coord(&(s.start, 0.0)).0,
            chart.backend_coord(&(s.end, 0.0)).0,
        );
        let n = s.index + 1;
        let kind = if s.from_users == s.to_users {
            "hold"
        } else {
            "ramp"
        };
        let Some(text) = [
            format!("{n} · {}", text::stage_short(s)),
            format!("{n} · {kind}"),
            n.to_string(),
        ]
        .into_iter()
        .find(|t| text_px(t, size) + 8 <= b - a) else {
            continue;
        };
        let mid = s.start + (s.end - s.start) / 2;
        let (cx, top) = chart.backend_coord(&(mid, ymax));
        let w = text_px(&text, size);
        labels
            .taken
            .push([cx - w / 2 - 2, top, cx + w / 2 + 2, top + 20]);
        chart
            .plotting_area()
            .draw(&(EmptyElement::at((mid, ymax)) + Text::new(text, (0, 4), style.clone())))?;
    }
    Ok(())
}

enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Area(RGBColor),
    Band(RGBColor),
}

pub(super) fn legend(
    view: &ReportView,
    row: &ContainerRow,
    restarts: bool,
    area: &Area<'_>,
) -> Res {
    let mut items: Vec<(Swatch, String)> = Vec::new();
    let pods = row.pods.len();
    items.push((
        Swatch::Area(MEMORY),
        if pods > 1 {
            format!("working set, max over {pods} pods")
        } else {
            "working set".to_string()
        },
    ));
    if !row.peak_pod_series.is_empty() {
        let pod = row.peak_pod.as_deref().unwrap_or("?");
        items.push((
            Swatch::Line(PEAK_POD),
            format!("pod {} (peaked)", shorten_left(pod, 32)),
        ));
    }
    if row.limit.is_some() {
        items.push((Swatch::Line(LIMIT), "limit".into()));
        items.push((Swatch::Dashed(ALLOWED), "allowed peak".into()));
    }
    if row.vpa_target.is_some() {
        items.push((Swatch::Band(VPA), "VPA target, lower–upper".into()));
    }
    if !view.stages.is_empty() {
        items.push((Swatch::Line(USERS), "users (right axis)".into()));
    }
    if restarts {
        items.push((Swatch::Dashed(LIMIT), "OOM kill / restart".into()));
    }
    let font = (FONT, LABEL_SIZE)
        .into_font()
        .color(&INK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let (mut x, mut y) = (76, 14);
    for (swatch, text) in items {
        let w = 30 + text_px(&text, LABEL_SIZE) + 20;
        if x + w > WIDTH as i32 - 8 && x > 76 {
            x = 76;
            y += 20;
        }
        match swatch {
            Swatch::Line(c) => area.draw(&PathElement::new(
                vec![(x, y), (x + 24, y)],
                c.stroke_width(3),
            ))?,
            Swatch::Dashed(c) => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 9, y)],
                    c.stroke_width(3),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x + 14, y), (x + 24, y)],
                    c.stroke_width(3),
                ))?;
            }
            Swatch::Area(c) => {
                area.draw(&Rectangle::new(
                    [(x, y - 6), (x + 24, y + 6)],
                    c.mix(0.2).filled(),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x, y - 6), (x + 24, y - 6)],
                    c.stroke_width(2),
                ))?;
            }
            Swatch::Band(c) => {
                area.draw(&Rectangle::new(
                    [(x, y - 6), (x + 24, y + 6)],
                    c.mix(0.18).filled(),
                ))?;
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 24, y)],
                    c.stroke_width(2),
                ))?;
            }
        }
        area.draw_text(&text, &font, (x + 30, y))?;
        x += w;
    }
    Ok(())
}
