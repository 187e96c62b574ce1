"""The performer's page as an instrument, in the real headless Chromium: typed values, resets,
fine adjustment, the XY pad, curves drawn over the loop, the live ring, meters with colour
thresholds, a layout with no horizontal scroll at three sizes, labels and focus order.
Screenshots go to out/ for a person to look at."""

import numpy as np
import pytest

from controls.session import ControlSession
from engine import StateStore
from pipelines.music.live_params import LIVE_MUSIC_PARAMS
from web.server import WebConfig, WebServer

from conftest import OUT, browser_tab, serving, wait_for

SIZES = {"1280x800": (1280, 800), "1920x1080": (1920, 1080), "phone-sideways-844x390": (844, 390)}


def test_typing_a_value_reaches_stepstate_and_a_bad_one_is_refused_on_the_page(page):
    tab, live, web = page
    tab.fill("#v-guidance", "7.25")
    tab.press("#v-guidance", "Enter")
    assert wait_for(lambda: live.store.snapshot["guidance"] == 7.25)
    tab.wait_for_function("document.querySelector('#p-guidance').getAttribute('aria-valuenow') === '7.25'")
    tab.wait_for_timeout(200)
    messages = web.counters.messages
    for bad, says in (("loud", '"loud" is not a number'), ("99", "99 is outside 0..20"), ("-1", "-1 is outside 0..20")):
        tab.fill("#v-guidance", bad)
        tab.press("#v-guidance", "Enter")
        assert tab.locator("#v-guidance").get_attribute("aria-invalid") == "true"
        assert says in tab.locator("#error").text_content()
    tab.wait_for_timeout(200)
    assert web.counters.messages == messages  # refused on the page: nothing was sent
    assert live.store.snapshot["guidance"] == 7.25
    tab.fill("#v-steps", "2.5")  # an integer parameter takes whole numbers only
    tab.press("#v-steps", "Enter")
    assert "whole number" in tab.locator("#error").text_content() and live.store.snapshot["steps"] == 3


def test_double_click_resets_shift_adjusts_finely_and_arrows_step(page):
    tab, live, web = page
    default = LIVE_MUSIC_PARAMS["velocity_scale"].default
    web.session.set("velocity_scale", 1.7)
    tab.wait_for_function("document.querySelector('#v-velocity_scale').value === '1.700'")
    box = tab.locator("#p-velocity_scale").bounding_box()  # off the default: its first click moves it there
    tab.mouse.dblclick(box["x"] + 0.9 * box["width"], box["y"] + box["height"] / 2)
    assert wait_for(lambda: live.store.snapshot["velocity_scale"] == default)
    web.session.set("velocity_scale", 0.3)
    tab.wait_for_function("document.querySelector('#v-velocity_scale').value === '0.300'")
    tab.dblclick(".param[data-name='velocity_scale'] .name")  # the name resets too
    assert wait_for(lambda: live.store.snapshot["velocity_scale"] == default)
    web.session.set("velocity_scale", 0.4)
    tab.wait_for_function("document.querySelector('#v-velocity_scale').value === '0.400'")
    tab.focus("#p-velocity_scale")
    tab.keyboard.press("Delete")  # and from the keyboard
    assert wait_for(lambda: live.store.snapshot["velocity_scale"] == default)
    # Shift: a drag of a fifth of the slider moves a tenth as far as without it
    box = tab.locator("#p-gain").bounding_box()
    y, x0 = box["y"] + box["height"] / 2, box["x"] + box["width"] / 2
    web.session.set("gain", 1.0)
    tab.wait_for_function("document.querySelector('#v-gain').value === '1.000'")
    tab.keyboard.down("Shift")
    tab.mouse.move(x0 + 0.2 * box["width"], y)  # anywhere: a fine drag moves from where the value is
    tab.mouse.down()
    tab.mouse.move(x0 + 0.4 * box["width"], y, steps=5)
    tab.mouse.up()
    tab.keyboard.up("Shift")
    assert wait_for(lambda: abs(live.store.snapshot["gain"] - (1.0 + 0.2 * 2.0 * 0.1)) < 0.005)
    web.session.set("gain", 1.0)
    tab.wait_for_function("document.querySelector('#v-gain').value === '1.000'")
    tab.focus("#p-gain")
    tab.keyboard.press("ArrowRight")  # a hundredth of the range
    assert wait_for(lambda: abs(live.store.snapshot["gain"] - 1.02) < 1e-6)
    tab.keyboard.press("Shift+ArrowLeft")  # a thousandth
    assert wait_for(lambda: abs(live.store.snapshot["gain"] - 1.018) < 1e-6)
    tab.keyboard.press("End")
    assert wait_for(lambda: live.store.snapshot["gain"] == 2.0)
    # the ends are exact, also where the range does not start at 0
    for name, key, end in (("strength", "Home", 0.01), ("loop_seconds", "End", 120.0), ("loop_seconds", "Home", 2.0)):
        tab.focus(f"#p-{name}")
        tab.keyboard.press(key)
        assert wait_for(lambda: live.store.snapshot[name] == end), (name, key, live.store.snapshot[name])


