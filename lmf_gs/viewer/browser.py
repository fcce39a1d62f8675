"""Drive a viewer page in headless Chromium (Playwright with the system's Chromium; no browser is
ever downloaded): the browser test and the README screenshot share this code."""

from __future__ import annotations

import io
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lmf_gs.errors import LmfError

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from lmf_gs.viewer.server import Shown, Viewer

CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium_path() -> str | None:
    """The system's Chromium (Debian: ``apt-get install chromium``), or None."""
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


class ViewerPage:
    """A viewer page in the browser, operated as a user would."""

    def __init__(self, page: Page):
        self.page = page

    def screenshot(self) -> np.ndarray:
        """The page as ``[H, W, 3]`` uint8."""
        return np.asarray(Image.open(io.BytesIO(self.page.screenshot())).convert("RGB"))

    def settled(self, timeout: float = 10.0) -> np.ndarray:
        """A screenshot once two in a row (0.2 s apart) are equal (the image is painted)."""
        end = time.monotonic() + timeout
        prev = self.screenshot()
        while time.monotonic() < end:
            time.sleep(0.2)
            cur = self.screenshot()
            if np.array_equal(cur, prev):
                return cur
            prev = cur
        return prev

    def _control(self, label: str) -> str:
        """The element id a GUI label points to."""
        target = self.page.locator("label").filter(has_text=re.compile(f"^{re.escape(label)}$"))
        return target.first.get_attribute("for", timeout=10_000) or ""

    def set_slider(self, label: str, steps: int) -> None:
        """Move a slider to its minimum, then ``steps`` steps right, with the keyboard."""
        thumb = self.page.locator(f'[id="{self._control(label)}"] [role="slider"]')
        thumb.focus()
        thumb.press("Home")
        for _ in range(steps):
            thumb.press("ArrowRight")

    def click_checkbox(self, label: str) -> None:
        self.page.locator(f'[id="{self._control(label)}"]').click()

    def click_button(self, label: str) -> None:
        self.page.get_by_role("button", name=label, exact=True).click()

    def select(self, label: str, option: str) -> None:
        """Choose ``option`` in a dropdown."""
        self.page.locator(f'[id="{self._control(label)}"]').click()
        self.page.get_by_role("option", name=option, exact=True).click()

    def panel_box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the control panel, which covers part of the scene."""
        box = self.page.locator("label").first.locator(
            "xpath=ancestor::*[contains(@class, 'Paper')][1]").bounding_box()
        if box is None:
            raise RuntimeError("the control panel is not on the page")
        x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
        return x, y, x + w, y + h

    def close_notifications(self) -> None:
        """Close viser's notifications (e.g. "Software WebGL rendering detected")."""
        for button in self.page.locator(".mantine-Notification-closeButton").all():
            button.click()


@contextmanager
def open_page(url: str, width: int = 1280, height: int = 720) -> Iterator[ViewerPage]:
    """``url`` in headless Chromium with a ``width`` x ``height`` viewport."""
    exe = chromium_path()
    if exe is None:
        raise LmfError("no Chromium found: install Debian's `chromium` package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise LmfError("Playwright is not installed: pip install playwright (the browser "
                       "itself comes from Debian's `chromium`)") from None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            yield ViewerPage(page)
        finally:
            browser.close()


def wait_full(viewer: Viewer, after: int = 0, timeout: float = 30.0, quiet: float = 0.75,
              **state: object) -> Shown:
    """Wait for a full-size image (from the ``after``-th image sent on) whose state has the
    given fields (e.g. ``frame=3``), then for ``quiet`` seconds without a new image (the
    browser's camera may still settle); returns the last image sent, which must match too."""
    def match(s: Shown) -> bool:
        return s.kind == "full" and all(getattr(s.state, k) == v for k, v in state.items())

    viewer.stats.wait(match, timeout, after)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = len(viewer.stats.shown)
        time.sleep(quiet)
        if len(viewer.stats.shown) == n and match(last := viewer.stats.shown[-1]):
            return last
    raise TimeoutError("the viewer kept sending images or ended on another state")


def save_screenshot(viewer: Viewer, path: Path, frame: int, mode: str, back: float = 0.0,
                    width: int = 1280, height: int = 720) -> Shown:
    """Open ``viewer`` in headless Chromium, move the slider to ``frame``, pick the display
    ``mode``, put the camera ``back`` scene depths behind the frame's camera and write the page
    as PNG to ``path``; returns the image the page shows."""
    with open_page(viewer.url, width, height) as page:
        wait_full(viewer)
        page.set_slider("frame", frame)
        if mode != viewer.state.mode:
            page.select("display", mode)
        wait_full(viewer, frame=frame, mode=mode)
        n = len(viewer.stats.shown)
        assert viewer.server is not None
        for client in viewer.server.get_clients().values():
            viewer.go_to_frame(client, back)
        page.close_notifications()
        shown = wait_full(viewer, after=n, frame=frame, mode=mode)
        Image.fromarray(page.settled()).save(path)
    return shown
