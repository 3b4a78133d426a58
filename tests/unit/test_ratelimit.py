from __future__ import annotations

from bot.delivery.ratelimit import PlatformLimits, RateLimiter, Rule


def test_per_destination_window() -> None:
    limiter = RateLimiter(PlatformLimits(per_destination=(Rule(2, 1.0),)), margin=0)
    assert limiter.wait_time("C1", 0.0) == 0
    limiter.record("C1", 0.0)
    limiter.record("C1", 0.2)
    assert limiter.wait_time("C1", 0.3) == 0.7  # the first send leaves the window at 1.0
    assert limiter.wait_time("C2", 0.3) == 0  # other channels are not affected
    assert limiter.wait_time("C1", 1.0) == 0


def test_teams_style_stacked_rules() -> None:
    limiter = RateLimiter(PlatformLimits(per_destination=(Rule(7, 1.0), Rule(8, 2.0))))
    for i in range(7):
        limiter.record("conv", i * 0.01)
    assert limiter.wait_time("conv", 0.1) > 0.8
    limiter.record("conv", 1.05)
    # Eight sends within two seconds: the 2-second rule now holds the ninth back.
    assert 0.9 < limiter.wait_time("conv", 1.06) <= 1.0


def test_overall_limit_and_pause() -> None:
    limiter = RateLimiter(PlatformLimits(overall=(Rule(3, 1.0),)), margin=0)
    for i in range(3):
        limiter.record(f"C{i}", 0.0)
    assert limiter.wait_time("C9", 0.5) == 0.5
    limiter.pause(None, until=10.0)
    assert limiter.wait_time("C9", 2.0) == 8.0
    limiter.pause("C1", until=20.0)
    assert limiter.wait_time("C1", 11.0) == 9.0


def test_idle_destinations_are_forgotten() -> None:
    limiter = RateLimiter(PlatformLimits(per_destination=(Rule(1, 1.0),)))
    limiter.record("C1", 0.0)
    limiter.forget_idle(5.0)
    assert limiter.wait_time("C1", 5.0) == 0
    assert not limiter._destinations


def test_windows_are_kept_a_little_longer_than_documented() -> None:
    """Jitter between recording a send and the platform counting it must not cost a 429."""
    limiter = RateLimiter(PlatformLimits(per_destination=(Rule(1, 1.0),)), margin=0.03)
    limiter.record("C1", 0.0)
    assert limiter.wait_time("C1", 1.0) > 0  # the documented window alone would allow it
    assert abs(limiter.wait_time("C1", 1.0) - 0.03) < 1e-9
    assert limiter.wait_time("C1", 1.03) == 0


def test_a_platforms_own_calls_and_late_departures_count() -> None:
    limiter = RateLimiter(PlatformLimits(overall=(Rule(2, 1.0),)), margin=0)
    limiter.record("D1", 0.0)  # a send's slot, taken when it was free
    limiter.record_overall(0.1)  # the platform opened a conversation first
    assert limiter.wait_time("D2", 0.5) == 0.5  # two calls in the window: wait for the first
    limiter.restamp("D1", reserved=0.0, now=0.4)  # the send really left later
    assert abs(limiter.wait_time("D2", 0.5) - 0.6) < 1e-9  # …so the window frees later


def test_a_send_that_costs_two_calls_waits_for_two_free_slots() -> None:
    """A Teams first contact (open the conversation, then send) needs room for both."""
    limiter = RateLimiter(PlatformLimits(overall=(Rule(3, 1.0),)), margin=0)
    limiter.record("D1", 0.0)
    limiter.record("D2", 0.2)
    assert limiter.wait_time("D3", 0.5) == 0  # one call fits
    assert limiter.wait_time("D3", 0.5, calls=2) == 0.5  # two fit once the first call leaves
    assert limiter.wait_time("D3", 1.0, calls=2) == 0
