"""The Starlette app behind `vidtoon serve`: one page (static/), and a small JSON API.

    GET  /                        the page (video, webcam and batch tabs)
    GET  /api/controls            backends, their options, styles
    POST /api/uploads?name=N      the body is the video file (size-limited); -> its id and info
    GET  /api/uploads/ID          the uploaded video, to play beside the result
    POST /api/preview             {"upload", "frame", "options"} -> frame before/after (JPEG, base64)
    POST /api/jobs                {"upload", "options"} -> a queued job
    GET  /api/jobs                the queue: every job's state and progress
    POST /api/jobs/ID/cancel      stop it; nothing is left behind
    GET  /api/jobs/ID/result      the cartoon video (?download=1: as an attachment)
    POST /api/live?options=JSON   the body is a camera frame (JPEG) -> its cartoon (JPEG)
    GET  /batch/PATH              --batch-dir's report.html and outputs, read-only

Errors are the CLI's one line, as {"error": "error: ..."} with status 400 (bad input),
404 (no such upload or job), 409 (a GPU job holds the GPU), 413 (upload too large) or 503 (backend not available).
"""

from __future__ import annotations

import base64
import json
import secrets
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path, PurePosixPath

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import LIVE
from ..errors import BackendUnavailable, VidtoonError
from ..io.probe import probe
from ..progress import printable
from .gpu import Gpu, GpuBusy
from .jobs import Queue, WebJob
from .looks import Pictures, controls, jpeg, recipe_from, unjpeg
from .store import NotFound, Store, size_text

STATIC = Path(str(resources.files(__package__) / "static"))


