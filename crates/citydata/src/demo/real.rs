//! The demo's real layers: the 18 districts and 22 government facility datasets, embedded byte for
//! byte as the government published them, each published as one dataset with bilingual metadata and
//! the attribution the data require.
//!
//! **Invariant:** the files are published unchanged (their versions keep the original bytes).

use citydata_model::{DatasetMeta, LangText};

/// The 18 District Council districts (WGS 84 polygons).
pub const DISTRICTS: &str = include_str!("../../demo/hk-districts/districts.geojson");

/// The attribution every government file carries.
pub const ATTRIBUTION: &str = "Source: the Government of the Hong Kong SAR, via DATA.GOV.HK";
/// The attribution of the districts.
pub const DISTRICTS_ATTRIBUTION: &str =
    "Source: Census and Statistics Department, the Government of the Hong Kong SAR";
/// The licence of government open data.
pub const LICENSE: &str = "DATA.GOV.HK Terms and Conditions";

/// One embedded real facility file.
pub struct Real {
    /// The file name, as published.
    pub file: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
    /// The dataset's slug.
    pub slug: &'static str,
    /// The dataset's name in English and Traditional Chinese, as the government gives it.
    pub title: [&'static str; 2],
    /// The providing department's slug (see [`ORGANIZATIONS`]).
    pub organization: &'static str,
    /// Theme.
    pub theme: &'static str,
    /// Keywords.
    pub tags: &'static [&'static str],
    /// Number of features in the file.
    pub features: usize,
}

