"""The web page of `tiffin serve` in a real browser: Debian's chromium, headless, driven through
WebDriver (Debian's chromedriver) by Selenium. Run by `cargo xtask ui`, which packs the fixtures,
starts the server and passes its address.

Usage: python ui_test.py ADDRESS SCREENSHOT_DIR

The server serves churn_model (a card, golden examples, class labels), iris and evil_card (the
churn model under a model card that tries every way to run script). Each check prints ok or
FAIL; the script exits non-zero on the first failure, with a screenshot of the page.
"""

import json
import os
import re
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ADDRESS = sys.argv[1]
SHOTS = sys.argv[2]
BASE = f"http://{ADDRESS}"


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1800", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


driver = browser()
step = 0


def shot(name, height=None):
    path = os.path.join(SHOTS, f"{name}.png")
    # The whole page unless a height is given: resize to the document's height first.
    if height is None:
        height = driver.execute_script("return document.documentElement.scrollHeight") + 100
    driver.set_window_size(1280, max(800, min(height, 6000)))
    driver.save_screenshot(path)
    print(f"   screenshot {path}")


def check(what, condition, detail=""):
    global step
    step += 1
    if condition:
        print(f"ok {step} {what}")
        return
    print(f"FAIL {step} {what} {detail}")
    shot(f"failure-{step}")
    driver.quit()
    sys.exit(1)


def wait_for(what, predicate, timeout=15):
    try:
        WebDriverWait(driver, timeout).until(lambda d: predicate())
        return True
    except TimeoutException:
        check(what, False, "(timed out)")


def loaded():
    wait_for("the page loads", lambda: driver.execute_script(
        "return document.body.dataset.loaded === 'true' || !!document.getElementById('page-error')"))
    error = driver.find_elements(By.ID, "page-error")
    check("the page has no error", not error, error[0].text if error else "")


def text(selector):
    return driver.find_element(By.CSS_SELECTOR, selector).text


def severe_logs():
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def v2(name, body):
    # A request from the page's own origin, through the page's fetch, so it counts like a client's.
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: arguments[1]}).then(r => done(r.status), e => done(String(e)));",
        f"/v2/models/{name}/infer", json.dumps(body))


