"""The fixed-window hit counter behind the widget's rate limits."""

import threading
import time

from leadchat.ratelimit import window_clear, window_counts, window_hit


def test_a_window_counts_hits_and_a_new_one_opens_when_it_closes(monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])  # the cache's expiry reads it too

    assert window_hit("t:a", 60) == (1, 60.0)
    clock[0] += 10
    assert window_hit("t:a", 60) == (2, 50.0)
    assert window_hit("t:b", 60) == (1, 60.0)  # keys are counted apart
    clock[0] += 51
    assert window_hit("t:a", 60) == (1, 60.0)


def test_concurrent_hits_are_all_counted():
    def hit():
        for _ in range(200):
            window_hit("t:busy", 60)

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert window_hit("t:busy", 60)[0] == 8 * 200 + 1


def test_counts_read_open_windows_and_clear_closes_one():
    window_hit("t:x", 60)
    window_hit("t:x", 60)
    window_hit("t:y", 60)

    assert window_counts(["t:x", "t:y", "t:z"]) == {"t:x": 2, "t:y": 1, "t:z": 0}
    window_clear("t:x")
    assert window_counts(["t:x", "t:y"]) == {"t:x": 0, "t:y": 1}
