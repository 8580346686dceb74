#!/usr/bin/env node
// Strophe.js over BOSH (XEP-0124/XEP-0206) against the server, as
// Converse.js in a browser would do it: log in, send presence and a chat
// message to a peer, wait for its reply, and disconnect with a
// type='terminate' request. Strophe.js comes from npm, pinned in
// strophe/package-lock.json and installed there with `npm ci` (.ci/run).
//
// Node has no XMLHttpRequest: the one below is written over node:https,
// with only what Strophe's Bosh uses. TLS is verified against Node's roots
// plus NODE_EXTRA_CA_CERTS (the test server's self-signed certificate).
//
//   node strophe_bosh.js --url https://127.0.0.1:PORT/http-bind \
//     --jid alice@localhost --password pw --peer bob@localhost/desk \
//     --body hello [--timeout 20] [--verbose]
//
// Prints "OK: ..." lines and finally "OK", and exits 0; exits 1 with a
// "FAIL: ..." line (and the BOSH exchange) on any failure or timeout.
'use strict';

const https = require('node:https');
const path = require('node:path');

function parseArgs(argv) {
    const args = { timeout: '20', verbose: false };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === '--verbose') {
            args.verbose = true;
        } else if (a.startsWith('--') && i + 1 < argv.length) {
            args[a.slice(2)] = argv[++i];
        } else {
            usage(`unexpected argument ${a}`);
        }
    }
    for (const k of ['url', 'jid', 'password', 'peer', 'body']) {
        if (!args[k]) usage(`--${k} is required`);
    }
    return args;
}

function usage(msg) {
    process.stdout.write(`FAIL: ${msg}\nusage: strophe_bosh.js --url URL --jid JID --password PW --peer JID --body TEXT [--timeout S] [--verbose]\n`);
    process.exit(2);
}

const args = parseArgs(process.argv.slice(2));

// The exchange, printed with --verbose or on failure.
const trace = [];
function note(line) {
    trace.push(line);
    if (args.verbose) process.stderr.write(line + '\n');
}

function out(line) {
    process.stdout.write(line + '\n');
}

let finished = false;
function fail(msg) {
    if (finished) return;
    finished = true;
    out(`FAIL: ${msg}`);
    if (!args.verbose) {
        process.stderr.write('BOSH exchange:\n' + trace.join('\n') + '\n');
    }
    process.exit(1);
}

function succeed() {
    if (finished) return;
    finished = true;
    out('OK');
    process.exit(0);
}