try:
    # The list: every model, ready, with digest and signature state.
    driver.get(BASE + "/")
    loaded()
    rows = driver.find_elements(By.CSS_SELECTOR, "#models tbody tr")
    names = [row.get_attribute("data-model") for row in rows]
    check("the list shows every served model", names == ["churn_model", "evil_card", "iris"], names)
    check("the server says ready", text("#server-state") == "ready", text("#server-state"))
    first = rows[0].text
    check("a row shows the digest and signature", "unsigned" in first and "copy" in first, first)
    errors = severe_logs()
    check("the list page logs no error", not errors, errors)
    shot("list")

    # A model page: contract, card, metadata, golden examples, snippets.
    driver.find_element(By.LINK_TEXT, "churn_model").click()
    loaded()
    check("the model page is churn_model", text("#model-title").startswith("churn_model"))
    body = driver.find_element(By.TAG_NAME, "main").text
    for expected in ("tenure_months", "support_calls", "stay, churn", "[batch, 5]"):
        check(f"the contract shows {expected!r}", expected in body)
    card_title = driver.find_elements(By.CSS_SELECTOR, "#card h1")
    check("the model card is rendered", card_title and "churn_model" in card_title[0].text,
          [t.text for t in card_title])
    check("the golden examples are shown with their result", "passed" in body)
    snippet = text("#snippet")
    check("the V2 snippet names the model's infer URL",
          f"{BASE}/v2/models/churn_model/versions/1.0.0/infer" in snippet, snippet)

    # Every curl request the page offers answers 200 when sent as written.
    for tab in driver.find_elements(By.CSS_SELECTOR, ".tabs button"):
        tab.click()
        snippet = text("#snippet")
        if tab.text.startswith("MLflow"):
            # MLflow's protocol names no model: with three served, the page says so first.
            check("the MLflow snippet says it needs a server of one model",
                  snippet.startswith("# MLflow's /invocations names no model"), snippet)
            continue
        if tab.text.startswith("Triton"):
            # Run by the xtask with the Triton client's virtualenv, once this script is done.
            with open(os.path.join(SHOTS, "triton_snippet.py"), "w", encoding="utf-8") as out:
                out.write(snippet + "\n")
            continue
        found = re.search(r"curl -s -X POST '([^']*)'.*-d '((?:[^']|'\\'')*)'$", snippet, re.S)
        check(f"the {tab.text} snippet is a curl POST with a body", found, snippet)
        url, body = found.group(1), found.group(2).replace("'\\''", "'")
        status = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: arguments[1]}).then(r => r.text().then(t => done(r.status + ' ' + t)),"
            " e => done(String(e)));", url, body)
        check(f"the {tab.text} snippet is answered 200", status.startswith("200 "), status)

    # Try it: the prefilled request answers, as a table with the class labels.
    before = int(text("#fig-requests"))
    driver.find_element(By.ID, "try-send").click()
    wait_for("the try-it answer arrives", lambda: driver.find_elements(By.ID, "try-ok")
             or driver.find_elements(By.ID, "try-error"))
    check("the prefilled request is answered", driver.find_elements(By.ID, "try-ok"),
          driver.find_elements(By.ID, "try-error") and text("#try-error"))
    headers = [th.text for th in driver.find_elements(
        By.CSS_SELECTOR, "#try-answer [data-output='probabilities'] th")]
    check("the probabilities table is headed by the class labels",
          headers == ["row", "stay", "churn"], headers)
    cells = driver.find_elements(By.CSS_SELECTOR, "#try-answer [data-output='probabilities'] td")
    probabilities = [float(c.text) for c in cells[1:3]]
    check("the probabilities sum to 1", abs(sum(probabilities) - 1) < 1e-3, probabilities)
    label = text("#try-answer [data-output='label'] tbody")
    check("the label is shown with its class name", "stay" in label or "churn" in label, label)
    shot("model")

    # A bad payload: the server's error, shown.
    area = driver.find_element(By.ID, "try-request")
    area.clear()
    area.send_keys('{"inputs": [{"name": "X", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}')
    driver.find_element(By.ID, "try-send").click()
    wait_for("the error arrives", lambda: driver.find_elements(By.ID, "try-error"))
    error = text("#try-error")
    check("a bad payload shows the server's error", error.startswith("400") and "X" in error, error)
    shot("error")

    # The figures move after requests: the page polls /metrics.
    for _ in range(3):
        v2("churn_model", {"inputs": [{"name": "X", "shape": [1, 5], "datatype": "FP32",
                                       "data": [3, 63.34, 187.26, 1, 0]}]})
    wait_for("the request count rises", lambda: int(text("#fig-requests")) >= before + 5, timeout=10)
    check("the request count counts the page's and the client's requests",
          int(text("#fig-requests")) >= before + 5, text("#fig-requests"))
    check("an error is counted by status", "400" in text("#statuses"), text("#statuses"))
    check("the latency histogram is drawn",
          len(driver.find_elements(By.CSS_SELECTOR, "#histogram svg rect")) > 0)
    check("p50 is a latency", text("#fig-p50").endswith("s"), text("#fig-p50"))
    driver.execute_script("window.scrollTo(0, 0)")
    shot("figures")
    shot("docs-model-page", height=1150)  # the picture in docs/server.md
    # The bad payload's 400 is logged by the browser as a failed fetch; nothing else may be.
    errors = [e for e in severe_logs() if "/v2/" not in e["message"]]
    check("the model page logs no script error", not errors, errors)

    # The hostile card: nothing of it runs, by the page's own state.
    driver.get(BASE + "/ui/models/evil_card/1.0.0")
    loaded()
    time.sleep(1)
    pwned = driver.execute_script("return typeof window.pwned")
    check("no script of the card ran (window.pwned is undefined)", pwned == "undefined", pwned)
    try:
        alert = driver.switch_to.alert
        check("no alert was raised", False, alert.text)
    except NoAlertPresentException:
        check("no alert was raised", True)
    check("the card's text is shown", text("#card h1") == "Evil", text("#card"))
    hrefs = [a.get_attribute("href") or "" for a in driver.find_elements(By.CSS_SELECTOR, "#card a")]
    check("no link of the card runs script or opens data",
          not any(h.lower().startswith(("javascript:", "data:")) for h in hrefs), hrefs)
    handlers = driver.execute_script(
        "return [...document.querySelectorAll('#card *')].flatMap(e => [...e.attributes])"
        ".map(a => a.name).filter(n => n.startsWith('on'))")
    check("no element of the card has an event attribute", not handlers, handlers)
    check("the card holds no script, svg or iframe element", not driver.find_elements(
        By.CSS_SELECTOR, "#card script, #card svg, #card iframe, #card object"))
    shot("hostile-card")
finally:
    driver.quit()

print(f"{step} passed, 0 failed")
