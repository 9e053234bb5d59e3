// The thread view: "load more" appends the next page of turns (an HTML fragment
// the server renders with the page's own autoescaping templates, parsed with
// DOMParser: nothing here turns data into markup), links to a subagent open it
// where it is nested, and the bar expands or collapses every subagent.
import { localizeTimes } from "./core.js";

function busy(link, on) {
  if (on) link.setAttribute("aria-busy", "true");
  else link.removeAttribute("aria-busy");
}

export async function loadMore(link) {
  const holder = link.closest(".load-more");
  const status = holder && holder.querySelector(".more-status");
  const url = link.dataset.fragment;
  if (!holder || !url) return false;
  busy(link, true);
  try {
    const response = await fetch(url, {
      mode: "same-origin",
      credentials: "same-origin",
      headers: { accept: "text/html" },
    });
    const text = await response.text();
    const parsed = new DOMParser().parseFromString(text, "text/html");
    if (!response.ok) {
      const problem = parsed.querySelector("[data-problem]");
      throw new Error(problem ? problem.textContent : `${response.status} ${response.statusText}`);
    }
    const nodes = [...parsed.body.childNodes].map((node) => document.adoptNode(node));
    const parent = holder.parentNode;
    for (const node of nodes) parent.insertBefore(node, holder);
    holder.remove();
    localizeTimes(parent);
    return true;
  } catch (error) {
    busy(link, false);
    if (status) status.textContent = `Could not load more: ${error.message}`;
    return false;
  }
}

// Opens a <details> and every one it sits in, so a nested subagent shows.
export function reveal(target) {
  for (let node = target; node; node = node.parentElement) {
    if (node.tagName === "DETAILS") node.open = true;
  }
}

function openAnchor(hash) {
  if (!hash || hash.length < 2) return;
  const target = document.getElementById(decodeURIComponent(hash.slice(1)));
  if (!target) return;
  reveal(target);
  target.scrollIntoView({ block: "start" });
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), 1500);
}

function setAll(open) {
  for (const details of document.querySelectorAll("details.subagent")) details.open = open;
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  const more = target.closest("a[data-more]");
  if (more && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
    event.preventDefault();
    loadMore(more);
    return;
  }
  const agent = target.closest("a[data-open-agent]");
  if (agent) {
    event.preventDefault();
    const hash = new URL(agent.href, location.href).hash;
    history.pushState(history.state, "", hash);
    openAnchor(hash);
    return;
  }
  if (target.closest("[data-expand-all]")) setAll(true);
  else if (target.closest("[data-collapse-all]")) setAll(false);
});

window.addEventListener("hashchange", () => openAnchor(location.hash));
openAnchor(location.hash);
