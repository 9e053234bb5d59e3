// The Settings page's header rules editor. The rules come from and go back to
// GET/PUT /api/settings, so the API's own validation decides and its 400
// message is shown next to the field it names ("requestHeaderRules[2].header:
// …"). Rows are clones of the page's <template>; every text goes in through
// .value or .textContent, so a rule holding markup stays text.
import { ApiError, fetchJSON } from "./core.js";
import {
  LISTS, copyState, documentOf, fromApi, locateApiError, sameDocument, setVocabulary, toApi,
  uses,
} from "./settings_rules.js";

const API = "/api/settings";
const FIELDS = ["enabled", "header", "action", "find", "value"];

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setDisabled(el, disabled) {
  if (el.disabled !== disabled) el.disabled = disabled;
}

// ---- the editor -------------------------------------------------------------------------
class Editor {
  constructor(root) {
    this.root = root;
    this.template = document.getElementById("rule-template");
    this.status = document.getElementById("save-status");
    this.saveButton = document.getElementById("save-rules");
    this.discardButton = document.getElementById("discard-rules");
    this.banner = document.getElementById("rules-error");
    this.sections = {};
    for (const section of root.querySelectorAll("[data-list]")) {
      this.sections[section.dataset.list] = section;
    }
    this.state = { requestHeaderRules: [], responseHeaderRules: [] };
    this.saved = copyState(this.state);
    this.loaded = false;
    this.saving = false;
  }

