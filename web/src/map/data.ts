// What the map page reads from the server: the spatial collections, their TileJSON, the dataset
// titles in every language, the districts with their bounds, and building addresses.

import { apiUrl, getJson, type SearchResult, type Text } from '../api';

/** One collection of `/ogc/collections`. */
export interface Collection {
  id: string;
  title: string;
  extent?: { spatial?: { bbox?: number[][] } };
}

/** The parts of a TileJSON the map uses. */
export interface TileJson {
  minzoom?: number;
  maxzoom?: number;
  bounds?: [number, number, number, number];
  attribution?: string;
  vector_layers?: { id: string }[];
}

/** A spatial dataset as the layer list shows it. */
export interface LayerInfo {
  id: string;
  title: Text | string;
  colour: string;
  bbox?: [number, number, number, number];
}

/** A district: code, names and the bounds of its geometry. */
export interface District {
  code: string;
  names: Text;
  bounds: [number, number, number, number];
}

/** The spatial collections, in the server's order. */
export async function collections(): Promise<Collection[]> {
  const body = await getJson<{ collections: Collection[] }>('/ogc/collections');
  return body.collections;
}

/** The title of every dataset in each language, by slug (empty when the catalogue cannot be read). */
export async function datasetTitles(): Promise<Map<string, Text>> {
  const out = new Map<string, Text>();
  try {
    const res = await getJson<SearchResult>(apiUrl('/api/v1/datasets', { limit: 1000 }));
    for (const d of res.datasets) out.set(d.slug, d.title);
  } catch {
    // The collection titles (English) stand in.
  }
  return out;
}

const tileJsonCache = new Map<string, Promise<TileJson>>();

/** The TileJSON of collection `id` (fetched once). */
export function tileJson(id: string): Promise<TileJson> {
  let p = tileJsonCache.get(id);
  if (!p) {
    p = getJson<TileJson>(`/tiles/${encodeURIComponent(id)}.json`);
    p.catch(() => tileJsonCache.delete(id));
    tileJsonCache.set(id, p);
  }
  return p;
}

/** The source-layer name a TileJSON announces (the collection id when it names none). */
export function sourceLayer(tj: TileJson, id: string): string {
  return tj.vector_layers?.[0]?.id ?? id;
}

type Position = number[];
interface Geometry {
  type: string;
  coordinates?: unknown;
  geometries?: Geometry[];
}

/** The bounds `[west, south, east, north]` of a GeoJSON geometry, or null when it has no position. */
export function geometryBounds(g: Geometry | null | undefined): [number, number, number, number] | null {
  if (!g) return null;
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c: unknown): void => {
    if (!Array.isArray(c)) return;
    if (typeof c[0] === 'number' && typeof c[1] === 'number') {
      const p = c as Position;
      b[0] = Math.min(b[0], p[0]);
      b[1] = Math.min(b[1], p[1]);
      b[2] = Math.max(b[2], p[0]);
      b[3] = Math.max(b[3], p[1]);
      return;
    }
    for (const x of c) walk(x);
  };
  if (g.type === 'GeometryCollection') {
    for (const x of g.geometries ?? []) {
      const inner = geometryBounds(x);
      if (inner) walk([inner.slice(0, 2), inner.slice(2)]);
    }
  } else {
    walk(g.coordinates);
  }
  return Number.isFinite(b[0]) ? [b[0], b[1], b[2], b[3]] : null;
}

/** The 18 districts with English and Chinese names and bounds, from the districts collection. */
export async function districts(): Promise<District[]> {
  const body = await getJson<{ features: { properties: Record<string, unknown>; geometry: Geometry }[] }>(
    '/ogc/collections/districts/items?limit=100',
  );
  const out: District[] = [];
  for (const f of body.features) {
    const bounds = geometryBounds(f.geometry);
    const p = f.properties ?? {};
    if (!bounds) continue;
    const en = String(p.DC_ENG ?? p.DC_CODE ?? '');
    const zh = String(p.DC_CHIN ?? '');
    out.push({ code: String(p.DC_CODE ?? en), names: zh ? { en, 'zh-Hant': zh } : { en }, bounds });
  }
  return out;
}

/** A building found by address. */
export interface Place {
  record: Record<string, unknown>;
  bounds: [number, number, number, number];
}

/** The fields of a building the search asks for. */
const PLACE_FIELDS = [
  'id', 'name_en', 'name_zh', 'address_en', 'address_zh', 'district_en', 'district_zh', 'use_en', 'use_zh',
  'height_m', 'floors', 'year_built', 'geometry',
];

/** Buildings whose text matches `q` (the rows' full-text search), at most `limit`, with the total. */
export async function findPlaces(q: string, limit: number, signal?: AbortSignal): Promise<{ places: Place[]; total: number }> {
  const url = apiUrl('/api/v1/datasets/buildings/resources/buildings/rows', {
    _q: q,
    _limit: limit,
    _fields: PLACE_FIELDS.join(','),
  });
  const res = await getJson<{ records: Record<string, unknown>[]; total?: number }>(url, signal);
  const places: Place[] = [];
  for (const r of res.records) {
    const bounds = geometryBounds(r.geometry as Geometry);
    if (bounds) places.push({ record: r, bounds });
  }
  return { places, total: res.total ?? places.length };
}
