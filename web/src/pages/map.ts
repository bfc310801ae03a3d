// `/map`: the city's spatial datasets as layers over a basemap drawn from the city's own data.
//
// The page is a side panel (go to a district or an address, the data layers with their colours, the
// basemap's switches) beside a MapLibre map. Everything is fetched from this server: the vector tiles
// of each collection, the worker script (bundled by Vite), nothing else; no symbol layers, so no glyph
// fonts are needed. `?layers=a,b` chooses the data layers and is kept up to date with
// history.replaceState, and the camera is kept in the URL's hash, so that a map can be shared.
// `window.citydataMap` is the MapLibre map, for tests and for the curious.

import 'maplibre-gl/dist/maplibre-gl.css';
import '../map.css';
import '../map/strings';
import {
  LngLatBounds,
  Map as MapLibre,
  NavigationControl,
  Popup,
  ScaleControl,
  setWorkerUrl,
  type LngLatLike,
  type MapGeoJSONFeature,
  type MapMouseEvent,
} from 'maplibre-gl';
import workerUrl from 'maplibre-gl/dist/maplibre-gl-worker.mjs?url';
import { announce, h, nextId, replace } from '../dom';
import { lang, pick, pickLang, t } from '../i18n';
import { errorBox, setTitle } from '../layout';
import type { Text } from '../api';
import {
  collections,
  datasetTitles,
  districts,
  findPlaces,
  sourceLayer,
  tileJson,
  type District,
  type LayerInfo,
  type Place,
} from '../map/data';
import {
  BASEMAP_INTERACTIVE,
  BUILDINGS_MINZOOM,
  HEIGHT_STOPS,
  PITCH_3D,
  SELECTED,
  baseStyle,
  heightColour,
  colourOf,
  datasetLayerIds,
  datasetLayers,
  tileUrl,
} from '../map/style';

declare global {
  interface Window {
    /** The map of the `/map` page (for tests: queryRenderedFeatures, getLayoutProperty...). */
    citydataMap?: MapLibre;
  }
}

/** Collections drawn by the basemap rather than listed as data layers. */
const BASEMAP_COLLECTIONS = new Set(['districts', 'buildings']);

/** Where the map opens without `?layers=` or a hash: Victoria Harbour, pitched so towers show. */
const HOME: { center: LngLatLike; zoom: number; bearing: number } = { center: [114.168, 22.293], zoom: 14.2, bearing: -20 };

/** How many address matches are listed. */
const PLACE_LIMIT = 8;

/** The MapLibre strings of its controls, in the page's language. */
function mapLocale(): Record<string, string> {
  return {
    'Map.Title': t('map.canvas'),
    'NavigationControl.ZoomIn': t('map.zoomin'),
    'NavigationControl.ZoomOut': t('map.zoomout'),
    'NavigationControl.ResetBearing': t('map.resetnorth'),
    'Popup.Close': t('map.close'),
  };
}

/** The layers named by `?layers=`, as given (unknown ones are dropped later). */
function layersFromUrl(): string[] {
  const raw = new URLSearchParams(location.search).get('layers') ?? '';
  return [...new Set(raw.split(',').map((s) => s.trim()).filter(Boolean))];
}

/** Writes the shown layers (in the order they were turned on, the topmost last) into `?layers=`,
 *  without adding a history entry (the hash is kept). */
function writeLayersToUrl(ids: string[]): void {
  const url = new URL(location.href);
  if (ids.length) url.searchParams.set('layers', ids.join(','));
  else url.searchParams.delete('layers');
  // Commas are legal in a query; keep them readable.
  const next = url.toString().replace(/%2C/gi, ',');
  if (next !== location.href) history.replaceState(history.state, '', next);
}

/** A language map (or plain string) read in the page's language, with the language it is in. */
function nameOf(text: Text | string): { text: string; lang: string } {
  return { text: pick(text), lang: pickLang(text) };
}

/** The English text of a language map (for an order that is the same in every language). */
function nameEn(text: Text | string): string {
  return typeof text === 'string' ? text : (text.en ?? Object.values(text)[0] ?? '');
}

