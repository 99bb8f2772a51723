"""Animation frames of a Möbius vortex episode: drawing and streaming them to a file.

One frame shows, for one environment, a row per strip of the stack with the amplitude
``|ψ|`` and the phase ``arg ψ`` on the strip's chart (u along the centre line, v across;
cell-centred nodes, so each image spans ``[0, L] × [−w, w]``) with the detected vortices
marked by charge (▲ red: positive, ▼ blue: negative — the conventions of the dashboard's
snapshot image, :mod:`hhml.monitoring.snapshot_image`), and beside them the 23 control
values as bars in normalised units ``a ∈ [−1, 1]`` (``−1``: the low end of the control's
range, ``+1``: the high end), labelled with the control's range and its physical value.
The title gives the episode seed, the step, the step's reward, the return so far and the
vortex count.

:class:`FieldAnimator` builds one matplotlib figure (Agg, object-oriented API, panels
placed by hand) and redraws it for each :class:`Frame` by updating its artists (image
data, marker offsets, bar widths, texts). :class:`AnimationWriter` streams the frames to
a GIF or an MP4 as they come:

- GIF: each frame is quantised to the palette of the first frame (whose colour bars hold
  both colour maps) and its encoded image block appended to the open file, so memory
  stays constant over any number of frames. (matplotlib's ``PillowWriter`` keeps every
  frame as an RGB image until the end, width × height × 3 bytes each.)
- MP4: raw RGB frames piped to ``ffmpeg`` (H.264), the executable matplotlib's
  ``animation.ffmpeg_path`` names; only when it is installed (:func:`mp4_available`).

Public names: ``Frame``, ``FieldAnimator``, ``AnimationWriter``, ``mp4_available``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt

from hhml.errors import ConfigError, HHmLError

__all__ = ["AnimationWriter", "FieldAnimator", "Frame", "mp4_available"]

#: Marker, colour and label of each vortex charge sign (as in the dashboard's snapshot).
_CHARGE_STYLE = ((1, "^", "#d62728"), (-1, "v", "#1f77b4"))

# Fixed layout, in inches (no layout engine: it would measure every label each frame).
_LEFT, _TOP, _BOTTOM = 0.95, 0.55, 0.5
_FIELD_W = 3.6  # width of one field panel
_BAR_GAP, _BAR_W = 0.06, 0.12  # gap between a panel and its colour bar, colour-bar width
_COL_GAP = 1.1  # after a colour bar (room for its tick labels and label)
_ROW_GAP = 0.15
_NAMES_W = 2.3  # room for the control names and ranges left of the bar chart
_CONTROLS_W = 1.9  # the bar chart
_RIGHT = 0.75  # room for the physical values right of the bars


@dataclass
class Frame:
    """What one animation frame shows (one environment, after one env step).

    Attributes
    ----------
    psi : ndarray, complex, shape (S, nu, nv)
        The field of each strip (dimensionless amplitude).
    vortex_strip : ndarray, int, shape (K,)
        Strip of each detected vortex.
    vortex_position : ndarray, float, shape (K, 2)
        Core position ``(u, v)`` on the strip's chart (length units).
    vortex_charge : ndarray, int, shape (K,)
        Winding number of each vortex.
    controls : ndarray, float, shape (23,)
        Control values in normalised units, ``−1`` at the low and ``+1`` at the high end
        of each range.
    values : ndarray, float, shape (23,)
        The same controls in physical units.
    step : int
        Env steps taken in the episode (0: the field after reset).
    reward : float or None
        Reward of this step (None for the initial frame).
    episode_return : float
        Sum of the rewards up to and including this step.
    seed : int or None
        Reset seed of the episode.
    length, half_width : float
        The strip's chart spans ``[0, length] × [−half_width, half_width]`` (length
        units).
    """

    psi: npt.NDArray[np.complexfloating[Any, Any]]
    vortex_strip: npt.NDArray[np.int64]
    vortex_position: npt.NDArray[np.float64]
    vortex_charge: npt.NDArray[np.int64]
    controls: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    step: int
    reward: float | None
    episode_return: float
    seed: int | None = None
    length: float = 2 * np.pi
    half_width: float = 1.0

    def vortex_counts(self) -> tuple[int, int]:
        """Numbers of positive and negative vortices (all strips)."""
        return int((self.vortex_charge > 0).sum()), int((self.vortex_charge < 0).sum())


def mp4_available() -> bool:
    """Whether matplotlib finds an ``ffmpeg`` executable (needed for MP4 only)."""
    from matplotlib.animation import FFMpegWriter

    return bool(FFMpegWriter.isAvailable())


def _format_value(value: float) -> str:
    return f"{value:.3g}" if value != 0 else "0"


class FieldAnimator:
    """One figure redrawn for each :class:`Frame` of an episode.

    Parameters
    ----------
    strips
        Number of strips ``S`` of the stack (one row of panels each).
    length, half_width
        Chart extent ``[0, L] × [−w, w]`` of a strip (length units).
    control_names
        Names of the 23 controls, in action order.
    control_low, control_high
        The configured range of each control (physical units), shape ``(23,)``.
    horizon
        Steps per episode, shown as ``step k/horizon`` (None: not shown).
    dpi
        Pixels per inch; the figure is ``15.7 × (2.55·S + 0.9)`` inches.

    Notes
    -----
    The amplitude is drawn as ``|ψ| / max |ψ|`` (max over the frame's strips, printed in
    the column title), so that the colour bar is fixed and the figure can be drawn once:
    per frame only the images, markers, bars and texts are redrawn over a stored copy of
    the static parts (blitting). The phase scale is ``[−π, π]``.
    """

    def __init__(
        self,
        strips: int,
        length: float,
        half_width: float,
        control_names: list[str],
        control_low: npt.ArrayLike,
        control_high: npt.ArrayLike,
        horizon: int | None = None,
        dpi: int = 72,
    ) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if strips < 1:
            raise ConfigError(f"strips = {strips}: a frame needs at least one strip")
        self.strips = strips
        self.horizon = horizon
        self.control_names = list(control_names)
        self.control_low = np.asarray(control_low, dtype=np.float64)
        self.control_high = np.asarray(control_high, dtype=np.float64)
        n = len(self.control_names)
        if self.control_low.shape != (n,) or self.control_high.shape != (n,):
            raise ConfigError(
                f"control ranges have shapes {self.control_low.shape} and "
                f"{self.control_high.shape}; expected ({n},) for {n} control names"
            )
        extent = (0.0, float(length), -float(half_width), float(half_width))
        columns = 2 * (_FIELD_W + _BAR_GAP + _BAR_W + _COL_GAP)
        width = _LEFT + columns + _NAMES_W + _CONTROLS_W + _RIGHT
        height = _TOP + _BOTTOM + 2.4 * strips + (strips - 1) * _ROW_GAP
        self.figure = fig = Figure(figsize=(width, height), dpi=dpi)
        self.canvas: Any = cast(Any, FigureCanvasAgg(fig))  # partly untyped in the stubs
        panel_h = (height - _TOP - _BOTTOM - (strips - 1) * _ROW_GAP) / strips

        def rect(
            left: float, bottom: float, w: float, h: float
        ) -> tuple[float, float, float, float]:
            return (left / width, bottom / height, w / width, h / height)

        empty = np.zeros((2, 2))
        self._amplitude: list[Any] = []
        self._phase: list[Any] = []
        self._markers: list[list[Any]] = []
        self._field_axes: list[Any] = []
        first: list[Any] = []
        for s in range(strips):
            bottom = height - _TOP - (s + 1) * panel_h - s * _ROW_GAP
            row_markers: list[Any] = []
            for column in range(2):
                left = _LEFT + column * (_FIELD_W + _BAR_GAP + _BAR_W + _COL_GAP)
                ax = fig.add_axes(
                    rect(left, bottom, _FIELD_W, panel_h),
                    sharex=first[column] if s > 0 else None,
                )
                self._field_axes.append(ax)
                cax = fig.add_axes(rect(left + _FIELD_W + _BAR_GAP, bottom, _BAR_W, panel_h))
                if column == 0:
                    im = ax.imshow(
                        empty,
                        origin="lower",
                        extent=extent,
                        aspect="auto",
                        cmap="viridis",
                        vmin=0.0,
                        vmax=1.0,
                    )
                    fig.colorbar(im, cax=cax, label="|ψ| / max |ψ|")
                    self._amplitude.append(im)
                    label = f"strip {s}" if strips > 1 else "strip"
                    ax.set_ylabel(f"{label}\nv")
                else:
                    im = ax.imshow(
                        empty,
                        origin="lower",
                        extent=extent,
                        aspect="auto",
                        cmap="twilight",
                        vmin=-np.pi,
                        vmax=np.pi,
                    )
                    fig.colorbar(im, cax=cax, label="arg ψ")
                    self._phase.append(im)
                if s == 0:
                    first.append(ax)
                    if column == 1:
                        ax.set_title("arg ψ", fontsize=10)
                if s < strips - 1:
                    ax.tick_params(labelbottom=False)
                else:
                    ax.set_xlabel("u")
                ax.set_xlim(extent[0], extent[1])
                ax.set_ylim(extent[2], extent[3])
                for _sign, marker, colour in _CHARGE_STYLE:
                    (line,) = ax.plot(
                        [],
                        [],
                        linestyle="none",
                        marker=marker,
                        markersize=7,
                        markerfacecolor=colour,
                        markeredgecolor="white",
                        markeredgewidth=0.6,
                    )
                    row_markers.append(line)
            self._markers.append(row_markers)
        # the amplitude column's title carries the frame's max |ψ|
        self._amplitude_title = first[0].text(
            0.5, 1.02, "", transform=first[0].transAxes, ha="center", va="bottom", fontsize=10
        )

        # the controls: horizontal bars in normalised units, the physical value beside
        left = _LEFT + columns + _NAMES_W
        plot_h = height - _TOP - _BOTTOM
        self._controls_ax = cax = fig.add_axes(rect(left, _BOTTOM, _CONTROLS_W, plot_h))
        positions = np.arange(n)
        self._bars = list(cax.barh(positions, np.zeros(n), height=0.7, color="#7f7f7f"))
        labels = [
            f"{name} [{_format_value(lo)}, {_format_value(hi)}]"
            for name, lo, hi in zip(
                self.control_names, self.control_low, self.control_high, strict=True
            )
        ]
        cax.set_yticks(positions, labels, fontsize=7)
        cax.set_ylim(n - 0.5, -0.5)
        cax.set_xlim(-1.0, 1.0)
        cax.set_xticks([-1.0, 0.0, 1.0], ["low", "mid", "high"], fontsize=8)
        cax.axvline(0.0, color="black", linewidth=0.6)
        cax.set_title("controls (normalised; value)", fontsize=10)
        self._value_texts = [
            cax.text(
                1.04, float(p), "", fontsize=7, va="center", transform=cax.get_yaxis_transform()
            )
            for p in positions
        ]
        self._title = fig.text(0.5, 1 - 0.1 / height, "", ha="center", va="top", fontsize=11)

        # Only these artists change between frames: draw everything else once, keep that
        # image, and per frame paste it back and draw just these on top (blitting).
        self._animated: list[tuple[Any, list[Any]]] = []
        for k, ax in enumerate(self._field_axes):
            s, column = divmod(k, 2)
            image = self._amplitude[s] if column == 0 else self._phase[s]
            self._animated.append((ax, [image, *self._markers[s][2 * column : 2 * column + 2]]))
        self._animated[0][1].append(self._amplitude_title)
        self._animated.append((cax, [*self._bars, *self._value_texts]))
        self._animated.append((fig, [self._title]))
        for _owner, artists in self._animated:
            for artist in artists:
                artist.set_animated(True)
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(fig.bbox)

    @property
    def size(self) -> tuple[int, int]:
        """Frame size in pixels, ``(width, height)``."""
        width, height = self.canvas.get_width_height()
        return int(width), int(height)

    def title(self, frame: Frame) -> str:
        """The frame's title: seed, step, reward, return and vortex count."""
        plus, minus = frame.vortex_counts()
        step = f"step {frame.step}" + (f"/{self.horizon}" if self.horizon else "")
        reward = "—" if frame.reward is None else f"{frame.reward:.4g}"
        seed = "" if frame.seed is None else f"seed {frame.seed}  ·  "
        return (
            f"{seed}{step}  ·  reward {reward}  ·  return {frame.episode_return:.4g}  ·  "
            f"vortices {plus + minus} ({plus} ▲ +, {minus} ▼ −)"
        )

    def draw(self, frame: Frame) -> None:
        """Update every artist to ``frame`` and render the figure (Agg).

        Raises
        ------
        ConfigError
            The frame's field has a different number of strips, or the frame a
            different number of controls, than the figure was built for.
        """
        psi = np.asarray(frame.psi)
        if psi.ndim != 3 or psi.shape[0] != self.strips:
            raise ConfigError(
                f"frame field has shape {psi.shape}; expected ({self.strips}, nu, nv)"
            )
        n = len(self.control_names)
        if frame.controls.shape != (n,) or frame.values.shape != (n,):
            raise ConfigError(
                f"frame controls have shapes {frame.controls.shape} and {frame.values.shape}; "
                f"expected ({n},)"
            )
        amplitude = np.abs(psi)
        top = float(amplitude.max()) if amplitude.size else 0.0
        scale = top if np.isfinite(top) and top > 0 else 1.0
        phase = np.angle(psi)
        for s in range(self.strips):
            self._amplitude[s].set_data(amplitude[s].T / scale)  # rows: v, columns: u
            self._phase[s].set_data(phase[s].T)
            on_strip = frame.vortex_strip == s
            for k, (sign, _marker, _colour) in enumerate(_CHARGE_STYLE):
                sel = on_strip & (frame.vortex_charge * sign > 0)
                uv = frame.vortex_position[sel]
                for column in range(2):
                    self._markers[s][2 * column + k].set_data(uv[:, 0], uv[:, 1])
        self._amplitude_title.set_text(f"|ψ|  (max {top:.3g})")
        for bar, text, a, value in zip(
            self._bars, self._value_texts, frame.controls, frame.values, strict=True
        ):
            bar.set_width(float(np.clip(a, -1.0, 1.0)))
            text.set_text(_format_value(float(value)))
        self._title.set_text(self.title(frame))
        self.canvas.restore_region(self._background)
        for owner, artists in self._animated:
            for artist in artists:
                owner.draw_artist(artist)

    def save_png(self, path: str | Path) -> Path:
        """Write the last drawn frame to a PNG file (``figure.savefig`` would leave out
        the per-frame artists, which only :meth:`draw` renders)."""
        from PIL import Image

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.rgb()).save(out, format="PNG", optimize=True)
        return out

    def rgb(self) -> npt.NDArray[np.uint8]:
        """The last drawn frame as an RGB image, shape ``(height, width, 3)``."""
        rgba = np.asarray(self.canvas.buffer_rgba())
        return np.ascontiguousarray(rgba[..., :3])


