#!/usr/bin/env python3
"""Writes the benchmark CSV: N rows (default 1,000,000) of 8 columns, about 60 bytes a row.

Columns: id (integer), district (text), station (text), reading_date (DD/MM/YYYY), time (HH:MM),
pm25 (number), visitors (integer with thousands separators), open (boolean). Deterministic.
"""
import random
import sys

DISTRICTS = ["Central and Western", "Wan Chai", "Eastern", "Southern", "Yau Tsim Mong", "Sham Shui Po",
             "Kowloon City", "Wong Tai Sin", "Kwun Tong", "Kwai Tsing", "Tsuen Wan", "Tuen Mun",
             "Yuen Long", "North", "Tai Po", "Sha Tin", "Sai Kung", "Islands"]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = sys.stdout
    rnd = random.Random(42)
    out.write("id,district,station,reading_date,time,pm25,visitors,open\n")
    lines = []
    for i in range(1, n + 1):
        d = DISTRICTS[i % 18]
        lines.append(f"{i},{d},S{rnd.randrange(1000):03d},{1 + i % 28:02d}/{1 + i % 12:02d}/2024,"
                     f"{i % 24:02d}:{i % 60:02d},{rnd.random() * 80:.1f},\"{rnd.randrange(1, 2_000_000):,}\","
                     f"{'true' if i % 3 else 'false'}\n")
        if len(lines) == 10000:
            out.write("".join(lines))
            lines = []
    out.write("".join(lines))


if __name__ == "__main__":
    main()
