// oceanbridge dashboard: plain JS, no framework, no CDN. Reads /api/*, follows /api/events.
// The token (if the server wants one) goes only in the Authorization header.
'use strict';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'oceanbridge.token';
const ENERGY = [
  ['EMSHeartbeatReport.pvInDayEnergy', 'Solar'],
  ['EMSHeartbeatReport.gridInDayEnergy', 'Grid import'],
  ['EMSHeartbeatReport.gridOutDayEnergy', 'Grid export'],
  ['EMSHeartbeatReport.bpInDayEnergy', 'Battery charge'],
  ['EMSHeartbeatReport.bpOutDayEnergy', 'Battery discharge'],
  ['EMSHeartbeatReport.loadDayEnergy', 'Home'],
];

const app = {
  token: null,
  device: null,
  rows: [],          // catalog rows from /api/states
  byKey: new Map(),  // key -> row
  channels: new Map(), // channel -> {stage, last_push_ms, ...} (docs/stages.md)
  events: null,
  renderPending: false,
};

// --- token: asked once (when the API answers 401), kept in localStorage, sent only as the
// Authorization header — never in a URL (URLs end up in logs and browser history).
function authHeaders() {
  return app.token ? { Authorization: 'Bearer ' + app.token } : {};
}

function initToken() {
  // An old bookmark may carry ?token=: take it out of the address bar, unused.
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : ''));
  }
  try { app.token = localStorage.getItem(TOKEN_KEY); } catch (e) { app.token = null; }
  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    app.token = $('auth-token').value.trim();
    $('auth-token').value = '';
    try { localStorage.setItem(TOKEN_KEY, app.token); } catch (e) { /* private mode: this tab only */ }
    $('auth').hidden = true;
    start();
  });
}

// The API refused the token (or there is none): forget it and ask.
function askToken() {
  if (app.token) $('auth-note').textContent = 'The token was refused; enter the current one.';
  app.token = null;
  try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
  $('auth').hidden = false;
  $('auth-token').focus();
}

async function api(path) {
  const res = await fetch(path, { headers: authHeaders() });
  if (res.status === 401) {
    askToken();
    throw new Error('unauthorized');
  }
  if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
  return res.json();
}

// A download (CSV, diagnostics) through fetch, so the token travels as a header: the
// answer becomes a blob the browser saves under the server's file name.
async function download(url, fallbackName) {
  const note = $('download-note');
  note.textContent = '';
  try {
    const res = await fetch(url, { headers: authHeaders() });
    if (res.status === 401) { askToken(); return; }
    if (!res.ok) {
      const text = await res.text();
      let message = text;
      try { message = JSON.parse(text).error || text; } catch (e) { /* plain text */ }
      note.textContent = 'download failed: ' + message;
      return;
    }
    const disposition = res.headers.get('content-disposition') || '';
    const m = /filename="([^"]+)"/.exec(disposition);
    const blob = await res.blob();
    const a = el('a', { href: URL.createObjectURL(blob), download: m ? m[1] : fallbackName });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  } catch (e) {
    note.textContent = 'download failed: ' + e.message;
  }
}

// Links whose data-url is fetched as a download on click.
function downloadLink(id, fallbackName) {
  $(id).addEventListener('click', (ev) => {
    ev.preventDefault();
    download($(id).dataset.url, fallbackName);
  });
}

// --- formatting ----------------------------------------------------------------------
function fmtWatts(w) {
  if (w === null || w === undefined || Number.isNaN(w)) return '–';
  const a = Math.abs(w);
  return a >= 1000 ? (a / 1000).toFixed(2) + ' kW' : Math.round(a) + ' W';
}
function fmtValue(v) {
  if (v === null || v === undefined) return '–';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'number') return String(Math.round(v * 1000) / 1000);
  return String(v);
}
// The path a value came on (docs/modbus.md): a small marker after its age; the cloud's
// push, the usual path, has none.
function sourceMark(source) {
  return { modbus: ' ·M', cloud_poll: ' ·P', history: ' ·H' }[source] || '';
}

