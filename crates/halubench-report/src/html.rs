//! One self-contained HTML page: no JavaScript, no external resources, every piece of data
//! escaped by [`escape`].

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use halubench_core::Table;

/// A whole report page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// The page title (`<title>` and the top heading).
    pub title: String,
    /// Warnings shown in a box above everything else, e.g. "runs used different prompts".
    pub notes: Vec<String>,
    /// The body, in order.
    pub sections: Vec<Section>,
}

/// A headed part of the page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    /// Shown as `<h2>` and in the contents list.
    pub heading: String,
    /// The content, in order.
    pub blocks: Vec<Block>,
}

/// One piece of content.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Plain text; line breaks are kept.
    Paragraph(String),
    /// A table of finished strings, every cell escaped.
    Table(Table),
    /// An SVG chart (e.g. [`crate::Chart::svg`]), embedded as a `data:` image, which cannot run
    /// scripts whatever the SVG contains.
    Chart {
        /// The image's alt text and its visible caption.
        caption: String,
        /// A standalone SVG document.
        svg: String,
    },
    /// Example cards, each a collapsed `<details>`.
    Examples(Vec<ExampleCard>),
}

/// One dataset example with every judge's reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExampleCard {
    /// The example's id.
    pub id: String,
    /// Its task.
    pub task: String,
    /// Its gold label, e.g. `PASS`.
    pub label: String,
    /// The question, where the task has one.
    pub question: Option<String>,
    /// The answer being judged, where the task has one.
    pub answer: Option<String>,
    /// The context passage, where the task has one.
    pub passage: Option<String>,
    /// One per judge.
    pub replies: Vec<Reply>,
}

/// One judge's reply to an example.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The judge's name.
    pub judge: String,
    /// Its verdict, e.g. `PASS`, `FAIL`, `INVALID`.
    pub verdict: String,
    /// Whether the verdict matches the label.
    pub correct: bool,
    /// The raw reply text.
    pub text: String,
}

/// Escapes text for HTML element content and quoted attribute values: `& < > " '`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

