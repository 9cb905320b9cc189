"""`pikkugen monitor`: a small web dashboard over any backend (`pikkugen.web_monitor.app`)."""