/// The 22 facility files.
pub const FACILITIES: &[Real] = &[
    Real {
        file: "Air_Quality_Monitoring_Network_of_Hong_Kong.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Air_Quality_Monitoring_Network_of_Hong_Kong.geojson"),
        slug: "air-quality-monitoring-stations",
        title: ["Air Quality Monitoring Network of Hong Kong", "香港空氣質素監測網絡"],
        organization: "epd",
        theme: "Environment",
        tags: &["air quality", "environment", "monitoring station"],
        features: 18,
    },
    Real {
        file: "Basketball_Courts.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Basketball_Courts.geojson"),
        slug: "basketball-courts",
        title: ["Basketball Courts", "籃球場"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["sport", "basketball", "recreation"],
        features: 309,
    },
    Real {
        file: "Beaches.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Beaches.geojson"),
        slug: "beaches",
        title: ["Beaches", "泳灘"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["beach", "swimming", "recreation"],
        features: 42,
    },
    Real {
        file: "Control_Points.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Control_Points.geojson"),
        slug: "control-points",
        title: ["Control Points", "出入境管制站"],
        organization: "immd",
        theme: "Facilities",
        tags: &["border", "immigration", "transport"],
        features: 16,
    },
    Real {
        file: "Country_Parks.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Country_Parks.geojson"),
        slug: "country-parks",
        title: ["Country Parks", "郊野公園"],
        organization: "afcd",
        theme: "Facilities",
        tags: &["country park", "nature", "hiking"],
        features: 24,
    },
    Real {
        file: "Government_Primary_Schools.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Government_Primary_Schools.geojson"),
        slug: "government-primary-schools",
        title: ["Government Primary Schools", "官立小學"],
        organization: "edb",
        theme: "Facilities",
        tags: &["education", "school"],
        features: 34,
    },
    Real {
        file: "Higher_Education_Institutions.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Higher_Education_Institutions.geojson"),
        slug: "higher-education-institutions",
        title: ["Higher Education Institutions", "高等教育院校"],
        organization: "edb",
        theme: "Facilities",
        tags: &["education", "university"],
        features: 121,
    },
    Real {
        file: "Hospitals_under_the_Hospital_Authority.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Hospitals_under_the_Hospital_Authority.geojson"),
        slug: "hospitals",
        title: ["Hospitals under the Hospital Authority", "醫院管理局轄下的醫院"],
        organization: "ha",
        theme: "Facilities",
        tags: &["health", "hospital"],
        features: 44,
    },
    Real {
        file: "Hotels_Licensed_.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Hotels_Licensed_.geojson"),
        slug: "licensed-hotels",
        title: ["Hotels (Licensed)", "酒店(持牌)"],
        organization: "had",
        theme: "Facilities",
        tags: &["hotel", "tourism", "licence"],
        features: 317,
    },
    Real {
        file: "Libraries.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Libraries.geojson"),
        slug: "libraries",
        title: ["Libraries", "圖書館"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["library", "culture"],
        features: 186,
    },
    Real {
        file: "List_of_community_halls_community_centres.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/List_of_community_halls_community_centres.geojson"),
        slug: "community-halls",
        title: ["List of community halls / community centres", "社區會堂及社區中心一覽表"],
        organization: "had",
        theme: "Facilities",
        tags: &["community", "hall"],
        features: 111,
    },
    Real {
        file: "Museums.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Museums.geojson"),
        slug: "museums",
        title: ["Museums", "博物館"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["museum", "culture"],
        features: 18,
    },
    Real {
        file: "Network_of_Weather_Stations_in_Hong_Kong.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Network_of_Weather_Stations_in_Hong_Kong.geojson"),
        slug: "weather-stations",
        title: ["Network of Weather Stations in Hong Kong", "香港氣象站網絡"],
        organization: "hko",
        theme: "Environment",
        tags: &["weather", "meteorology", "monitoring station"],
        features: 49,
    },
    Real {
        file: "Parks_Zoos_and_Gardens.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Parks_Zoos_and_Gardens.geojson"),
        slug: "parks-zoos-gardens",
        title: ["Parks, Zoos and Gardens", "公園及動植物公園"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["park", "garden", "recreation"],
        features: 114,
    },
    Real {
        file: "Post_Offices.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Post_Offices.geojson"),
        slug: "post-offices",
        title: ["Post Offices", "郵政局"],
        organization: "hongkongpost",
        theme: "Facilities",
        tags: &["post", "postal service"],
        features: 123,
    },
    Real {
        file: "Public_Market_Information.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Public_Market_Information.geojson"),
        slug: "public-markets",
        title: ["Public Market Information", "公眾街市資料"],
        organization: "fehd",
        theme: "Facilities",
        tags: &["market", "food"],
        features: 104,
    },
    Real {
        file: "Recycling_Organisations_and_Collection_Points.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Recycling_Organisations_and_Collection_Points.geojson"),
        slug: "recycling-points",
        title: ["Recycling Organisations and Collection Points", "回收機構及收集點"],
        organization: "epd",
        theme: "Environment",
        tags: &["recycling", "waste", "environment"],
        features: 998,
    },
    Real {
        file: "Sports_Centres.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Sports_Centres.geojson"),
        slug: "sports-centres",
        title: ["Sports Centres", "體育館"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["sport", "recreation"],
        features: 102,
    },
    Real {
        file: "Street_Posting_Boxes.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Street_Posting_Boxes.geojson"),
        slug: "street-posting-boxes",
        title: ["Street Posting Boxes", "郵筒"],
        organization: "hongkongpost",
        theme: "Facilities",
        tags: &["post", "posting box"],
        features: 1157,
    },
    Real {
        file: "Summary_of_Functions_on_Smart_Lampposts.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Summary_of_Functions_on_Smart_Lampposts.geojson"),
        slug: "smart-lamppost-functions",
        title: ["Summary of Functions on Smart Lampposts", "多功能智慧燈柱的功能總覽"],
        organization: "ogcio",
        theme: "Smart City",
        tags: &["smart city", "smart lamppost", "sensors"],
        features: 50,
    },
    Real {
        file: "Swimming_Pools.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/Swimming_Pools.geojson"),
        slug: "swimming-pools",
        title: ["Swimming Pools", "泳池"],
        organization: "lcsd",
        theme: "Facilities",
        tags: &["sport", "swimming", "recreation"],
        features: 44,
    },
    Real {
        file: "UGC-Funded_Institutions.geojson",
        bytes: include_bytes!("../../demo/hk-geodata/UGC-Funded_Institutions.geojson"),
        slug: "ugc-funded-institutions",
        title: ["UGC-Funded Institutions", "受教資會資助院校"],
        organization: "edb",
        theme: "Facilities",
        tags: &["education", "university"],
        features: 8,
    },
];