/** The name of a feature for a popup's heading: its name in the page's language when it has one. */
function featureName(props: Record<string, unknown>, fallback: string): string {
  const zh = lang() !== 'en';
  const keys = zh
    ? ['name_zh', 'DC_CHIN', '設施名稱', '名稱', 'name_en', 'DC_ENG', 'Facility Name', 'Name', 'name', 'NAME', 'address_zh', 'id']
    : ['name_en', 'DC_ENG', 'Facility Name', 'Name', 'name', 'NAME', 'name_zh', 'DC_CHIN', '設施名稱', 'address_en', 'id'];
  for (const k of keys) {
    const v = props[k];
    if (typeof v === 'string' && v.trim()) return v;
    if (typeof v === 'number') return String(v);
  }
  return fallback;
}

/** A feature's properties as a table: one row per property, the property's name as the row header. */
function propertiesTable(props: Record<string, unknown>, caption: string): HTMLElement {
  const rows = Object.entries(props).filter(([k, v]) => k !== 'geometry' && v !== null && v !== undefined && v !== '');
  return h(
    'table',
    { class: 'map-props' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('map.popup.property')), h('th', { scope: 'col' }, t('map.popup.value')))),
    h(
      'tbody',
      {},
      rows.map(([k, v]) =>
        h('tr', {}, h('th', { scope: 'row' }, breakable(k)), h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))),
      ),
    ),
  );
}

/** A property name that may break after its underscores (`address_en` in a narrow column). */
function breakable(name: string): (string | HTMLElement)[] {
  return name.split('_').flatMap((part, i, all) => (i < all.length - 1 ? [`${part}_`, h('wbr')] : [part]));
}

/** The contents of a popup: heading (the feature's name), the dataset's name and the properties. */
function popupContent(props: Record<string, unknown>, layer: { text: string; lang: string }): HTMLElement {
  const title = featureName(props, layer.text);
  const headingId = nextId('popup');
  return h(
    'div',
    { class: 'map-popup-body', role: 'group', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, title),
    h('p', { class: 'meta-line', lang: layer.lang }, layer.text),
    h('div', { class: 'map-props-wrap', tabindex: 0, role: 'region', 'aria-label': t('map.popup.property') }, propertiesTable(props, title)),
  );
}

/** A swatch: a small square of the layer's colour (decorative; the name beside it says the layer). */
function swatch(colour: string, shape: 'square' | 'line' = 'square'): HTMLElement {
  const el = h('span', { class: `swatch ${shape}`, 'aria-hidden': 'true' });
  el.style.setProperty('--swatch', colour);
  return el;
}

/** Whether the page is narrow enough for the panel to fold away (kept in step with map.css). */
const narrow = window.matchMedia('(max-width: 799.98px)');

