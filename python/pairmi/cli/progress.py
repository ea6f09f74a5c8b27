"""Progress on stderr: layers of an analysis, tokens of a corpus run."""

from __future__ import annotations

import sys
import time


class LayerBar:
    """A progress bar on stderr: layers done, the current layer's share of tiles, elapsed and ETA."""

    def __init__(self, label: str, layers: int):
        self.label, self.layers, self.t0 = label, layers, time.perf_counter()
        self.done = 0  # layers finished
        self.last = 0.0

    def __call__(self, k: int, n: int, resumed: bool) -> None:
        self.done = k + 1
        note = " (resumed)" if resumed else ""
        self._draw(float(self.done), note, final=self.done == n)

    def tile(self, done: int, total: int) -> None:
        """Inside a layer (KSG on 10^4 tokens takes minutes a layer): at most every 0.5 s."""
        now = time.perf_counter()
        if total and now - self.last >= 0.5:
            self.last = now
            self._draw(self.done + done / total, "")

    def _draw(self, progress: float, note: str, final: bool = False) -> None:
        elapsed = time.perf_counter() - self.t0
        share = progress / self.layers
        eta = f", ETA {elapsed / share - elapsed:.0f} s" if 0 < share < 1 else ""
        filled = int(30 * share)
        end = "\n" if final else ""
        if not final and not sys.stderr.isatty():
            return  # a log file gets one line per run, not one per update
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] layer {min(self.done + 1, self.layers)}"
            f"/{self.layers}{note} {elapsed:.1f} s{eta}   {end}"
        )
        sys.stderr.flush()


class TokenBar:
    """tqdm's bar of tokens done, rate and ETA (total known with --max-tokens), fed the running count."""

    def __init__(self, total: int | None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="tok", unit_scale=True, desc="tokens", file=sys.stderr, dynamic_ncols=True)

    def __call__(self, done: int, total: int | None) -> None:
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()