function fmtAge(s) {
  if (s === null || s === undefined) return '';
  if (s < 90) return Math.round(s) + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  return Math.round(s / 3600) + ' h';
}
// --- stages: fresh / stale / unavailable per channel (docs/stages.md) -----------------
function channelOf(key) { return key.split('.')[0]; }
function stageOf(channel) {
  const c = app.channels.get(channel);
  return c ? c.stage : null;
}
function stageTitle(channel) {
  const c = app.channels.get(channel);
  if (!c || c.stage === 'fresh') return '';
  if (!c.last_push_ms) return c.stage + ': no report from the device yet (values from a quota poll or the history)';
  return c.stage + ': last report from the device ' + fmtAge((Date.now() - c.last_push_ms) / 1000) + ' ago';
}
// Greys `node` (class stale / unavailable) and explains why in its tooltip.
function markStage(node, channel) {
  const stage = stageOf(channel);
  node.classList.remove('stale', 'unavailable');
  node.removeAttribute('data-stage');
  node.removeAttribute('title');
  if (stage && stage !== 'fresh') {
    node.classList.add(stage);
    node.setAttribute('data-stage', stage);
    node.setAttribute('title', stageTitle(channel));
  }
}

function num(key) {
  const r = app.byKey.get(key);
  return r && typeof r.value === 'number' ? r.value : null;
}
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// --- energy flow ---------------------------------------------------------------------
function setFlow(name, watts, lineDir, dirText) {
  const t = $('flow-' + name + '-value');
  t.textContent = fmtWatts(watts);
  t.setAttribute('data-watts', watts === null ? '' : String(watts));
  const line = $('line-' + name);
  line.classList.remove('forward', 'backward', 'idle');
  line.classList.add(watts === null || Math.abs(watts) < 1 ? 'idle' : lineDir);
  const d = $('flow-' + name + '-dir');
  if (d) d.textContent = dirText || '';
}

function renderFlow() {
  const pv = num('EnergyStreamItem.pvPwr');
  const load = num('EnergyStreamItem.loadPwr');
  const grid = num('EnergyStreamItem.gridPwr');
  const bat = num('EnergyStreamItem.bpPwr');
  // Lines are drawn node → hub (pv, grid, battery) and hub → home.
  setFlow('pv', pv, 'forward');
  setFlow('load', load, 'forward');
  setFlow('grid', grid, grid !== null && grid < 0 ? 'backward' : 'forward',
    grid === null ? '' : grid > 0 ? 'importing' : grid < 0 ? 'exporting' : 'idle');
  setFlow('battery', bat, bat !== null && bat < 0 ? 'backward' : 'forward',
    bat === null ? '' : bat > 0 ? 'discharging' : bat < 0 ? 'charging' : 'idle');
  markStage($('flow-card'), 'EnergyStreamItem');
  $('flow-stage').textContent = stageTitle('EnergyStreamItem');
}

function renderPacks() {
  const box = $('packs');
  box.textContent = '';
  const items = [['System', 'EnergyStreamItem.bpSoc']];
  for (let i = 0; i < 3; i++) {
    if (num('bpInfo' + i + '.bpSoc') !== null) items.push(['Pack ' + (i + 1), 'bpInfo' + i + '.bpSoc']);
  }
  for (const [label, key] of items) {
    const soc = num(key);
    const div = el('div', { class: 'pack', 'data-key': key });
    markStage(div, channelOf(key));
    div.append(el('div', {}, label + ': ' + (soc === null ? '–' : soc + ' %')));
    const bar = el('div', { class: 'bar' });
    const fill = el('div');
    fill.style.width = Math.max(0, Math.min(100, soc || 0)) + '%';
    bar.append(fill);
    div.append(bar);
    box.append(div);
  }
}

