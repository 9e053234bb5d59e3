// The Conversations list: menus apply at once, and empty fields (or a menu left
// at its default) stay out of the URL, so a list's address names only what it
// filters by (deep links, Back). Keyboard navigation comes from core.js (the
// table is marked data-keynav).
import "./core.js";

export function setUpFilters(form) {
  for (const select of form.querySelectorAll("[data-autosubmit]")) {
    select.addEventListener("change", () => form.requestSubmit());
  }
  form.addEventListener("submit", () => {
    for (const field of form.elements) {
      const unset = !field.value || field.value === field.dataset.default;
      if (field.name && unset) field.disabled = true;
    }
    // Re-enabled once the browser has read the form (Back restores the page).
    setTimeout(() => {
      for (const field of form.elements) field.disabled = false;
    }, 0);
  });
}

const form = document.getElementById("filters");
if (form) setUpFilters(form);
