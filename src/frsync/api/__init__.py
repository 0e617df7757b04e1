"""The HTTP API's toolkit: routes, auth, body and query parsing, the one error→HTTP table.

The app factory that wires it with the sandbox and the console is `frsync.app.create_app`,
one layer above; nothing here imports it.
"""
