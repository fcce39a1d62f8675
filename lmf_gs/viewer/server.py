"""The viser web viewer: controls, the recorded trajectory, and one render loop per browser.

Each browser gets the model rendered on the server from its own camera: at the reduced size
while the camera moves or the video plays, at the full size once the camera has rested for
`SETTLE_S`. The image is the scene background (with depth, so the frustums are occluded
correctly). Controls are shared by all browsers.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import viser
from PIL import Image

from lmf_gs.errors import LmfError
from lmf_gs.viewer.camera import ViewCamera, pose_of, render_size, vertical_fov
from lmf_gs.viewer.render import render_view
from lmf_gs.viewer.source import ViewerSource, scene_scale
from lmf_gs.viewer.state import INSETS, LAYER_LABELS, LAYERS, MODES, ViewerState

SETTLE_S = 0.25  # camera rest after which the full-size image is rendered
MAX_FRUSTUMS = 300  # the trajectory shows at most this many frames (evenly spaced)
INSET_WIDTH = 320
TRAJECTORY_COLOR = (90, 90, 90)
CURRENT_COLOR = (255, 160, 0)


@dataclass(frozen=True)
class Sizes:
    """Longer image side (pixels) rendered while moving and at rest; never above the
    browser canvas."""

    moving: int = 320
    full: int = 640


@dataclass
class Shown:
    """The last image sent to a browser."""

    state: ViewerState
    camera: ViewCamera
    kind: str  # "moving" or "full"
    width: int
    height: int
    ms: float


@dataclass
class Stats:
    """Frame times of everything rendered, by kind, and the images sent, in order."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {"moving": [], "full": []})
    shown: list[Shown] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def add(self, shown: Shown) -> None:
        with self.cond:
            self.ms[shown.kind].append(shown.ms)
            self.shown.append(shown)
            self.cond.notify_all()

    def wait(self, pred: Callable[[Shown], bool], timeout: float, after: int = 0) -> Shown:
        """The first image sent (from the ``after``-th on) satisfying ``pred``; waits up to
        ``timeout`` seconds for it (TimeoutError)."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                hit = next((s for s in self.shown[after:] if pred(s)), None)
                if hit is not None:
                    return hit
                left = end - time.monotonic()
                if left <= 0 or not self.cond.wait(left):
                    raise TimeoutError("no such image was sent to the browser in time")


def check_port(host: str, port: int) -> None:
    """One line (`LmfError`) when ``host:port`` cannot be listened on (viser would silently move
    to the next port)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise LmfError(f"port {port} on {host} is taken or not available ({reason}); stop "
                       "what uses it or choose another with --port") from None


