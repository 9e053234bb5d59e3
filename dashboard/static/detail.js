// The request detail page: "Copy as curl". The command is already on the page
// (rendered by the server, escaped, with $ANTHROPIC_API_KEY in place of any key);
// this only puts its text on the clipboard, or selects it when the browser
// refuses clipboard access.
import "./core.js";

function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copy(button, status) {
  const target = document.getElementById(button.dataset.copy);
  if (!target) return;
  const text = target.textContent;
  const details = target.closest("details");
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
    button.dataset.copied = "true";
  } catch {
    if (details) details.open = true;
    selectText(target);
    status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    button.dataset.copied = "selected";
  }
}

const button = document.getElementById("copy-curl");
const status = document.getElementById("copy-status");
if (button && status) button.addEventListener("click", () => copy(button, status));
