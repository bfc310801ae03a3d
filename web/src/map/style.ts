// The map's style: a basemap drawn only from the city's own data (sea-coloured background, the
// districts as land with their boundaries, the buildings extruded by `height_m`) and the layers that
// draw one dataset. No symbol layer anywhere: text would need glyph fonts from a server, and the map
// fetches nothing but this server's tiles.

import type { AddLayerObject, ExpressionSpecification, StyleSpecification } from 'maplibre-gl';
import { sourceLayer, type TileJson } from './data';

/** Buildings are drawn from this zoom on (below it a tile holds too many for a phone). */
export const BUILDINGS_MINZOOM = 13;

/** The camera pitch of the 3D view. */
export const PITCH_3D = 50;

/** Colours of the basemap. */
const SEA = '#b9d3e3';
const LAND = '#eef0e8';
const BOUNDARY = '#6b7688';

/** Building colour by height: low houses pale, towers dark (also the legend's gradient). */
export const HEIGHT_STOPS: [number, string][] = [
  [0, '#e3dccd'],
  [20, '#cbbd9f'],
  [60, '#a8957a'],
  [150, '#7d6a58'],
  [300, '#54463d'],
];

/** The colour of a building chosen in the address search. */
export const SELECTED = '#f2b705';

/** The colours the data layers get, in the order of the layer list: distinct on the pale basemap. */
const PALETTE = [
  '#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#e377c2', '#8c564b',
  '#bcbd22', '#393b79', '#e7298a', '#1b9e77', '#d95f02', '#7570b3', '#66a61e', '#a6761d',
  '#084594', '#cb181d', '#006d2c', '#54278f', '#b15928', '#01665e', '#8e0152', '#4d4d4d',
  '#ff4f9a', '#00a6d6', '#6a3d9a',
];

/** The colour of the `i`-th dataset of the layer list. */
export function colourOf(i: number): string {
  return PALETTE[i % PALETTE.length];
}

/** The URL template of a collection's vector tiles, on this server (never the TileJSON's host, which
 *  is the server's idea of itself and may differ from the page's origin behind a proxy). */
export function tileUrl(id: string): string {
  return `${location.origin}/tiles/${encodeURIComponent(id)}/{z}/{x}/{y}.mvt`;
}

/** The colour of buildings by height (`height_m`). */
export const heightColour: ExpressionSpecification = [
  'interpolate',
  ['linear'],
  ['to-number', ['get', 'height_m'], 0],
  ...HEIGHT_STOPS.flat(),
] as unknown as ExpressionSpecification;

const isPolygon: ExpressionSpecification = ['in', ['geometry-type'], ['literal', ['Polygon', 'MultiPolygon']]];
const isLine: ExpressionSpecification = ['in', ['geometry-type'], ['literal', ['LineString', 'MultiLineString']]];
const isPoint: ExpressionSpecification = ['in', ['geometry-type'], ['literal', ['Point', 'MultiPoint']]];

/** Ids of the basemap's layers that a click can open a popup for, topmost first. */
export const BASEMAP_INTERACTIVE = ['buildings-3d', 'buildings-2d', 'districts-fill'];

/** The basemap style. `threeD` chooses extruded or flat buildings. */
export function baseStyle(threeD: boolean, buildings: TileJson | null, districts: TileJson | null): StyleSpecification {
  const buildingsLayer = buildings ? sourceLayer(buildings, 'buildings') : 'buildings';
  const districtsLayer = districts ? sourceLayer(districts, 'districts') : 'districts';
  return {
    version: 8,
    sources: {
      districts: {
        type: 'vector',
        tiles: [tileUrl('districts')],
        minzoom: 0,
        maxzoom: 14,
        bounds: [113.8, 22.1, 114.5, 22.6],
        attribution: districts?.attribution,
      },
      buildings: {
        type: 'vector',
        tiles: [tileUrl('buildings')],
        minzoom: BUILDINGS_MINZOOM,
        maxzoom: 16,
        bounds: [113.8, 22.1, 114.5, 22.6],
        attribution: buildings?.attribution,
      },
      selected: { type: 'geojson', data: { type: 'FeatureCollection', features: [] } },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': SEA } },
      {
        id: 'districts-fill',
        type: 'fill',
        source: 'districts',
        'source-layer': districtsLayer,
        paint: { 'fill-color': LAND, 'fill-outline-color': LAND },
      },
      {
        id: 'districts-line',
        type: 'line',
        source: 'districts',
        'source-layer': districtsLayer,
        paint: { 'line-color': BOUNDARY, 'line-width': ['interpolate', ['linear'], ['zoom'], 9, 0.8, 14, 2], 'line-dasharray': [3, 2] },
      },
      {
        id: 'district-highlight',
        type: 'line',
        source: 'districts',
        'source-layer': districtsLayer,
        filter: ['==', ['get', 'DC_CODE'], ''],
        paint: { 'line-color': '#0b5d7a', 'line-width': 4 },
      },
      {
        id: 'buildings-2d',
        type: 'fill',
        source: 'buildings',
        'source-layer': buildingsLayer,
        minzoom: BUILDINGS_MINZOOM,
        layout: { visibility: threeD ? 'none' : 'visible' },
        paint: { 'fill-color': heightColour, 'fill-outline-color': '#6f6253' },
      },
      {
        id: 'buildings-3d',
        type: 'fill-extrusion',
        source: 'buildings',
        'source-layer': buildingsLayer,
        minzoom: BUILDINGS_MINZOOM,
        layout: { visibility: threeD ? 'visible' : 'none' },
        paint: {
          'fill-extrusion-color': heightColour,
          'fill-extrusion-height': ['to-number', ['get', 'height_m'], 3],
          'fill-extrusion-base': 0,
          'fill-extrusion-opacity': 0.9,
        },
      },
      {
        id: 'selected-line',
        type: 'line',
        source: 'selected',
        paint: { 'line-color': SELECTED, 'line-width': 4 },
      },
    ],
  };
}

/** The layers that draw one dataset: polygons filled and outlined, lines, and points as circles. */
export function datasetLayers(id: string, sourceLayer: string, colour: string): AddLayerObject[] {
  const common = { source: `ds:${id}`, 'source-layer': sourceLayer };
  return [
    {
      id: `ds:${id}:fill`,
      type: 'fill',
      ...common,
      filter: isPolygon,
      paint: { 'fill-color': colour, 'fill-opacity': 0.3 },
    },
    {
      id: `ds:${id}:line`,
      type: 'line',
      ...common,
      filter: ['any', isPolygon, isLine],
      paint: { 'line-color': colour, 'line-width': 2 },
    },
    {
      id: `ds:${id}:point`,
      type: 'circle',
      ...common,
      filter: isPoint,
      paint: {
        'circle-color': colour,
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 4, 15, 7],
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 1.5,
      },
    },
  ];
}

/** The ids of the layers `datasetLayers` makes for dataset `id`. */
export function datasetLayerIds(id: string): string[] {
  return [`ds:${id}:fill`, `ds:${id}:line`, `ds:${id}:point`];
}
