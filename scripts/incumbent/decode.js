#!/usr/bin/env node
// scripts/incumbent/decode.js — the incumbent's decode work on oceanbridge's test vectors,
// for scripts/bench.sh: payloads per second of Node + protobufjs doing what the ioBroker
// ecoflow-mqtt adapter does with each MQTT payload of a PowerOcean Fit.
//
// Modelled from reading the adapter (lib/ecoflow_utils.js: pstreamDecode, decodeMsg,
// convertData; lib/dict_data/ef_poweroceanfit_data.js: storeProtoPayload → compareUpdate):
//   payload → Buffer copy → Frames decode + toObject → per frame: header fields copied for
//   the debug line, (cmdFunc, cmdId) → message name, XOR (encType 1, src ≠ 32) through an
//   array, decode + toObject of pdata, pdata turned into hex → per state: dictionary checks
//   and convertData (mult with toFixed(2), enum lookup by the value's text, JSON.stringify
//   for arrays).
// Not modelled: ioBroker's getStateAsync/setStateAsync (a database round trip per state)
// and debug logging — oceanbridge's figure is its decoder alone too.
// The adapter re-parses the .proto source on every decodeMsg call; by default the parsed
// root is kept (the incumbent at its best); `--as-written` measures the re-parse as well.
// Schema and dictionary come from this repository (proto/, spec/), not from the adapter.
//
// usage: NODE_PATH=<dir>/node_modules node decode.js REPO_ROOT [--as-written] [--secs S]

'use strict';

const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');

const repo = process.argv[2] || path.join(__dirname, '..', '..');
const asWritten = process.argv.includes('--as-written');
const secsAt = process.argv.indexOf('--secs');
const secs = secsAt > 0 ? Number(process.argv[secsAt + 1]) : 2;

const protoSource = fs.readFileSync(path.join(repo, 'proto', 'poweroceanfit.proto'), 'utf8');
const keptRoot = protobuf.parse(protoSource).root;

// The (cmdFunc, cmdId) table of protocol §4, shaped like the adapter's protoMsg.
const protoMsg = {
    cmdFunc: {
        53: { cmdId: { 113: 'ModuleClusterInfo' } },
        96: {
            cmdId: {
                1: 'EMSHeartbeatReport',
                3: 'ErrorChangeReport',
                10: 'TimerTasks',
                33: 'EnergyStreamItem',
                34: 'EnergyStreamDetail',
                97: 'EnergyStreamSwitch',
                106: 'ConfigSet',
                107: 'ConfigGet',
                108: 'BPChangeReport',
                109: 'DcChangeReport',
                110: 'DcStaReport2',
                111: 'CloudBmsInfoReport',
                112: 'Report96_112',
                127: 'Report96_127',
                136: 'Report96_136',
            },
        },
        254: { cmdId: { 32: 'EnergyTotalReport' } },
    },
};
// Reports this repository's proto does not define are known but carry no catalog states;
// the adapter decodes them with its own schema and then ignores them. Here they are
// skipped without decoding (and without the exception a missing type would throw).
const decodable = new Set(
    Object.values(protoMsg.cmdFunc)
        .flatMap(f => Object.values(f.cmdId))
        .filter(name => keptRoot.lookup(name) !== null),
);

/** The adapter's decodeMsg (its one protobuf entry point). */
function decodeMsg(bytes, msgtype) {
    try {
        const root = asWritten ? protobuf.parse(protoSource).root : keptRoot;
        const PowerMessage = root.lookupType(msgtype);
        const message = PowerMessage.decode(Buffer.from(bytes, 'hex'));
        return PowerMessage.toObject(message, { defaults: false });
    } catch (error) {
        throw new Error(`decodeMsg -> ${error}`);
    }
}

