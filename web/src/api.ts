// Calls to the server's own APIs (same origin; the UI never fetches from anywhere else).

/** An API answer that was not 2xx, with the server's reason. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A path with query parameters; empty and undefined values are left out, arrays repeat the key. */
export function apiUrl(path: string, params: Record<string, string | number | undefined | (string | number)[]> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, String(one));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** GETs JSON; a failure becomes an ApiError carrying the server's `error` message when it gave one. */
export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, { headers: { Accept: 'application/json' }, signal });
  if (!res.ok) {
    let reason = `${res.status} ${res.statusText}`;
    try {
      const body = await res.json();
      const msg = body?.error?.message ?? body?.error ?? body?.message ?? body?.description;
      if (typeof msg === 'string') reason = msg;
    } catch {
      // Not JSON: the status says enough.
    }
    throw new ApiError(res.status, reason);
  }
  return (await res.json()) as T;
}

/** A language map as the APIs give titles and descriptions. */
export type Text = Record<string, string>;

/** One field of a Frictionless Table Schema. */
export interface Field {
  name: string;
  type: string;
  description?: string;
  title?: string;
}

/** One version of a resource. */
export interface Version {
  number: number;
  sha256: string;
  bytes: number;
  filename?: string;
  format?: string;
  row_count?: number;
  created?: string;
  publisher?: string;
  download_url?: string;
}

/** A resource of a dataset. */
export interface Resource {
  id: string;
  name: string;
  title: Text;
  description: Text;
  format: string;
  row_count: number;
  current_version: number;
  rows_url: string;
  download_url?: string;
  schema?: { fields: Field[] };
  versions?: Version[];
}

/** A dataset of the native API. */
export interface Dataset {
  slug: string;
  title: Text;
  description: Text;
  organization: { slug: string; title: Text };
  tags: string[];
  license: string;
  frequency: string;
  theme: string;
  source: string;
  created: string;
  modified: string;
  url: string;
  resources: Resource[];
}

/** The answer of `/api/v1/datasets`. */
export interface SearchResult {
  count: number;
  datasets: Dataset[];
  /** Counts per facet value; organisation values also carry the organisation's name. */
  facets: Record<string, { value: string; count: number; title?: Text }[]>;
}

/** The answer of a rows query. */
export interface Rows {
  fields: Field[];
  records: Record<string, unknown>[];
  total?: number;
  total_exact?: boolean;
  next?: string;
}
