//! `model-card`: the card has the sections people look for and a YAML front matter in the
//! Hugging Face model card style, so that hubs index it. Headings are matched loosely (the
//! Hugging Face template's own names count), and a section that only says "not stated" is as
//! good as missing.

use super::subject::Subject;
use super::{Findings, Location, Rule};

/// Front matter keys a Hugging Face model card carries.
const FRONT_MATTER_KEYS: &[&str] = &["license", "tags", "datasets", "metrics", "library_name"];

/// Each expected section: its name in reports, and the words a heading for it contains.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "summary",
        &["summary", "description", "overview", "model details"],
    ),
    ("intended use", &["intended use", "uses", "use case"]),
    ("training data", &["training data", "training", "dataset"]),
    (
        "evaluation/metrics",
        &["evaluation", "metrics", "results", "performance"],
    ),
    ("limitations", &["limitation", "risks", "bias", "caveat"]),
    ("license", &["license", "licence"]),
];

pub(crate) fn check(subject: &Subject, findings: &mut Findings) {
    let Some((file, text)) = &subject.card else {
        findings.warn(
            Rule::ModelCard,
            "the package has no model card",
            "pack it again: pack writes model-card.md (from tiffin.toml, or your own with \
             package.model_card)",
            None,
        );
        return;
    };
    let (keys, body_start) = front_matter(text);
    match keys {
        None => findings.warn(
            Rule::ModelCard,
            "the model card has no YAML front matter",
            format!(
                "start the card with a `---` block holding {}, as Hugging Face model cards do",
                FRONT_MATTER_KEYS.join(", ")
            ),
            Location::line(file.clone(), Some(1)),
        ),
        Some(keys) => {
            let missing: Vec<&str> = FRONT_MATTER_KEYS
                .iter()
                .copied()
                .filter(|k| !keys.iter().any(|found| found == k))
                .collect();
            if !missing.is_empty() {
                findings.warn(
                    Rule::ModelCard,
                    format!("the front matter lacks {}", missing.join(", ")),
                    format!(
                        "add {} to the `---` block at the top of the card (Hugging Face model card keys)",
                        missing.join(", ")
                    ),
                    Location::line(file.clone(), Some(1)),
                );
            }
        }
    }
    let sections = sections(text, body_start);
    let mut missing = Vec::new();
    let mut placeholders = Vec::new();
    for (name, words) in SECTIONS {
        let found = sections.iter().find(|s| {
            let h = s.heading.to_lowercase();
            words.iter().any(|w| h.contains(w))
        });
        // The text under the title, before the first section, is the summary of many cards.
        let found = match (found, *name) {
            (None, "summary") => sections.iter().find(|s| s.level == 1),
            (found, _) => found,
        };
        match found {
            None => missing.push(*name),
            Some(s) if s.is_placeholder() => placeholders.push((*name, s.line)),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        findings.warn(
            Rule::ModelCard,
            format!("the model card has no section on {}", missing.join(", ")),
            "add a `## ` heading and text for each (see the Hugging Face model card template)",
            Location::file(file.clone()),
        );
    }
    for (name, line) in placeholders {
        findings.warn(
            Rule::ModelCard,
            format!("the model card's {name} section is empty or says it is not stated"),
            "write it: set the field tiffin.toml names, or give your own card with \
             package.model_card",
            Location::line(file.clone(), Some(line)),
        );
    }
    findings.pass_unless_flagged(
        Rule::ModelCard,
        format!(
            "`{file}` has front matter ({}) and every expected section",
            FRONT_MATTER_KEYS.join(", ")
        ),
    );
}

/// The top-level keys of the card's front matter (`None` without one), and the index of the
/// first line after it.
fn front_matter(text: &str) -> (Option<Vec<String>>, usize) {
    let lines: Vec<&str> = text.lines().collect();
    if lines
        .first()
        .map(|l| l.trim_start_matches('\u{feff}').trim_end())
        != Some("---")
    {
        return (None, 0);
    }
    let Some(end) = lines.iter().skip(1).position(|l| l.trim_end() == "---") else {
        return (None, 0);
    };
    let block = &lines[1..=end];
    let mut keys = Vec::new();
    for (i, line) in block.iter().enumerate() {
        if line.starts_with([' ', '\t', '-', '#']) {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        // A key with an empty value and no list or mapping under it says nothing.
        let has_items = block
            .get(i + 1)
            .is_some_and(|next| next.starts_with([' ', '\t', '-']));
        let value = value.trim();
        if (!value.is_empty() && value != "[]" && value != "\"\"") || has_items {
            keys.push(key.trim().to_owned());
        }
    }
    (Some(keys), end + 2)
}

/// One heading of the card and the text under it.
#[derive(Debug)]
struct Section {
    heading: String,
    level: usize,
    /// Line of the heading, from 1.
    line: usize,
    body: String,
}

impl Section {
    fn is_placeholder(&self) -> bool {
        let body = self.body.trim();
        body.is_empty() || body.trim_start_matches('_').starts_with("Not stated")
    }
}

/// The card's sections, ATX headings only (`#` to `######`), skipping fenced code blocks.
fn sections(text: &str, from: usize) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut in_code = false;
    for (i, line) in text.lines().enumerate().skip(from) {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        let is_heading = !in_code
            && (1..=6).contains(&hashes)
            && line[hashes..].starts_with(' ')
            && !line[hashes..].trim().is_empty();
        if is_heading {
            out.push(Section {
                heading: line[hashes..].trim().to_owned(),
                level: hashes,
                line: i + 1,
                body: String::new(),
            });
        } else if let Some(last) = out.last_mut() {
            last.body.push_str(line);
            last.body.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_keys_need_a_value() {
        let card = "---\nlicense: mit\ntags:\n- a\ndatasets: []\nmetrics:\n---\n# t\n";
        let (keys, start) = front_matter(card);
        assert_eq!(keys.unwrap(), ["license", "tags"]);
        assert_eq!(start, 7);
        assert_eq!(front_matter("# title\n").0, None);
        assert_eq!(front_matter("---\nlicense: mit\n").0, None);
    }

    #[test]
    fn headings_outside_code_blocks_with_their_bodies() {
        let card = "# T\nabout\n## Limitations\n_Not stated: x._\n```\n# not a heading\n```\n";
        let s = sections(card, 0);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].level, s[0].is_placeholder()), (1, false));
        assert_eq!((s[1].line, s[1].is_placeholder()), (3, true));
    }
}
