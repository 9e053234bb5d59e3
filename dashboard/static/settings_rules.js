// The header rules as the API reads and words them, for the Settings editor
// (settings.js): a rule's JSON, the settings document, and where an API error
// message points. No DOM here.

export const LISTS = ["requestHeaderRules", "responseHeaderRules"];

// ---- the rules' vocabulary ------------------------------------------------------------
// The actions and the text fields each reads, from the server's validation
// (control/header_rules.py), given by the page: never a copy kept here.
let vocabulary = null;

export function setVocabulary(value) {
  if (!value || !Array.isArray(value.actions) || typeof value.uses !== "object") {
    throw new Error("the page gave no header rule vocabulary");
  }
  vocabulary = value;
}

export function uses(action) {
  return (vocabulary && vocabulary.uses[action]) || [];
}

// ---- where an API message points ----------------------------------------------------
// "requestHeaderRules[2].header: reason" → {list, index: 2, field: "header", reason}.
// A message naming less (a list, or nothing the editor knows) keeps nulls.
const LOCATION = /^(requestHeaderRules|responseHeaderRules)(?:\[(\d+)\])?(?:\.([A-Za-z_][A-Za-z0-9_]*))?:\s*([\s\S]*)$/;

export function locateError(message) {
  const match = LOCATION.exec(message || "");
  if (!match) return { list: null, index: null, field: null, reason: message || "" };
  return {
    list: match[1],
    index: match[2] === undefined ? null : Number(match[2]),
    field: match[3] === undefined ? null : match[3],
    reason: match[4],
  };
}

// An ApiError's location: the API words it as `{error: "Invalid settings",
// details: "<where>: <reason>"}`, or (the Anthropic shape) with the whole
// "<where>: <reason>" as the message. Whichever part names a place wins.
export function locateApiError(error) {
  for (const text of [error.details, error.error]) {
    const where = locateError(text);
    if (where.list) return where;
  }
  return { list: null, index: null, field: null, reason: error.message };
}

// ---- rules ----------------------------------------------------------------------------
let nextUid = 1;

// A rule of the API as the editor keeps it: every text field (those its
// action does not read too, so switching action and back keeps what was
// typed) and an id that follows it through moves.
export function fromApi(rule) {
  return {
    uid: nextUid++,
    header: typeof rule.header === "string" ? rule.header : "",
    action: typeof rule.action === "string" ? rule.action : "set",
    find: typeof rule.find === "string" ? rule.find : "",
    value: typeof rule.value === "string" ? rule.value : "",
    enabled: rule.enabled !== false,
  };
}

// What is sent for a rule: only the text fields its action reads (the API
// refuses the others).
export function toApi(rule) {
  const out = { header: rule.header, action: rule.action };
  for (const field of uses(rule.action)) out[field] = rule[field];
  out.enabled = rule.enabled;
  return out;
}

export function documentOf(state) {
  const doc = {};
  for (const list of LISTS) doc[list] = state[list].map(toApi);
  return doc;
}

export function copyState(state) {
  const out = {};
  for (const list of LISTS) out[list] = state[list].map((rule) => ({ ...rule }));
  return out;
}

// Whether two settings documents hold the same rules (the order of a rule's
// keys aside: the server writes them in an order of its own).
export function sameDocument(a, b) {
  const canonical = (doc) => JSON.stringify(LISTS.map((list) => (doc && doc[list] || []).map(
    (rule) => Object.keys(rule).sort().map((key) => [key, rule[key]]),
  )));
  return canonical(a) === canonical(b);
}
