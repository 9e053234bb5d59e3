// The Overview is drawn on the server in the zone its URL names. Opened without
// one (from / or a bookmark), it asks once for the browser's zone: the location
// is replaced (not pushed), so Back does not return to the UTC version.
import { browserZone } from "./core.js";

const head = document.querySelector("[data-zone-missing]");
if (head) {
  const url = new URL(location.href);
  if (!url.searchParams.has("tz")) {
    url.searchParams.set("tz", browserZone());
    location.replace(url.pathname + url.search + url.hash);
  }
}
