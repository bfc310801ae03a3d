#!/usr/bin/env python3
"""Writes a catalogue of N small datasets for the search benchmark (bench/query.sh), and the queries
to search it with.

  gen_catalog.py N OUTDIR

OUTDIR/NNNNN.csv   a few rows of a small table (date, district, value)
OUTDIR/NNNNN.json  its metadata for `citydata publish --meta`: a title and a description in English
                   and Traditional Chinese, an organisation (one of 12 departments), 3-4 tags, a
                   licence, a frequency and a theme
OUTDIR/slugs.txt   "NNNNN SLUG" per line, the slug to publish NNNNN under
OUTDIR/queries.txt package_search query strings (without the leading '?'), one per line, in a fixed
                   shuffled order: English words, Chinese words of two or more characters, fq on
                   organization and tags, facet.field, sort, paging, and mixes of these.

Titles are made from a topic, a district and a year ("Air quality readings, Wan Chai, 2019"), so
that the same words recur over many datasets, as they do in a real city's catalogue. Deterministic.
"""
import json
import os
import random
import sys
import urllib.parse

# (slug stem, English title, Chinese title, organisation, tags, theme, frequency, column)
TOPICS = [
    ("air-quality", "Air quality readings", "空氣質素讀數", "epd", ["air", "pollution", "environment"], "environment", "hourly", "aqhi"),
    ("roadside-air", "Roadside air pollutant concentrations", "路邊空氣污染物濃度", "epd", ["air", "roadside", "NO2"], "environment", "hourly", "no2"),
    ("noise", "Traffic noise levels", "交通噪音水平", "epd", ["noise", "traffic", "environment"], "environment", "monthly", "db"),
    ("beach-water", "Beach water quality", "泳灘水質", "epd", ["water quality", "beaches", "E. coli"], "environment", "weekly", "e_coli"),
    ("recycling", "Recyclables collected", "回收物料數量", "epd", ["recycling", "waste", "environment"], "environment", "monthly", "tonnes"),
    ("rainfall", "Daily rainfall", "每日雨量", "hko", ["weather", "rainfall", "climate"], "environment", "daily", "mm"),
    ("temperature", "Daily temperature", "每日氣溫", "hko", ["weather", "temperature", "climate"], "environment", "daily", "celsius"),
    ("uv-index", "UV index", "紫外線指數", "hko", ["weather", "UV", "health"], "environment", "daily", "uv"),
    ("traffic-speed", "Traffic speed on major roads", "主要道路交通速度", "td", ["traffic", "roads", "speed"], "transport", "real-time", "kmh"),
    ("parking", "Vacant car parking spaces", "停車場空置車位", "td", ["parking", "car parks", "traffic"], "transport", "real-time", "vacancies"),
    ("bus-patronage", "Franchised bus patronage", "專營巴士乘客量", "td", ["bus", "public transport", "patronage"], "transport", "monthly", "passengers"),
    ("accidents", "Road traffic accidents", "道路交通意外", "td", ["traffic", "accidents", "road safety"], "transport", "monthly", "accidents"),
    ("ae-waiting", "Accident and emergency waiting times", "急症室等候時間", "ha", ["hospital", "waiting time", "health"], "health", "real-time", "minutes"),
    ("clinic-quota", "General outpatient clinic quotas", "普通科門診配額", "ha", ["clinics", "outpatient", "health"], "health", "daily", "quota"),
    ("vaccination", "Vaccinations given", "疫苗接種數字", "dh", ["vaccination", "health", "public health"], "health", "weekly", "doses"),
    ("food-licences", "Restaurant licences issued", "食肆牌照簽發", "fehd", ["food", "licences", "restaurants"], "economy", "monthly", "licences"),
    ("market-stalls", "Public market stall occupancy", "公眾街市檔位出租率", "fehd", ["markets", "food", "stalls"], "economy", "quarterly", "occupancy"),
    ("library-loans", "Public library loans", "公共圖書館借閱", "lcsd", ["libraries", "books", "culture"], "culture", "monthly", "loans"),
    ("pool-attendance", "Swimming pool attendance", "泳池入場人次", "lcsd", ["sports", "swimming pools", "leisure"], "culture", "monthly", "visits"),
    ("park-facilities", "Parks and playgrounds", "公園及遊樂場", "lcsd", ["parks", "leisure", "open space"], "culture", "irregular", "facilities"),
    ("population", "Mid-year population", "年中人口", "censtatd", ["population", "census", "demography"], "population", "annual", "persons"),
    ("households", "Domestic households", "住戶數目", "censtatd", ["households", "census", "housing"], "population", "annual", "households"),
    ("employment", "Employed persons", "就業人數", "censtatd", ["employment", "labour", "economy"], "economy", "quarterly", "persons"),
    ("visitor-arrivals", "Visitor arrivals", "訪港旅客人次", "censtatd", ["tourism", "visitors", "economy"], "economy", "monthly", "arrivals"),
    ("water-consumption", "Fresh water consumption", "食水用量", "wsd", ["water", "consumption", "utilities"], "environment", "monthly", "cubic_metres"),
    ("reservoirs", "Reservoir storage", "水塘存水量", "wsd", ["water", "reservoirs", "utilities"], "environment", "daily", "storage"),
    ("public-housing", "Public rental housing flats", "公共租住房屋單位", "hd", ["housing", "public housing", "flats"], "housing", "annual", "flats"),
    ("housing-waiting", "Public housing waiting list", "公屋輪候冊", "hd", ["housing", "waiting time", "public housing"], "housing", "quarterly", "applications"),
    ("school-places", "Primary school places", "小學學位", "edb", ["education", "schools", "places"], "education", "annual", "places"),
    ("kindergartens", "Kindergarten enrolment", "幼稚園學生人數", "edb", ["education", "kindergartens", "enrolment"], "education", "annual", "pupils"),
]