/** The adapter's dictionaries (stateDictObj, stateObj), built from the spec's tables. */
function dictionaries() {
    const stateDictObj = {};
    const stateObj = {};
    let channel = null;
    let entity = null;
    const spec = fs.readFileSync(path.join(repo, 'spec', 'poweroceanfit-states-1.4.0.md'), 'utf8');
    for (const line of spec.split('\n')) {
        let m;
        if ((m = /^## (\S+)/.exec(line))) {
            channel = m[1];
            stateDictObj[channel] = {};
            stateObj[channel] = {};
        } else if ((m = /^### (number|diagnostic|string|array)\b/.exec(line)) && channel) {
            entity = m[1];
            stateObj[channel][entity] = {};
        } else if (channel && entity && /^\|[A-Za-z]/.test(line) && !line.startsWith('| State')) {
            const cells = line.split('|').slice(1, -1).map(c => c.trim());
            const state = cells[0];
            stateDictObj[channel][state] = { entity };
            const def = { name: cells[cells.length - 1] };
            if (entity === 'number') {
                def.min = Number(cells[1]);
                def.max = cells[2] === 'n/a' ? undefined : Number(cells[2]);
                def.unit_of_measurement = cells[3];
                def.mult = Number(cells[4]);
            } else if (entity === 'diagnostic') {
                const map = {};
                for (const pair of cells[2].replace(/^\{|\}$/g, '').split(',')) {
                    const at = pair.indexOf(':');
                    map[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
                }
                def[state] = map;
            }
            stateObj[channel][entity][state] = def;
        }
    }
    return { stateDictObj, stateObj };
}
const { stateDictObj, stateObj } = dictionaries();

/** The adapter's convertData for the kinds a PowerOcean Fit has. */
function convertData(channel, state, value) {
    const key = stateDictObj[channel][state]['entity'];
    if (value !== '' && value != null) {
        const val = value.toString();
        switch (key) {
            case 'number':
                if (typeof value === 'string' || value instanceof String) {
                    value = (parseFloat(value) * stateObj[channel][key][state]['mult']).toFixed(2);
                } else if (Number.isInteger(value)) {
                    value = value * stateObj[channel][key][state]['mult'];
                } else {
                    value = Number((value * stateObj[channel][key][state]['mult']).toFixed(2));
                }
                break;
            case 'string':
                value = value.toString();
                break;
            case 'diagnostic':
                if (Object.prototype.hasOwnProperty.call(stateObj[channel][key][state][state], val)) {
                    value = stateObj[channel][key][state][state][val].toString();
                } else {
                    value = `${val} not part of array`;
                }
                break;
            case 'array':
                value = JSON.stringify(value);
                break;
            default:
                break;
        }
    }
    return value;
}

const unknownMsgs = {};
let lastValue = null;

/** The adapter's pstreamDecode without logging. */
function pstreamDecode(payload, topic) {
    const buf = Buffer.from(payload);
    const msgobj = decodeMsg(buf, 'Frames');
    const returnobj = [];
    if (!Array.isArray(msgobj.header)) {
        return returnobj;
    }
    const dbgmsg = {};
    for (let i = 0; i < msgobj.header.length; i++) {
        const header = msgobj.header[i];
        for (const info in header) {
            if (info !== 'pdata') {
                dbgmsg[info] = header[info];
            }
        }
        const cmdFunc = header.cmdFunc;
        const cmdId = header.cmdId;
        const src = header.src;
        const seq = header.seq;
        let prototyp = 'undef';
        if (cmdFunc) {
            if (Object.prototype.hasOwnProperty.call(protoMsg['cmdFunc'], cmdFunc)) {
                if (cmdId && Object.prototype.hasOwnProperty.call(protoMsg['cmdFunc'][cmdFunc]['cmdId'], cmdId)) {
                    prototyp = protoMsg['cmdFunc'][cmdFunc]['cmdId'][cmdId];
                }
            }
        } else if (header.code && header.code == '-2') {
            returnobj.push({ info: { status: 'offline' } });
        }
        if (header.pdata) {
            if (header.encType && header.encType == 1 && src !== 32) {
                const array = Array.from(new Uint8Array(header.pdata));
                const modarray = [];
                for (let j = 0; j < array.length; j++) {
                    modarray.push(array[j] ^ seq);
                }
                header.pdata = Buffer.from(modarray);
            }
            if (prototyp !== 'undef') {
                if (decodable.has(prototyp)) {
                    returnobj.push({ [prototyp]: decodeMsg(header.pdata, prototyp) });
                } else {
                    returnobj.push({ [prototyp]: {} });
                }
            } else {
                unknownMsgs[`${topic}.${cmdFunc}.${cmdId}`] = header.pdata.toString('hex');
            }
            header.pdata = header.pdata.toString('hex');
        }
    }
    return returnobj;
}

/** The adapter's compareUpdate up to its database call: dictionary checks, convertData. */
function compareUpdate(channel, state, val) {
    if (stateDictObj[channel] && stateDictObj[channel][state] && stateDictObj[channel][state]['entity'] !== 'icon') {
        lastValue = convertData(channel, state, val);
        return 1;
    }
    return 0;
}

/** The adapter's storeProtoPayload for a PowerOcean Fit; returns the states converted. */
function storeProtoPayload(payloadarr) {
    let converted = 0;
    for (const payload of payloadarr) {
        for (const channel in payload) {
            switch (channel) {
                case 'EMSHeartbeatReport':
                case 'EnergyStreamItem':
                case 'CloudBmsInfoReport':
                    for (const state in payload[channel]) {
                        converted += compareUpdate(channel, state, payload[channel][state]);
                    }
                    break;
                case 'BPChangeReport':
                    for (let i = 0; i < (payload[channel]['bpInfo'] || []).length; i++) {
                        for (const state in payload[channel]['bpInfo'][i]) {
                            converted += compareUpdate(`bpInfo${i}`, state, payload[channel]['bpInfo'][i][state]);
                        }
                    }
                    break;
                default:
                    break;
            }
        }
    }
    return converted;
}

function vectors() {
    const dir = path.join(repo, 'tests', 'vectors');
    return fs
        .readdirSync(dir)
        .filter(f => f.endsWith('.json'))
        .sort()
        .map(f => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
        .filter(v => v.expected_error !== true)
        .map(v => ({ topic: v.topic.split('/').pop(), payload: Buffer.from(v.payload_hex, 'hex') }));
}

function main() {
    const payloads = vectors();
    const pass = () => {
        let states = 0;
        for (const { topic, payload } of payloads) {
            states += storeProtoPayload(pstreamDecode(payload, topic));
        }
        return states;
    };
    const statesPerPass = pass();
    // Warm up (JIT), then find a batch size of about a quarter second.
    let passes = 1;
    const started = process.hrtime.bigint();
    while (Number(process.hrtime.bigint() - started) < Math.min(1e9, secs * 5e8)) {
        pass();
    }
    for (;;) {
        const t = process.hrtime.bigint();
        for (let i = 0; i < passes; i++) pass();
        const ns = Number(process.hrtime.bigint() - t);
        if (ns > 2.5e8 || passes > 1e7) break;
        passes *= 2;
    }
    // Best of several batches, as the Rust side measures.
    let best = Infinity;
    const batches = Math.max(3, Math.round((secs * 1e9) / 2.5e8));
    for (let b = 0; b < batches; b++) {
        const t = process.hrtime.bigint();
        for (let i = 0; i < passes; i++) pass();
        best = Math.min(best, Number(process.hrtime.bigint() - t));
    }
    const perSecond = (passes * payloads.length * 1e9) / best;
    const version = require('protobufjs/package.json').version;
    console.log(
        `incumbent${asWritten ? ' as written' : ''}: ${payloads.length} payloads, ${statesPerPass} states per pass: ` +
            `${perSecond.toFixed(0)} payloads/s (node ${process.version}, protobufjs ${version})`,
    );
    if (lastValue === undefined) console.log('');
}

main();
