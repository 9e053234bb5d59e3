// Loaded by every page (base.html): runs the shared set-up once. Pages import
// "./core.js" themselves for its helpers; this entry only makes sure it runs.
import "./core.js";