ORGANIZATIONS = {
    "epd": ("Environmental Protection Department", "環境保護署"),
    "hko": ("Hong Kong Observatory", "香港天文台"),
    "td": ("Transport Department", "運輸署"),
    "ha": ("Hospital Authority", "醫院管理局"),
    "dh": ("Department of Health", "衞生署"),
    "fehd": ("Food and Environmental Hygiene Department", "食物環境衞生署"),
    "lcsd": ("Leisure and Cultural Services Department", "康樂及文化事務署"),
    "censtatd": ("Census and Statistics Department", "政府統計處"),
    "wsd": ("Water Supplies Department", "水務署"),
    "hd": ("Housing Department", "房屋署"),
    "edb": ("Education Bureau", "教育局"),
    "itib": ("Innovation, Technology and Industry Bureau", "創新科技及工業局"),
}

DISTRICTS = [
    ("central-western", "Central and Western", "中西區"), ("wan-chai", "Wan Chai", "灣仔"),
    ("eastern", "Eastern", "東區"), ("southern", "Southern", "南區"), ("yau-tsim-mong", "Yau Tsim Mong", "油尖旺"),
    ("sham-shui-po", "Sham Shui Po", "深水埗"), ("kowloon-city", "Kowloon City", "九龍城"),
    ("wong-tai-sin", "Wong Tai Sin", "黃大仙"), ("kwun-tong", "Kwun Tong", "觀塘"), ("kwai-tsing", "Kwai Tsing", "葵青"),
    ("tsuen-wan", "Tsuen Wan", "荃灣"), ("tuen-mun", "Tuen Mun", "屯門"), ("yuen-long", "Yuen Long", "元朗"),
    ("north", "North", "北區"), ("tai-po", "Tai Po", "大埔"), ("sha-tin", "Sha Tin", "沙田"),
    ("sai-kung", "Sai Kung", "西貢"), ("islands", "Islands", "離島"),
]

LICENSES = ["hk-gov-open-data", "cc-by-4.0"]

