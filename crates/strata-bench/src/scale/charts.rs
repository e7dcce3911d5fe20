//! SVG charts of a `--scale` run, with plotters: latency against table size, throughput and
//! p99 against callers, creates against the projects they spread over.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::curves::{CallersPoint, Scale, SizePoint};

/// The colours of strata and of its peer in every chart.
const STRATA: RGBColor = RGBColor(31, 119, 180);
const PEER: RGBColor = RGBColor(255, 127, 14);

/// One line of a chart: a name, a colour, dashed or not, and its points.
struct Line<'a> {
    name: &'a str,
    color: RGBColor,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

impl<'a> Line<'a> {
    fn solid(name: &'a str, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self { name, color, dashed: false, points }
    }

    fn dashed(name: &'a str, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Self { name, color, dashed: true, points }
    }
}

/// strata against deadpool-postgres on the same statement.
fn versus<'a>(strata: Vec<(f64, f64)>, peer: Vec<(f64, f64)>) -> Vec<Line<'a>> {
    vec![
        Line::solid("strata", STRATA, strata),
        Line::solid("deadpool-postgres, same statement", PEER, peer),
    ]
}

/// Writes the charts of `scale` into `dir` as `<stem>-<chart>.svg`; returns their paths.
pub fn write(scale: &Scale, dir: &Path, stem: &str, caption: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut chart = |name: &str, title: &str, x: &str, y: &str, lines: Vec<Line<'_>>| {
        let path = dir.join(format!("{stem}-{name}.svg"));
        draw(&path, &format!("{title} — {caption}"), x, y, &lines)?;
        written.push(path);
        anyhow::Ok(())
    };
    let sizes = |f: &dyn Fn(&SizePoint) -> f64| -> Vec<(f64, f64)> {
        scale.sizes.iter().map(|p| (p.tasks as f64, f(p))).collect()
    };
    chart(
        "size-latency",
        "Latency against table size (4 callers)",
        "tasks in the table",
        "latency, ms",
        vec![
            Line::solid("strata get p50", STRATA, sizes(&|p| p.get.p50_us / 1e3)),
            Line::dashed("strata get p99", STRATA, sizes(&|p| p.get.p99_us / 1e3)),
            Line::solid("deadpool get p50", PEER, sizes(&|p| p.get_peer.p50_us / 1e3)),
            Line::dashed("deadpool get p99", PEER, sizes(&|p| p.get_peer.p99_us / 1e3)),
            Line::solid(
                "strata first page p50",
                RGBColor(44, 160, 44),
                sizes(&|p| p.list.p50_us / 1e3),
            ),
            Line::dashed(
                "strata first page p99",
                RGBColor(44, 160, 44),
                sizes(&|p| p.list.p99_us / 1e3),
            ),
        ],
    )?;
    chart(
        "size-throughput",
        "Gets per second against table size (4 callers)",
        "tasks in the table",
        "gets/s",
        versus(sizes(&|p| p.get.throughput), sizes(&|p| p.get_peer.throughput)),
    )?;
    let callers = |f: &dyn Fn(&CallersPoint) -> f64| -> Vec<(f64, f64)> {
        scale.callers.iter().map(|p| (p.callers as f64, f(p))).collect()
    };
    chart(
        "callers-throughput",
        "Gets per second against callers (pools of 8)",
        "callers",
        "gets/s",
        versus(callers(&|p| p.strata.throughput), callers(&|p| p.deadpool.throughput)),
    )?;
    chart(
        "callers-p99",
        "Tail latency against callers (pools of 8)",
        "callers",
        "latency, ms",
        vec![
            Line::solid("strata p99", STRATA, callers(&|p| p.strata.p99_us / 1e3)),
            Line::solid("deadpool-postgres p99", PEER, callers(&|p| p.deadpool.p99_us / 1e3)),
            Line::dashed("strata p99.9", STRATA, callers(&|p| p.strata.p999_us / 1e3)),
            Line::dashed("deadpool-postgres p99.9", PEER, callers(&|p| p.deadpool.p999_us / 1e3)),
        ],
    )?;
    chart(
        "creates",
        "Creates per second, 8 callers, against the projects they spread over",
        "projects",
        "creates/s",
        vec![
            Line::solid(
                "strata tasks::create",
                STRATA,
                scale.creates.iter().map(|p| (p.projects as f64, p.creates.throughput)).collect(),
            ),
            Line::solid(
                "tokio-postgres, the same transaction",
                PEER,
                scale
                    .creates
                    .iter()
                    .filter_map(|p| Some((p.projects as f64, p.peer?.throughput)))
                    .collect(),
            ),
        ],
    )?;
    Ok(written)
}

/// One line chart, with a logarithmic x axis (sizes and callers both grow by factors).
fn draw(path: &Path, title: &str, x: &str, y: &str, lines: &[Line<'_>]) -> anyhow::Result<()> {
    let all: Vec<(f64, f64)> = lines.iter().flat_map(|l| l.points.iter().copied()).collect();
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| {
        all.iter().map(pick).fold(init, f)
    };
    let (x_min, x_max) = (fold(f64::min, f64::MAX, |p| p.0), fold(f64::max, 0.0, |p| p.0));
    let y_max = fold(f64::max, 0.0, |p| p.1) * 1.15;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let x_range = (x_min * 0.8)..(x_max * 1.25);
    let y_range = 0.0..y_max.max(f64::EPSILON);
    plot(&mut builder.build_cartesian_2d(x_range.log_scale(), y_range)?, x, y, lines)?;
    root.present()?;
    Ok(())
}

/// A number for an axis: `5M`, `10k`, `64`, `0.35`.
fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        trim(v)
    }
}

/// Up to two decimals, without trailing zeros.
fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The axes, the lines and the legend of one chart.
fn plot<'a, X>(
    chart: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<X, plotters::coord::types::RangedCoordf64>,
    >,
    x: &str,
    y: &str,
    lines: &[Line<'_>],
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64, FormatOption = plotters::coord::ranged1d::DefaultFormatting>,
{
    let label = |v: &f64| human(*v);
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(x)
        .y_desc(y)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .draw()?;
    for line in lines {
        let color = line.color;
        let style = ShapeStyle::from(color).stroke_width(2);
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(line.points.iter().copied(), 6, 4, style))?
                .label(line.name)
                .legend(move |(x, y)| {
                    // Two strokes: the legend shows the line dashed, as the chart does.
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (7, 0)], style)
                        + PathElement::new(vec![(12, 0), (19, 0)], style)
                });
        } else {
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), style))?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart.draw_series(line.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}
