// Charts drawn with uPlot (a small canvas chart library), loaded only by the pages that draw one.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

import { lang } from './i18n';

const INK = '#1b2430';
const clock = new Intl.DateTimeFormat(lang(), { hour: '2-digit', minute: '2-digit' });
const BRAND = '#0b5d7a';

/** Fits a chart to its box's width (and follows it when the window is resized). */
function fit(box: HTMLElement, chart: uPlot, height: number): void {
  const resize = () => chart.setSize({ width: Math.max(200, box.clientWidth - 2), height });
  new ResizeObserver(resize).observe(box);
  resize();
}

/** Bars of `values` against category `labels` (shown on the x axis, thinned when crowded). */
export function barChart(box: HTMLElement, labels: string[], values: number[], name: string): void {
  box.replaceChildren();
  const xs = labels.map((_, i) => i);
  const chart = new uPlot(
    {
      width: Math.max(200, box.clientWidth - 2),
      height: 260,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] } },
      axes: [
        {
          stroke: INK,
          values: (_u, splits) => splits.map((v) => (Number.isInteger(v) && labels[v] !== undefined ? shorten(labels[v]) : '')),
          gap: 4,
        },
        { stroke: INK, size: 70 },
      ],
      series: [{}, { label: name, stroke: BRAND, fill: 'rgba(11,93,122,0.55)', paths: uPlot.paths.bars?.({ size: [0.7, 60] }), points: { show: false } }],
    },
    [xs, values],
    box,
  );
  fit(box, chart, 260);
}

/** Lines over time: `times` in seconds since 1970, one series per entry of `series`. */
export function timeChart(
  box: HTMLElement,
  times: number[],
  series: { name: string; values: (number | null)[]; colour: string }[],
  height = 220,
): uPlot {
  box.replaceChildren();
  const chart = new uPlot(
    {
      width: Math.max(200, box.clientWidth - 2),
      height,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Asia/Hong_Kong'),
      // Times in the page's language (uPlot's own names are English); the dates tzDate gives
      // already read as Hong Kong time.
      fmtDate: () => (d: Date) => clock.format(d),
      axes: [{ stroke: INK }, { stroke: INK, size: 60 }],
      series: [{}, ...series.map((s) => ({ label: s.name, stroke: s.colour, width: 2, spanGaps: true }))],
    },
    [times, ...series.map((s) => s.values)],
    box,
  );
  fit(box, chart, height);
  return chart;
}

function shorten(s: string, max = 14): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}
