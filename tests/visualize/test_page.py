"""The interactive page (`nngraph compile MODEL -o graph.html`): one self-contained file, checked
as text and driven in a real headless browser (Debian's chromium with chromedriver, which
.ci/run installs): open a block by clicking it, close it, search, hover, zoom, no console errors."""
import json
import re
import shutil
import tempfile

import pytest

import nngraph
from nngraph.cli import main
from nngraph.visualize import COLOURS

CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or \
    "/usr/bin/chromedriver"


def states(html: str) -> list[dict]:
    found = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))["states"]


@pytest.fixture(scope="module")
def gpt_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "graph.html"
    assert main(["compile", "models/gpt.nn", "--model-name", "gpt", "-o", str(out)]) == 0
    return out


def test_the_page_is_one_file_that_needs_no_network(gpt_page):
    html = gpt_page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    # nothing is fetched: no external scripts, styles, images or fonts (SVG namespaces are names, not fetches)
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="(?!data:)|@import|url\(\s*["\']?http', html)
    assert not re.search(r'(src|href)="https?://', html)
    pictures = states(html)
    assert pictures[0]["expand"] == [] and pictures[0]["boxes"] == ["net.block1"]     # the default picture first
    assert ["net.block1"] in [p["expand"] for p in pictures]                          # and block1 opened


def test_gradient_nodes_are_coloured_apart_in_the_page(tmp_path):
    out = tmp_path / "grad.html"
    assert main(["compile", "models/iris.nn", "--grad", "-o", str(out)]) == 0
    svg = states(out.read_text())[0]["svg"]
    assert f'fill="{COLOURS["backward"]}"' in svg and f'fill="{COLOURS["forward"]}"' in svg


def test_in_jupyter_a_model_displays_the_page_inline():
    shown = nngraph.load("models/iris.nn")._repr_html_()
    assert shown.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;") and "graph-data" in shown
    assert "<script>" not in shown            # all of it inside the attribute, escaped


@pytest.fixture(scope="module")
def browser():
    """Headless chromium; the test fails (it is not skipped) where chromium is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="nngraph-chromium-")       # a fresh profile each run
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_in_a_browser_blocks_open_and_close_and_search_finds_names(browser, gpt_page):
    from selenium.webdriver.common.by import By

    def visible(selector):
        return browser.find_elements(By.CSS_SELECTOR, "#canvas " + selector)

    browser.get(gpt_page.as_uri())
    before = len(visible("g.node"))
    box = next(g for g in visible("g.node.box") if g.find_element(By.TAG_NAME, "title")
               .get_attribute("textContent") == "layer:net.block1")
    assert before > 10 and visible("g.cluster") and not [c for c in visible("g.cluster")
                                                          if c.get_attribute("id") == "scope:net.block1"]
    box.click()                                   # open the repeated block
    after = len(visible("g.node"))
    assert after > before
    assert [c for c in visible("g.cluster") if c.get_attribute("id") == "scope:net.block1"]
    assert "open: net.block1" in browser.find_element(By.ID, "status").text

    # hover: the value's type and its .nn line
    node = next(g for g in visible("g.node") if "layer:" not in g.find_element(By.TAG_NAME, "title")
                .get_attribute("textContent") and g.find_elements(By.TAG_NAME, "a"))
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))",
                           node.find_element(By.TAG_NAME, "text"))
    info = browser.find_element(By.ID, "info").text
    assert re.search(r"(float32|int64)\[", info) and re.search(r"\.nn:\d+: ", info)

    search = browser.find_element(By.ID, "search")
    search.send_keys("expand")                    # a value feed_forward names
    matches = visible("g.node.match")
    assert matches and all("expand" in m.get_attribute("textContent") for m in matches)
    assert browser.find_element(By.ID, "matches").text == f"{len(matches)} match{'es' if len(matches) > 1 else ''}"
    assert len(visible("g.node.dim")) == after - len(matches)
    search.clear()
    search.send_keys("no such name")
    assert browser.find_element(By.ID, "matches").text == "0 matches"

    before_zoom = browser.find_element(By.ID, "canvas").get_attribute("style")
    browser.find_element(By.ID, "zoom-in").click()
    assert browser.find_element(By.ID, "canvas").get_attribute("style") != before_zoom

    frame = next(c for c in visible("g.cluster.closable") if c.get_attribute("id") == "scope:net.block1")
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                           frame.find_element(By.TAG_NAME, "text"))       # its label: close it again
    assert len(visible("g.node")) == before
    assert [e for e in browser.get_log("browser")] == []            # no errors, no warnings
