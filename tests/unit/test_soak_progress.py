"""The soak's progress line: what a person watching an hour-long run sees each minute."""

from __future__ import annotations

from bench.soak import Recorder, progress_line, rss_growth_pct


def test_progress_line_shows_time_requests_errors_last_minute_p95_and_rss() -> None:
    rec = Recorder()
    rec.started -= 150.0  # the run is 2.5 minutes old
    rec.latencies["asr final"] = [(10.0, 9000.0)] + [
        (100.0 + i, float(ms)) for i, ms in enumerate(range(1, 101))
    ]
    rec.latencies["typed turn"] = [(20.0, 300.0)]  # nothing in the last minute: left out
    rec.errors.append((120.0, "asr", "UNAVAILABLE: gone"))
    rec.rss["tritonserver"] = [(5.0, 80.0), (145.0, 91.4)]
    rec.rss["triton stub asr_whisper"] = [(145.0, 400.0)]  # not one of the processes shown
    line = progress_line(rec, 60)
    assert line.split("requests")[0].strip() == "2.5/60 min"
    assert "requests 102" in line and "errors 1" in line
    assert "asr final 95 ms" in line and "typed turn" not in line  # p95 of the last minute's 100 values
    assert "tritonserver 91" in line and "asr_whisper" not in line


def test_rss_growth_compares_window_medians_not_single_samples() -> None:
    # 10 minutes after a 1-minute warm-up, sampled every 5 s: a saw between 150 and 200 MiB
    saw = [(60.0 + 5 * i, 150.0 if i % 2 else 200.0) for i in range(120)]
    # the last sample (a peak) against the first (a peak... or a trough) would read 0 % or +33 %
    assert rss_growth_pct(saw, 60.0, 660.0) == 0.0
    growing = [(t, v + (t - 60.0) / 60.0) for t, v in saw]  # the same saw climbing 1 MiB a minute
    assert 4.0 < rss_growth_pct(growing, 60.0, 660.0) < 6.0
    assert rss_growth_pct(saw[:10], 60.0, 660.0) is None  # no sample in the last window