  bind() {
    for (const list of LISTS) {
      const section = this.sections[list];
      section.querySelector("[data-add]").addEventListener("click", () => this.add(list));
      const ol = section.querySelector("[data-rules]");
      ol.addEventListener("input", (event) => this.edited(list, event));
      ol.addEventListener("change", (event) => this.edited(list, event));
      ol.addEventListener("click", (event) => this.clicked(list, event));
      ol.addEventListener("keydown", (event) => this.keyed(list, event));
    }
    this.saveButton.addEventListener("click", () => this.save());
    this.discardButton.addEventListener("click", () => this.discard());
    document.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
        event.preventDefault();
        if (this.loaded && this.dirty()) this.save();
      }
    });
    // Leaving with unsaved edits asks first (the browser words the question).
    window.addEventListener("beforeunload", (event) => {
      if (this.loaded && this.dirty()) event.preventDefault();
    });
  }

  async load() {
    this.setStatus("loading", "Loading…");
    try {
      this.accept(await fetchJSON(API));
    } catch (error) {
      this.showBanner(`Could not load the header rules: ${error.message}`);
      this.setStatus("error", "Not loaded");
    }
  }

  // The document the API answered (a load or a save) becomes the saved state.
  accept(doc) {
    for (const list of LISTS) {
      const rules = doc && Array.isArray(doc[list]) ? doc[list] : [];
      this.state[list] = rules.map(fromApi);
    }
    this.saved = copyState(this.state);
    this.loaded = true;
    this.clearErrors();
    this.renderAll();
  }

  dirty() {
    return JSON.stringify(documentOf(this.state)) !== JSON.stringify(documentOf(this.saved));
  }

  // ---- drawing ------------------------------------------------------------------
  renderAll() {
    for (const list of LISTS) this.renderList(list);
    this.refresh();
  }

  renderList(list) {
    const ol = this.sections[list].querySelector("[data-rules]");
    const rows = this.state[list].map((rule) => this.row(list, rule));
    ol.replaceChildren(...rows);
  }

  row(list, rule) {
    const li = this.template.content.firstElementChild.cloneNode(true);
    li.dataset.uid = String(rule.uid);
    for (const field of FIELDS) {
      const input = li.querySelector(`[data-field="${field}"]`);
      const id = `rule-${rule.uid}-${field}`;
      input.id = id;
      if (field === "enabled") input.checked = rule.enabled;
      else input.value = rule[field];
      const box = li.querySelector(`[data-for="${field}"]`);
      if (box) {
        box.querySelector("[data-label]").htmlFor = id;
        box.querySelector("[data-error]").id = `${id}-error`;
      }
    }
    li.querySelector("[data-rule-error]").id = `rule-${rule.uid}-error`;
    this.shape(li, rule);
    return li;
  }

  // Fields the action does not read are hidden (their text kept); `value` is
  // the replacement in a `replace` rule.
  shape(li, rule) {
    const used = uses(rule.action);
    for (const field of ["find", "value"]) {
      li.querySelector(`[data-for="${field}"]`).hidden = !used.includes(field);
    }
    const label = li.querySelector('[data-for="value"] [data-label]');
    label.textContent = rule.action === "replace" ? label.dataset.labelReplace : label.dataset.labelSet;
    li.classList.toggle("is-disabled", !rule.enabled);
  }

  // Markers, counts and the save bar, after any change.
  refresh() {
    for (const list of LISTS) {
      const section = this.sections[list];
      const savedRules = this.saved[list];
      const savedByUid = new Map(savedRules.map((rule, index) => [rule.uid, { rule, index }]));
      const rows = section.querySelectorAll("[data-rules] > li");
      this.state[list].forEach((rule, index) => {
        const li = rows[index];
        if (!li) return;
        const before = savedByUid.get(rule.uid);
        let mark = "";
        if (!before) mark = "new";
        else if (JSON.stringify(toApi(before.rule)) !== JSON.stringify(toApi(rule))) mark = "edited";
        else if (before.index !== index) mark = "moved";
        // Written only when different: a keystroke must not restyle every row.
        if (li.dataset.change !== mark) {
          li.dataset.change = mark;
          li.querySelector("[data-state]").textContent = mark ? `unsaved: ${mark}` : "";
        }
        setText(li.querySelector("[data-index]"), String(index + 1));
        setDisabled(li.querySelector('[data-move="-1"]'), index === 0);
        setDisabled(li.querySelector('[data-move="1"]'), index === this.state[list].length - 1);
      });
      const count = this.state[list].length;
      section.querySelector("[data-count]").textContent = `(${count})`;
      section.querySelector("[data-empty]").hidden = count > 0;
      const kept = new Set(this.state[list].map((rule) => rule.uid));
      const deleted = savedRules.filter((rule) => !kept.has(rule.uid)).length;
      const note = section.querySelector("[data-deleted]");
      note.hidden = deleted === 0;
      note.textContent = deleted === 1
        ? "1 deleted rule is removed when you save."
        : `${deleted} deleted rules are removed when you save.`;
    }
    const dirty = this.loaded && this.dirty();
    this.root.classList.toggle("is-dirty", dirty);
    this.saveButton.disabled = !dirty || this.saving;
    this.discardButton.disabled = !dirty || this.saving;
    if (this.saving) return;
    if (dirty) this.setStatus("dirty", "Unsaved changes");
    else if (this.status.dataset.state === "dirty" || this.status.dataset.state === "loading") {
      this.setStatus("clean", "No unsaved changes");
    }
  }

  setStatus(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  // ---- editing ------------------------------------------------------------------
  ruleOf(list, target) {
    const li = target.closest("li.rule");
    if (!li) return null;
    const uid = Number(li.dataset.uid);
    const index = this.state[list].findIndex((rule) => rule.uid === uid);
    return index < 0 ? null : { li, index, rule: this.state[list][index] };
  }

  edited(list, event) {
    const field = event.target.dataset && event.target.dataset.field;
    const found = field && this.ruleOf(list, event.target);
    if (!found) return;
    found.rule[field] = field === "enabled" ? event.target.checked : event.target.value;
    this.clearFieldError(found.li, field);
    if (field === "action" || field === "enabled") this.shape(found.li, found.rule);
    this.refresh();
  }

  clicked(list, event) {
    const button = event.target.closest("button");
    const found = button && this.ruleOf(list, button);
    if (!found) return;
    if (button.dataset.move) this.move(list, found.index, Number(button.dataset.move), button);
    else if (button.hasAttribute("data-delete")) this.remove(list, found.index);
  }

  keyed(list, event) {
    if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    const found = this.ruleOf(list, event.target);
    if (!found) return;
    event.preventDefault();
    this.move(list, found.index, event.key === "ArrowUp" ? -1 : 1, event.target);
  }

  add(list) {
    const rule = fromApi({ header: "", action: "set", value: "", enabled: true });
    this.state[list].push(rule);
    this.sections[list].querySelector("[data-rules]").append(this.row(list, rule));
    this.refresh();
    const input = document.getElementById(`rule-${rule.uid}-header`);
    input.scrollIntoView({ block: "nearest" });
    input.focus();
  }

  // Moves keep the focus on the control that moved the rule, so the keys (or
  // the button) can be used again at once.
  move(list, index, step, focused) {
    const rules = this.state[list];
    const to = index + step;
    if (to < 0 || to >= rules.length) return;
    const [rule] = rules.splice(index, 1);
    rules.splice(to, 0, rule);
    const focusId = focused && focused.id;
    const moveDir = focused && focused.dataset ? focused.dataset.move : undefined;
    this.renderList(list);
    this.refresh();
    const li = this.sections[list].querySelector(`li[data-uid="${rule.uid}"]`);
    let target = focusId ? document.getElementById(focusId) : null;
    if (!target && moveDir) {
      target = li.querySelector(`[data-move="${moveDir}"]`);
      if (target.disabled) target = li.querySelector(`[data-move="${-Number(moveDir)}"]`);
    }
    (target || li.querySelector('[data-field="header"]')).focus();
  }

  remove(list, index) {
    this.state[list].splice(index, 1);
    this.renderList(list);
    this.refresh();
    const rows = this.sections[list].querySelectorAll("[data-rules] > li");
    const next = rows[Math.min(index, rows.length - 1)];
    (next ? next.querySelector("[data-delete]") : this.sections[list].querySelector("[data-add]")).focus();
  }

  discard() {
    this.state = copyState(this.saved);
    this.clearErrors();
    this.renderAll();
  }

  // ---- saving -------------------------------------------------------------------
  async save() {
    // Never before the stored rules are known: a PUT replaces them all.
    if (this.saving || !this.loaded) return;
    this.saving = true;
    this.clearErrors();
    this.setStatus("saving", "Saving…");
    this.refresh();
    const sent = copyState(this.state);
    try {
      const doc = await fetchJSON(API, { method: "PUT", body: documentOf(sent) });
      this.saving = false;
      if (sameDocument(doc, documentOf(sent))) {
        // Stored as sent: the rows stay (with the focus, and any edit typed
        // while the save was under way, still unsaved).
        this.saved = sent;
        this.refresh();
      } else {
        this.accept(doc); // the server's own reading wins
      }
      this.setStatus("saved", "Saved");
    } catch (error) {
      this.saving = false;
      this.refresh();
      // After refresh (which says "Unsaved changes"): until the next edit.
      this.setStatus("error", "Not saved: see the message below");
      if (error instanceof ApiError && error.status === 400) this.showApiError(error);
      else this.showBanner(`Not saved: ${error.message}`);
    }
  }

  // The API's message next to what it names: the field of a rule, the rule,
  // the list, or (naming none of them) above the lists.
  showApiError(error) {
    const where = locateApiError(error);
    const text = where.reason;
    const section = where.list && this.sections[where.list];
    if (!section) {
      this.showBanner(error.message);
      return;
    }
    const rows = section.querySelectorAll("[data-rules] > li");
    const li = where.index === null ? null : rows[where.index];
    if (!li) {
      const slot = section.querySelector("[data-list-error]");
      slot.textContent = text;
      slot.title = error.message;
      slot.hidden = false;
      section.scrollIntoView({ block: "nearest" });
      return;
    }
    const box = where.field ? li.querySelector(`[data-for="${where.field}"]`) : null;
    if (box && !box.hidden) {
      const slot = box.querySelector("[data-error]");
      const input = box.querySelector("[data-field]");
      slot.textContent = text;
      slot.title = error.message;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", slot.id);
      input.focus();
      return;
    }
    // A field the editor has no input for (or none named): on the rule.
    const slot = li.querySelector("[data-rule-error]");
    slot.textContent = where.field && !box ? `${where.field}: ${text}` : text;
    slot.title = error.message;
    slot.hidden = false;
    li.classList.add("has-error");
    li.querySelector('[data-field="header"]').focus();
  }

  showBanner(text) {
    this.banner.textContent = text;
    this.banner.hidden = false;
  }

  clearFieldError(li, field) {
    const box = li.querySelector(`[data-for="${field}"]`);
    if (!box) return;
    const slot = box.querySelector("[data-error]");
    slot.hidden = true;
    slot.textContent = "";
    const input = box.querySelector("[data-field]");
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }

  clearErrors() {
    this.banner.hidden = true;
    this.banner.textContent = "";
    for (const slot of this.root.querySelectorAll("[data-error], [data-rule-error], [data-list-error]")) {
      slot.hidden = true;
      slot.textContent = "";
    }
    for (const input of this.root.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    }
    for (const li of this.root.querySelectorAll("li.has-error")) li.classList.remove("has-error");
  }
}

function start() {
  const root = document.querySelector("[data-rules-editor]");
  if (!root) return;
  setVocabulary(JSON.parse(root.dataset.vocabulary));
  const editor = new Editor(root);
  editor.bind();
  editor.load();
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start, { once: true });
} else {
  start();
}