/// The providing departments: slug, English and Traditional Chinese names.
pub const ORGANIZATIONS: &[(&str, &str, &str)] = &[
    ("epd", "Environmental Protection Department", "環境保護署"),
    ("lcsd", "Leisure and Cultural Services Department", "康樂及文化事務署"),
    ("immd", "Immigration Department", "入境事務處"),
    ("afcd", "Agriculture, Fisheries and Conservation Department", "漁農自然護理署"),
    ("edb", "Education Bureau", "教育局"),
    ("ha", "Hospital Authority", "醫院管理局"),
    ("had", "Home Affairs Department", "民政事務總署"),
    ("hko", "Hong Kong Observatory", "香港天文台"),
    ("hongkongpost", "Hongkong Post", "香港郵政"),
    ("fehd", "Food and Environmental Hygiene Department", "食物環境衞生署"),
    ("ogcio", "Office of the Government Chief Information Officer", "政府資訊科技總監辦公室"),
    ("censtatd", "Census and Statistics Department", "政府統計處"),
];

/// English, Traditional and Simplified Chinese (converted) text.
pub fn trilingual(en: &str, zh_hant: &str) -> LangText {
    LangText(
        [("en", en.to_owned()), ("zh-Hant", zh_hant.to_owned()), ("zh-Hans", fast2s::convert(zh_hant))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// The metadata of a dataset from department `org`.
pub fn meta(
    title: LangText,
    description: LangText,
    org: &str,
    theme: &str,
    tags: &[&str],
    source: &str,
) -> DatasetMeta {
    let (en, zh) = ORGANIZATIONS.iter().find(|o| o.0 == org).map_or((org, org), |o| (o.1, o.2));
    DatasetMeta {
        title,
        description,
        organization: Some(org.to_owned()),
        organization_title: trilingual(en, zh),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        license: Some(LICENSE.to_owned()),
        frequency: Some("irregular".to_owned()),
        theme: Some(theme.to_owned()),
        source: Some(source.to_owned()),
        ..DatasetMeta::default()
    }
}

/// The metadata of a real facility file.
pub fn facility_meta(r: &Real) -> DatasetMeta {
    let (org_en, org_zh) =
        ORGANIZATIONS.iter().find(|o| o.0 == r.organization).map_or(("", ""), |o| (o.1, o.2));
    let en = format!(
        "{}: {} locations, with names, addresses and other details in English and Traditional Chinese, as \
         points in WGS 84 with the Hong Kong 1980 Grid easting and northing in the properties. Provided by \
         the {org_en}. {ATTRIBUTION}.",
        r.title[0], r.features
    );
    let zh = format!(
        "{}：{}個地點，附中英文名稱、地址及其他資料；座標為WGS 84經緯度，屬性另附香港1980方格網東行及北行座標。由{org_zh}提供。\
         資料來源：香港特別行政區政府，經資料一線通（DATA.GOV.HK）。",
        r.title[1], r.features
    );
    meta(
        trilingual(r.title[0], r.title[1]),
        trilingual(&en, &zh),
        r.organization,
        r.theme,
        r.tags,
        ATTRIBUTION,
    )
}

/// The metadata of the districts.
pub fn districts_meta() -> DatasetMeta {
    let en = format!(
        "The 18 District Council districts of Hong Kong as WGS 84 multipolygons, with their code (DC_CODE) \
         and English and Chinese names: the districts every other dataset is located in. Derived from the \
         2001 census map and simplified to about 0.001 degree, for overview maps and point-in-district \
         joins. {DISTRICTS_ATTRIBUTION}."
    );
    let zh = "香港18區區議會分區的WGS 84多邊形，附分區代號（DC_CODE）及中英文名稱，其他數據集均以此定位。\
              取自2001年人口普查地圖，簡化至約0.001度，適用於概覽地圖及地點所屬分區的判斷。資料來源：香港特別行政區政府統計處。";
    meta(
        trilingual("Hong Kong's 18 districts", "香港十八區"),
        trilingual(&en, zh),
        "censtatd",
        "Framework: District",
        &["district", "boundary", "framework", "administrative area"],
        DISTRICTS_ATTRIBUTION,
    )
}