function renderToday() {
  const body = $('today').tBodies[0];
  body.textContent = '';
  for (const [key, label] of ENERGY) {
    const v = num(key);
    const tr = el('tr');
    if (v !== null) markStage(tr, channelOf(key));
    tr.append(el('td', {}, label), el('td', { class: 'num', id: 'today-' + key.split('.')[1] }, v === null ? '–' : (v / 1000).toFixed(2) + ' kWh'));
    body.append(tr);
  }
}

// --- states table --------------------------------------------------------------------
function rangeText(r) {
  if (r.min === null && r.max === null) return '';
  return (r.min ?? '') + ' … ' + (r.max ?? '∞');
}

function renderTable() {
  const q = $('search').value.trim().toLowerCase();
  const onlyWarn = $('only-warn').checked;
  const body = $('states').tBodies[0];
  const frag = document.createDocumentFragment();
  const now = Date.now();
  let shown = 0;
  for (const r of app.rows) {
    if (onlyWarn && !r.out_of_range) continue;
    if (q && !(r.key.toLowerCase().includes(q) || r.human_name.toLowerCase().includes(q))) continue;
    shown++;
    const tr = el('tr', { 'data-key': r.key });
    if (r.out_of_range) tr.classList.add('warn');
    if (r.kind === 'number') {
      tr.classList.add('clickable');
      tr.addEventListener('click', () => { $('chart-state').value = r.key; loadChart(); });
    }
    const age = r.updated_ms ? (now - r.updated_ms) / 1000 : null;
    if (r.source === 'modbus') tr.title = 'from the device\'s Modbus TCP (local path)';
    if (r.value !== null && r.value !== undefined) markStage(tr, r.channel);
    tr.append(
      el('td', {}, r.key),
      el('td', {}, r.human_name),
      el('td', { class: 'num' }, fmtValue(r.value) + (r.out_of_range ? ' ⚠' : '')),
      el('td', {}, r.unit),
      el('td', {}, rangeText(r)),
      el('td', { class: 'num' }, fmtAge(age) + sourceMark(r.source)),
    );
    frag.append(tr);
  }
  body.textContent = '';
  body.append(frag);
  $('state-count').textContent = '(' + shown + ' of ' + app.rows.length + ')';
}

function renderAll() {
  app.renderPending = false;
  renderFlow();
  renderPacks();
  renderToday();
  renderTable();
  const newest = Math.max(0, ...app.rows.map((r) => r.updated_ms || 0));
  $('updated').textContent = newest ? 'last update ' + new Date(newest).toLocaleTimeString() : 'no data yet';
}

function scheduleRender() {
  if (app.renderPending) return;
  app.renderPending = true;
  setTimeout(renderAll, 200);
}

// --- history chart -------------------------------------------------------------------
async function loadChart() {
  const key = $('chart-state').value.trim();
  if (!app.byKey.has(key) || !app.device) return;
  const to = Date.now();
  const from = to - Number($('chart-range').value);
  const qs = 'state=' + encodeURIComponent(key) + '&device=' + encodeURIComponent(app.device) + '&from=' + from + '&to=' + to;
  $('chart-csv').dataset.url = '/api/export.csv?' + qs;
  try {
    const h = await api('/api/history?' + qs);
    drawChart(h, from, to);
  } catch (e) { console.warn(e); }
}