class AnimationWriter:
    """Stream rendered frames of a :class:`FieldAnimator` to a GIF or MP4 file.

    Use as a context manager; :meth:`add` draws a frame and appends it to the file.

    Parameters
    ----------
    path
        Output file; its suffix picks the format (``.gif`` or ``.mp4``).
    animator
        The figure to render the frames with.
    fps
        Frames per second of the animation (GIF delays are whole hundredths of a
        second, so the GIF's rate is ``100 / round(100 / fps)``).

    Raises
    ------
    ConfigError
        Unknown suffix, ``fps`` not positive, or MP4 without ffmpeg.
    """

    def __init__(self, path: str | Path, animator: FieldAnimator, fps: float = 5.0) -> None:
        self.path = Path(path)
        self.animator = animator
        self.fps = float(fps)
        self.frames = 0
        suffix = self.path.suffix.lower()
        if suffix not in (".gif", ".mp4"):
            raise ConfigError(f"animation file {self.path}: suffix must be .gif or .mp4")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ConfigError(f"fps = {fps}: frames per second must be a positive number")
        if suffix == ".mp4" and not mp4_available():
            raise ConfigError(
                f"animation file {self.path}: MP4 needs ffmpeg, which matplotlib does not "
                "find (install ffmpeg, or write a .gif)"
            )
        self.format = suffix[1:]
        self._file: IO[bytes] | None = None
        self._palette: Any = None
        self._mp4: Any = None  # the ffmpeg process
        self._stderr: Any = None

    def __enter__(self) -> AnimationWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add(self, frame: Frame) -> None:
        """Draw ``frame`` and append it to the file."""
        self.animator.draw(frame)
        if self.format == "gif":
            self._add_gif()
        else:
            self._add_mp4()
        self.frames += 1

    def _add_gif(self) -> None:
        from PIL import GifImagePlugin, Image

        rgb = Image.fromarray(self.animator.rgb())
        delay_ms = 10 * max(1, round(100.0 / self.fps))
        if self._file is None:
            # one palette for the whole file: the first frame's (its colour bars hold
            # every colour of both maps), so every frame is written against one table
            self._palette = rgb.quantize(256, method=Image.Quantize.MEDIANCUT)
            first = rgb.quantize(palette=self._palette, dither=Image.Dither.NONE)
            header, _ = GifImagePlugin.getheader(first, info={"loop": 0, "duration": delay_ms})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("wb")
            for chunk in header:
                self._file.write(chunk)
            image = first
        else:
            image = rgb.quantize(palette=self._palette, dither=Image.Dither.NONE)
        for chunk in GifImagePlugin.getdata(image, duration=delay_ms):
            self._file.write(chunk)

    def _add_mp4(self) -> None:
        if self._mp4 is None:
            import subprocess
            import tempfile

            from matplotlib import rcParams

            width, height = self.animator.size
            command = [
                str(rcParams["animation.ffmpeg_path"]),
                "-y",
                "-loglevel",
                "error",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "-s",
                f"{width}x{height}",
                "-r",
                f"{self.fps:g}",
                "-i",
                "-",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",  # H.264 in yuv420p needs even sizes
                "-vcodec",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                str(self.path),
            ]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
            self._mp4 = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=self._stderr)
        # the drawn canvas itself: a savefig (as FFMpegWriter.grab_frame does) would
        # redraw the figure without the blitted per-frame artists
        self._mp4.stdin.write(self.animator.rgb().tobytes())

    def close(self) -> None:
        """Finish the file (GIF trailer / ffmpeg flush). Idempotent.

        Raises
        ------
        HHmLError
            ffmpeg exited with an error (its last message line is quoted).
        """
        if self._file is not None:
            self._file.write(b";")  # GIF trailer
            self._file.close()
            self._file = None
        if self._mp4 is not None:
            proc, self._mp4 = self._mp4, None
            proc.stdin.close()
            code = proc.wait()
            self._stderr.seek(0)
            message = self._stderr.read().decode(errors="replace").strip()
            self._stderr.close()
            if code != 0:
                last = message.splitlines()[-1] if message else "no message"
                raise HHmLError(f"ffmpeg failed writing {self.path} (exit {code}): {last}")
