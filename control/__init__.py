"""The operator's levers: demotion to streaming, model routing, header rules, dashboard auth.

Pure building blocks: no I/O on the request path, no globals; the handlers wire them in.
"""