const CSS: &str = "\
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; background: #fafafa; margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { font-size: 1.7rem; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 0.75rem; padding-bottom: 0.25rem; border-bottom: 1px solid #ddd; }
h4 { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.04em; color: #666; margin: 0.75rem 0 0.25rem; }
nav ol { margin: 0; padding-left: 1.5rem; }
a { color: #1f5c99; }
.notes { border: 2px solid #c77700; background: #fff4e0; padding: 0.75rem 1rem; margin: 1rem 0; border-radius: 4px; }
.notes strong { color: #8a4b00; }
.notes ul { margin: 0.25rem 0 0; padding-left: 1.25rem; }
p { white-space: pre-wrap; }
table { border-collapse: collapse; margin: 0.75rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; }
details { border: 1px solid #ddd; border-radius: 4px; margin: 0.4rem 0; background: #fff; }
details[open] { background: #fcfcfc; }
summary { cursor: pointer; padding: 0.4rem 0.75rem; }
summary code { font-size: 0.9rem; }
.card { padding: 0 0.75rem 0.75rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid #eee; padding: 0.4rem 0.6rem; margin: 0; font: inherit; }
.reply { margin-top: 0.5rem; border-left: 4px solid #bbb; padding-left: 0.6rem; }
.reply.ok { border-left-color: #3a8a3a; }
.reply.bad { border-left-color: #c0392b; }
.ok .mark, .verdict.ok { color: #2d7a2d; }
.bad .mark, .verdict.bad { color: #b03020; }
.verdict { white-space: nowrap; }
.muted { color: #666; }
";

/// Renders `page` as one self-contained HTML document: inline CSS only, no JavaScript, no
/// external resources (a Content-Security-Policy meta tag enforces it), charts as base64 `data:`
/// images.
pub fn html_page(page: &Page) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let title = escape(&page.title);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{title}</title>");
    let _ = writeln!(out, "<style>\n{CSS}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(out, "<h1>{title}</h1>");

    if !page.notes.is_empty() {
        out.push_str("<div class=\"notes\" role=\"note\"><strong>Read with care:</strong>\n<ul>\n");
        for note in &page.notes {
            let _ = writeln!(out, "<li>{}</li>", escape(note));
        }
        out.push_str("</ul></div>\n");
    }

    if page.sections.len() > 1 {
        out.push_str("<nav><h4>Contents</h4><ol>\n");
        for (i, section) in page.sections.iter().enumerate() {
            let _ = writeln!(
                out,
                "<li><a href=\"#s{}\">{}</a></li>",
                i + 1,
                escape(&section.heading)
            );
        }
        out.push_str("</ol></nav>\n");
    }

    for (i, section) in page.sections.iter().enumerate() {
        let _ = writeln!(
            out,
            "<section id=\"s{}\">\n<h2>{}</h2>",
            i + 1,
            escape(&section.heading)
        );
        for block in &section.blocks {
            write_block(&mut out, block);
        }
        out.push_str("</section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn write_block(out: &mut String, block: &Block) {
    match block {
        Block::Paragraph(text) => {
            let _ = writeln!(out, "<p>{}</p>", escape(text));
        }
        Block::Table(table) => write_table(out, table),
        Block::Chart { caption, svg } => {
            let caption = escape(caption);
            let data = STANDARD.encode(svg.as_bytes());
            let _ = writeln!(
                out,
                "<figure><img alt=\"{caption}\" src=\"data:image/svg+xml;base64,{data}\">\
                 <figcaption>{caption}</figcaption></figure>"
            );
        }
        Block::Examples(cards) => {
            if cards.is_empty() {
                out.push_str("<p class=\"muted\">No examples.</p>\n");
            }
            // The first card starts open, so the list shows what a card holds.
            for (i, card) in cards.iter().enumerate() {
                write_card(out, card, i == 0);
            }
        }
    }
}

fn write_table(out: &mut String, table: &Table) {
    out.push_str("<table>\n");
    if !table.header.is_empty() {
        out.push_str("<thead><tr>");
        for cell in &table.header {
            let _ = write!(out, "<th>{}</th>", escape(cell));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{}</td>", escape(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn class(correct: bool) -> &'static str {
    if correct { "ok" } else { "bad" }
}

fn mark(correct: bool) -> &'static str {
    if correct { "\u{2713}" } else { "\u{2717}" }
}

fn write_card(out: &mut String, card: &ExampleCard, open: bool) {
    let _ = write!(
        out,
        "<details{}><summary><code>{}</code> \u{b7} {} \u{b7} label <strong>{}</strong>",
        if open { " open" } else { "" },
        escape(&card.id),
        escape(&card.task),
        escape(&card.label),
    );
    for reply in &card.replies {
        let _ = write!(
            out,
            " \u{b7} <span class=\"verdict {}\">{}: {} {}</span>",
            class(reply.correct),
            escape(&reply.judge),
            escape(&reply.verdict),
            mark(reply.correct),
        );
    }
    out.push_str("</summary>\n<div class=\"card\">\n");
    for (name, text) in [
        ("Question", &card.question),
        ("Answer", &card.answer),
        ("Passage", &card.passage),
    ] {
        if let Some(text) = text {
            let _ = writeln!(
                out,
                "<h4>{name}</h4><div class=\"text\">{}</div>",
                escape(text)
            );
        }
    }
    if !card.replies.is_empty() {
        out.push_str("<h4>Replies</h4>\n");
    }
    for reply in &card.replies {
        let _ = writeln!(
            out,
            "<div class=\"reply {}\"><div><strong>{}</strong> \u{2014} {} <span class=\"mark\">{}</span></div>\
             <div class=\"text\">{}</div></div>",
            class(reply.correct),
            escape(&reply.judge),
            escape(&reply.verdict),
            mark(reply.correct),
            escape(&reply.text),
        );
    }
    out.push_str("</div></details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(1)</script> \"quotes\" & 'apostrophes'";
    const EVIL_ESCAPED: &str =
        "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quotes&quot; &amp; &#39;apostrophes&#39;";

    fn evil_page() -> Page {
        let e = || EVIL.to_string();
        Page {
            title: e(),
            notes: vec![e()],
            sections: vec![
                Section {
                    heading: e(),
                    blocks: vec![
                        Block::Paragraph(e()),
                        Block::Table(Table {
                            header: vec![e(), e()],
                            rows: vec![vec![e(), e()]],
                        }),
                        Block::Chart {
                            caption: e(),
                            svg: format!(
                                "<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script><text>{EVIL}</text></svg>"
                            ),
                        },
                    ],
                },
                Section {
                    heading: e(),
                    blocks: vec![Block::Examples(vec![ExampleCard {
                        id: e(),
                        task: e(),
                        label: e(),
                        question: Some(e()),
                        answer: Some(e()),
                        passage: Some(e()),
                        replies: vec![Reply {
                            judge: e(),
                            verdict: e(),
                            correct: false,
                            text: e(),
                        }],
                    }])],
                },
            ],
        }
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(escape(EVIL), EVIL_ESCAPED);
        assert_eq!(escape("plain – ünïcode"), "plain – ünïcode");
    }

    #[test]
    fn every_field_is_escaped_and_no_script_survives() {
        let html = html_page(&evil_page());
        assert!(
            !html.to_lowercase().contains("<script"),
            "raw script tag in output"
        );
        assert!(!html.contains("'apostrophes'") && !html.contains("\"quotes\""));
        // title ×2, note, 2 headings ×2 (heading + contents), paragraph, 4 cells, caption ×2,
        // id, task, label, question, answer, passage, judge ×2, verdict ×2, reply text.
        let count = html.matches(EVIL_ESCAPED).count();
        assert!(count >= 25, "escaped text found {count} times");
        assert!(html.contains(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        )));
        assert!(html.contains("<meta charset=\"utf-8\">"));
    }

    #[test]
    fn page_has_no_external_resources_or_script() {
        let html = html_page(&evil_page());
        for banned in [
            "<script",
            "<link",
            "<iframe",
            "<object",
            "src=\"http",
            "href=\"http",
            "@import",
            "url(",
            "javascript:",
        ] {
            assert!(!html.to_lowercase().contains(banned), "{banned} in output");
        }
        assert!(
            !html.contains(" onclick") && !html.contains(" onload") && !html.contains(" onerror")
        );
        // The only src is a data: URI.
        for (i, _) in html.match_indices("src=\"") {
            assert!(html[i..].starts_with("src=\"data:image/svg+xml;base64,"));
        }
    }

    #[test]
    fn chart_round_trips_through_base64() {
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>ü &amp; ∑</text></svg>";
        let html = html_page(&Page {
            title: "t".into(),
            notes: vec![],
            sections: vec![Section {
                heading: "h".into(),
                blocks: vec![Block::Chart {
                    caption: "accuracy".into(),
                    svg: svg.into(),
                }],
            }],
        });
        let start = html.find("base64,").expect("data uri") + "base64,".len();
        let end = start + html[start..].find('"').expect("end quote");
        let decoded = STANDARD.decode(&html[start..end]).expect("valid base64");
        assert_eq!(decoded, svg.as_bytes());
        assert!(html.contains("alt=\"accuracy\""));
        assert!(
            !html.contains("<nav>"),
            "one section needs no contents list"
        );
        assert!(!html.contains("class=\"notes\""), "no notes, no box");
    }

    #[test]
    fn cards_are_details_with_a_summary_of_verdicts() {
        let card = ExampleCard {
            id: "ex-17".into(),
            task: "qa".into(),
            label: "FAIL".into(),
            question: Some("Who?".into()),
            answer: None,
            passage: Some("line one\nline two".into()),
            replies: vec![
                Reply {
                    judge: "baseline".into(),
                    verdict: "PASS".into(),
                    correct: false,
                    text: "looks fine".into(),
                },
                Reply {
                    judge: "llama".into(),
                    verdict: "FAIL".into(),
                    correct: true,
                    text: "unsupported claim".into(),
                },
            ],
        };
        let mut out = String::new();
        write_card(&mut out, &card, false);
        assert!(out.starts_with("<details><summary>"));
        let summary = &out[..out.find("</summary>").expect("summary")];
        for part in [
            "ex-17",
            "qa",
            "FAIL",
            "baseline: PASS \u{2717}",
            "llama: FAIL \u{2713}",
        ] {
            assert!(summary.contains(part), "{part} not in summary: {summary}");
        }
        assert!(
            out.contains("line one\nline two"),
            "line breaks kept for pre-wrap"
        );
        assert!(!out.contains("Answer"), "absent fields are left out");
        assert!(out.contains("<h4>Question</h4>") && out.contains("<h4>Passage</h4>"));
    }
}
