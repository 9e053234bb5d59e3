"""The built-in web dashboard: server-rendered pages over the stats, the request
log and the conversations (a face like `handlers/`; only handlers and app.py
import it)."""
