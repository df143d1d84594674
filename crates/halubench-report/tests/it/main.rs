//! End to end through the public API: four charts into one page.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use halubench_report::{
    Block, CurveSeries, Curves, ExampleCard, GroupedBars, Heatmap, Page, Reply, Section, Series,
    Table, Trend, TrendSeries, Whisker, accuracy_bars, confusion_heatmap, html_page, trend_lines,
    unit_curves,
};

const EVIL: &str = "<script>alert(1)</script> \"quotes\" & 'apostrophes'";

fn charts() -> Vec<(String, String)> {
    let bars = accuracy_bars(&GroupedBars {
        title: EVIL.into(),
        groups: vec![EVIL.into(), "qa".into()],
        series: vec![Series {
            name: EVIL.into(),
            values: vec![
                Some(Whisker {
                    value: 70.0,
                    lower: 65.0,
                    upper: 75.0,
                }),
                None,
            ],
        }],
    })
    .expect("bars");
    let heatmap = confusion_heatmap(&Heatmap {
        title: EVIL.into(),
        rows: vec![EVIL.into()],
        columns: vec![EVIL.into(), "FAIL".into()],
        counts: vec![vec![3, 4]],
    })
    .expect("heatmap");
    let trend = trend_lines(&Trend {
        labels: Vec::new(),
        title: EVIL.into(),
        y_label: EVIL.into(),
        series: vec![TrendSeries {
            name: EVIL.into(),
            points: vec![(EVIL.into(), 50.0), ("later".into(), 60.0)],
        }],
    })
    .expect("trend");
    let curves = unit_curves(&Curves {
        title: EVIL.into(),
        x_label: EVIL.into(),
        y_label: EVIL.into(),
        series: vec![CurveSeries {
            name: EVIL.into(),
            points: vec![(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)],
            markers: true,
        }],
    })
    .expect("curves");
    for chart in [&bars, &heatmap, &trend, &curves] {
        assert!(
            chart.svg.starts_with("<svg")
                && chart.svg.contains("xmlns=\"http://www.w3.org/2000/svg\"")
        );
        assert!(
            !chart.svg.to_lowercase().contains("<script"),
            "raw markup in an SVG"
        );
        assert!(chart.png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
    vec![
        ("bars".into(), bars.svg),
        ("heatmap".into(), heatmap.svg),
        ("trend".into(), trend.svg),
        ("curves".into(), curves.svg),
    ]
}

#[test]
fn a_page_of_hostile_text_and_charts_stays_inert() {
    let charts = charts();
    let mut blocks: Vec<Block> = charts
        .iter()
        .map(|(caption, svg)| Block::Chart {
            caption: format!("{caption} {EVIL}"),
            svg: svg.clone(),
        })
        .collect();
    blocks.push(Block::Table(Table {
        header: vec![EVIL.into()],
        rows: vec![vec![EVIL.into()]],
    }));
    blocks.push(Block::Examples(vec![ExampleCard {
        id: EVIL.into(),
        task: EVIL.into(),
        label: EVIL.into(),
        question: Some(EVIL.into()),
        answer: Some(EVIL.into()),
        passage: Some(EVIL.into()),
        replies: vec![Reply {
            judge: EVIL.into(),
            verdict: EVIL.into(),
            correct: true,
            text: EVIL.into(),
        }],
    }]));
    let html = html_page(&Page {
        title: EVIL.into(),
        notes: vec![EVIL.into()],
        sections: vec![Section {
            heading: EVIL.into(),
            blocks,
        }],
    });

    assert!(!html.to_lowercase().contains("<script"));
    assert!(html.contains(
        "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quotes&quot; &amp; &#39;apostrophes&#39;"
    ));
    assert!(
        html.contains("content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\"")
    );

    // Each chart comes back byte for byte from its data: URI.
    let mut found = Vec::new();
    for (i, _) in html.match_indices("data:image/svg+xml;base64,") {
        let start = i + "data:image/svg+xml;base64,".len();
        let end = start + html[start..].find('"').expect("closing quote");
        found.push(
            String::from_utf8(STANDARD.decode(&html[start..end]).expect("base64")).expect("utf-8"),
        );
    }
    let expected: Vec<String> = charts.into_iter().map(|(_, svg)| svg).collect();
    assert_eq!(found, expected);
}