export async function render(main: HTMLElement): Promise<void> {
  setTitle(t('map.title'));
  main.classList.add('wide');

  const mapBox = h('div', { class: 'map-canvas', id: 'map-canvas' });
  const panelId = nextId('map-panel');
  const toggle = h('button', { type: 'button', class: 'secondary map-panel-toggle', 'aria-controls': panelId, 'aria-expanded': 'true' });
  const panel = h('div', { class: 'map-panel', id: panelId });
  const side = h(
    'div',
    { class: 'map-side' },
    h('div', { class: 'map-side-head' }, h('h1', {}, t('map.title')), toggle),
    panel,
  );
  const status = h('p', { class: 'map-status', role: 'status' });
  replace(main, h('div', { class: 'map-page' }, side, h('div', { class: 'map-box' }, mapBox, status)));

  const setExpanded = (open: boolean): void => {
    toggle.setAttribute('aria-expanded', String(open));
    toggle.textContent = open ? t('map.panel.hide') : t('map.panel.show');
    side.classList.toggle('collapsed', !open);
  };
  setExpanded(!narrow.matches);
  toggle.addEventListener('click', () => setExpanded(toggle.getAttribute('aria-expanded') !== 'true'));

  // What the panel lists comes from three answers; the districts come later, they are not needed to draw.
  const [cols, titles, tjDistricts, tjBuildings] = await Promise.all([
    collections(),
    datasetTitles(),
    tileJson('districts').catch(() => null),
    tileJson('buildings').catch(() => null),
  ]);
  const infos: LayerInfo[] = cols
    .filter((c) => !BASEMAP_COLLECTIONS.has(c.id))
    .map((c): LayerInfo => {
      const bb = c.extent?.spatial?.bbox?.[0];
      return {
        id: c.id,
        title: titles.get(c.id) ?? c.title ?? c.id,
        colour: '',
        bbox: bb && bb.length >= 4 ? [bb[0], bb[1], bb[2], bb[3]] : undefined,
      };
    })
    // The colours follow the English order, so that a layer has the same colour in every language.
    .sort((a, b) => nameEn(a.title).localeCompare(nameEn(b.title), 'en'));
  infos.forEach((info, i) => (info.colour = colourOf(i)));
  infos.sort((a, b) => pick(a.title).localeCompare(pick(b.title), lang()));
  const byId = new Map(infos.map((l) => [l.id, l]));
  const basemapNames = {
    districts: nameOf(titles.get('districts') ?? t('map.basemap.districts')),
    buildings: nameOf(titles.get('buildings') ?? t('map.basemap.buildings')),
  };

  const wanted = layersFromUrl().filter((id) => byId.has(id));
  const shown: string[] = [];
  const hasHash = /^#\d/.test(location.hash);

  setWorkerUrl(workerUrl);
  let map: MapLibre;
  try {
    map = new MapLibre({
      container: mapBox,
      style: baseStyle(true, tjBuildings, tjDistricts),
      center: HOME.center,
      zoom: HOME.zoom,
      bearing: HOME.bearing,
      pitch: PITCH_3D,
      maxPitch: 70,
      minZoom: 8,
      maxBounds: [
        [113.3, 21.8],
        [115.0, 23.0],
      ],
      hash: true,
      locale: mapLocale(),
      attributionControl: { compact: true },
      fadeDuration: 0,
    });
  } catch (err) {
    replace(mapBox, h('p', { class: 'error', role: 'alert' }, t('map.nogl')), errorBox(err));
    return;
  }
  window.citydataMap = map;
  map.addControl(new NavigationControl({ visualizePitch: true }), 'top-right');
  map.addControl(new ScaleControl({ unit: 'metric' }), 'bottom-left');
  // A tile that fails is said in the status line (MapLibre would otherwise log it as an error).
  map.on('error', (e) => {
    const msg = e.error instanceof Error ? e.error.message : String(e.error ?? '');
    status.textContent = t('map.tileerror', msg);
  });

  const loaded = new Promise<void>((resolve) => map.once('load', () => resolve()));
  // The attribution starts folded: on a phone it would cover a fifth of the map.
  map.once('idle', () => {
    const attrib = mapBox.querySelector('.maplibregl-ctrl-attrib.maplibregl-compact-show');
    attrib?.querySelector<HTMLButtonElement>('.maplibregl-ctrl-attrib-button')?.click();
  });

  // --- Popups -----------------------------------------------------------------------------------
  let popup: Popup | null = null;
  const openPopup = (at: LngLatLike, props: Record<string, unknown>, layer: { text: string; lang: string }): void => {
    popup?.remove();
    // Escape closes it and gives the focus back to where it was (the canvas after a click).
    const back = document.activeElement instanceof HTMLElement && document.activeElement !== document.body ? document.activeElement : map.getCanvas();
    const opened = new Popup({ maxWidth: '340px', className: 'map-popup', focusAfterOpen: true })
      .setLngLat(at)
      .setDOMContent(popupContent(props, layer))
      .addTo(map);
    opened.getElement().addEventListener('keydown', (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      e.stopPropagation();
      opened.remove();
      back.focus();
    });
    popup = opened;
    announce(t('map.popup.opened', featureName(props, layer.text)));
  };

  const layerNameOf = (layerId: string): { text: string; lang: string } => {
    if (layerId.startsWith('ds:')) {
      const info = byId.get(layerId.split(':')[1]);
      if (info) return nameOf(info.title);
    }
    if (layerId.startsWith('buildings')) return basemapNames.buildings;
    return basemapNames.districts;
  };

  const interactiveLayers = (): string[] => {
    const ids = [...shown].reverse().flatMap((id) => datasetLayerIds(id).reverse());
    return [...ids, ...BASEMAP_INTERACTIVE].filter(
      (id) => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== 'none',
    );
  };

  map.on('click', (e: MapMouseEvent) => {
    const p = e.point;
    const box: [[number, number], [number, number]] = [
      [p.x - 4, p.y - 4],
      [p.x + 4, p.y + 4],
    ];
    const hits: MapGeoJSONFeature[] = map.queryRenderedFeatures(box, { layers: interactiveLayers() });
    // The topmost hit of the data layers wins over the basemap's.
    const hit = hits.find((f) => f.layer.id.startsWith('ds:')) ?? hits[0];
    if (!hit) return;
    openPopup(e.lngLat, hit.properties ?? {}, layerNameOf(hit.layer.id));
  });
  // A pointer cursor over what a click would open; looked up at most once a frame.
  let hover: MapMouseEvent | null = null;
  map.on('mousemove', (e: MapMouseEvent) => {
    if (hover === null) {
      requestAnimationFrame(() => {
        const at = hover;
        hover = null;
        if (!at) return;
        const layers = interactiveLayers().filter((id) => id.startsWith('ds:') || id.startsWith('buildings'));
        const over = layers.length > 0 && map.queryRenderedFeatures(at.point, { layers }).length > 0;
        map.getCanvas().style.cursor = over ? 'pointer' : '';
      });
    }
    hover = e;
  });

  // --- Data layers ------------------------------------------------------------------------------
  // Areas are filled under the buildings (a fill drawn over extruded towers looks like a stain on
  // them); their outlines, lines and points go above, where they stay visible among the towers.
  const beneath = (layerId: string): string => (layerId.endsWith(':fill') ? 'buildings-2d' : 'selected-line');
  const added = new Set<string>();
  const ensureLayer = async (info: LayerInfo): Promise<void> => {
    if (added.has(info.id)) return;
    const tj = await tileJson(info.id);
    await loaded;
    if (added.has(info.id)) return;
    map.addSource(`ds:${info.id}`, {
      type: 'vector',
      tiles: [tileUrl(info.id)],
      minzoom: tj.minzoom ?? 0,
      maxzoom: Math.min(tj.maxzoom ?? 16, 16),
      bounds: tj.bounds,
      attribution: tj.attribution,
    });
    for (const layer of datasetLayers(info.id, sourceLayer(tj, info.id), info.colour)) map.addLayer(layer, beneath(layer.id));
    added.add(info.id);
  };
  const setShown = async (info: LayerInfo, on: boolean, quiet = false): Promise<void> => {
    const name = pick(info.title);
    if (on) {
      try {
        await ensureLayer(info);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        status.textContent = t('map.layer.failed', name, msg);
        const box = document.getElementById(`layer-${info.id}`) as HTMLInputElement | null;
        if (box) box.checked = false;
        return;
      }
      if (!shown.includes(info.id)) shown.push(info.id);
    } else {
      const at = shown.indexOf(info.id);
      if (at >= 0) shown.splice(at, 1);
    }
    if (added.has(info.id)) {
      for (const id of datasetLayerIds(info.id)) map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
      // A layer turned on again comes to the top.
      if (on) for (const id of datasetLayerIds(info.id)) map.moveLayer(id, beneath(id));
    }
    writeLayersToUrl(shown);
    if (!quiet) announce(t(on ? 'map.layer.on' : 'map.layer.off', name));
  };

  const layerList = infos.length
    ? h(
        'ul',
        { class: 'layer-list' },
        infos.map((info) => {
          const name = nameOf(info.title);
          const box = h('input', {
            type: 'checkbox',
            id: `layer-${info.id}`,
            value: info.id,
            checked: wanted.includes(info.id),
            onchange: (e: Event) => void setShown(info, (e.target as HTMLInputElement).checked),
          });
          return h(
            'li',
            {},
            h('label', { for: `layer-${info.id}` }, box, swatch(info.colour), h('span', { lang: name.lang }, name.text)),
            h(
              'a',
              { class: 'layer-about', href: `/datasets/${encodeURIComponent(info.id)}`, 'aria-label': t('map.layer.about', name.text), title: t('map.layer.about', name.text) },
              'ⓘ',
            ),
          );
        }),
      )
    : h('p', {}, t('map.layers.none'));

  // --- Basemap switches -------------------------------------------------------------------------
  const districtsBox = h('input', { type: 'checkbox', id: 'basemap-districts', checked: true });
  const buildingsBox = h('input', { type: 'checkbox', id: 'basemap-buildings', checked: true });
  const threeDBox = h('input', { type: 'checkbox', id: 'basemap-3d', checked: true });
  const applyBuildings = (animate: boolean): void => {
    const on = buildingsBox.checked;
    const threeD = threeDBox.checked;
    threeDBox.disabled = !on;
    map.setLayoutProperty('buildings-3d', 'visibility', on && threeD ? 'visible' : 'none');
    map.setLayoutProperty('buildings-2d', 'visibility', on && !threeD ? 'visible' : 'none');
    if (animate) map.easeTo({ pitch: threeD ? PITCH_3D : 0, duration: 600 });
  };
  districtsBox.addEventListener('change', () => {
    const v = districtsBox.checked ? 'visible' : 'none';
    for (const id of ['districts-fill', 'districts-line', 'district-highlight']) map.setLayoutProperty(id, 'visibility', v);
  });
  buildingsBox.addEventListener('change', () => applyBuildings(false));
  threeDBox.addEventListener('change', () => applyBuildings(true));

  const gradient = h('span', { class: 'height-ramp', 'aria-hidden': 'true' });
  gradient.style.setProperty(
    '--ramp',
    `linear-gradient(to right, ${HEIGHT_STOPS.map(([m, c]) => `${c} ${Math.round((m / 300) * 100)}%`).join(', ')})`,
  );

  // --- Go to: districts and addresses -------------------------------------------------------------
  const districtSelect = h('select', { id: 'goto-district', disabled: true }, h('option', { value: '' }, t('loading')));
  const districtGo = h('button', { type: 'submit', disabled: true }, t('map.district.go'));
  let districtList: District[] = [];
  const flyToDistrict = (d: District): void => {
    popup?.remove();
    map.fitBounds(d.bounds, { padding: 30, maxZoom: 15, pitch: threeDBox.checked ? PITCH_3D : 0, duration: 1200 });
    map.setFilter('district-highlight', ['==', ['get', 'DC_CODE'], d.code]);
    announce(t('map.district.shown', pick(d.names)));
    if (narrow.matches) mapBox.scrollIntoView({ block: 'nearest' });
  };
  const districtForm = h(
    'form',
    {
      class: 'map-form',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const d = districtList.find((x) => x.code === districtSelect.value);
        if (d) flyToDistrict(d);
      },
    },
    h('label', { for: 'goto-district' }, t('map.district')),
    h('div', { class: 'map-form-row' }, districtSelect, districtGo),
  );
  void districts()
    .then((list) => {
      districtList = list.sort((a, b) => pick(a.names).localeCompare(pick(b.names), lang()));
      replace(
        districtSelect,
        h('option', { value: '' }, t('map.district.choose')),
        districtList.map((d) => h('option', { value: d.code, lang: pickLang(d.names) }, pick(d.names))),
      );
      districtSelect.disabled = false;
      districtGo.disabled = false;
    })
    .catch((err: unknown) => replace(districtSelect, h('option', { value: '' }, t('error.load', String(err)))));

  const addressInput = h('input', {
    id: 'goto-address',
    type: 'search',
    autocomplete: 'off',
    placeholder: t('map.address.placeholder'),
    'aria-describedby': 'goto-address-status',
  });
  const placeStatus = h('p', { id: 'goto-address-status', class: 'meta-line', 'aria-live': 'polite' });
  const placeList = h('ul', { class: 'place-list' });
  let searching: AbortController | null = null;
  const showPlace = (place: Place): void => {
    const r = place.record;
    const [w, s, e, n] = place.bounds;
    const center: [number, number] = [(w + e) / 2, (s + n) / 2];
    const selected = map.getSource('selected');
    if (selected && 'setData' in selected) {
      (selected as unknown as { setData(d: unknown): void }).setData({ type: 'Feature', properties: {}, geometry: r.geometry });
    }
    // The chosen building is coloured out of the others (its outline on the ground can hide behind towers).
    map.setPaintProperty('buildings-3d', 'fill-extrusion-color', [
      'case', ['==', ['get', 'id'], String(r.id ?? '')], SELECTED, heightColour,
    ]);
    // The building ends up below the middle, so that its popup has room above it.
    const offset: [number, number] = [0, Math.round(map.getCanvas().clientHeight * 0.2)];
    map.flyTo({ center, offset, zoom: Math.max(map.getZoom(), 16.5), pitch: threeDBox.checked ? PITCH_3D : 0, duration: 1200 });
    map.once('moveend', () => openPopup(center, r, basemapNames.buildings));
    if (narrow.matches) mapBox.scrollIntoView({ block: 'nearest' });
  };
  const addressForm = h(
    'form',
    {
      class: 'map-form',
      role: 'search',
      onsubmit: async (e: Event) => {
        e.preventDefault();
        const q = addressInput.value.trim();
        replace(placeList);
        if ([...q].length < 2) {
          placeStatus.textContent = t('map.address.short');
          return;
        }
        searching?.abort();
        searching = new AbortController();
        placeStatus.textContent = t('loading');
        try {
          const { places, total } = await findPlaces(q, PLACE_LIMIT, searching.signal);
          const zh = lang() !== 'en';
          placeStatus.textContent = !places.length
            ? t('map.address.none')
            : total > places.length
              ? t('map.address.more', places.length, total)
              : t('map.address.results', total);
          replace(
            placeList,
            places.map((pl) => {
              const r = pl.record;
              const addr = String((zh ? r.address_zh : r.address_en) ?? r.address_en ?? r.id ?? '');
              return h(
                'li',
                {},
                h('button', { type: 'button', class: 'secondary place', lang: zh ? 'zh-Hant' : 'en', onclick: () => showPlace(pl) }, addr),
              );
            }),
          );
        } catch (err) {
          if ((err as Error).name === 'AbortError') return;
          placeStatus.textContent = t('error.load', err instanceof Error ? err.message : String(err));
        }
      },
    },
    h('label', { for: 'goto-address' }, t('map.address')),
    h('div', { class: 'map-form-row' }, addressInput, h('button', { type: 'submit' }, t('map.address.search'))),
  );

  const headGoto = nextId('h');
  const headLayers = nextId('h');
  const headBase = nextId('h');
  replace(
    panel,
    h(
      'section',
      { 'aria-labelledby': headGoto },
      h('h2', { id: headGoto }, t('map.goto')),
      districtForm,
      addressForm,
      placeStatus,
      placeList,
    ),
    h(
      'section',
      { 'aria-labelledby': headLayers },
      h('h2', { id: headLayers }, t('map.layers')),
      h('p', { class: 'meta-line', id: 'layers-help' }, t('map.layers.help')),
      h('fieldset', { class: 'layer-fieldset', 'aria-describedby': 'layers-help' }, h('legend', { class: 'visually-hidden' }, t('map.layers')), layerList),
    ),
    h(
      'section',
      { 'aria-labelledby': headBase },
      h('h2', { id: headBase }, t('map.basemap')),
      h(
        'ul',
        { class: 'layer-list' },
        h('li', {}, h('label', { for: 'basemap-districts' }, districtsBox, swatch('#6b7688', 'line'), h('span', { lang: basemapNames.districts.lang }, basemapNames.districts.text))),
        h('li', {}, h('label', { for: 'basemap-buildings' }, buildingsBox, swatch('#a8957a'), h('span', { lang: basemapNames.buildings.lang }, basemapNames.buildings.text))),
        h('li', {}, h('label', { for: 'basemap-3d' }, threeDBox, h('span', {}, t('map.basemap.3d')))),
      ),
      h(
        'div',
        { class: 'height-legend' },
        h('span', {}, t('map.basemap.height')),
        h('span', { class: 'ramp-row' }, h('span', {}, '0 m'), gradient, h('span', {}, '300 m')),
        h('span', { class: 'meta-line' }, t('map.basemap.zoomhint', BUILDINGS_MINZOOM)),
      ),
    ),
  );

  // --- Start: the layers of the URL, framed when the URL gives no camera ---------------------------
  await loaded;
  // One after the other, so that they stack (and stay in the URL) in the order given.
  for (const id of wanted) void tileJson(id).catch(() => null);
  for (const id of wanted) await setShown(byId.get(id) as LayerInfo, true, true);
  writeLayersToUrl(shown);
  if (!hasHash && shown.length) {
    const b = new LngLatBounds();
    for (const id of shown) {
      const bb = byId.get(id)?.bbox;
      if (bb) b.extend([bb[0], bb[1], bb[2], bb[3]]);
    }
    if (!b.isEmpty()) map.fitBounds(b, { padding: 40, maxZoom: 15, duration: 0, pitch: PITCH_3D });
  }
  // Tests wait for this: the style, the basemap and the layers of the URL are in place.
  mapBox.dataset.state = 'loaded';
  narrow.addEventListener('change', () => {
    setExpanded(!narrow.matches);
    map.resize();
  });
}
