"""`pikkugen monitor`: a small web dashboard over any backend (`create_app` in `app`).

Not `pikku_queue.monitor`, the runtime's `QueueMonitor` statistics this app reads. One module
per job: `app` (the route table), `config`, `state` (what handlers read), `auth` (the checks),
`pages` (the page and its static files) and the JSON API by subject: `stats`, `jobs`,
`dead_letters`.
"""
