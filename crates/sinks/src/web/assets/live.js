// oceanbridge dashboard: the live updates. /api/events is read with fetch and a stream
// reader, because EventSource cannot send the token header. Loaded before app.js, whose
// globals (app, $, authHeaders, askToken, loadStates, loadDevices, scheduleRender,
// showDeviceStage) it uses only once app.js calls connectEvents.
'use strict';

// Reconnects with a growing pause; each (re)connect re-reads the states it may have missed.
const streamHandlers = {
  states: (m) => {
    if (!app.device) { loadDevices().then(loadStates).catch(console.warn); return; }
    if (m.device !== app.device) return;
    for (const s of m.states) {
      const r = app.byKey.get(s.key);
      if (r) { r.value = s.value; r.out_of_range = s.out_of_range; r.updated_ms = m.t; r.source = m.source; }
    }
    scheduleRender();
  },
  status: (m) => {
    if (m.device !== app.device) return;
    $('online').textContent = m.online ? 'online' : 'offline';
    $('online').className = 'badge ' + (m.online ? 'ok' : 'bad');
  },
  stage: (m) => {
    if (m.device !== app.device) return;
    if (m.channel === null) { showDeviceStage(m.stage); return; }
    const c = app.channels.get(m.channel) || { channel: m.channel };
    c.stage = m.stage;
    if (m.stage === 'fresh') c.last_push_ms = m.t;
    app.channels.set(m.channel, c);
    scheduleRender();
  },
  resync: () => { loadStates().catch(console.warn); },
  // The device reported its settings (96/8): the Settings card (settings.js) re-reads them.
  settings: (m) => { if (m.device === app.device && window.loadSettings) loadSettings(); },
};

function setLive(live) {
  $('live').textContent = live ? 'live' : 'reconnecting…';
  $('live').className = 'badge ' + (live ? 'ok' : 'bad');
}

// One `event:`/`data:` block of the stream.
function handleBlock(block) {
  let name = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? '' : line.slice(i + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  const handler = streamHandlers[name];
  if (handler && data.length) handler(JSON.parse(data.join('\n')));
}

async function readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      try { handleBlock(block); } catch (e) { console.warn(e); }
    }
  }
}

async function connectEvents() {
  if (app.events) app.events.abort();
  const stream = new AbortController();
  app.events = stream;
  let pause = 1000;
  while (app.events === stream) {
    try {
      const res = await fetch('/api/events', { headers: authHeaders(), signal: stream.signal, cache: 'no-store' });
      if (res.status === 401) { askToken(); setLive(false); return; }
      if (!res.ok || !res.body) throw new Error('/api/events: HTTP ' + res.status);
      setLive(true);
      pause = 1000;
      // Catch up on what changed before the stream (re)opened; later changes arrive as events.
      if (app.device) loadStates().catch(console.warn);
      await readEvents(res.body);
    } catch (e) {
      if (stream.signal.aborted) return;
      console.warn(e);
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 30000);
  }
}