function svg(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawChart(h, from, to) {
  const c = $('chart');
  c.textContent = '';
  const W = 900, H = 260, L = 60, R = 10, T = 10, B = 30;
  const pts = h.points;
  c.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }), svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  if (!pts.length) {
    c.append(svg('text', { class: 'tick', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no history for ' + h.state + ' in this range'));
    return;
  }
  // Zoom in when the stored samples cover only the end of the range (e.g. a fresh start).
  from = Math.min(Math.max(from, pts[0][0]), to - 60000);
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => L + ((t - from) / (to - from)) * (W - L - R);
  const y = (v) => H - B - ((v - lo) / (hi - lo)) * (H - T - B);
  // At most ~2 points per pixel column.
  const step = Math.max(1, Math.floor(pts.length / 1800));
  const d = [];
  for (let i = 0; i < pts.length; i += step) d.push(x(pts[i][0]).toFixed(1) + ',' + y(pts[i][1]).toFixed(1));
  c.append(svg('polyline', { class: 'series', points: d.join(' '), 'data-points': String(pts.length) }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    c.append(svg('text', { class: 'tick', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtValue(v) + ' ' + (h.unit || '')));
  }
  for (const f of [0, 0.5, 1]) {
    const t = from + f * (to - from);
    c.append(svg('text', { class: 'tick', x: x(t), y: H - 10, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, new Date(t).toLocaleTimeString()));
  }
}

// --- data loading and live updates ---------------------------------------------------
async function loadDevices() {
  const d = await api('/api/devices');
  const sel = $('device');
  const current = app.device;
  sel.textContent = '';
  for (const dev of d.devices) sel.append(el('option', { value: dev.device_sn }, dev.device_sn));
  app.device = d.devices.some((x) => x.device_sn === current) ? current : (d.devices[0] ? d.devices[0].device_sn : null);
  if (app.device) sel.value = app.device;
  const dev = d.devices.find((x) => x.device_sn === app.device);
  const badge = $('online');
  badge.className = 'badge ' + (dev && dev.online === false ? 'bad' : dev ? 'ok' : '');
  badge.textContent = !dev ? 'no device yet' : dev.online === false ? 'offline' : 'online';
  showDeviceStage(dev ? dev.stage : null);
  noteGrids(d.devices);
}

function showDeviceStage(stage) {
  const b = $('stage');
  b.hidden = !stage || stage === 'fresh';
  b.textContent = stage === 'unavailable' ? 'unavailable' : 'stale';
  b.className = 'badge ' + (stage === 'unavailable' ? 'bad' : 'old');
  b.setAttribute('data-stage', stage || '');
}

async function loadStates() {
  const q = app.device ? '?device=' + encodeURIComponent(app.device) : '';
  const device = app.device;
  const s = await api('/api/states' + q);
  // A live event newer than this snapshot (it may have raced the request) wins.
  const previous = app.rowsDevice === device ? app.byKey : null;
  for (const r of s.states) {
    const old = previous && previous.get(r.key);
    if (old && old.updated_ms != null && (r.updated_ms == null || old.updated_ms > r.updated_ms)) {
      r.value = old.value; r.out_of_range = old.out_of_range; r.updated_ms = old.updated_ms;
      r.source = old.source;
    }
  }
  app.rows = s.states;
  if (device === app.device) app.channels = new Map((s.channels || []).map((c) => [c.channel, c]));
  app.rowsDevice = device;
  app.byKey = new Map(app.rows.map((r) => [r.key, r]));
  const list = $('numeric-states');
  if (!list.children.length) {
    for (const r of app.rows) if (r.kind === 'number') list.append(el('option', { value: r.key }, r.human_name));
  }
  $('latest-csv').dataset.url = '/api/export.csv' + q;
  renderAll();
}

async function start() {
  try {
    await loadDevices();
    await loadStates();
    if (window.loadSettings) loadSettings();
    loadChart();
    connectEvents();
  } catch (e) {
    console.warn(e);
  }
}

initToken();
downloadLink('chart-csv', 'oceanbridge-history.csv');
downloadLink('latest-csv', 'oceanbridge-latest.csv');
downloadLink('diagnostics', 'oceanbridge-diagnostics.tar.gz');
$('search').addEventListener('input', renderTable);
$('only-warn').addEventListener('change', renderTable);
$('chart-state').addEventListener('change', loadChart);
$('chart-range').addEventListener('change', loadChart);
$('device').addEventListener('change', () => {
  app.device = $('device').value;
  if (window.loadSettings) loadSettings();
  loadStates().then(loadChart).catch(console.warn);
});
setInterval(() => { if (app.rows.length) renderTable(); }, 5000);
setInterval(() => { loadDevices().catch(() => {}); }, 30000);
setInterval(loadChart, 15000);
start();