def url_of(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::", "::1", "localhost") else host
    return f"http://{shown}:{port}"


class Viewer:
    """A viser server showing one `ViewerSource`."""

    def __init__(
        self, source: ViewerSource, first: str | None = None, host: str = "127.0.0.1",
        port: int = 8080, sizes: Sizes = Sizes(), title: str = "lmf-gs",
    ):
        self.source, self.rec, self.sizes, self.title = source, source.recording, sizes, title
        self.host, self.port = host, port
        self.state = ViewerState(len(self.rec), source=first or source.labels[0])
        self.stats = Stats()
        self._lock = threading.Lock()  # state updates
        self._render_lock = threading.Lock()  # one rasterisation at a time (CPU threads)
        self._stopping = threading.Event()
        self._loops: dict[int, _ClientLoop] = {}
        self.server: viser.ViserServer | None = None

    @property
    def url(self) -> str:
        return url_of(self.host, self.port)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Listen (one-line `LmfError` when the port is taken) and return the URL."""
        if self.port != 0:
            check_port(self.host, self.port)
        server = viser.ViserServer(host=self.host, port=self.port, label=self.title,
                                   verbose=False)
        if self.port != 0 and server.get_port() != self.port:  # taken since check_port
            server.stop()
            raise LmfError(f"port {self.port} on {self.host} is taken; choose another with "
                           "--port")
        self.server, self.port = server, server.get_port()
        self._scale = scene_scale(self.source.model(self.state.source))
        self._build_scene()
        self._build_gui()
        server.on_client_connect(self._connect)
        server.on_client_disconnect(self._disconnect)
        threading.Thread(target=self._play_loop, name="viewer-play", daemon=True).start()
        return self.url

    def stop(self) -> None:
        """Stop the render loops and the server."""
        self._stopping.set()
        for loop in list(self._loops.values()):
            loop.close()
        if self.server is not None:
            self.server.stop()
            self.server = None

    # -- state ----------------------------------------------------------------------------------

    def update(self, change: Callable[[ViewerState], ViewerState]) -> ViewerState:
        """Apply ``change`` to the state, update what depends on it, wake the render loops."""
        with self._lock:
            old, self.state = self.state, change(self.state)
            new = self.state
        if new.frame != old.frame:
            self._show_frame(new.frame)
        for loop in list(self._loops.values()):
            loop.wake.set()
        return new

    def _play_loop(self) -> None:
        while not self._stopping.wait(1.0 / self.state.speed if self.state.playing else 0.05):
            if self.state.playing:
                self.gui_frame.value = self.state.step().frame  # its callback updates the state

    # -- scene ----------------------------------------------------------------------------------

    def _frame_pose(self, i: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return pose_of(self.rec.w2c[i])

    def _build_scene(self) -> None:
        assert self.server is not None
        scene = self.server.scene
        scene.set_up_direction(tuple(float(v) for v in self.rec.up()))
        fov, aspect = vertical_fov(self.rec.K, self.rec.height), self.rec.width / self.rec.height
        step = max(1, math.ceil(len(self.rec) / MAX_FRUSTUMS))
        self.trajectory = []
        for i in range(0, len(self.rec), step):
            wxyz, pos = self._frame_pose(i)
            h = scene.add_camera_frustum(
                f"/trajectory/{i:06d}", fov, aspect, scale=0.03 * self._scale, thickness=1.0,
                thickness_units="screen", color=TRAJECTORY_COLOR, wxyz=wxyz, position=pos)
            h.on_click(lambda _, i=i: setattr(self.gui_frame, "value", i))
            self.trajectory.append(h)
        wxyz, pos = self._frame_pose(self.state.frame)
        self.current = scene.add_camera_frustum(
            "/current", fov, aspect, scale=0.04 * self._scale, thickness=2.0,
            thickness_units="screen", color=CURRENT_COLOR, wxyz=wxyz, position=pos)

    def go_to_frame(self, client: viser.ClientHandle, back: float = 0.0) -> None:
        """Put a browser's camera at the slider frame's recorded camera, or ``back`` times the
        scene's median depth behind it (same orientation)."""
        wxyz, pos = self._frame_pose(self.state.frame)
        behind = np.asarray(pos) - back * self._scale * self.rec.c2w[self.state.frame][:3, 2]
        with client.atomic():
            client.camera.fov = vertical_fov(self.rec.K, self.rec.height)
            client.camera.position = pos
            client.camera.wxyz = wxyz
            client.camera.position = behind

    # -- GUI --------------------------------------------------------------------------------------

    def _build_gui(self) -> None:
        assert self.server is not None
        gui, s = self.server.gui, self.state
        gui.configure_theme(show_share_button=False)  # no scene leaves this machine
        gui.add_markdown(f"**{self.title}** · {len(self.rec)} registered frames")
        with gui.add_folder("Time"):
            self.gui_frame = gui.add_slider("frame", 0, len(self.rec) - 1, 1, s.frame)
            self.gui_frame_info = gui.add_markdown("")
            self.gui_play = gui.add_button("Play", icon=viser.Icon.PLAYER_PLAY)
            self.gui_speed = gui.add_slider("speed (fps)", 0.5, 30.0, 0.5, s.speed)
        with gui.add_folder("Layers"):
            self.gui_layers = {n: gui.add_checkbox(LAYER_LABELS[n], n in s.layers)
                               for n in LAYERS}
            self.gui_mode = gui.add_dropdown("display", MODES, initial_value=s.mode)
            self.gui_source = gui.add_dropdown(
                "model", self.source.labels, initial_value=s.source,
                visible=len(self.source.labels) > 1,
                hint="the trained model or one of its refinement runs")
        with gui.add_folder("Camera"):
            self.gui_goto = gui.add_button("go to frame camera", icon=viser.Icon.CAMERA)
            self.gui_trajectory = gui.add_checkbox("trajectory", True)
        with gui.add_folder("Frame"):
            self.gui_inset_kind = gui.add_dropdown("inset", INSETS, initial_value=INSETS[0])
            self.gui_inset = gui.add_image(np.zeros((8, 8, 3), np.uint8), label="")
        self.gui_timing = gui.add_markdown("")

        self.gui_frame.on_update(lambda e: self.update(lambda st: st.with_frame(e.target.value)))
        self.gui_speed.on_update(lambda e: self.update(
            lambda st: replace(st, speed=float(e.target.value))))
        self.gui_play.on_click(lambda _: self._toggle_play())
        for name, box in self.gui_layers.items():
            box.on_update(lambda e, n=name: self.update(
                lambda st: st.with_layer(n, bool(e.target.value))))
        self.gui_mode.on_update(lambda e: self.update(lambda st: st.with_mode(e.target.value)))
        self.gui_source.on_update(lambda e: self.update(
            lambda st: replace(st, source=e.target.value)))
        self.gui_goto.on_click(lambda e: e.client is not None and self.go_to_frame(e.client))
        self.gui_trajectory.on_update(lambda e: self._show_trajectory(bool(e.target.value)))
        self.gui_inset_kind.on_update(lambda _: self._show_inset(self.state.frame))
        self._show_frame(s.frame)

    def _toggle_play(self) -> None:
        playing = self.update(lambda st: replace(st, playing=not st.playing)).playing
        self.gui_play.label = "Pause" if playing else "Play"
        self.gui_play.icon = viser.Icon.PLAYER_PAUSE if playing else viser.Icon.PLAYER_PLAY

    def _show_trajectory(self, shown: bool) -> None:
        for h in [*self.trajectory, self.current]:
            h.visible = shown

    def _show_frame(self, i: int) -> None:
        self.gui_frame_info.content = (f"`{self.rec.names[i]}` · t = {self.rec.times[i]:+.3f} · "
                                       f"{i + 1} / {len(self.rec)}")
        self.current.wxyz, self.current.position = self._frame_pose(i)
        self._show_inset(i)

    def _show_inset(self, i: int) -> None:
        kind = self.gui_inset_kind.value
        img = self.source.inset(i, kind)
        if img is None:
            self.gui_inset.image = np.full((9, 16, 3), 64, np.uint8)
            self.gui_inset.label = f"no {kind} for this frame"
            return
        pil = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8))
        if pil.width > INSET_WIDTH:
            pil = pil.resize((INSET_WIDTH, round(pil.height * INSET_WIDTH / pil.width)),
                             Image.Resampling.BILINEAR)
        self.gui_inset.image = np.asarray(pil)
        self.gui_inset.label = kind

    # -- browsers ---------------------------------------------------------------------------------

    def _connect(self, client: viser.ClientHandle) -> None:
        loop = _ClientLoop(self, client)
        self._loops[client.client_id] = loop
        loop.start()

    def _disconnect(self, client: viser.ClientHandle) -> None:
        loop = self._loops.pop(client.client_id, None)
        if loop is not None:
            loop.close()

    def draw(self, client: viser.ClientHandle, cam: ViewCamera, state: ViewerState,
             kind: str) -> Shown:
        """Render ``state`` from ``cam`` at the ``kind`` size and send it to ``client``."""
        w, h = render_size(cam.width, cam.height, getattr(self.sizes, kind))
        with self._render_lock:
            view = render_view(self.source.model(state.source), self.rec, state, cam, w, h,
                               self.source.backend)
        client.scene.set_background_image(view.image, format="jpeg", jpeg_quality=90,
                                          depth=view.depth)
        shown = Shown(state, cam, kind, w, h, view.ms)
        self.stats.add(shown)
        ms = self.stats.ms
        self.gui_timing.content = "  \n".join(
            f"{k}: {np.median(ms[k]):.0f} ms (median of {len(ms[k])})" + (
                f", last {shown.ms:.0f} ms at {w}x{h}" if k == kind else "")
            for k in ("moving", "full") if ms[k])
        return shown


