"""`frsync push` and `frsync pending`, built on `frsync.client`: file formats, validation, the
journal, the send loop, the report and what the terminal shows. Imports nothing server-side.

```
pushfile  ─ csv_format / jsonl_format ─ validate      read the whole file, or list its problems
session   ─ journal, runner ─ stopper                 skip what is done, send the rest, stop
report, display, pending                              what the user gets back
```
"""