# Search words: English (some stemmed forms), Chinese of two or more characters (Traditional and
# Simplified), district names; the fq and facet parts are added below.
WORDS_EN = ["air quality", "rainfall", "traffic", "parking", "hospital", "waiting times", "library",
            "swimming", "population", "housing", "schools", "recycling", "noise", "water", "bus",
            "visitors", "employment", "temperature", "beach", "licences", "reading", "accident",
            "Wan Chai", "Sha Tin", "Kwun Tong", "Islands", "Tuen Mun", "2019", "reservoir storage",
            "kindergarten enrolment"]
WORDS_ZH = ["空氣", "空气", "雨量", "交通", "停車場", "停车场", "醫院", "医院", "圖書館", "图书馆", "人口",
            "公屋", "學位", "回收", "噪音", "水質", "巴士", "旅客", "就業", "氣溫", "灣仔", "湾仔", "沙田",
            "觀塘", "離島", "等候時間", "泳池", "街市", "疫苗", "水塘"]
FQS = ["organization:epd", "organization:td", "organization:ha", "organization:lcsd", "organization:censtatd",
       'tags:"public housing"', "tags:weather", "tags:traffic", "tags:health", "tags:education",
       "organization:hko tags:rainfall", "organization:fehd tags:food"]
FACETS = ['["organization"]', '["tags"]', '["organization","tags"]', '["res_format","license_id"]']


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(7)
    combos = [(t, d, y) for y in range(2005, 2025) for t in TOPICS for d in DISTRICTS]
    rnd.shuffle(combos)
    if n > len(combos):
        sys.exit(f"at most {len(combos)} datasets")
    with open(os.path.join(out, "slugs.txt"), "w") as slugs:
        for i, (topic, district, year) in enumerate(combos[:n], 1):
            stem, en, zh, org, tags, theme, freq, column = topic
            dslug, den, dzh = district
            name = f"{i:05d}"
            slug = f"{stem}-{dslug}-{year}"
            slugs.write(f"{name} {slug}\n")
            oen, ozh = ORGANIZATIONS[org]
            meta = {
                "title": {"en": f"{en}, {den}, {year}", "zh-Hant": f"{zh}（{dzh}）{year}年"},
                "description": {
                    "en": f"{en} in {den} district for {year}, published by the {oen}. "
                          f"One row per reading with its date and value in {column.replace('_', ' ')}.",
                    "zh-Hant": f"{ozh}發布的{dzh}區{year}年{zh}數據，每行一項讀數。",
                },
                "organization": org,
                "organization_title": {"en": oen, "zh-Hant": ozh},
                "tags": tags + [den],
                "license": LICENSES[i % len(LICENSES)],
                "frequency": freq,
                "theme": theme,
                "source": oen,
            }
            with open(os.path.join(out, name + ".json"), "w") as f:
                json.dump(meta, f, ensure_ascii=False)
            with open(os.path.join(out, name + ".csv"), "w") as f:
                f.write(f"date,district,{column}\n")
                for m in range(1, 4 + i % 5):
                    f.write(f"{year}-{m:02d}-01,{den},{rnd.randrange(1, 5000)}\n")
    queries = []
    enc = urllib.parse.quote
    for w in WORDS_EN + WORDS_ZH:
        queries.append(f"q={enc(w)}")
        queries.append(f"q={enc(w)}&rows=20&facet.field={enc(rnd.choice(FACETS))}")
    for fq in FQS:
        queries.append(f"fq={enc(fq)}")
        queries.append(f"q={enc(rnd.choice(WORDS_EN + WORDS_ZH))}&fq={enc(fq)}&facet.field={enc(rnd.choice(FACETS))}")
    queries += ["q=", "rows=50&sort=metadata_modified%20desc", "q=air&start=100&rows=20",
                "q=%E4%BA%A4%E9%80%9A&sort=title_string%20asc", "facet.field=%5B%22organization%22%5D&rows=0"]
    rnd.shuffle(queries)
    with open(os.path.join(out, "queries.txt"), "w") as f:
        f.write("\n".join(queries) + "\n")


if __name__ == "__main__":
    main()