def test_the_xy_pad_moves_the_two_parameters_the_performer_picks(page):
    tab, live, web = page
    assert tab.evaluate("[demon.pad.x, demon.pad.y]") == ["prompt_blend", "guidance"]
    pad = tab.locator("#xy").bounding_box()
    tab.mouse.click(pad["x"] + 0.8 * pad["width"], pad["y"] + 0.75 * pad["height"])  # y grows upward
    assert wait_for(lambda: abs(live.store.snapshot["prompt_blend"] - 0.8) < 0.02)
    assert wait_for(lambda: abs(live.store.snapshot["guidance"] - 0.25 * 20.0) < 0.5)
    tab.select_option("#pad-x", "gain")
    tab.select_option("#pad-y", "velocity_scale")
    tab.mouse.move(pad["x"] + 0.1 * pad["width"], pad["y"] + 0.9 * pad["height"])
    tab.mouse.down()
    tab.mouse.move(pad["x"] + 0.5 * pad["width"], pad["y"] + 0.25 * pad["height"], steps=8)
    tab.mouse.up()
    assert wait_for(lambda: abs(live.store.snapshot["gain"] - 1.0) < 0.05
                    and abs(live.store.snapshot["velocity_scale"] - 1.5) < 0.05)
    before = live.store.snapshot["gain"]
    tab.focus("#xy")
    tab.keyboard.press("ArrowRight")  # the keyboard moves the point too
    assert wait_for(lambda: live.store.snapshot["gain"] > before + 0.02)


def test_a_curve_drawn_over_the_loop_reaches_stepstate(page):
    tab, live, web = page
    tab.click("#p-source_blend")  # picks the curve to draw over the waveform
    assert tab.locator("#curve-pick input[value='source_blend']").is_checked()
    wave = tab.locator("#wave").bounding_box()
    tab.mouse.move(wave["x"] + 1, wave["y"] + wave["height"] - 1)
    tab.mouse.down()
    for i in range(1, 41):  # a ramp from 0 at the loop's start to 1 at its end
        f = i / 40
        tab.mouse.move(wave["x"] + f * (wave["width"] - 2) + 1, wave["y"] + (1 - f) * (wave["height"] - 2) + 1)
    tab.mouse.up()
    assert wait_for(lambda: len(live.store.snapshot["source_blend"]) == 32)
    curve = np.array(live.store.snapshot["source_blend"])
    assert curve[0] < 0.1 and curve[-1] > 0.9 and np.all(np.diff(curve) > -0.05)  # rises across the loop
    # double-click on its control resets it to the registry's default
    tab.dblclick("#p-source_blend")
    assert wait_for(lambda: live.store.snapshot["source_blend"] == LIVE_MUSIC_PARAMS["source_blend"].default)


