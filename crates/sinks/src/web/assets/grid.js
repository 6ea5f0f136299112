// oceanbridge dashboard: grid presence (protocol §13), derived from the meter's phase
// voltages since no cloud field reports an outage — a banner for every device whose grid
// is lost, a small indicator for the selected device otherwise. Follows the live stream's
// `grid` event (no reload). Loaded after live.js and before app.js, whose globals (app, $,
// el) it uses only when called.
'use strict';

const grids = new Map(); // device serial -> {presence, derivation, since_ms}

function gridSince(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const today = d.toDateString() === new Date().toDateString();
  return 'since ' + (today ? d.toLocaleTimeString() : d.toLocaleString());
}

// The grid presence of every device, as /api/devices gives it (app.js's loadDevices).
function noteGrids(devices) {
  grids.clear();
  for (const d of devices) if (d.grid) grids.set(d.device_sn, d.grid);
  renderGrid();
}

function renderGrid() {
  const box = $('grid-banners');
  box.textContent = '';
  for (const [sn, g] of grids) {
    if (g.presence !== 'lost') continue;
    const banner = el('div', { class: 'banner', role: 'alert', 'data-device': sn });
    const title = 'Grid lost — the house runs on the battery' + (grids.size > 1 ? ' (' + sn + ')' : '');
    banner.append(el('strong', {}, title), ' ', el('span', { class: 'since' }, gridSince(g.since_ms)));
    banner.append(el('div', { class: 'small' },
      'Inferred, not reported by the device: ' + g.derivation + '.'));
    box.append(banner);
  }
  const g = grids.get(app.device);
  const presence = g ? g.presence : 'unknown';
  const badge = $('grid');
  badge.hidden = !g;
  badge.textContent = presence === 'present' ? 'grid present' : presence === 'lost' ? 'grid lost' : 'grid unknown';
  badge.className = 'badge ' + (presence === 'present' ? 'ok' : presence === 'lost' ? 'bad' : '');
  badge.setAttribute('data-presence', presence);
  badge.title = g ? [gridSince(g.since_ms), g.derivation].filter(Boolean).join(' · ') : '';
}

streamHandlers.grid = (m) => {
  grids.set(m.device, m.grid);
  renderGrid();
};
document.getElementById('device').addEventListener('change', () => renderGrid());
