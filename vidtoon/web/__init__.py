"""`vidtoon serve`: a local web page on top of the library (docs/web.md).

    store.py    the only folders the page reads and writes: uploads, outputs, a batch OUT_DIR
    looks.py    the controls (from the backends' option fields), a Recipe from them, single pictures
    jobs.py     the video queue: pipeline.run, one job at a time, progress and cancel
    gpu.py      one GPU backend at a time: a job holds it, previews are refused meanwhile
    app.py      the Starlette routes
    server.py   uvicorn on a socket bound first
    static/     the page: HTML, CSS and plain JS, nothing fetched from elsewhere

Needs the web extra (starlette, uvicorn); nothing imports this package but `vidtoon serve`.
"""
