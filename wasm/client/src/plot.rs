//! The latency test's plot as SVG markup: round-trip time against time since the start, with
//! axes, grid lines and dashed markers (p50, p99). Colours come from the page's CSS classes
//! (`grid`, `axis`, `tick`, `series`, `dot`, `mark`), so the plot follows the light and dark
//! themes. Only numbers and fixed words go into the markup, never user input.

use std::fmt::Write;

use super::bytes::Fixed;

/// A coordinate, to a tenth of a pixel.
fn c(value: f64) -> Fixed {
    Fixed(value, 1)
}

const LEFT: f64 = 56.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// A "nice" step (1, 2 or 5 times a power of ten) that cuts `range` into about `ticks` parts.
pub fn nice_step(range: f64, ticks: f64) -> f64 {
    if range.is_nan() || range <= 0.0 || range.is_infinite() {
        return 1.0;
    }
    let raw = range / ticks;
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let step = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    step * magnitude
}

/// A tick label: `value` with as many decimals as `step` needs, and `unit`.
fn label(value: f64, step: f64, unit: &str) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{} {unit}", Fixed(value, decimals))
}

/// The SVG children for `samples` (`(ms since start, rtt ms)`) in a `width` x `height` box.
/// `marks` are horizontal reference lines (name, rtt ms), such as p50 and p99.
pub fn rtt_plot(samples: &[(f64, f64)], width: f64, height: f64, marks: &[(&str, f64)]) -> String {
    let width = width.max(LEFT + RIGHT + 40.0);
    let height = height.max(TOP + BOTTOM + 40.0);
    let (plot_w, plot_h) = (width - LEFT - RIGHT, height - TOP - BOTTOM);
    let mut svg = String::new();

    let max_t = samples.iter().map(|s| s.0).fold(0.0, f64::max);
    let max_rtt = samples
        .iter()
        .map(|s| s.1)
        .chain(marks.iter().map(|m| m.1))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    // Time in milliseconds up to a second, then in seconds.
    let (t_scale, t_unit) = if max_t >= 1000.0 {
        (1000.0, "s")
    } else {
        (1.0, "ms")
    };
    let t_span = (max_t / t_scale).max(if t_scale > 1.0 { 1.0 } else { 10.0 });
    let t_step = nice_step(t_span, (plot_w / 90.0).clamp(2.0, 8.0));
    let t_max = (t_span / t_step).ceil() * t_step;
    // An empty plot shows a 0-1 ms scale rather than a collapsed one.
    let floor = if samples.is_empty() { 1.0 } else { 0.1 };
    let y_step = nice_step(max_rtt.max(floor), 4.0);
    let max_rtt = max_rtt.max(floor);
    let y_max = ((max_rtt / y_step).ceil() * y_step).max(y_step);
    let x = |t: f64| LEFT + t / t_scale / t_max * plot_w;
    let y = |rtt: f64| TOP + plot_h - (rtt / y_max).min(1.0) * plot_h;

    // Grid and y labels.
    let mut value = 0.0;
    while value <= y_max + y_step / 2.0 {
        let at = y(value);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="tick" x="{}" y="{}" text-anchor="end">{}</text>"#,
            c(LEFT),
            c(at),
            c(LEFT + plot_w),
            c(at),
            c(LEFT - 6.0),
            c(at + 4.0),
            label(value, y_step, "ms")
        );
        value += y_step;
    }
    // x labels.
    let mut value = 0.0;
    while value <= t_max + t_step / 2.0 {
        let at = LEFT + value / t_max * plot_w;
        // The last label ends at the axis' end rather than overflowing the box.
        let anchor = if value + t_step / 2.0 > t_max {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            svg,
            r#"<text class="tick" x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
            c(at),
            c(TOP + plot_h + 18.0),
            label(value, t_step, t_unit)
        );
        value += t_step;
    }
    let _ = write!(
        svg,
        r#"<path class="axis" d="M{} {}V{}H{}"/>"#,
        c(LEFT),
        c(TOP),
        c(TOP + plot_h),
        c(LEFT + plot_w)
    );

    if samples.is_empty() {
        let _ = write!(
            svg,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">No round trips yet</text>"#,
            c(LEFT + plot_w / 2.0),
            c(TOP + plot_h / 2.0)
        );
        return svg;
    }

    // The series: every point, or for more points than pixels the lowest and highest of each
    // pixel column, which keeps the outline (and the spikes) at a bounded cost.
    let mut points = String::new();
    if samples.len() as f64 <= plot_w {
        for &(t, rtt) in samples {
            let _ = write!(points, "{},{} ", c(x(t)), c(y(rtt)));
        }
    } else {
        let columns = plot_w.ceil() as usize + 1;
        let mut ranges = vec![(f64::INFINITY, f64::NEG_INFINITY); columns];
        for &(t, rtt) in samples {
            let column = ((x(t) - LEFT).max(0.0) as usize).min(columns - 1);
            let range = &mut ranges[column];
            *range = (range.0.min(rtt), range.1.max(rtt));
        }
        for (column, &(low, high)) in ranges.iter().enumerate() {
            if low <= high {
                let at = LEFT + column as f64;
                let _ = write!(points, "{},{} {},{} ", c(at), c(y(low)), c(at), c(y(high)));
            }
        }
    }
    let _ = write!(
        svg,
        r#"<polyline class="series" points="{}"/>"#,
        points.trim_end()
    );
    if samples.len() <= 120 {
        for &(t, rtt) in samples {
            let _ = write!(
                svg,
                r#"<circle class="dot" cx="{}" cy="{}" r="2.5"/>"#,
                c(x(t)),
                c(y(rtt))
            );
        }
    }
    for &(name, rtt) in marks.iter().filter(|m| m.1.is_finite()) {
        let at = y(rtt);
        let _ = write!(
            svg,
            r#"<line class="mark" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="mark-label" x="{}" y="{}" text-anchor="end">{name}</text>"#,
            c(LEFT),
            c(at),
            c(LEFT + plot_w),
            c(at),
            c(LEFT + plot_w - 2.0),
            c(at - 4.0),
        );
    }
    svg
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(1.0, 4.0), 0.5);
        assert_eq!(nice_step(7.3, 4.0), 2.0);
        assert_eq!(nice_step(0.03, 4.0), 0.01);
        assert_eq!(nice_step(0.0, 4.0), 1.0);
        assert_eq!(nice_step(f64::NAN, 4.0), 1.0);
    }

    #[test]
    fn labels_have_the_decimals_the_step_needs() {
        assert_eq!(label(1.5, 0.5, "ms"), "1.5 ms");
        assert_eq!(label(2.0, 1.0, "s"), "2 s");
        assert_eq!(label(0.25, 0.05, "ms"), "0.25 ms");
    }

    #[test]
    fn an_empty_plot_says_so() {
        let svg = rtt_plot(&[], 600.0, 220.0, &[]);
        assert!(svg.contains("No round trips yet"));
        assert!(!svg.contains("polyline"));
    }

    #[test]
    fn points_fit_the_box() {
        let samples: Vec<(f64, f64)> = (0..50)
            .map(|i| (f64::from(i) * 30.0, 0.5 + f64::from(i % 7)))
            .collect();
        let svg = rtt_plot(&samples, 600.0, 220.0, &[("p50", 3.5), ("p99", 6.5)]);
        assert_eq!(svg.matches("<circle").count(), 50);
        assert!(svg.contains(">p99</text>"));
        assert!(
            svg.contains(">1.0 s<"),
            "the time axis is in seconds past one second: {svg}"
        );
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for point in points.split(' ') {
            let (x, y) = point.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((LEFT..=600.0 - RIGHT).contains(&x), "{x}");
            assert!((TOP..=220.0 - BOTTOM).contains(&y), "{y}");
        }
    }

    #[test]
    fn many_points_are_summarised_per_pixel_column() {
        let samples: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (f64::from(i) * 0.01, f64::from(i % 10)))
            .collect();
        let svg = rtt_plot(&samples, 400.0, 200.0, &[]);
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(points.split(' ').count() <= 2 * 400, "bounded by the width");
        assert!(!svg.contains("<circle"));
    }
}