def test_the_ring_drawing_follows_the_ticks_and_completions_leave_it(page):
    tab, live, web = page
    ring = lambda: tab.evaluate("({draws: demon.ring.draws, ids: demon.ring.ids, steps: JSON.stringify(demon.ring.steps), "
                                "leaving: demon.ring.leaving, completed: demon.state && demon.state.ring.completed})")
    assert wait_for(lambda: ring()["draws"] > 3 and ring()["ids"], timeout=20), ring()
    first = ring()["steps"]
    assert wait_for(lambda: ring()["steps"] != first, timeout=20), ring()  # the slots moved on
    assert wait_for(lambda: ring()["leaving"] > 0, timeout=40), ring()  # a completion slid out
    slots = tab.evaluate("demon.state.ring.slots")
    assert slots and all(len(s["schedule"]) == s["steps"] + 1 and 0 <= s["step"] < s["steps"] for s in slots)


def test_the_page_fits_at_three_sizes_and_is_labelled_in_focus_order(page):
    tab, live, web = page
    tab.wait_for_function("window.demon.state && window.demon.state.ring.slots.length > 0", timeout=10_000)
    OUT.mkdir(exist_ok=True)
    for name, (width, height) in SIZES.items():
        tab.set_viewport_size({"width": width, "height": height})
        tab.evaluate("document.activeElement && document.activeElement.blur(); scrollTo(0, 0)")
        tab.wait_for_timeout(400)  # a state or two at the new size
        scroll = tab.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll[0] <= scroll[1], f"horizontal scroll at {name}: {scroll}"
        # nothing in a control row pokes out of the controls panel (values clipped at the edge)
        overflow = tab.evaluate("""(() => { const box = document.querySelector('#controls').getBoundingClientRect();
            return [...document.querySelectorAll('#controls .param > *')].filter(el => el.offsetParent !== null)
                .filter(el => el.getBoundingClientRect().right > box.right + 0.5).map(el => el.id || el.className); })()""")
        assert overflow == [], f"{name}: {overflow}"
        tab.screenshot(path=str(OUT / f"web-music-{name}.png"))
        focus_order_follows_the_layout(tab, name)
    every_control_has_a_name(tab)


def focus_order_follows_the_layout(tab, size):
    """Tab through the page: each next element is on the same line further right, lower
    down, or in a new column to the right; and the regions come in their visual order."""
    tab.evaluate("document.activeElement && document.activeElement.blur()")
    seen, order = set(), []
    for _ in range(300):
        tab.keyboard.press("Tab")
        info = tab.evaluate("""(() => { const el = document.activeElement; if (!el || el === document.body) return null;
            const r = el.getBoundingClientRect(), region = el.closest('[data-region]');
            el.dataset.focusKey = el.dataset.focusKey || String(window.__focusKeys = (window.__focusKeys || 0) + 1);
            return {key: el.dataset.focusKey, name: el.id || el.outerHTML.slice(0, 60), top: r.top + scrollY, left: r.left, right: r.right,
                    region: region ? region.dataset.region : 'header'}; })()""")
        if info is None or info["key"] in seen:
            break
        seen.add(info["key"])
        order.append(info)
    assert len(order) > 40, f"{size}: only {len(order)} elements take focus"
    for a, b in zip(order, order[1:]):
        assert b["top"] >= a["top"] - 4 or b["left"] >= a["right"] - 1, f"{size}: focus jumps back from {a} to {b}"
    regions = [o["region"] for i, o in enumerate(order) if i == 0 or o["region"] != order[i - 1]["region"]]
    assert regions == ["header", "stage", "side", "controls"], f"{size}: {regions}"


def every_control_has_a_name(tab):
    """Chromium's own accessibility tree: every node that takes focus has an accessible name."""
    cdp = tab.context.new_cdp_session(tab)
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    focusable = [n for n in nodes if not n.get("ignored")
                 and any(p["name"] == "focusable" and p["value"].get("value") for p in n.get("properties", []))]
    assert len(focusable) > 40
    unnamed = [(n["role"]["value"], n.get("name")) for n in focusable if not n.get("name", {}).get("value", "").strip()]
    assert unnamed == []