class _ClientLoop(threading.Thread):
    """Renders for one browser whenever its camera or the state changes: reduced size while
    moving or playing, full size once at rest."""

    def __init__(self, viewer: Viewer, client: viser.ClientHandle):
        super().__init__(name=f"viewer-client-{client.client_id}", daemon=True)
        self.viewer, self.client = viewer, client
        self.wake = threading.Event()
        self._closed = threading.Event()
        self._camera: ViewCamera | None = None
        self._moved = 0.0
        client.camera.on_update(self._on_camera)

    def close(self) -> None:
        self._closed.set()
        self.wake.set()

    def _on_camera(self, cam: viser.CameraHandle) -> None:
        if self._camera is None:  # a new browser starts at the slider frame's camera
            self.viewer.go_to_frame(self.client)
        self._camera = ViewCamera(tuple(float(v) for v in cam.wxyz),
                                  tuple(float(v) for v in cam.position), float(cam.fov),
                                  int(cam.image_width), int(cam.image_height))
        self._moved = time.monotonic()
        self.wake.set()

    def run(self) -> None:
        done: tuple[ViewCamera, ViewerState, str] | None = None  # the last image sent
        while not self._closed.is_set():
            self.wake.wait(SETTLE_S)
            self.wake.clear()
            cam, state = self._camera, self.viewer.state
            if cam is None or self._closed.is_set():
                continue
            moving = state.playing or time.monotonic() - self._moved < SETTLE_S
            kind = "moving" if moving else "full"
            if done is not None and done[:2] == (cam, state) and (done[2] == "full" or moving):
                continue
            try:
                self.viewer.draw(self.client, cam, state, kind)
            except Exception as e:  # shown in the page; the loop serves the next change
                if self._closed.is_set():
                    return
                self.viewer.gui_timing.content = f"render failed: {type(e).__name__}: {e}"
                print(f"viewer: render failed: {type(e).__name__}: {e}", file=sys.stderr)
                kind = "full"  # not retried until the camera or the state changes
            done = (cam, state, kind)
