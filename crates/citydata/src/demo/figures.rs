//! The demo's figures: the headline figures of Hong Kong's innovation and technology programmes (Hong Kong
//! Yearbook 2024), as one dataset per area, with titles in English, Traditional and Simplified Chinese.
//! The data ship inside the binary; nothing is downloaded.

use std::collections::BTreeMap;

use citydata_model::{DatasetMeta, LangText, Slug};
use citydata_store::Store;

use crate::publish::{publish, PublishError, PublishOptions, Quiet};

const FIGURES: &str = include_str!("../../demo/hk-innovation/figures.csv");

const ORGANIZATION: &str = "itib";
const SOURCE: &str = "Innovation, Technology and Industry Bureau, the Government of the Hong Kong SAR (Hong Kong Yearbook 2024)";

struct Area {
    slug: &'static str,
    areas: &'static [&'static str],
    title: [&'static str; 3],
    description: &'static str,
    tags: &'static [&'static str],
    theme: &'static str,
}

const AREAS: &[Area] = &[
    Area {
        slug: "innovation-funding",
        areas: &["funding", "tax"],
        title: [
            "Innovation and technology funding schemes in figures",
            "創新及科技資助計劃數字",
            "创新及科技资助计划数字",
        ],
        description: "Headline figures of the Innovation and Technology Fund, the R&D Centres, RAISE+, the new \
            industrialisation schemes, InnoHK funding and the enhanced R&D tax deduction, as reported for 2024: \
            one row per figure with its programme, measure, value, unit and the date it refers to.",
        tags: &["innovation", "funding", "ITF", "R&D"],
        theme: "economy",
    },
    Area {
        slug: "innovation-research",
        areas: &["research"],
        title: ["Research laboratories and centres in figures", "研究實驗室及中心數字", "研究实验室及中心数字"],
        description: "InnoHK laboratories and researchers, State Key Laboratories and the Hong Kong branches of \
            the Chinese National Engineering Research Centres, as reported for 2024.",
        tags: &["innovation", "research", "InnoHK"],
        theme: "science-and-technology",
    },
    Area {
        slug: "innovation-talent",
        areas: &["talent"],
        title: ["Technology talent schemes in figures", "科技人才計劃數字", "科技人才计划数字"],
        description: "The Research Talent Hub, STEM internships, the New Industrialisation and Technology \
            Training Programme, the Technology Talent Admission Scheme and IT education in schools, as \
            reported for 2024.",
        tags: &["innovation", "talent", "education"],
        theme: "education",
    },
    Area {
        slug: "innovation-infrastructure",
        areas: &["infrastructure"],
        title: ["Innovation and technology infrastructure in figures", "創科基建數字", "创科基建数字"],
        description: "Science Park, InnoParks, Cyberport and the Hetao Hong Kong Park: site areas, floor areas \
            and tenants, as reported for 2024.",
        tags: &["innovation", "infrastructure", "Science Park"],
        theme: "economy",
    },
    Area {
        slug: "smart-city",
        areas: &["smart city"],
        title: ["Smart city in figures", "智慧城市數字", "智慧城市数字"],
        description: "The Smart City Blueprint, iAM Smart, multi-functional smart lampposts, Wi-Fi.HK, the \
            government cloud, DATA.GOV.HK and the Common Spatial Data Infrastructure portal, as reported for 2024.",
        tags: &["smart city", "open data", "Wi-Fi.HK", "lampposts"],
        theme: "government",
    },
];

/// Publishes the figures datasets into `store`; returns their slugs.
pub(super) fn load(store: &Store) -> Result<Vec<String>, PublishError> {
    let dir = tempfile::tempdir()
        .map_err(|e| PublishError::Invalid(format!("cannot make a temporary folder: {e}")))?;
    let mut lines = FIGURES.lines();
    let header = lines.next().unwrap_or_default();
    let mut by_area: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        by_area.entry(line.split(',').next().unwrap_or_default()).or_default().push(line);
    }
    let mut published = Vec::new();
    for a in AREAS {
        let mut csv = format!("{header}\n");
        for area in a.areas {
            for line in by_area.get(area).into_iter().flatten() {
                csv.push_str(line);
                csv.push('\n');
            }
        }
        let path = dir.path().join("figures.csv");
        std::fs::write(&path, csv).map_err(|e| PublishError::Invalid(e.to_string()))?;
        let title = LangText(
            [("en", a.title[0]), ("zh-Hant", a.title[1]), ("zh-Hans", a.title[2])]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        let meta = DatasetMeta {
            title,
            description: LangText::en(a.description),
            organization: Some(ORGANIZATION.to_owned()),
            organization_title: LangText(
                [
                    ("en", "Innovation, Technology and Industry Bureau"),
                    ("zh-Hant", "創新科技及工業局"),
                    ("zh-Hans", "创新科技及工业局"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ),
            tags: a.tags.iter().map(|t| (*t).to_owned()).collect(),
            license: Some("DATA.GOV.HK Terms and Conditions".to_owned()),
            frequency: Some("annual".to_owned()),
            theme: Some(a.theme.to_owned()),
            source: Some(SOURCE.to_owned()),
            ..DatasetMeta::default()
        };
        let slug = Slug::parse(a.slug).map_err(|e| PublishError::Invalid(e.to_string()))?;
        let opts = PublishOptions {
            resource: Some("figures".to_owned()),
            publisher: "citydata demo".to_owned(),
            meta: Some(meta),
            ..PublishOptions::default()
        };
        publish(store, &path, &slug, &opts, &Quiet)?;
        published.push(a.slug.to_owned());
    }
    Ok(published)
}
