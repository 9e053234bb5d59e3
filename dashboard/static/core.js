// Helpers every dashboard page uses. Import it by its plain relative name,
// `import { fetchJSON } from "./core.js";`, never through a hashed URL: a module
// reached by two URLs would run twice (and bind every key twice).
//
// Importing it sets the page up once: <time> elements in the browser's zone,
// the theme, keyboard navigation for lists marked data-keynav, the browser's
// zone on links marked data-tz.

const THEME_KEY = "claude-proxy-theme";
const THEMES = ["auto", "light", "dark"];

// ---- time -------------------------------------------------------------------
const localFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

// <time datetime="2026-12-06T14:03:00Z">…</time> shows the instant in the
// browser's zone; hovering shows it in UTC. Elements with data-format="date"
// show the date only.
export function localizeTimes(root = document) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    if (el.dataset.localized) continue;
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    const utc = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    el.textContent = el.dataset.format === "date"
      ? when.toLocaleDateString()
      : localFormat.format(when);
    el.title = utc;
    el.dataset.localized = "1";
  }
}

// ---- theme --------------------------------------------------------------------
export function storedTheme() {
  try {
    const value = localStorage.getItem(THEME_KEY);
    return THEMES.includes(value) ? value : "auto";
  } catch {
    return "auto"; // storage disabled: follow the system
  }
}

// "auto" follows prefers-color-scheme (CSS light-dark()); "light"/"dark" pin it.
export function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === "auto") delete root.dataset.theme;
  else root.dataset.theme = theme;
  for (const button of document.querySelectorAll("[data-theme-toggle]")) {
    button.dataset.current = theme;
    button.title = `Theme: ${theme} (click to change)`;
  }
}

export function setTheme(theme) {
  try {
    if (theme === "auto") localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, theme);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
  applyTheme(theme);
}

// The theme the page shows now, "light" or "dark".
export function effectiveTheme() {
  const pinned = document.documentElement.dataset.theme;
  if (pinned) return pinned;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function bindThemeToggle() {
  for (const button of document.querySelectorAll("[data-theme-toggle]")) {
    button.addEventListener("click", () => {
      const next = THEMES[(THEMES.indexOf(storedTheme()) + 1) % THEMES.length];
      setTheme(next);
    });
  }
}

// ---- keyboard navigation --------------------------------------------------------
function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function rowsOf(list) {
  const body = list.tBodies && list.tBodies.length ? list.tBodies[0] : list;
  return [...body.children].filter((row) => row.querySelector("a[href]"));
}

function activeList() {
  return document.querySelector("[data-keynav]");
}

// j/k move the selection in the first list marked data-keynav, Enter opens the
// selected row's first link, / focuses the page's search box. Keys typed into
// a field, or with a modifier, are left alone.
export function moveSelection(list, step) {
  const rows = rowsOf(list);
  if (!rows.length) return null;
  const current = rows.findIndex((row) => row.classList.contains("kn-selected"));
  const next = current < 0
    ? (step > 0 ? 0 : rows.length - 1)
    : Math.min(rows.length - 1, Math.max(0, current + step));
  rows.forEach((row, i) => {
    row.classList.toggle("kn-selected", i === next);
    if (i === next) row.setAttribute("aria-selected", "true");
    else row.removeAttribute("aria-selected");
  });
  rows[next].scrollIntoView({ block: "nearest" });
  return rows[next];
}

export function openSelection(list) {
  const row = list.querySelector(".kn-selected");
  const link = row && row.querySelector("a[href]");
  if (link) link.click();
  return Boolean(link);
}

export function focusSearch() {
  const box = document.querySelector("[data-search], input[type=search]");
  if (!box) return false;
  box.focus();
  if (typeof box.select === "function") box.select();
  return true;
}

function onKey(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (typing(event.target)) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const list = activeList();
  if (event.key === "/") {
    if (focusSearch()) event.preventDefault();
  } else if (list && (event.key === "j" || event.key === "k")) {
    moveSelection(list, event.key === "j" ? 1 : -1);
    event.preventDefault();
  } else if (list && event.key === "Enter") {
    if (openSelection(list)) event.preventDefault();
  }
}

// ---- links in the browser's zone ------------------------------------------------
// Links marked data-tz carry the browser's zone (tz=…) unless they name one.
export function addZoneToLinks(root = document, zone = browserZone()) {
  for (const link of root.querySelectorAll("a[data-tz]")) {
    const url = new URL(link.href, location.href);
    if (!url.searchParams.has("tz")) {
      url.searchParams.set("tz", zone);
      link.href = url.pathname + url.search + url.hash;
    }
  }
}

// ---- the API --------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, message, details, body) {
    super(details ? `${message}: ${details}` : message);
    this.name = "ApiError";
    this.status = status;
    this.error = message;
    this.details = details;
    this.body = body;
  }
}

// fetch() for /api: same-origin only (so the browser marks it Sec-Fetch-Site:
// same-origin and Origin: this origin, which the server's cross-site guard
// requires of every write), JSON in and out. A non-2xx answer throws ApiError
// carrying the server's message: `{error, details}`, or the Anthropic shape
// `{error: {type, message}}` the API's 4xx use.
export async function fetchJSON(url, options = {}) {
  const init = { ...options, mode: "same-origin", credentials: "same-origin" };
  const headers = new Headers(options.headers || {});
  headers.set("accept", "application/json");
  if (init.body !== undefined && typeof init.body !== "string" &&
      !(init.body instanceof FormData) && !(init.body instanceof Blob)) {
    init.body = JSON.stringify(init.body);
    headers.set("content-type", "application/json");
  }
  init.headers = headers;
  const response = await fetch(url, init);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`.trim();
    let details = "";
    if (body && typeof body === "object") {
      if (typeof body.error === "string") message = body.error;
      else if (body.error && typeof body.error.message === "string") message = body.error.message;
      if (typeof body.details === "string") details = body.details;
    }
    throw new ApiError(response.status, message, details, body);
  }
  return body;
}

// ---- start ------------------------------------------------------------------------
let started = false;

export function start() {
  if (started) return;
  started = true;
  applyTheme(storedTheme());
  bindThemeToggle();
  localizeTimes();
  addZoneToLinks();
  document.addEventListener("keydown", onKey);
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start, { once: true });
} else {
  start();
}
