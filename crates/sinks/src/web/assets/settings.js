// oceanbridge dashboard: the Settings card (protocol §10, §12). Shows what the device
// reports (96/8 read-back; the grid charge from its timer-task list), sends changes to POST /api/devices/{sn}/settings and says how
// each ended: pending, applied, not applied (the device ignored it), refused. Hidden while
// control is off. Uses app.js's globals (app, $, api, authHeaders, askToken).
'use strict';

const settingsCard = {
  state: null,        // last GET /api/devices/{sn}/settings answer
  pending: new Set(), // setting groups with a request in flight: their controls keep the user's value
};

function settingsUrl() {
  return '/api/devices/' + encodeURIComponent(app.device) + '/settings';
}

// Shows a group's status: 'pending', 'applied', 'not_applied', 'refused', 'dry_run'.
function showOutcome(group, outcome, text) {
  const s = $('status-' + group);
  s.setAttribute('data-outcome', outcome);
  s.className = 'outcome ' + outcome;
  s.textContent = text;
}

function outcomeText(o) {
  switch (o.outcome) {
    case 'applied': return 'applied (device confirmed)';
    case 'not_applied': return 'not applied: ' + o.reason;
    case 'refused': return 'refused: ' + o.reason;
    case 'dry_run': return 'dry run, nothing sent';
    default: return o.outcome || 'unknown';
  }
}

// Puts the read-back values into the controls (except groups the user is changing).
function renderSettings() {
  const st = settingsCard.state;
  const card = $('settings-card');
  card.hidden = !st || !st.control_enabled;
  card.setAttribute('data-control', st && st.control_enabled ? 'on' : 'off');
  if (card.hidden) return;
  const s = st.settings || {};
  const editable = st.writable;
  for (const id of ['set-work-mode', 'set-reserve', 'set-threshold', 'set-feed-mode', 'set-feed-cap',
    'set-gc-armed', 'set-gc-power', 'set-gc-window']) $(id).disabled = !editable;
  $('settings-note').textContent = !editable
    ? 'read only: changes need a dashboard token ([web] token)'
    : st.settings ? '' : 'waiting for the device to report its settings';
  if (!settingsCard.pending.has('work_mode')) $('set-work-mode').value = s.work_mode || '';
  if (!settingsCard.pending.has('battery_limits')) {
    setSlider('reserve', s.backup_reserve);
    setSlider('threshold', s.surplus_threshold);
  }
  if (!settingsCard.pending.has('feed_in')) {
    $('set-feed-mode').value = s.feed_mode || '';
    $('set-feed-cap').value = s.feed_power_cap_w == null ? '' : s.feed_power_cap_w;
  }
  $('set-feed-cap').disabled = !editable || $('set-feed-mode').value !== 'limited';
  const gc = st.grid_charge || {};
  if (!settingsCard.pending.has('grid_charge')) {
    $('set-gc-armed').checked = !!gc.armed;
    $('set-gc-power').value = gc.power_w == null ? '' : gc.power_w;
    $('set-gc-window').value = gc.window || '';
    $('set-gc-repeat').textContent = gc.repeat === 'once' ? 'on ' + gc.date : (gc.repeat || '–');
  }
}

// The grid charge as the CLI words it (protocol::grid_charge): off, or power, window, days.
function gridChargeRequest() {
  if (!$('set-gc-armed').checked) return { setting: 'grid_charge', value: 'off' };
  const gc = (settingsCard.state && settingsCard.state.grid_charge) || {};
  const days = gc.repeat === 'once' && gc.date ? 'on ' + gc.date : 'daily';
  return { setting: 'grid_charge', value: $('set-gc-power').value + 'W ' + $('set-gc-window').value + ' ' + days };
}

function setSlider(name, v) {
  $('set-' + name).value = v == null ? 0 : v;
  $('set-' + name + '-value').textContent = v == null ? '–' : v + ' %';
}

function fillOptions(select, names) {
  if (select.options.length > 1) return;
  for (const n of names) select.append(el('option', { value: n }, n.replace(/_/g, ' ')));
}

async function loadSettings() {
  if (!app.device) return;
  try {
    const st = await api(settingsUrl());
    settingsCard.state = st;
    fillOptions($('set-work-mode'), st.options.work_mode);
    fillOptions($('set-feed-mode'), st.options.feed_mode);
    $('set-feed-cap').max = st.options.feed_power_cap_w.max;
    renderSettings();
  } catch (e) { console.warn(e); }
}

// Sends one request; the group shows 'pending' until the bridge answers with the outcome
// (after the device's read-back, or its timeout).
async function sendSetting(group, request) {
  settingsCard.pending.add(group);
  showOutcome(group, 'pending', 'pending: waiting for the device to confirm…');
  let outcome;
  try {
    const headers = Object.assign({ 'Content-Type': 'application/json' }, authHeaders());
    const res = await fetch(settingsUrl(), { method: 'POST', headers, body: JSON.stringify(request) });
    if (res.status === 401) askToken();
    const body = await res.json().catch(() => ({}));
    outcome = body.outcome ? body : { outcome: 'refused', reason: body.error || 'HTTP ' + res.status };
  } catch (e) {
    outcome = { outcome: 'refused', reason: 'the bridge did not answer (' + e.message + ')' };
  }
  settingsCard.pending.delete(group);
  // Back to what the device reports (after "not applied" the old value, not the
  // request), then the outcome: the two show together.
  await loadSettings();
  showOutcome(group, outcome.outcome, outcomeText(outcome));
}

function initSettings() {
  $('set-work-mode').addEventListener('change', (ev) => {
    sendSetting('work_mode', { setting: 'work_mode', mode: ev.target.value });
  });
  for (const name of ['reserve', 'threshold']) {
    const input = $('set-' + name);
    // While dragging only the label follows; one request when the slider is let go.
    input.addEventListener('input', () => { $('set-' + name + '-value').textContent = input.value + ' %'; });
    input.addEventListener('change', () => {
      sendSetting('battery_limits', {
        setting: 'battery_limits',
        backup_reserve: Number($('set-reserve').value),
        surplus_threshold: Number($('set-threshold').value),
      });
    });
  }
  const sendFeed = () => {
    const mode = $('set-feed-mode').value;
    const cap = $('set-feed-cap').value;
    $('set-feed-cap').disabled = mode !== 'limited';
    sendSetting('feed_in', { setting: 'feed_in', mode, cap_w: mode === 'limited' && cap !== '' ? Number(cap) : null });
  };
  $('set-feed-mode').addEventListener('change', sendFeed);
  $('set-feed-cap').addEventListener('change', sendFeed);
  for (const id of ['set-gc-armed', 'set-gc-power', 'set-gc-window']) {
    $(id).addEventListener('change', () => sendSetting('grid_charge', gridChargeRequest()));
  }
}

initSettings();