@pytest.fixture
def fake_engine_page(pulse_null_sink):
    """The page on a server whose counters and view the test sets: thresholds are crossed at will."""
    shown = {"counters": {"tick_p50_ms": 40.0, "tick_p99_ms": 60.0, "lead_s": 0.6, "lead_target_s": 0.5,
                          "underflows": 0, "rejected_requests": 0, "onset_ms": {"guidance": 80.0, "steps": 4200.0}},
             "view": {"pipeline": "music", "ring": {"depth": 2, "slots": [], "completed": 0}, "sample_rate": 16000,
                      "channels": 1, "playhead": 0, "loop_samples": 0, "loop_request": None, "swap": None,
                      "next_waiting": False}}
    # behind a token, as when it listens beyond loopback: the page and its modules still load
    web = WebServer(ControlSession(StateStore(LIVE_MUSIC_PARAMS)), WebConfig(port=0, state_hz=20, token="t" * 24),
                    counters=lambda: dict(shown["counters"]), view=lambda: dict(shown["view"])).start()
    try:
        with browser_tab(web.url, pulse_null_sink["env"], (1280, 800)) as tab:
            yield tab, shown
    finally:
        web.stop()


def test_a_counter_crossing_its_threshold_changes_colour(fake_engine_page):
    tab, shown = fake_engine_page
    level = "key => document.querySelector(`.meter[data-key='${key}']`).dataset.level"
    colour = "key => getComputedStyle(document.querySelector(`.meter[data-key='${key}'] .reading`)).color"
    tab.wait_for_function(f"({level})('lead_s') === 'ok' && ({level})('tick_p50_ms') === 'ok'")
    calm = tab.evaluate(f"({colour})('lead_s')")
    shown["counters"] = {**shown["counters"], "lead_s": 0.05, "tick_p50_ms": 130.0, "underflows": 1}
    tab.wait_for_function(f"({level})('lead_s') === 'bad'")  # a quarter of the lead the feeder wants
    assert tab.evaluate(f"({level})('tick_p50_ms')") == "warn"
    assert tab.evaluate(f"({level})('underflows')") == "bad"  # it grew just now
    assert tab.evaluate(f"({colour})('lead_s')") != calm
    # onsets read per propagation class; the raw JSON only behind "details"
    assert "next tick: 80 ms" in tab.text_content("#onsets") and "next loop: 4.2 s" in tab.text_content("#onsets")
    assert not tab.is_visible("#raw")
    tab.click("#details summary")
    tab.wait_for_function("document.querySelector('#raw').textContent.includes('lead_s')")


def test_the_voice_page_shows_its_input_latency_budget_and_target(pulse_null_sink):
    """The house voice models converting real speech from a clock-paced input, with the page open."""
    from demon.rigs import voice_rig
    from pipelines.audio_duplex import DuplexConfig, NullDuplex
    from pipelines.voice.checkpoint import load_voice
    from pipelines.voice.data import render, sentences, speakers
    from pipelines.voice.reference import speaker_embedding

    models, encoder = load_voice()
    voices = speakers(3)
    target = speaker_embedding(models, encoder, np.concatenate([render(voices[2], t) for t in sentences(2)]))
    speech = np.concatenate([render(voices[1], t) for t in sentences(3)]).astype(np.float32)
    rig = voice_rig(models, target, NullDuplex(DuplexConfig(16000, blocksize=160), speech), target="alto.wav")
    with serving(rig, WebConfig(port=0), media=None) as (live, web), \
            browser_tab(web.url, pulse_null_sink["env"], (1280, 800)) as tab:
        tab.wait_for_function("demon.state && demon.state.counters.compute_ms > 0 "
                              "&& demon.state.input_db !== null", timeout=20_000)
        assert tab.is_visible("#voice-view") and tab.text_content("#loop-title") == "curves"
        assert tab.text_content("#target") == "alto.wav"
        assert "dBFS" in tab.text_content("#input-db")
        assert tab.evaluate("Number(document.querySelector('#input-meter').getAttribute('aria-valuenow'))") > -70
        assert tab.evaluate("document.querySelector('.meter[data-key=latency_ms]').dataset.level") != "idle"
        assert tab.evaluate("[demon.pad.x, demon.pad.y]") == ["strength", "guidance"]
        # the chunk size is a stream control, heard at the next chunk
        assert tab.locator(".param[data-name='chunk_ms'] .onset").text_content() == "chunk"
        OUT.mkdir(exist_ok=True)
        tab.screenshot(path=str(OUT / "web-voice.png"))
