/// The dashboard page (`GET /dashboard`): HTML, CSS and JavaScript in one string, so the binary
/// serves it with nothing to install, build or fetch. The page reads `/status` and `/keyspace`,
/// follows `/events` (read with fetch rather than EventSource, which cannot send the admin token),
/// and changes the pool through `/add` and `/rm`.
enum DashboardPage {
    /// Nothing but this page's own inline code, and requests to the same ds-lb.
    static let headers =
        "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        + "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
        + "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>ds-lb dashboard</title>
        <link rel="icon" href="data:,">
        <style>
        :root {
          --bg: #f6f7f9; --card: #fff; --text: #1b1f24; --muted: #57606a; --line: #d0d7de;
          --up: #1a7f37; --down: #cf222e; --starting: #9a6700; --accent: #0969da; --focus: #0550ae;
        }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
        header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.25rem; padding: .6rem 1rem; background: #24292f; color: #fff; }
        header h1 { font-size: 1.1rem; margin: 0; }
        header .meta { display: flex; flex-wrap: wrap; gap: .25rem 1rem; color: #d0d7de; font-size: .9rem; }
        #live { padding: .1rem .5rem; border-radius: 1rem; font-weight: 600; font-size: .8rem; background: #57606a; }
        #live[data-live="true"] { background: var(--up); }
        #live[data-live="false"] { background: var(--down); }
        main { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 1rem; padding: 1rem; max-width: 1600px; margin: 0 auto; }
        section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; min-width: 0; }
        section h2 { font-size: 1rem; margin: 0 0 .5rem; }
        .wide { grid-column: 1 / -1; }
        .totals { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; }
        .stat { display: flex; flex-direction: column; }
        .stat b { font-size: 1.3rem; font-variant-numeric: tabular-nums; }
        .stat span { color: var(--muted); font-size: .8rem; }
        #errors { display: flex; flex-wrap: wrap; gap: .25rem .75rem; margin: .5rem 0 0; padding: 0; list-style: none; color: var(--muted); font-size: .85rem; }
        #errors .nonzero { color: var(--down); font-weight: 600; }
        .table-wrap { overflow-x: auto; }
        table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
        th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
        th { font-size: .8rem; color: var(--muted); font-weight: 600; }
        .state { display: inline-block; min-width: 5.5em; text-align: center; padding: .05rem .4rem; border-radius: 4px; color: #fff; font-weight: 700; font-size: .8rem; }
        .state[data-state="UP"] { background: var(--up); }
        .state[data-state="DOWN"] { background: var(--down); }
        .state[data-state="STARTING"] { background: var(--starting); }
        tr[data-state="DOWN"] td { background: #ffebe9; }
        .swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .35rem; vertical-align: -1px; }
        .muted { color: var(--muted); }
        svg.spark { display: block; flex: none; }
        .rps { display: flex; align-items: center; gap: .4rem; }
        button, input { font: inherit; }
        button { cursor: pointer; border: 1px solid var(--line); background: #f6f8fa; border-radius: 6px; padding: .25rem .7rem; color: var(--text); }
        button.danger { color: var(--down); }
        button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
        button:focus-visible, input:focus-visible, [tabindex]:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
        #keybar { display: flex; height: 2rem; border-radius: 4px; overflow: hidden; border: 1px solid var(--line); }
        #keybar div { height: 100%; min-width: 1px; }
        #keylist { list-style: none; padding: 0; margin: .5rem 0 0; font-variant-numeric: tabular-nums; }
        #keylist li { padding: .1rem 0; }
        .delta-up { color: var(--up); } .delta-down { color: var(--down); }
        #timeline { list-style: none; margin: 0; padding: 0; max-height: 26rem; overflow-y: auto; }
        #timeline li { display: grid; grid-template-columns: 5.5rem 1fr; gap: .1rem .5rem; padding: .35rem 0; border-bottom: 1px solid var(--line); }
        #timeline time { color: var(--muted); font-variant-numeric: tabular-nums; }
        .kind { font-weight: 600; }
        .kind-heartbeat_failed, .kind-exited, .kind-restart_failed, .kind-node_lost { color: var(--down); }
        .kind-back_up, .kind-restarted, .kind-added, .kind-node_joined { color: var(--up); }
        .kind-replaced, .kind-removed { color: var(--starting); }
        form.row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; }
        form.row label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
        form.row input { padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 6px; }
        #add-n { width: 5rem; }
        .message { margin: .5rem 0 0; min-height: 1.4em; }
        .message.error { color: var(--down); font-weight: 600; }
        .message.ok { color: var(--up); }
        dialog { border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; max-width: min(28rem, 92vw); }
        dialog::backdrop { background: rgb(0 0 0 / .4); }
        dialog h2 { margin-top: 0; font-size: 1.05rem; }
        dialog .actions { display: flex; gap: .5rem; justify-content: flex-end; margin-top: 1rem; }
        #token-input { width: 100%; padding: .35rem; border: 1px solid var(--line); border-radius: 6px; }
        #nodes ul { margin: .25rem 0; padding-left: 1.2rem; }
        @media (max-width: 760px) {
          main { grid-template-columns: minmax(0, 1fr); padding: .5rem; gap: .5rem; }
          header { padding: .5rem; }
          #replicas thead { display: none; }
          #replicas tr { display: grid; grid-template-columns: 1fr 1fr; border-bottom: 2px solid var(--line); padding: .25rem 0; }
          #replicas td { border: 0; white-space: normal; padding: .15rem .4rem; }
          #replicas td::before { content: attr(data-label) ": "; color: var(--muted); font-size: .8rem; }
          #replicas td.name-cell, #replicas td.actions-cell { grid-column: 1 / -1; }
          #replicas td.name-cell::before, #replicas td.actions-cell::before { content: none; }
        }
        </style>
        </head>
        <body>
        <header>
          <h1>ds-lb</h1>
          <span id="live" role="status" aria-live="polite" data-live="">connecting…</span>
          <div class="meta">
            <span>algorithm <b id="algorithm">–</b></span>
            <span>driver <b id="driver">–</b></span>
            <span>heartbeat <b id="heartbeat">–</b></span>
            <span>uptime <b id="uptime">–</b></span>
          </div>
        </header>
        <main>
          <section class="wide" aria-labelledby="totals-title">
            <h2 id="totals-title">Pool</h2>
            <div class="totals">
              <div class="stat"><b id="total-rps">–</b><span>requests/s</span></div>
              <div class="stat"><b id="total-up">–</b><span>replicas up</span></div>
              <div class="stat"><b id="total-inflight">–</b><span>in flight</span></div>
              <div class="stat"><b id="total-error-rate">–</b><span>errors (last 10 s)</span></div>
              <div class="stat"><b id="generation">–</b><span>ring generation</span></div>
            </div>
            <ul id="errors" aria-label="Errors by kind, per second over the last 10 s"></ul>
          </section>

          <section class="wide" aria-labelledby="replicas-title">
            <h2 id="replicas-title">Replicas</h2>
            <div class="table-wrap">
              <table id="replicas">
                <thead><tr>
                  <th scope="col">Name</th><th scope="col">Id</th><th scope="col">State</th>
                  <th scope="col">Last check</th><th scope="col">Latency</th><th scope="col">Restarts</th>
                  <th scope="col">Requests/s (5 min)</th><th scope="col">In flight</th>
                  <th scope="col" title="99th percentile response time over the last 30 s, as the upper bound of its histogram bucket">p99</th>
                  <th scope="col">Keys</th><th scope="col"><span class="muted">Action</span></th>
                </tr></thead>
                <tbody></tbody>
              </table>
            </div>
            <form id="add-form" class="row" aria-label="Add replicas">
              <label>How many <input id="add-n" type="number" min="1" value="1" required></label>
              <label>Hostnames (optional, comma-separated) <input id="add-hostnames" type="text" autocomplete="off" placeholder="e.g. S5, S6"></label>
              <button type="submit" class="primary" id="add-button">Add replica</button>
            </form>
            <p id="action-message" class="message" role="status" aria-live="polite"></p>
          </section>

          <section aria-labelledby="keys-title">
            <h2 id="keys-title">Key space <span class="muted" id="keys-meta"></span></h2>
            <div id="keybar" role="img" aria-label="Share of keys per replica"></div>
            <ul id="keylist"></ul>
          </section>

          <section aria-labelledby="timeline-title">
            <h2 id="timeline-title">Events</h2>
            <ol id="timeline" aria-live="polite" tabindex="0" aria-label="Supervisor events, newest first"></ol>
          </section>

          <section id="nodes" class="wide" aria-labelledby="nodes-title" hidden>
            <h2 id="nodes-title">Cluster nodes</h2>
            <div id="nodes-list"></div>
          </section>
        </main>

        <dialog id="confirm-dialog" aria-labelledby="confirm-title">
          <form method="dialog">
            <h2 id="confirm-title">Remove replica?</h2>
            <p id="confirm-text"></p>
            <div class="actions">
              <button value="cancel" id="confirm-cancel" autofocus>Cancel</button>
              <button value="remove" class="primary" id="confirm-remove">Remove</button>
            </div>
          </form>
        </dialog>

        <dialog id="token-dialog" aria-labelledby="token-title">
          <form id="token-form">
            <h2 id="token-title">Admin token</h2>
            <p>This ds-lb needs its admin token (<code>--admin-token-file</code>). It is kept in this tab only.</p>
            <label for="token-input">Token</label>
            <input id="token-input" type="password" autocomplete="off" required>
            <p id="token-error" class="message error" role="alert"></p>
            <div class="actions"><button type="submit" class="primary" id="token-submit">Use token</button></div>
          </form>
        </dialog>

        <script>
        'use strict';
        (() => {
          const TOKEN_KEY = 'ds-lb-admin-token';
          const HISTORY_SECONDS = 300;
          const $ = (id) => document.getElementById(id);
          const el = (tag, props, ...children) => {
            const node = document.createElement(tag);
            if (props) for (const [k, v] of Object.entries(props)) {
              if (k === 'dataset') Object.assign(node.dataset, v);
              else if (k in node) node[k] = v; else node.setAttribute(k, v);
            }
            for (const child of children) node.append(child);
            return node;
          };

          // What the page knows; `window.dsDashboard` lets the browser tests read it.
          const model = {
            status: null,
            keyspace: null,
            previousShares: new Map(),
            keyspaceGeneration: -1,
            samples: [],          // counters snapshots: {time, requests: Map, failures, errors, latency}
            events: [],
            transitions: [],      // every state a replica row was drawn in: {name, state, time}
            live: false,
          };
          window.dsDashboard = model;

          class Unauthorized extends Error {}
          class ApiError extends Error {
            constructor(status, message) { super(message); this.status = status; }
          }

          function authHeaders(extra) {
            const headers = Object.assign({}, extra);
            const token = sessionStorage.getItem(TOKEN_KEY);
            if (token) headers.Authorization = 'Bearer ' + token;
            return headers;
          }

          async function api(method, path, body) {
            const init = { method, cache: 'no-store', headers: authHeaders(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
            if (body !== undefined) init.body = JSON.stringify(body);
            const response = await fetch(path, init);
            let json = null;
            try { json = await response.json(); } catch (_) { /* not JSON: the status says enough */ }
            const message = json && typeof json.message === 'string' ? json.message : response.status + ' ' + response.statusText;
            if (response.status === 401) { askForToken(message); throw new Unauthorized(message); }
            if (!response.ok || (json && json.status === 'failure')) throw new ApiError(response.status, message);
            return json ? json.message : null;
          }

          // ---- token ----
          const tokenDialog = $('token-dialog');
          let waitingForToken = false;
          function askForToken(message) {
            waitingForToken = true;
            setLive(false, 'token needed');
            const hadToken = sessionStorage.getItem(TOKEN_KEY) !== null;
            $('token-error').textContent = hadToken ? 'The token was refused (401): ' + message : '';
            if (hadToken) sessionStorage.removeItem(TOKEN_KEY);
            if (!tokenDialog.open) tokenDialog.showModal();
            $('token-input').focus();
          }
          $('token-form').addEventListener('submit', (event) => {
            event.preventDefault();
            const value = $('token-input').value.trim();
            if (!value) return;
            sessionStorage.setItem(TOKEN_KEY, value);
            $('token-input').value = '';
            tokenDialog.close();
            waitingForToken = false;
            connect();
          });
          tokenDialog.addEventListener('cancel', (event) => event.preventDefault());

          // ---- formatting ----
          const fmt = {
            rate: (x) => x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2),
            ms: (x) => x == null ? '–' : x >= 100 ? x.toFixed(0) + ' ms' : x.toFixed(1) + ' ms',
            pct: (x) => (x * 100).toFixed(1) + ' %',
            time: (ms) => new Date(ms).toLocaleTimeString([], { hour12: false }),
            duration: (s) => s < 60 ? s.toFixed(1) + ' s' : Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s',
            bound: (seconds) => seconds == null ? '> 10 s' : seconds < 1 ? '≤ ' + (seconds * 1000).toFixed(0) + ' ms' : '≤ ' + seconds + ' s',
          };
          function colour(name) {
            let h = 0;
            for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
            return 'hsl(' + (h * 137.5) % 360 + ' 62% 45%)';
          }

          // ---- counters ----
          function onCounters(data) {
            const status = data.status.message;
            const sample = { time: data.time, requests: new Map(), errors: data.errors, latency: data.latency };
            for (const replica of status.replicas) sample.requests.set(replica.name, replica.requests + replica.failed_requests);
            model.samples.push(sample);
            while (model.samples.length > 1 && data.time - model.samples[0].time > HISTORY_SECONDS * 1000) model.samples.shift();
            applyStatus(status);
          }

          function applyStatus(status) {
            model.status = status;
            if (status.generation !== model.keyspaceGeneration) loadKeyspace(status.generation);
            render();
          }

          // Requests per second of one replica (or of all, name null) between consecutive samples.
          function rates(name) {
            const out = [];
            for (let i = 1; i < model.samples.length; i++) {
              const a = model.samples[i - 1], b = model.samples[i];
              const dt = (b.time - a.time) / 1000;
              if (dt <= 0) continue;
              let d = 0;
              if (name === null) {
                for (const [n, v] of b.requests) if (a.requests.has(n)) d += Math.max(0, v - a.requests.get(n));
              } else if (a.requests.has(name) && b.requests.has(name)) {
                d = Math.max(0, b.requests.get(name) - a.requests.get(name));
              }
              out.push(d / dt);
            }
            return out;
          }

          function sampleBefore(seconds) {
            const last = model.samples[model.samples.length - 1];
            let chosen = model.samples[0];
            for (const s of model.samples) if (last.time - s.time >= seconds * 1000) chosen = s;
            return chosen;
          }

          // p99 over the last 30 s from the cumulative histogram: the bound of the first bucket that
          // holds 99 % of the responses of the window.
          function p99(name) {
            if (model.samples.length < 2) return undefined;
            const last = model.samples[model.samples.length - 1], first = sampleBefore(30);
            const now = last.latency[name], then = first.latency[name] || [];
            if (!now || now.length === 0) return undefined;
            const before = new Map(then.map(([bound, count]) => [String(bound), count]));
            const deltas = now.map(([bound, count]) => [bound, count - (before.get(String(bound)) || 0)]);
            const total = deltas[deltas.length - 1][1];
            if (total <= 0) return undefined;
            for (const [bound, count] of deltas) if (count >= 0.99 * total) return bound;
            return null;
          }

          function sparkline(values) {
            const w = 120, h = 26, ns = 'http://www.w3.org/2000/svg';
            const svg = document.createElementNS(ns, 'svg');
            svg.setAttribute('class', 'spark'); svg.setAttribute('width', w); svg.setAttribute('height', h);
            svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
            svg.setAttribute('aria-hidden', 'true');
            const max = Math.max(1, ...values);
            const step = w / Math.max(1, HISTORY_SECONDS - 1);
            const start = w - step * (values.length - 1);
            const points = values.map((v, i) => (start + i * step).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 3)).toFixed(1)).join(' ');
            const line = document.createElementNS(ns, 'polyline');
            line.setAttribute('points', points || '0,' + (h - 1));
            line.setAttribute('fill', 'none'); line.setAttribute('stroke', '#0969da'); line.setAttribute('stroke-width', '1.5');
            svg.append(line);
            return svg;
          }

          // ---- rendering ----
          const rows = new Map();

          function render() {
            const status = model.status;
            if (!status) return;
            $('algorithm').textContent = status.algorithm;
            $('driver').textContent = status.driver;
            $('heartbeat').textContent = status.heartbeat_interval;
            $('uptime').textContent = fmt.duration(status.uptime_s);
            $('generation').textContent = status.generation;
            renderTotals(status);
            renderReplicas(status);
            renderNodes(status);
          }

          function renderTotals(status) {
            const total = rates(null);
            $('total-rps').textContent = total.length ? fmt.rate(total[total.length - 1]) : '–';
            $('total-up').textContent = status.replicas.filter((r) => r.state === 'UP' && !r.marked_down).length + '/' + status.replicas.length;
            $('total-inflight').textContent = status.replicas.reduce((n, r) => n + r.in_flight, 0);
            const list = $('errors');
            list.replaceChildren();
            if (model.samples.length === 0) return;
            const last = model.samples[model.samples.length - 1], first = sampleBefore(10);
            const seconds = Math.max(1, (last.time - first.time) / 1000);
            let errors = 0;
            for (const [kind, count] of Object.entries(last.errors)) {
              const delta = Math.max(0, count - (first.errors[kind] || 0));
              if (kind !== 'retried') errors += delta;
              list.append(el('li', { className: delta > 0 ? 'nonzero' : '' }, kind.replace(/_/g, ' ') + ' ' + fmt.rate(delta / seconds) + '/s'));
            }
            let served = 0;
            for (const [name, v] of last.requests) if (first.requests.has(name)) served += Math.max(0, v - first.requests.get(name));
            $('total-error-rate').textContent = served + errors > 0 ? fmt.pct(errors / (served + errors)) : '0 %';
          }

          function stateOf(replica) { return replica.marked_down && replica.state === 'UP' ? 'DOWN' : replica.state; }

          function renderReplicas(status) {
            const body = document.querySelector('#replicas tbody');
            const seen = new Set();
            // Rows are moved only when the order changed: moving a row would take the focus off its button.
            let next = body.firstChild;
            for (const replica of status.replicas) {
              seen.add(replica.name);
              let row = rows.get(replica.name);
              if (!row) {
                row = makeRow(replica);
                rows.set(replica.name, row);
              }
              if (row.tr === next) next = next.nextSibling;
              else body.insertBefore(row.tr, next);
              updateRow(row, replica);
            }
            for (const [name, row] of rows) if (!seen.has(name)) { row.tr.remove(); rows.delete(name); }
          }

          function makeRow(replica) {
            const cell = (label, className) => el('td', { className: className || '', dataset: { label } });
            const row = {
              tr: el('tr', { dataset: { replica: replica.name } }),
              name: cell('Name', 'name-cell'), id: cell('Id'), state: cell('State'), check: cell('Last check'),
              latency: cell('Latency'), restarts: cell('Restarts'), rps: cell('Requests/s'), inflight: cell('In flight'),
              p99: cell('p99'), keys: cell('Keys'), actions: cell('Action', 'actions-cell'), drawnState: null,
            };
            row.badge = el('span', { className: 'state' });
            row.state.append(row.badge);
            row.swatch = el('span', { className: 'swatch', 'aria-hidden': 'true' });
            row.swatch.style.background = colour(replica.name);
            row.name.append(row.swatch, el('span', {}, replica.name));
            row.spark = el('span', {});
            row.rpsText = el('span', { className: 'muted' });
            row.rps.append(el('div', { className: 'rps' }, row.spark, row.rpsText));
            const remove = el('button', { type: 'button', className: 'danger', textContent: 'Remove' });
            remove.setAttribute('aria-label', 'Remove ' + replica.name);
            remove.addEventListener('click', () => confirmRemove(replica.name, Number(row.tr.dataset.id)));
            row.actions.append(remove);
            row.tr.append(row.name, row.id, row.state, row.check, row.latency, row.restarts, row.rps, row.inflight, row.p99, row.keys, row.actions);
            return row;
          }

          function updateRow(row, replica) {
            const state = stateOf(replica);
            row.tr.dataset.id = replica.id;
            row.tr.dataset.state = state;
            if (row.drawnState !== state) {
              row.drawnState = state;
              model.transitions.push({ name: replica.name, state, time: Date.now() });
            }
            row.id.textContent = replica.id;
            row.badge.dataset.state = state;
            row.badge.textContent = replica.marked_down ? 'DOWN (passive)' : state;
            row.check.textContent = replica.last_check || '–';
            row.latency.textContent = replica.checks > 0 ? fmt.ms(replica.last_check_ms) : '–';
            row.restarts.textContent = replica.restarts + (replica.failed_restarts ? ' (' + replica.failed_restarts + ' failed)' : '');
            const values = rates(replica.name);
            row.spark.replaceChildren(sparkline(values));
            row.rpsText.textContent = values.length ? fmt.rate(values[values.length - 1]) + '/s' : '–';
            row.inflight.textContent = replica.in_flight;
            const p = p99(replica.name);
            row.p99.textContent = p === undefined ? '–' : fmt.bound(p);
            const share = model.keyspace && model.keyspace.replicas.find((r) => r.name === replica.name);
            row.keys.textContent = share ? fmt.pct(share.share) : '–';
            row.tr.dataset.share = share ? share.share : '';
          }

          function renderNodes(status) {
            // Cluster mode: /status has a `cluster` object (this node, etcd's state, the nodes).
            const cluster = status.cluster && typeof status.cluster === 'object' ? status.cluster : null;
            const nodes = cluster && Array.isArray(cluster.nodes) ? cluster.nodes : null;
            $('nodes').hidden = !nodes;
            if (!nodes) return;
            const list = $('nodes-list');
            list.replaceChildren(el('p', { className: 'muted' },
              'this node ' + cluster.node + ' · etcd ' + cluster.store + ' · revision ' + cluster.revision
              + (cluster.store_problem ? ' · ' + cluster.store_problem : '')));
            for (const node of nodes) {
              const name = node.name || node.id || node.node || '?';
              const fields = Object.entries(node).filter(([k, v]) => typeof v !== 'object' && k !== 'name');
              const here = status.replicas.filter((r) => r.node === name).map((r) => r.name);
              const listed = Array.isArray(node.replicas) ? node.replicas.map((r) => typeof r === 'string' ? r : r.name) : here;
              list.append(el('div', {},
                el('strong', {}, name), ' ', el('span', { className: 'muted' }, fields.map(([k, v]) => k + ' ' + v).join(' · ')),
                el('ul', {}, ...listed.map((r) => el('li', {}, r)))));
            }
          }

          // ---- key space ----
          let keyspaceLoading = null;
          async function loadKeyspace(generation) {
            if (keyspaceLoading === generation) return;
            keyspaceLoading = generation;
            try {
              const keyspace = await api('GET', '/keyspace');
              if (keyspace.generation < model.keyspaceGeneration) return; // an answer overtaken by a newer one
              // The change shown is the last change of membership (a health change moves no share).
              const names = (k) => k.replicas.map((r) => r.name).join(',');
              if (model.keyspace && names(model.keyspace) !== names(keyspace)) {
                model.previousShares = new Map(model.keyspace.replicas.map((r) => [r.name, r.share]));
              }
              model.keyspace = keyspace;
              model.keyspaceGeneration = keyspace.generation;
              renderKeyspace();
              render();
            } catch (error) {
              if (!(error instanceof Unauthorized)) showMessage('Key space: ' + error.message, true);
            } finally {
              keyspaceLoading = null;
            }
          }

          function renderKeyspace() {
            const keyspace = model.keyspace;
            $('keys-meta').textContent = '(' + keyspace.algorithm + ', generation ' + keyspace.generation + ', ' + keyspace.sample_keys + ' sample keys)';
            const bar = $('keybar'), list = $('keylist');
            bar.replaceChildren(); list.replaceChildren();
            for (const replica of keyspace.replicas) {
              const segment = el('div', { title: replica.name + ' ' + fmt.pct(replica.share) });
              segment.style.width = (replica.share * 100) + '%';
              segment.style.background = colour(replica.name);
              if (!replica.healthy) segment.style.opacity = '.35';
              bar.append(segment);
              const before = model.previousShares.get(replica.name);
              const delta = before === undefined ? (model.previousShares.size ? replica.share : 0) : replica.share - before;
              const item = el('li', { dataset: { replica: replica.name, share: replica.share } },
                el('span', { className: 'swatch', 'aria-hidden': 'true', style: 'background:' + colour(replica.name) }),
                replica.name + ' ' + fmt.pct(replica.share));
              if (Math.abs(delta) >= 0.0005) item.append(' ', el('span', { className: delta > 0 ? 'delta-up' : 'delta-down' }, (delta > 0 ? '+' : '−') + fmt.pct(Math.abs(delta))));
              if (!replica.healthy || Math.abs(replica.routed - replica.share) >= 0.0005) item.append(' ', el('span', { className: 'muted' }, '(routed now ' + fmt.pct(replica.routed) + ')'));
              list.append(item);
            }
            bar.setAttribute('aria-label', 'Share of keys: ' + keyspace.replicas.map((r) => r.name + ' ' + fmt.pct(r.share)).join(', '));
          }

          // ---- events ----
          const FAILURES = new Set(['heartbeat_failed', 'exited', 'restart_failed', 'node_lost']);
          const RECOVERIES = new Set(['back_up', 'restarted', 'replaced', 'node_joined']);

          // A live event says what the replica is now, before the next counters do: a replica that is
          // restarted within a few hundred milliseconds is still drawn DOWN for that time.
          function onEvent(event, live) {
            model.events.push(event);
            if (model.events.length > 500) model.events.shift();
            renderEvent(event);
            if (!live) return;
            const implied = FAILURES.has(event.type) ? 'DOWN' : RECOVERIES.has(event.type) && event.type !== 'replaced' ? 'UP' : null;
            const replica = implied && model.status && model.status.replicas.find((r) => r.name === event.backend);
            if (replica) {
              replica.state = implied;
              render();
            }
            refreshStatusSoon();
          }

          function renderEvent(event) {
            let duration = '';
            if (RECOVERIES.has(event.type)) {
              // From the first failure of this replica after its last recovery.
              let since = null;
              for (let i = model.events.length - 2; i >= 0; i--) {
                const e = model.events[i];
                if (e.backend !== event.backend) continue;
                if (RECOVERIES.has(e.type)) break;
                if (FAILURES.has(e.type)) since = e.time;
              }
              if (since !== null) duration = ' — after ' + fmt.duration((event.time - since) / 1000);
            }
            const item = el('li', { dataset: { type: event.type, backend: event.backend } },
              el('time', { dateTime: new Date(event.time).toISOString() }, fmt.time(event.time)),
              el('div', {}, el('span', { className: 'kind kind-' + event.type }, event.type.replace(/_/g, ' ')), ' ',
                el('strong', {}, event.backend), duration, el('div', { className: 'muted' }, event.message)));
            $('timeline').prepend(item);
            while ($('timeline').children.length > 500) $('timeline').lastChild.remove();
          }

          let refreshTimer = null;
          function refreshStatusSoon() {
            if (refreshTimer) return;
            refreshTimer = setTimeout(async () => {
              refreshTimer = null;
              try { applyStatus(await api('GET', '/status')); } catch (_) { /* the next counters bring it */ }
            }, 50);
          }

          // ---- actions ----
          function showMessage(text, isError) {
            const message = $('action-message');
            message.textContent = text;
            message.className = 'message ' + (isError ? 'error' : 'ok');
            message.setAttribute('role', isError ? 'alert' : 'status');
          }

          $('add-form').addEventListener('submit', async (event) => {
            event.preventDefault();
            const n = Number($('add-n').value);
            const hostnames = $('add-hostnames').value.split(',').map((s) => s.trim()).filter((s) => s);
            const body = hostnames.length ? { n, hostnames } : { n };
            const button = $('add-button');
            button.disabled = true;
            showMessage('Adding…', false);
            try {
              const pool = await api('POST', '/add', body);
              showMessage('Added. The pool: ' + pool.replicas.join(', '), false);
              $('add-hostnames').value = '';
              applyStatus(await api('GET', '/status'));
            } catch (error) {
              if (!(error instanceof Unauthorized)) showMessage('Add failed (' + error.status + '): ' + error.message, true);
            } finally {
              button.disabled = false;
            }
          });

          const confirmDialog = $('confirm-dialog');
          let pendingRemoval = null;
          function confirmRemove(name, id) {
            pendingRemoval = { name, id, opener: document.activeElement };
            $('confirm-text').textContent = 'Remove ' + name + ' (id ' + id + ') from the pool? Its keys move to the other replicas.';
            confirmDialog.returnValue = '';
            confirmDialog.showModal();
            $('confirm-cancel').focus();
          }
          confirmDialog.addEventListener('close', async () => {
            const removal = pendingRemoval;
            pendingRemoval = null;
            if (!removal) return;
            if (confirmDialog.returnValue !== 'remove') {
              if (removal.opener && removal.opener.isConnected) removal.opener.focus();
              return;
            }
            showMessage('Removing ' + removal.name + '…', false);
            try {
              const pool = await api('DELETE', '/rm?id=' + encodeURIComponent(removal.id));
              showMessage('Removed ' + removal.name + '. The pool: ' + (pool.replicas.join(', ') || 'empty'), false);
              applyStatus(await api('GET', '/status'));
            } catch (error) {
              if (!(error instanceof Unauthorized)) showMessage('Remove failed (' + error.status + '): ' + error.message, true);
            }
            $('add-n').focus();
          });

          // ---- the stream ----
          function setLive(live, text) {
            model.live = live;
            $('live').dataset.live = String(live);
            $('live').textContent = text || (live ? 'live' : 'reconnecting…');
          }

          let generationOfConnect = 0;
          const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

          async function connect() {
            const mine = ++generationOfConnect;
            let backoff = 500;
            while (mine === generationOfConnect && !waitingForToken) {
              const controller = new AbortController();
              let watchdog = null;
              try {
                // Resynchronise first: whatever happened while the stream was down is in /status.
                applyStatus(await api('GET', '/status'));
                const response = await fetch('/events', { headers: authHeaders({ Accept: 'text/event-stream' }), cache: 'no-store', signal: controller.signal });
                if (response.status === 401) { askForToken('missing or wrong token'); return; }
                if (!response.ok || !response.body) throw new ApiError(response.status, 'event stream refused');
                model.events = [];
                $('timeline').replaceChildren();
                setLive(true);
                backoff = 500;
                let lastFrame = Date.now();
                watchdog = setInterval(() => { if (Date.now() - lastFrame > 5000) controller.abort(); }, 1000);
                const reader = response.body.getReader();
                const decoder = new TextDecoder();
                let buffer = '';
                for (;;) {
                  const { value, done } = await reader.read();
                  if (done || mine !== generationOfConnect) break;
                  buffer += decoder.decode(value, { stream: true });
                  let end;
                  while ((end = buffer.indexOf('\n\n')) >= 0) {
                    const frame = buffer.slice(0, end);
                    buffer = buffer.slice(end + 2);
                    lastFrame = Date.now();
                    handleFrame(frame);
                  }
                }
              } catch (error) {
                if (error instanceof Unauthorized) return;
              } finally {
                if (watchdog) clearInterval(watchdog);
                controller.abort();
              }
              if (mine !== generationOfConnect || waitingForToken) return;
              setLive(false);
              await delay(backoff);
              backoff = Math.min(5000, backoff * 2);
            }
          }

          function handleFrame(frame) {
            let type = 'message';
            const data = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.length === 0) return;
            const payload = JSON.parse(data.join('\n'));
            if (type === 'counters') onCounters(payload);
            else if (type === 'replica' || type === 'node') onEvent(payload, true);
            else if (type === 'history') onEvent(payload, false);
          }

          connect();
        })();
        </script>
        </body>
        </html>
        """#
}
