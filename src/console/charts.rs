//! Charts drawn on the server as SVG: stacked bars over time and small inline bars. Colours
//! come from the stylesheet (classes `s0`...`s9`), so the same chart follows the light or
//! dark scheme; every bar has a `<title>` (the browser shows it on hover), and every chart has
//! a text alternative and a table of the same numbers next to it.

use std::fmt::Write as _;

use super::html::{esc, short};

/// One series of a stacked chart: a value per bucket.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub values: Vec<f64>,
}

/// The drawing's size, in SVG units (it scales to the width of its box).
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A step for about `ticks` gridlines up to `max`: 1, 2 or 5 times a power of ten.
pub fn nice_step(max: f64, ticks: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks;
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Stacked bars: one bar per bucket (labelled by `x_labels`), one colour per series. `unit`
/// names the values in the tooltips (`tokens`, `requests`).
pub fn stacked_bars(title: &str, x_labels: &[String], series: &[Series], unit: &str) -> String {
    let buckets = x_labels.len().max(1);
    let totals: Vec<f64> = (0..buckets)
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let step = nice_step(max, 4.0);
    let top_value = if max <= 0.0 {
        step
    } else {
        (max / step).ceil() * step
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / buckets as f64;
    let bar = (slot * 0.78).max(1.0);
    let y = |v: f64| TOP + plot_h - v / top_value * plot_h;
    let total: f64 = totals.iter().sum();
    let mut out = String::with_capacity(4096 + buckets * series.len() * 96);
    let _ = write!(
        out,
        "<figure class=\"chart\"><svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\" preserveAspectRatio=\"none\" class=\"bars\"><title>{}</title>",
        esc(&format!("{title}: {} {unit} in all", short(total))),
        esc(title)
    );
    // Gridlines and their labels.
    let mut tick = 0.0;
    while tick <= top_value + step / 2.0 {
        let ty = y(tick);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 8.0,
            ty + 4.0,
            short(tick)
        );
        tick += step;
    }
    // The bars, bottom series first.
    for (i, total) in totals.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0.0;
        for (s, series) in series.iter().enumerate() {
            let v = series.values.get(i).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let (y0, y1) = (y(base), y(base + v));
            base += v;
            let _ = write!(
                out,
                "<rect class=\"s{}\" x=\"{x:.2}\" y=\"{y1:.2}\" width=\"{bar:.2}\" height=\"{:.2}\"><title>{} · {}: {} {unit}</title></rect>",
                s % 10,
                (y0 - y1).max(0.5),
                esc(&series.label),
                esc(x_labels.get(i).map_or("", String::as_str)),
                super::html::thousands(v.round() as u64),
            );
        }
        let _ = total;
    }
    // About eight labels along the time axis.
    let every = buckets.div_ceil(8).max(1);
    for (i, label) in x_labels.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = LEFT + slot * (i as f64 + 0.5);
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            HEIGHT - 8.0,
            esc(label)
        );
    }
    let _ = write!(
        out,
        "<line class=\"baseline\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\"/></svg>",
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h
    );
    out.push_str("<figcaption><ul class=\"legend\">");
    for (s, series) in series.iter().enumerate() {
        let sum: f64 = series.values.iter().sum();
        let _ = write!(
            out,
            "<li><svg class=\"swatch\" viewBox=\"0 0 10 10\" aria-hidden=\"true\"><rect class=\"s{}\" width=\"10\" height=\"10\" rx=\"2\"/></svg>{} <span class=\"muted\">{}</span></li>",
            s % 10,
            esc(&series.label),
            short(sum)
        );
    }
    if series.is_empty() {
        out.push_str("<li class=\"muted\">Nothing in this range.</li>");
    }
    out.push_str("</ul></figcaption></figure>");
    out
}

/// A small horizontal bar for a table cell: `value` of `max`.
pub fn inline_bar(value: f64, max: f64, class: &str) -> String {
    let share = if max > 0.0 {
        (value / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    format!(
        "<svg class=\"inline-bar\" viewBox=\"0 0 100 8\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect class=\"track\" width=\"100\" height=\"8\" rx=\"4\"/><rect class=\"{}\" width=\"{:.2}\" height=\"8\" rx=\"4\"/></svg>",
        esc(class),
        share * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_numbers() {
        assert_eq!(nice_step(0.0, 4.0), 1.0);
        assert_eq!(nice_step(100.0, 4.0), 50.0);
        assert_eq!(nice_step(7.0, 4.0), 2.0);
        assert_eq!(nice_step(12_345.0, 4.0), 5000.0);
    }

    #[test]
    fn a_chart_has_a_bar_per_value_and_escapes_labels() {
        let svg = stacked_bars(
            "Tokens",
            &["10:00".into(), "11:00".into()],
            &[
                Series {
                    label: "<b>alice</b>".into(),
                    values: vec![5.0, 0.0],
                },
                Series {
                    label: "bob".into(),
                    values: vec![1.0, 2.0],
                },
            ],
            "tokens",
        );
        assert_eq!(
            svg.matches("<rect class=\"s").count(),
            3 + 2,
            "3 bars + 2 swatches"
        );
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;b&gt;alice"));
    }
}
