// Live readings for the dashboards: finding the Datastreams of a live panel through the SensorThings
// API, their recent history, and one Server-Sent Events stream of new observations for the page.
//
// A panel names ObservedProperties and a Thing property to group by (`area`). Things that do not
// carry that property yet are grouped by the area their description names ("Smart lamppost KE1000
// in Kowloon East (simulated readings)"), so a dashboard works on servers of either kind.

import { getJson } from './api';

/** One Datastream a panel follows. */
export interface Stream {
  id: number;
  property: string;
  group: string;
  unit: string;
}

/** A reading: time in milliseconds since 1970 and its numeric result. */
export interface Reading {
  t: number;
  v: number;
}

/** The most Datastreams one live stream of the server follows (`MAX_DATASTREAMS`). */
export const MAX_FOLLOWED = 100;

interface StaThing {
  '@iot.id': number;
  description?: string;
  properties?: Record<string, unknown> | null;
}

interface StaDatastream {
  '@iot.id': number;
  unitOfMeasurement?: { symbol?: string; name?: string };
  Thing?: StaThing;
  Observations?: { phenomenonTime: string; result: unknown }[];
}

interface StaPage<T> {
  value: T[];
  '@iot.nextLink'?: string;
}

/** An OData string literal. */
function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** The group of a Thing: its property `groupBy`, else the area its description names. */
export function groupOf(thing: StaThing | undefined, groupBy: string): string {
  const p = thing?.properties?.[groupBy];
  if (typeof p === 'string' && p.trim()) return p.trim();
  if (typeof p === 'number') return String(p);
  const m = /\bin ([^()]+?)\s*(?:\(|$)/.exec(thing?.description ?? '');
  return m ? m[1] : '';
}

/** The start of an interval (`a/b`) or an instant, in milliseconds. */
export function timeOf(phenomenonTime: string): number {
  return Date.parse(phenomenonTime.split('/')[0]);
}

/** A numeric result, or null. */
export function numberOf(result: unknown): number | null {
  const n = typeof result === 'number' ? result : typeof result === 'string' ? Number(result) : NaN;
  return Number.isFinite(n) ? n : null;
}

/** The Datastreams measuring `property` (on Things of `network`), each with its group. */
async function datastreamsOf(property: string, network: string | null, groupBy: string, signal: AbortSignal): Promise<Stream[]> {
  let filter = `ObservedProperty/name eq ${lit(property)}`;
  if (network) filter += ` and Thing/properties/network eq ${lit(network)}`;
  const q = new URLSearchParams({
    $filter: filter,
    $select: 'id,unitOfMeasurement',
    $expand: 'Thing($select=id,description,properties)',
    $orderby: 'id',
    $top: '2000',
  });
  const out: Stream[] = [];
  let url: string | undefined = `/sta/v1.1/Datastreams?${q}`;
  for (let pages = 0; url && pages < 5; pages += 1) {
    const page: StaPage<StaDatastream> = await getJson<StaPage<StaDatastream>>(sameOrigin(url), signal);
    for (const d of page.value) {
      out.push({
        id: d['@iot.id'],
        property,
        group: groupOf(d.Thing, groupBy),
        unit: d.unitOfMeasurement?.symbol ?? d.unitOfMeasurement?.name ?? '',
      });
    }
    url = page['@iot.nextLink'];
  }
  return out;
}

/** The path and query of a link the server wrote with its own host, so the page stays same-origin. */
function sameOrigin(url: string): string {
  try {
    const u = new URL(url, location.href);
    return u.pathname + u.search;
  } catch {
    return url;
  }
}

/** What a live panel asks for. */
export interface LiveSpec {
  network: string | null;
  observed_properties: string[];
  group_by: string;
  per_group: number;
}

/** Every Datastream of a panel's properties, with its group. Datastreams without a group are left
 *  out when others of the same property have one. */
export async function discover(spec: LiveSpec, signal: AbortSignal): Promise<Stream[]> {
  const lists = await Promise.all(spec.observed_properties.map((p) => datastreamsOf(p, spec.network, spec.group_by, signal)));
  return lists.flatMap((list) => (list.some((s) => s.group) ? list.filter((s) => s.group) : list));
}

/** For each property and group (groups by name), the first `perGroup` Datastreams by id. */
export function choose(streams: Stream[], perGroup: number): Stream[] {
  const grouped = new Map<string, Stream[]>();
  for (const s of streams) {
    const k = `${s.property}\u0000${s.group}`;
    const g = grouped.get(k) ?? [];
    g.push(s);
    grouped.set(k, g);
  }
  const out: Stream[] = [];
  for (const k of [...grouped.keys()].sort()) {
    out.push(...(grouped.get(k) ?? []).sort((a, b) => a.id - b.id).slice(0, perGroup));
  }
  return out;
}

/** The readings of `ids` since `since` (milliseconds), oldest first, by Datastream id. */
export async function history(ids: number[], since: number, perStream: number, signal: AbortSignal): Promise<Map<number, Reading[]>> {
  const out = new Map<number, Reading[]>();
  // Kept in small batches so that no URL grows long.
  for (let i = 0; i < ids.length; i += 25) {
    const batch = ids.slice(i, i + 25);
    const q = new URLSearchParams({
      $filter: batch.map((id) => `id eq ${id}`).join(' or '),
      $select: 'id',
      $expand: `Observations($filter=phenomenonTime ge ${new Date(since).toISOString()};$orderby=phenomenonTime desc;$top=${perStream};$select=phenomenonTime,result)`,
      $top: String(batch.length),
    });
    const page = await getJson<StaPage<StaDatastream>>(`/sta/v1.1/Datastreams?${q}`, signal);
    for (const d of page.value) {
      const readings: Reading[] = [];
      for (const o of d.Observations ?? []) {
        const v = numberOf(o.result);
        const t = timeOf(o.phenomenonTime);
        if (v !== null && Number.isFinite(t)) readings.push({ t, v });
      }
      readings.sort((a, b) => a.t - b.t);
      out.set(d['@iot.id'], readings);
    }
  }
  return out;
}

/** The state of the page's live stream. */
export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'closed';

/** One SSE stream of new observations of `ids`. EventSource reconnects by itself (sending the last
 *  event id, so nothing is missed that the server still holds); when the server refuses the stream,
 *  it is opened again after a pause. */
export class LiveFeed {
  private source: EventSource | null = null;
  private retry = 0;
  private stopped = false;

  constructor(
    private readonly ids: number[],
    private readonly onReading: (datastream: number, r: Reading) => void,
    private readonly onState: (s: LiveState) => void,
    private readonly onGap: (datastream: number) => void = () => {},
  ) {}

  start(): void {
    if (this.stopped || !this.ids.length) return;
    this.onState(this.retry ? 'reconnecting' : 'connecting');
    const es = new EventSource(`/api/v1/live?datastreams=${this.ids.join(',')}`);
    this.source = es;
    es.onopen = () => {
      this.retry = 0;
      this.onState('live');
    };
    es.addEventListener('observation', (e) => {
      try {
        const o = JSON.parse((e as MessageEvent<string>).data) as { 'Datastream@iot.id': number; phenomenonTime: string; result: unknown };
        const v = numberOf(o.result);
        const t = timeOf(o.phenomenonTime);
        if (v !== null && Number.isFinite(t)) this.onReading(o['Datastream@iot.id'], { t, v });
      } catch {
        // An event this page does not understand is skipped.
      }
    });
    es.addEventListener('gap', (e) => {
      try {
        const g = JSON.parse((e as MessageEvent<string>).data) as { datastream: number };
        this.onGap(g.datastream);
      } catch {
        // As above.
      }
    });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (not a stream): try again later, more slowly each time, up to a minute.
        es.close();
        this.retry += 1;
        this.onState('reconnecting');
        window.setTimeout(() => this.start(), Math.min(60_000, 2000 * 2 ** Math.min(this.retry, 5)));
      } else {
        this.onState('reconnecting');
      }
    };
  }

  stop(): void {
    this.stopped = true;
    this.source?.close();
    this.onState('closed');
  }
}
