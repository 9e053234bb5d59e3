// The Requests page: the filter form (menus apply at once, the browser's zone
// for custom times, empty fields left out of the URL) and the live tail, rows
// pushed by the server over Server-Sent Events and put on top of the table.
// Rows are built with textContent only: nothing a prompt or a header holds is
// ever parsed as markup.
import { browserZone, localizeTimes } from "./core.js";

const MAX_ROWS = 500; // rows kept on the page while the tail runs
const RETRY_MS = 5000;

// ---- the filter form -------------------------------------------------------------
function setUpFilters(form) {
  const zone = form.querySelector("[data-browser-zone]");
  const custom = [...form.querySelectorAll("[data-custom-time]")];
  const range = form.querySelector("[data-range]");
  // Custom times are typed in the browser's zone, unless the page shows
  // times of another zone already (a shared link names its own).
  if (zone && custom.every((input) => !input.value)) zone.value = browserZone();

  for (const input of custom) {
    input.addEventListener("change", () => {
      if (range) range.value = "";
    });
  }
  for (const select of form.querySelectorAll("[data-autosubmit]")) {
    select.addEventListener("change", () => {
      if (select === range) for (const input of custom) input.value = "";
      form.requestSubmit();
    });
  }
  form.addEventListener("submit", () => {
    // Empty fields would only clutter the URL; a zone matters with custom times only.
    const timed = custom.some((input) => input.value);
    for (const field of form.elements) {
      if (!field.name) continue;
      if (!field.value || (field === zone && !timed)) field.disabled = true;
    }
    // Re-enabled once the browser has read the form (Back restores the page).
    setTimeout(() => {
      for (const field of form.elements) field.disabled = false;
    }, 0);
  });
}

// ---- rows ---------------------------------------------------------------------------
function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export function buildRow(row) {
  const tr = element("tr", "fresh");
  tr.dataset.id = row.id;

  const time = element("td", "time");
  const link = element("a");
  link.href = row.href;
  link.title = `Request ${row.id}`;
  const stamp = element("time", "", row.time_text);
  stamp.setAttribute("datetime", row.time_iso);
  link.append(stamp);
  time.append(link);

  const model = element("td", "model", row.model);
  if (row.streaming) {
    model.append(" ");
    const tag = element("span", "tag", "stream");
    tag.title = "streaming";
    model.append(tag);
  }

  const status = element("td");
  status.append(element("span", `badge ${row.status_class}`, row.status));
  if (row.outcome_text) {
    status.append(" ");
    status.append(element("span", "outcome", row.outcome_text));
  }

  const session = element("td", "session");
  if (row.session) {
    const a = element("a", "mono", row.session_short);
    a.href = row.session_href;
    a.title = `Only session ${row.session}`;
    session.append(a);
  } else {
    session.append(element("span", "muted", "\u2013"));
  }

  tr.append(
    time,
    model,
    status,
    element("td", "num", row.tokens),
    element("td", "num", row.cost),
    element("td", "num", row.duration),
    element("td", "num", row.ttfb),
    session,
  );
  return tr;
}

function addRows(table, rows) {
  const body = table.tBodies[0];
  let added = 0;
  // Oldest first from the server: each goes on top, so the newest ends up first.
  for (const row of rows) {
    if (!row || typeof row.id !== "string") continue;
    const known = [...body.rows].some((tr) => tr.dataset.id === row.id);
    if (known) continue;
    body.prepend(buildRow(row));
    added += 1;
  }
  while (body.rows.length > MAX_ROWS) body.lastElementChild.remove();
  if (added) {
    localizeTimes(body);
    table.closest(".list-panel")?.classList.remove("is-empty");
    const empty = document.getElementById("empty-state");
    if (empty) empty.hidden = true;
  }
  return added;
}

// ---- the live tail --------------------------------------------------------------------
class Tail {
  constructor(toggle, table, status) {
    this.toggle = toggle;
    this.table = table;
    this.status = status;
    this.url = toggle.dataset.tailUrl;
    this.source = null;
    this.retry = null;
    this.received = 0;
  }

  get on() {
    return this.toggle.getAttribute("aria-pressed") === "true";
  }

  say(text) {
    this.status.textContent = text;
  }

  remember(on) {
    const url = new URL(location.href);
    if (on) url.searchParams.set("tail", "1");
    else url.searchParams.delete("tail");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }

  start() {
    this.toggle.setAttribute("aria-pressed", "true");
    this.toggle.classList.add("on");
    this.remember(true);
    this.connect();
  }

  stop() {
    this.toggle.setAttribute("aria-pressed", "false");
    this.toggle.classList.remove("on");
    this.remember(false);
    this.disconnect();
    this.say("");
  }

  disconnect() {
    clearTimeout(this.retry);
    this.retry = null;
    if (this.source) this.source.close();
    this.source = null;
  }

  later(reason) {
    this.disconnect();
    this.say(`${reason}; reconnecting in ${RETRY_MS / 1000} s`);
    this.retry = setTimeout(() => {
      if (this.on) this.connect();
    }, RETRY_MS);
  }

  connect() {
    this.disconnect();
    this.say("connecting…");
    // Same origin: the browser sends the dashboard's Basic credentials itself.
    const source = new EventSource(this.url);
    this.source = source;
    source.addEventListener("open", () => this.say("live"));
    source.addEventListener("rows", (event) => {
      let rows = [];
      try {
        rows = JSON.parse(event.data);
      } catch {
        return;
      }
      this.received += addRows(this.table, Array.isArray(rows) ? rows : []);
      this.table.dataset.tailReceived = String(this.received);
      this.say("live");
    });
    source.addEventListener("end", (event) => {
      let reason = "the server ended the tail";
      try {
        reason = JSON.parse(event.data).reason || reason;
      } catch {
        // keep the generic reason
      }
      this.later(reason);
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) this.later("the tail is unavailable");
      else this.say("reconnecting…");
    });
  }
}

function setUpTail() {
  const toggle = document.getElementById("tail-toggle");
  const table = document.getElementById("requests");
  const status = document.getElementById("tail-status");
  if (!toggle || !table || !status || toggle.disabled) return;
  const tail = new Tail(toggle, table, status);
  toggle.addEventListener("click", () => (tail.on ? tail.stop() : tail.start()));
  if (new URLSearchParams(location.search).get("tail") === "1") tail.start();
  // Leaving the page (or the back/forward cache keeping it) ends the stream.
  window.addEventListener("pagehide", () => tail.disconnect());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && tail.on) tail.connect();
  });
}

const form = document.getElementById("filters");
if (form) setUpFilters(form);
setUpTail();
