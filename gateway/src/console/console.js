// The operator console: live numbers over /admin/ws, changes through the admin API
// (/admin/v1/...) with the session cookie and the CSRF token of this page.
"use strict";
(function () {
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const WINDOW_MS = 15 * 60 * 1000;
  const $ = (id) => document.getElementById(id);

  // event_id -> {t:[], waiting:[], ready:[], active:[], admitted_per_second:[], admit_per_second:[]}
  const series = new Map();
  // event_id -> the latest sample's numbers
  const latest = new Map();
  let selected = decodeURIComponent((location.hash.match(/^#e=(.+)$/) || [])[1] || "");
  let lastDead = null;

  // --- Errors and notes ---------------------------------------------------------------------
  function showError(text) {
    const p = document.createElement("p");
    p.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "secondary small";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => p.remove());
    p.append(" ", close);
    $("errors").prepend(p);
  }
  function done(text) {
    $("done").textContent = text;
  }

  // --- The admin API --------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { "X-CSRF-Token": CSRF };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try {
      r = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new Error("the gateway did not answer (" + e.message + ")");
    }
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const err = json && json.error;
      const msg = err ? err.code + ": " + err.message : "HTTP " + r.status;
      if (r.status === 401) {
        showError(msg + " (your session ended: reload to sign in again)");
      }
      throw new Error(msg);
    }
    return json;
  }
  async function guarded(what, f) {
    try {
      await f();
    } catch (e) {
      showError(what + " failed: " + e.message);
    }
  }

  // --- Live feed ------------------------------------------------------------------------------
  function ensure(id) {
    if (!series.has(id)) {
      series.set(id, { t: [], waiting: [], ready: [], active: [], admitted_per_second: [], admit_per_second: [] });
    }
    return series.get(id);
  }
  function trim(s) {
    const cut = s.t.length ? s.t[s.t.length - 1] - WINDOW_MS : 0;
    let n = 0;
    while (n < s.t.length && s.t[n] < cut) n++;
    if (n) for (const k of Object.keys(s)) s[k].splice(0, n);
  }
  function onHistory(m) {
    series.clear();
    for (const [id, cols] of Object.entries(m.events)) series.set(id, cols);
  }
  function onSample(m) {
    // For tests and the curious: how many samples this page has received.
    document.body.dataset.samples = String(Number(document.body.dataset.samples || 0) + 1);
    const seen = new Set();
    for (const e of m.events) {
      seen.add(e.event_id);
      latest.set(e.event_id, e);
      const s = ensure(e.event_id);
      s.t.push(m.t);
      s.waiting.push(e.waiting);
      s.ready.push(e.ready);
      s.active.push(e.active);
      s.admitted_per_second.push(e.admitted_per_second);
      s.admit_per_second.push(e.admit_per_second);
      trim(s);
    }
    for (const id of [...latest.keys()]) if (!seen.has(id)) { latest.delete(id); series.delete(id); }
    setStat("stat-websockets", m.replica.websockets);
    const w = m.webhooks;
    setStat("stat-backlog", w ? w.backlog : null, w ? undefined : "off");
    setStat("stat-dead", w ? w.dead_letters : null, w ? undefined : "off");
    if (w && w.dead_letters !== lastDead) {
      lastDead = w.dead_letters;
      loadDlq();
    }
    renderEvents();
    renderEvent();
  }

  function setStat(id, value, text) {
    const el = $(id);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.textContent = text !== undefined ? text : value === null || value === undefined ? "–" : fmt(value);
  }
  function fmt(n) {
    return typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: 2 }) : String(n);
  }
  function eta(s) {
    if (s < 0) return "no estimate (paused)";
    if (s < 90) return s + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  let socket = null;
  let retry = 500;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + "/admin/ws");
    setConn("connecting", "Connecting…");
    socket.onopen = () => { retry = 500; setConn("live", "Live"); };
    socket.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      if (m.type === "history") onHistory(m);
      else if (m.type === "sample") onSample(m);
    };
    socket.onclose = (ev) => {
      if (ev.code === 4001) {
        setConn("ended", "Session ended");
        location.reload();
        return;
      }
      setConn("offline", "Reconnecting…");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }
  function setConn(state, text) {
    const c = $("conn");
    c.dataset.state = state;
    c.textContent = text;
  }

  // --- Rendering ------------------------------------------------------------------------------
  function renderEvents() {
    const ul = $("events");
    const ids = [...latest.keys()].sort();
    if (!selected && ids.length) selected = ids[0];
    ul.textContent = "";
    if (!ids.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No events yet.";
      ul.append(li);
      return;
    }
    for (const id of ids) {
      const e = latest.get(id);
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "event-link";
      b.dataset.event = id;
      if (id === selected) b.setAttribute("aria-current", "true");
      const name = document.createElement("span");
      name.textContent = id;
      const n = document.createElement("span");
      n.className = "count";
      n.textContent = fmt(e.waiting) + " waiting";
      b.append(name, n);
      b.addEventListener("click", () => select(id));
      li.append(b);
      ul.append(li);
    }
  }
  function select(id) {
    const changed = id !== selected;
    selected = id;
    history.replaceState(null, "", "#e=" + encodeURIComponent(id));
    renderEvents();
    renderEvent(changed);
  }

  let formFor = null;
  function renderEvent(forceForm) {
    const e = latest.get(selected);
    $("event").hidden = !e;
    if (!e) return;
    $("event-title").textContent = e.event_id;
    const flags = [];
    if (e.admissions_stopped) flags.push("Admissions paused");
    if (e.sold_out) flags.push("Sold out");
    if (e.opens_at && Date.parse(e.opens_at) > Date.now()) flags.push("Opens " + new Date(e.opens_at).toLocaleString());
    $("event-flags").textContent = flags.join(" · ");
    $("event").dataset.stopped = String(e.admissions_stopped);
    setStat("stat-waiting", e.waiting);
    setStat("stat-ready", e.ready);
    setStat("stat-active", e.active);
    setStat("stat-admitted", e.admitted_total);
    const measured = e.admitted_per_second === null ? "–" : fmt(e.admitted_per_second);
    setStat("stat-rate", e.admitted_per_second, measured + " / " + fmt(e.admit_per_second));
    setStat("stat-eta", e.eta_last_seconds, e.waiting ? eta(e.eta_last_seconds) : "nobody waiting");
    $("pause").disabled = e.admissions_stopped;
    $("resume").disabled = !e.admissions_stopped;
    $("sold-out").disabled = e.sold_out;
    // The form follows the event unless the operator is editing it.
    const editing = $("config-form").contains(document.activeElement);
    if (forceForm || formFor !== e.event_id || !editing) fillForm(e);
    const s = series.get(selected);
    if (s) {
      chart($("chart-queue"), s.t, [
        { values: s.waiting, cls: "waiting" },
        { values: s.ready, cls: "ready" },
        { values: s.active, cls: "active" },
      ]);
      chart($("chart-rate"), s.t, [
        { values: s.admitted_per_second, cls: "measured" },
        { values: s.admit_per_second, cls: "configured" },
      ]);
    }
  }
  function fillForm(e) {
    if (formFor === e.event_id && $("config-form").dataset.dirty === "true") return;
    formFor = e.event_id;
    $("f-rate").value = e.admit_per_second;
    $("f-max").value = e.max_active;
    $("f-opens").value = e.opens_at ? toLocalInput(new Date(e.opens_at)) : "";
  }
  function toLocalInput(d) {
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" +
      p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  const SVG = "http://www.w3.org/2000/svg";
  function chart(svg, t, lines) {
    svg.textContent = "";
    const W = 600, H = 160, PAD = 4;
    // The x axis spans the history there is (at least half a minute, at most 15 minutes), so that a young
    // history is not a sliver at the right edge.
    const end = t.length ? t[t.length - 1] : Date.now();
    const span = Math.min(WINDOW_MS, Math.max(30000, t.length ? end - t[0] : 0));
    const start = end - span;
    let max = 1;
    for (const l of lines) for (const v of l.values) if (v !== null && v > max) max = v;
    for (const f of [0.5, 1]) {
      const y = H - PAD - f * (H - 2 * PAD);
      const g = document.createElementNS(SVG, "line");
      g.setAttribute("x1", 0); g.setAttribute("x2", W);
      g.setAttribute("y1", y); g.setAttribute("y2", y);
      g.setAttribute("class", "grid");
      svg.append(g);
    }
    // Outside the SVG: its aspect ratio is not kept, text in it would be stretched.
    const axis = svg.parentElement.querySelector(".axis");
    if (axis) axis.textContent = "top " + fmt(max) + ", last " + (span < 90000 ? Math.round(span / 1000) + " s" : Math.round(span / 60000) + " min");
    for (const l of lines) {
      let d = "";
      let pen = false;
      for (let i = 0; i < t.length; i++) {
        const v = l.values[i];
        if (v === null || v === undefined || t[i] < start) { pen = false; continue; }
        const x = ((t[i] - start) / span) * W;
        const y = H - PAD - (v / max) * (H - 2 * PAD);
        d += (pen ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        pen = true;
      }
      const p = document.createElementNS(SVG, "path");
      p.setAttribute("d", d);
      p.setAttribute("class", "line " + l.cls);
      p.setAttribute("vector-effect", "non-scaling-stroke");
      svg.append(p);
    }
  }

  // --- Controls -------------------------------------------------------------------------------
  const ev = () => "/admin/v1/events/" + encodeURIComponent(selected);
  $("config-form").addEventListener("input", () => { $("config-form").dataset.dirty = "true"; });
  $("config-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = selected;
    guarded("Saving " + id, async () => {
      // PUT takes the whole configuration: read it, change the form's fields, write it back.
      const cur = await api("GET", ev());
      const opens = $("f-opens").value;
      const body = {
        admit_per_second: Number($("f-rate").value),
        max_active: Number($("f-max").value),
        admission_ttl_seconds: cur.admission_ttl_seconds,
        idle_timeout_seconds: cur.idle_timeout_seconds,
        ready_timeout_seconds: cur.ready_timeout_seconds,
        opens_at: opens ? new Date(opens).toISOString().replace(/\.\d{3}Z$/, "Z") : null,
        target_url: cur.target_url,
      };
      if (cur.join_challenge) body.join_challenge = cur.join_challenge;
      const after = await api("PUT", ev(), body);
      $("config-form").dataset.dirty = "false";
      done("Saved " + id + ": " + after.admit_per_second + " per second, at most " + after.max_active + " active.");
    });
  });
  function action(name, confirmText) {
    const id = selected;
    if (confirmText && !window.confirm(confirmText)) return;
    guarded(name + " on " + id, async () => {
      const r = await api("POST", ev() + "/actions", {
        action: name,
        confirm: true,
        reason: "operator console",
      });
      const e = latest.get(id);
      if (e) { e.admissions_stopped = r.admissions_stopped; e.sold_out = r.sold_out; renderEvent(); }
      done(r.action.message + ".");
    });
  }
  $("pause").addEventListener("click", () => action("STOP_ADMISSIONS"));
  $("resume").addEventListener("click", () => action("RESUME_ADMISSIONS"));
  $("sold-out").addEventListener("click", () =>
    action("SOLD_OUT", "Mark " + selected + " sold out? New joins are refused and everyone waiting is told. This cannot be undone."));

  $("sign-out").addEventListener("click", () => guarded("Signing out", async () => {
    await api("POST", "/admin/sign-out");
    location.href = "/admin";
  }));

  // --- Dead letters ---------------------------------------------------------------------------
  async function loadDlq() {
    const ul = $("dlq");
    let r;
    try {
      r = await api("GET", "/admin/v1/dlq?limit=50");
    } catch (e) {
      ul.textContent = "";
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = e.message.startsWith("WEBHOOKS_DISABLED") ? "Webhooks are not configured on this gateway." : "Could not load: " + e.message;
      ul.append(li);
      return;
    }
    ul.textContent = "";
    if (!r.dead_letters.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "No dead letters.";
      ul.append(li);
    }
    for (const d of r.dead_letters) {
      const li = document.createElement("li");
      li.dataset.id = d.id;
      const head = document.createElement("p");
      const strong = document.createElement("strong");
      strong.textContent = d.id;
      head.append(strong, " · " + d.status + " · " + d.attempts + " attempts · " + d.failed_at);
      const err = document.createElement("p");
      err.className = "muted";
      err.textContent = d.last_error;
      li.append(head, err);
      if (d.status === "active") {
        const retryB = document.createElement("button");
        retryB.type = "button";
        retryB.textContent = "Retry";
        retryB.addEventListener("click", () => guarded("Retrying " + d.id, async () => {
          await api("POST", "/admin/v1/dlq/" + encodeURIComponent(d.id) + "/retry");
          done(d.id + " re-enqueued.");
          loadDlq();
        }));
        const resolveB = document.createElement("button");
        resolveB.type = "button";
        resolveB.className = "secondary";
        resolveB.textContent = "Resolve";
        resolveB.addEventListener("click", () => guarded("Resolving " + d.id, async () => {
          await api("POST", "/admin/v1/dlq/" + encodeURIComponent(d.id) + "/resolve", {
            resolved_by: $("dlq-by").value || "operator console",
          });
          done(d.id + " resolved.");
          loadDlq();
        }));
        li.append(retryB, " ", resolveB);
      }
      ul.append(li);
    }
  }
  $("dlq-refresh").addEventListener("click", loadDlq);

  window.addEventListener("hashchange", () => {
    const m = location.hash.match(/^#e=(.+)$/);
    if (m) select(decodeURIComponent(m[1]));
  });
  connect();
  loadDlq();
})();