process.on('uncaughtException', (err) => fail(`uncaught exception: ${err && err.stack ? err.stack : err}`));
process.on('unhandledRejection', (err) => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`));

let Strophe, $msg, $pres;
try {
    ({ Strophe, $msg, $pres } = require(path.join(__dirname, 'strophe', 'node_modules', 'strophe.js')));
} catch (err) {
    out(`FAIL: cannot load strophe.js (run npm ci --prefix ${path.join(__dirname, 'strophe')}): ${err.message}`);
    process.exit(3);
}
const stropheVersion = require(path.join(__dirname, 'strophe', 'node_modules', 'strophe.js', 'package.json')).version;

// Strophe logs through console.*: its warnings and errors are kept, and
// reported, as complaints about the exchange.
Strophe.setLogLevel(Strophe.LogLevel.WARN);
const complaints = [];
for (const level of ['warn', 'error']) {
    const orig = console[level].bind(console);
    console[level] = (...a) => {
        const line = `strophe ${level}: ${a.map(String).join(' ')}`;
        complaints.push(line);
        note(line);
        if (args.verbose) return;
        orig(line);
    };
}

// One agent for the session's requests, kept alive as a browser does.
const agent = new https.Agent({ keepAlive: true, maxSockets: 6 });

let requestSeq = 0;
// inFlight maps the requests sent whose response has not come to when
// they were sent.
const inFlight = new Map();
// heldSeq is the request that the server held when Strophe terminated the
// session, heldAnswered whether the server then answered it.
let heldSeq = 0;
let heldAnswered = false;
// terminateAnswered is set when a request with type='terminate' has had
// its 200 response.
let terminateAnswered = false;
let terminateResponse = '';

// XMLHttpRequest with what Strophe's Bosh uses: open (asynchronous),
// setRequestHeader, overrideMimeType (ignored: responses are always parsed
// as XML), send, onreadystatechange, readyState, status, responseText,
// responseXML (parsed with Strophe's DOMParser, null if empty or not
// well-formed), getAllResponseHeaders, getResponseHeader and abort.
class NodeXMLHttpRequest {
    constructor() {
        this.readyState = 0;
        this.status = 0;
        this.statusText = '';
        this.responseText = '';
        this.responseXML = null;
        this.onreadystatechange = null;
        this.withCredentials = false;
        this._headers = {};
        this._responseHeaders = null;
        this._req = null;
        this._sent = false;
        this._gen = 0;
    }

    _setState(state) {
        this.readyState = state;
        if (typeof this.onreadystatechange === 'function') {
            this.onreadystatechange();
        }
    }

    open(method, url, async = true) {
        if (async === false) throw new Error('NodeXMLHttpRequest: synchronous requests are not supported');
        this._abortRequest();
        this._method = method;
        this._url = new URL(url);
        this._headers = {};
        this._responseHeaders = null;
        this._sent = false;
        this.status = 0;
        this.statusText = '';
        this.responseText = '';
        this.responseXML = null;
        this._setState(1);
    }

    setRequestHeader(name, value) {
        if (this.readyState !== 1 || this._sent) throw new Error('NodeXMLHttpRequest: setRequestHeader outside OPENED');
        this._headers[name] = value;
    }

    overrideMimeType() {}

    getAllResponseHeaders() {
        if (!this._responseHeaders) return '';
        return Object.entries(this._responseHeaders)
            .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}\r\n`)
            .join('');
    }

    getResponseHeader(name) {
        if (!this._responseHeaders) return null;
        const v = this._responseHeaders[name.toLowerCase()];
        if (v === undefined) return null;
        return Array.isArray(v) ? v.join(', ') : String(v);
    }

    send(data) {
        if (this.readyState !== 1 || this._sent) throw new Error('NodeXMLHttpRequest: send outside OPENED');
        this._sent = true;
        const gen = ++this._gen;
        const text = data == null ? '' : String(data);
        const body = Buffer.from(text, 'utf8');
        const seq = ++requestSeq;
        const started = Date.now();
        const isTerminate = /^<body\b[^>]*\btype=(["'])terminate\1/.test(text);
        note(`> #${seq} ${this._method} ${this._url.pathname} ${text}`);
        inFlight.set(seq, started);
        this._seq = seq;
        const req = https.request(this._url, {
            method: this._method,
            agent,
            headers: Object.assign({}, this._headers, { 'Content-Length': body.length }),
        }, (res) => {
            if (gen !== this._gen) return res.resume();
            this.status = res.statusCode;
            this.statusText = res.statusMessage || '';
            this._responseHeaders = res.headers;
            this._setState(2);
            const chunks = [];
            res.on('data', (chunk) => {
                chunks.push(chunk);
                if (gen === this._gen && this.readyState === 2) this._setState(3);
            });
            res.on('error', (err) => this._error(gen, seq, err));
            res.on('end', () => {
                if (gen !== this._gen) return;
                this._req = null;
                inFlight.delete(seq);
                this.responseText = Buffer.concat(chunks).toString('utf8');
                this.responseXML = parseXML(this.responseText);
                note(`< #${seq} ${res.statusCode} after ${Date.now() - started} ms, content-type ${res.headers['content-type']}: ${this.responseText}`);
                if (seq === heldSeq && res.statusCode === 200) {
                    heldAnswered = true;
                }
                if (isTerminate && res.statusCode === 200) {
                    terminateAnswered = true;
                    terminateResponse = this.responseText;
                }
                this._setState(4);
            });
        });
        this._req = req;
        req.on('error', (err) => this._error(gen, seq, err));
        req.end(body);
    }

    _error(gen, seq, err) {
        if (gen !== this._gen) return;
        this._req = null;
        inFlight.delete(seq);
        note(`< #${seq} network error: ${err.code || ''} ${err.message}`);
        if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(err.code || '')) {
            // Strophe would retry until the timeout.
            fail(`server certificate not trusted (${err.code}: ${err.message}); NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS || ''}`);
            return;
        }
        this.status = 0;
        this.responseText = '';
        this.responseXML = null;
        this._setState(4);
    }

    _abortRequest() {
        this._gen++;
        if (this._req) {
            this._req.destroy();
            this._req = null;
        }
    }

    abort() {
        const pending = this._sent && this.readyState >= 1 && this.readyState < 4;
        this._abortRequest();
        this._sent = false;
        if (pending) {
            inFlight.delete(this._seq);
            note(`x #${this._seq} aborted`);
            this.status = 0;
            this.responseText = '';
            this.responseXML = null;
            this._setState(4);
        }
        this.readyState = 0;
    }
}

