"""The adaptive balance controller (`train.schedule: autobalance`, settings in `balance.*`).

Weaver (docs/methods.md §9) fixes the number of G updates per D update (g_advantage) for a whole
run and finds that more G updates bring log(L_G/L_D) towards 0, with diminishing returns
and a cost that grows with the ratio. Instead of choosing one ratio in advance, this
schedule adjusts it online: it keeps an EMA of a balance signal and, every `balance.every`
iterations, adds one G update per iteration when D is ahead (signal above the target band),
removes one when G is ahead (below the band), and holds inside the band. The count stays in
[balance.min_g, balance.max_g]; D keeps train.d_steps updates.

Signals (higher = D stronger for both):
- log_ratio: log(L_G / L_D) of the iteration (natural log, L_G the adversarial term only, as
  logged in stats.jsonl); Weaver's ideal is 0. With BCE, D(x) = D(G(z)) = 0.5 gives -0.69 and
  a winning D gives large positive values. Default band [-0.5, 0.5].
- d_real: D's mean sigmoid on real images, a soft accuracy on reals (0.5 = undecided,
  1 = D is sure). Default band [0.6, 0.8].

Every decision is logged (`balance_change` -1 / 0 / +1 and `balance_g`, the count for the
next iterations), `balance_ema` every iteration. The state (count, EMA) is JSON in the
checkpoint, so a resumed run takes the same decisions as an uninterrupted one.
"""

from __future__ import annotations

import math

from .base import SCHEDULES, Schedule

SIGNALS = ("log_ratio", "d_real")
DEFAULT_BANDS = {"log_ratio": (-0.5, 0.5), "d_real": (0.6, 0.8)}


# ----------------------------------------------------------------------------- pure functions


def signal_value(kind: str, stats: dict) -> float | None:
    """The balance signal of one iteration's stats, or None when it is undefined (e.g. a loss <= 0)."""
    if kind == "log_ratio":
        lg, ld = stats.get("loss_g"), stats.get("loss_d")
        if lg is None or ld is None or not (lg > 0 and ld > 0) or not math.isfinite(lg / ld):
            return None
        return math.log(lg / ld)
    if kind == "d_real":
        v = stats.get("d_real")
        return float(v) if v is not None and math.isfinite(v) else None
    raise ValueError(f"balance.signal={kind!r}; valid: {', '.join(SIGNALS)}")


def ema_update(prev: float | None, value: float, decay: float) -> float:
    """Exponential moving average; the first value starts it (no bias towards 0)."""
    return value if prev is None else decay * prev + (1 - decay) * value


def decide(value: float, low: float, high: float) -> int:
    """+1 (one more G update: D is ahead), -1 (one fewer: G is ahead) or 0 (inside the band)."""
    return 1 if value > high else -1 if value < low else 0


def clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))


# ----------------------------------------------------------------------------- the schedule


@SCHEDULES.register("autobalance")
class AutoBalanceSchedule(Schedule):
    def __init__(self, cfg):
        b = cfg.balance
        if b.signal not in SIGNALS:
            raise ValueError(f"balance.signal={b.signal!r}; valid: {', '.join(SIGNALS)}")
        lo_default, hi_default = DEFAULT_BANDS[b.signal]
        self.signal = b.signal
        self.low = lo_default if b.low is None else b.low
        self.high = hi_default if b.high is None else b.high
        if not self.low < self.high:
            raise ValueError(f"balance.low={self.low} must be below balance.high={self.high}")
        if not 1 <= b.min_g <= b.max_g:
            raise ValueError(f"balance.min_g={b.min_g}, balance.max_g={b.max_g}: need 1 <= min_g <= max_g")
        if b.every < 1:
            raise ValueError(f"balance.every must be >= 1, got {b.every}")
        if not 0 <= b.ema < 1:
            raise ValueError(f"balance.ema must be in [0, 1), got {b.ema}")
        if cfg.train.d_steps < 1:
            raise ValueError(f"train.d_steps={cfg.train.d_steps}: autobalance needs at least one D update")
        self.min_g, self.max_g, self.every, self.decay = b.min_g, b.max_g, b.every, b.ema
        self.d = cfg.train.d_steps
        self.g = clamp(cfg.train.g_steps, b.min_g, b.max_g)  # train.g_steps is the starting ratio
        self.ema: float | None = None

    def counts(self, step: int) -> tuple[int, int]:
        return self.d, self.g

    def update(self, step: int, stats: dict) -> dict:
        v = signal_value(self.signal, stats)
        if v is not None:
            self.ema = ema_update(self.ema, v, self.decay)
        out: dict = {"balance_ema": self.ema}
        if (step + 1) % self.every == 0 and self.ema is not None:
            new_g = clamp(self.g + decide(self.ema, self.low, self.high), self.min_g, self.max_g)
            out.update(balance_change=new_g - self.g, balance_g=new_g)
            self.g = new_g
        return out

    def state_dict(self) -> dict:
        return {"g": self.g, "ema": self.ema}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.g = int(state["g"])
            self.ema = None if state.get("ema") is None else float(state["ema"])