class TooLarge(Exception):
    pass


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(store: Store, backend: object = None) -> Starlette:
    """The app, serving from `store`; `backend` (tests) replaces every recipe's backend."""
    queue: Queue | None = None
    gpu = Gpu()
    pictures = Pictures(gpu, backend)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        nonlocal queue
        queue = app.state.queue = Queue(store.message, gpu, backend)
        try:
            yield
        finally:
            await run_in_threadpool(queue.close)  # the running job unwinds and deletes its temporary file
            pictures.frames.close()

    def failure(e: Exception, upload_id: str = "") -> JSONResponse:
        status = 409 if isinstance(e, GpuBusy) else 503 if isinstance(e, BackendUnavailable) else 400
        return error("error: " + printable(store.message(e, upload_id)), status)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def get_controls(request: Request) -> Response:
        data = await run_in_threadpool(controls)
        data["batch"] = store.batch_dir is not None
        return JSONResponse(data)

    async def upload(request: Request) -> Response:
        name = request.query_params.get("name", "upload")
        too_large = f"error: {printable(name)}: larger than the upload limit, {size_text(store.limit)} (--max-upload)"
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > store.limit:
            return error(too_large, 413)
        upload_id, path = store.new_upload(name)
        try:
            with open(path, "xb") as out:
                size = 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > store.limit:
                        raise TooLarge
                    out.write(chunk)
            info = await run_in_threadpool(probe, path)
        except TooLarge:
            store.forget(upload_id)
            return error(too_large, 413)
        except VidtoonError as e:
            response = failure(e, upload_id)
            store.forget(upload_id)
            return response
        except BaseException:
            store.forget(upload_id)  # the browser went away mid-upload
            raise
        data = info.as_json()
        data["path"] = store.names[upload_id]
        return JSONResponse({"id": upload_id, "name": store.names[upload_id], "info": data})

    async def get_upload(request: Request) -> Response:
        try:
            return FileResponse(store.upload(request.path_params["id"]))
        except NotFound:
            return error("error: no such upload", 404)

    async def preview(request: Request) -> Response:
        try:
            body = await request.json()
            upload_id = str(body.get("upload", ""))
            source = store.upload(upload_id)
            frame = body.get("frame", 0)
            if not isinstance(frame, int) or isinstance(frame, bool):
                return error(f"error: the frame must be a whole number, got {printable(repr(frame))}")
            recipe = recipe_from(body.get("options", {}))
            before, after = await run_in_threadpool(pictures.preview, source, frame, recipe)
        except NotFound:
            return error("error: no such upload", 404)
        except VidtoonError as e:
            return failure(e, upload_id)
        except (ValueError, AttributeError):
            return error("error: the request must be a JSON object with upload, frame and options")
        pair = [base64.b64encode(jpeg(p)).decode("ascii") for p in (before, after)]
        return JSONResponse({"before": pair[0], "after": pair[1], "width": int(after.shape[1]), "height": int(after.shape[0])})

    async def submit(request: Request) -> Response:
        try:
            body = await request.json()
            upload_id = str(body.get("upload", ""))
            source = store.upload(upload_id)
            recipe = recipe_from(body.get("options", {}))
        except NotFound:
            return error("error: no such upload", 404)
        except VidtoonError as e:
            return failure(e, upload_id)
        except (ValueError, AttributeError):
            return error("error: the request must be a JSON object with upload and options")
        job_id = secrets.token_hex(8)
        job = WebJob(job_id, upload_id, store.names.get(upload_id, source.name), source,
                     store.output_path(job_id), recipe)
        queue.submit(job)
        return JSONResponse(job.as_json())

    async def list_jobs(request: Request) -> Response:
        return JSONResponse({"jobs": [job.as_json() for job in list(queue.jobs.values())]})

    async def cancel(request: Request) -> Response:
        try:
            job = queue.cancel(request.path_params["id"])
        except KeyError:
            return error("error: no such job", 404)
        return JSONResponse(job.as_json())

    async def result(request: Request) -> Response:
        job = queue.jobs.get(request.path_params["id"])
        if job is None or job.state != "done":
            return error("error: no such result", 404)
        try:
            path = store.output(job.id)
        except NotFound:
            return error("error: no such result", 404)
        if request.query_params.get("download"):
            name = f"{PurePosixPath(job.name).stem or 'video'}-cartoon{path.suffix}"
            return FileResponse(path, filename=name)
        return FileResponse(path)

    async def live(request: Request) -> Response:
        try:
            recipe = recipe_from(json.loads(request.query_params.get("options", "{}")), LIVE)
            data = await request.body()
            if len(data) > store.limit:
                return error("error: the camera frame is larger than the upload limit", 413)
            rgb = unjpeg(data)
            cartoon = await run_in_threadpool(pictures.live, rgb, recipe)
        except VidtoonError as e:
            return failure(e)
        except ValueError:
            return error("error: options must be a JSON object")
        return Response(jpeg(cartoon), media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def batch(request: Request) -> Response:
        try:
            return FileResponse(store.batch_file(request.path_params.get("path", "")))
        except NotFound:
            return error("error: no such file in the batch folder", 404)

    routes = [
        Route("/", page),
        Route("/api/controls", get_controls),
        Route("/api/uploads", upload, methods=["POST"]),
        Route("/api/uploads/{id}", get_upload),
        Route("/api/preview", preview, methods=["POST"]),
        Route("/api/jobs", submit, methods=["POST"]),
        Route("/api/jobs", list_jobs),
        Route("/api/jobs/{id}/cancel", cancel, methods=["POST"]),
        Route("/api/jobs/{id}/result", result),
        Route("/api/live", live, methods=["POST"]),
        Route("/batch/", batch),
        Route("/batch/{path:path}", batch),
        Mount("/static", StaticFiles(directory=STATIC)),
    ]
    async def unexpected(request: Request, e: Exception) -> Response:
        # A bug: the page gets the CLI's line for it; uvicorn logs the traceback on stderr.
        return error(f"unexpected error: {type(e).__name__}: {printable(str(e))} (a bug: see the server's log)", 500)

    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={Exception: unexpected})