function parseXML(text) {
    if (!text) return null;
    try {
        return new globalThis.DOMParser().parseFromString(text, 'text/xml');
    } catch (err) {
        note(`! response not well-formed: ${err.message}`);
        return null;
    }
}

if (typeof globalThis.XMLHttpRequest === 'undefined') {
    globalThis.XMLHttpRequest = NodeXMLHttpRequest;
} else {
    note('using the XMLHttpRequest already defined');
}

const timeoutMs = Number(args.timeout) * 1000;
setTimeout(() => fail(`timed out after ${args.timeout}s (status ${statusName(lastStatus)})`), timeoutMs).unref();

function statusName(code) {
    for (const [k, v] of Object.entries(Strophe.Status)) {
        if (v === code) return k;
    }
    return String(code);
}

const peerBare = Strophe.getBareJidFromJid(args.peer);
let lastStatus = null;
let connected = false;
let gotReply = false;

const conn = new Strophe.Connection(args.url);
if (conn._proto.constructor.name !== 'Bosh') {
    fail(`Strophe chose ${conn._proto.constructor.name} for ${args.url}, not BOSH`);
}

// disconnectWhenHeld ends the session as a user logging out of
// Converse.js does, while the server holds Strophe's empty request
// (XEP-0124 §8): once one request has been in flight for 500 ms, or after
// 3 s anyway.
function disconnectWhenHeld() {
    const since = Date.now();
    const tick = () => {
        const held = [...inFlight.entries()].filter(([, t]) => Date.now() - t >= 500);
        if (held.length > 0 || Date.now() - since > 3000) {
            if (held.length > 0) {
                heldSeq = held[0][0];
                out(`held: request #${heldSeq} for ${Date.now() - held[0][1]} ms when terminating`);
            } else {
                out('held: no request when terminating');
            }
            conn.disconnect('done');
            return;
        }
        setTimeout(tick, 50);
    };
    tick();
}

conn.addHandler((stanza) => {
    const from = stanza.getAttribute('from') || '';
    const body = stanza.getElementsByTagName('body')[0];
    if (Strophe.getBareJidFromJid(from) !== peerBare || !body) {
        note(`ignored message from ${from}`);
        return true;
    }
    if (from !== args.peer) {
        fail(`reply from ${from}, want ${args.peer}`);
        return false;
    }
    gotReply = true;
    out(`OK: reply ${body.textContent}`);
    disconnectWhenHeld();
    return false;
}, null, 'message', 'chat');

out(`strophe.js ${stropheVersion} over ${args.url}`);
conn.connect(args.jid, args.password, (status, condition) => {
    lastStatus = status;
    note(`status ${statusName(status)}${condition ? ' ' + condition : ''}`);
    switch (status) {
    case Strophe.Status.CONNECTED: {
        connected = true;
        const bosh = conn._proto;
        out(`bosh: sid ${bosh.sid ? 'set' : 'missing'} requests=${bosh.window} hold=${bosh.hold} wait=${bosh.wait} inactivity=${bosh.inactivity}`);
        out(`auth: ${conn._sasl_mechanism ? conn._sasl_mechanism.mechname : 'none'}`);
        out(`OK: connected as ${conn.jid}`);
        conn.send($pres());
        conn.send($msg({ to: args.peer, type: 'chat' }).c('body').t(args.body));
        out(`sent: chat to ${args.peer}`);
        break;
    }
    case Strophe.Status.DISCONNECTED:
        if (!connected) {
            fail(`disconnected before connecting (condition ${condition || 'none'})`);
        } else if (!gotReply) {
            fail('disconnected before the reply');
        } else if (!terminateAnswered) {
            fail('disconnected without an answer to the terminate request');
        } else if (heldSeq && !heldAnswered) {
            fail(`disconnected without an answer to the held request #${heldSeq}`);
        } else {
            note(`terminate answered: ${terminateResponse}`);
            out('OK: disconnected');
            if (complaints.length) out(`strophe complained ${complaints.length} time(s)`);
            succeed();
        }
        break;
    case Strophe.Status.CONNFAIL:
        fail(`connection failed: ${condition || 'no condition'}`);
        break;
    case Strophe.Status.AUTHFAIL:
        fail(`authentication failed: ${condition || 'no condition'}`);
        break;
    case Strophe.Status.CONNTIMEOUT:
        fail('the disconnection timed out: the server did not answer the terminate request in time');
        break;
    case Strophe.Status.ERROR:
        fail(`error: ${condition || 'no condition'}`);
        break;
    default:
        break;
    }
});
