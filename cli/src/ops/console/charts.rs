//! Server-rendered SVG charts of the metrics: horizontal bars, one row per
//! series, each chart named for screen readers and followed by its figures
//! as text.

use super::html::escape;

const ROW: u32 = 26;
const LABEL_W: u32 = 190;
const BAR_W: u32 = 300;

/// One bar: its label, its value, and the value as shown.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub shown: String,
}

/// A chart of `bars` (at most `MAX_BARS`, the largest first), titled.
pub fn bars(id: &str, title: &str, mut bars: Vec<Bar>) -> String {
    if bars.is_empty() {
        return format!(
            r#"<figure id="{id}"><figcaption><strong>{t}</strong></figcaption><p>No data yet.</p></figure>"#,
            id = escape(id),
            t = escape(title)
        );
    }
    bars.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.label.cmp(&b.label)));
    bars.truncate(MAX_BARS);
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    let height = ROW * bars.len() as u32 + 8;
    let width = LABEL_W + BAR_W + 90;
    let mut rows = String::new();
    for (i, b) in bars.iter().enumerate() {
        let y = ROW * i as u32 + 4;
        let len = if max > 0.0 {
            ((b.value / max) * f64::from(BAR_W)).round().max(1.0)
        } else {
            1.0
        };
        rows.push_str(&format!(
            r##"<text x="{lx}" y="{ty}" text-anchor="end" font-size="13" fill="#1a1a1a">{label}</text><rect x="{bx}" y="{y}" width="{len}" height="18" fill="#1f5fa8"/><text x="{vx}" y="{ty}" font-size="13" fill="#1a1a1a">{shown}</text>"##,
            lx = LABEL_W - 6,
            ty = y + 14,
            bx = LABEL_W,
            vx = f64::from(LABEL_W) + len + 6.0,
            label = escape(&b.label),
            shown = escape(&b.shown),
        ));
    }
    let figures: String = bars
        .iter()
        .map(|b| format!("{}: {}", b.label, b.shown))
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        r#"<figure id="{id}"><figcaption><strong id="{id}-title">{t}</strong></figcaption><svg role="img" aria-labelledby="{id}-title {id}-desc" width="{width}" height="{height}" viewBox="0 0 {width} {height}"><desc id="{id}-desc">{figures}</desc>{rows}</svg><p><small>{figures}</small></p></figure>"#,
        id = escape(id),
        t = escape(title),
        figures = escape(&figures),
    )
}

/// Bars per chart (the series are bounded; a chart stays readable).
pub const MAX_BARS: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_scales_to_its_largest_bar_and_escapes_labels() {
        let svg = bars(
            "c",
            "Deposits <by> method",
            vec![
                Bar {
                    label: "card".into(),
                    value: 4.0,
                    shown: "4".into(),
                },
                Bar {
                    label: "<ewallet>".into(),
                    value: 2.0,
                    shown: "2".into(),
                },
            ],
        );
        assert!(
            svg.contains(r#"width="300""#),
            "the largest bar is full width"
        );
        assert!(svg.contains(r#"width="150""#), "half the largest is half");
        assert!(svg.contains("&lt;ewallet&gt;") && !svg.contains("<ewallet>"));
        assert!(svg.contains("Deposits &lt;by&gt; method"));
        assert!(bars("e", "Empty", Vec::new()).contains("No data yet"));
    }
}
