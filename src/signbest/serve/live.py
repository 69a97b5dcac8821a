"""The page's live camera: a WebSocket at /api/live.

The browser sends one binary message per camera frame: the time it was taken (milliseconds since the
stream started, a little-endian float64) followed by the frame as a JPEG. The server answers each frame
with one JSON text message: what MediaPipe found (`seen`), and when a window was scored, the window's
top glosses, the answer (a gloss or "unknown") with its confidence and the timeline so far (see
`signbest.live.LiveRecognizer`). A text message "stop" gets the final timeline and the close. A frame
that cannot be read gets {"error"} and the stream goes on; a stream that stays silent for
`idle_timeout_s` is closed.

The browser waits for each answer before it sends the next frame, so frames never queue up: the rate
adapts to what this machine can extract. Each connection holds its own MediaPipe graphs; at most
`max_sessions` run at once, and the others are refused (close code 1013, try again later).
"""
from __future__ import annotations

import asyncio
import struct

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..predict import Predictor

TRY_AGAIN_LATER, POLICY, UNSUPPORTED, SERVER_ERROR = 1013, 1008, 1003, 1011
MAX_FRAME_BYTES = 4 * 2**20  # a 1920-pixel JPEG is well under this
MAX_BAD_FRAMES = 20  # frames in a row that cannot be read before the stream is closed


def live_endpoint(predictor: Predictor, max_sessions: int = 2, idle_timeout_s: float = 30.0):
    """The /api/live handler for one predictor."""
    sessions = asyncio.Semaphore(max_sessions) if max_sessions > 0 else None

    async def live(ws: WebSocket) -> None:
        from .app import video_supported

        await ws.accept()
        if not video_supported():
            await ws.send_json({"error": "live recognition needs the video extra on the server: "
                                         "pip install 'signbest[video]'"})
            return await ws.close(UNSUPPORTED)
        if sessions is None:
            await ws.send_json({"error": "this server has the live camera turned off (signbest serve --max-live N)"})
            return await ws.close(POLICY)
        if sessions.locked():
            await ws.send_json({"error": f"{max_sessions} live streams are running already; try again later"})
            return await ws.close(TRY_AGAIN_LATER)
        async with sessions:
            from ..live import LiveCamera

            camera = await run_in_threadpool(LiveCamera, predictor)
            try:
                await stream(ws, camera)
            except WebSocketDisconnect:
                pass  # the page was closed or stopped: nothing to answer
            finally:
                await run_in_threadpool(camera.close)

    async def stream(ws: WebSocket, camera) -> None:
        bad = 0
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), idle_timeout_s)
            except asyncio.TimeoutError:
                await ws.send_json({"error": f"no frame for {idle_timeout_s:g} s: the stream is closed"})
                return await ws.close(POLICY)
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("text") is not None:
                if message["text"].strip() == "stop":
                    await ws.send_json({"done": True, "timeline": camera.recognizer.finish()})
                    return await ws.close()
                await ws.send_json({"error": "send frames as binary messages (time, then JPEG), or \"stop\""})
                continue
            data = message.get("bytes") or b""
            try:
                if len(data) > MAX_FRAME_BYTES:
                    raise ValueError(f"a frame of {len(data) / 2**20:.1f} MB is over the "
                                     f"{MAX_FRAME_BYTES / 2**20:g} MB limit")
                if len(data) < 9:
                    raise ValueError(f"a frame message of {len(data)} bytes: expected 8 bytes of time, then a JPEG")
                (t_ms,) = struct.unpack("<d", data[:8])
                answer = await run_in_threadpool(camera.add_jpeg, t_ms / 1000.0, data[8:])
                bad = 0
            except ValueError as e:  # this frame's problem: say so, keep the stream
                bad += 1
                answer = {"error": str(e)}
                if bad >= MAX_BAD_FRAMES:
                    await ws.send_json({"error": f"{bad} frames in a row could not be read: the stream is closed "
                                                 f"(the last: {e})"})
                    return await ws.close(UNSUPPORTED)
            await ws.send_json(answer)

    return live
