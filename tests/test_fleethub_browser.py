"""The Fleet Hub application in a real headless Chromium (Debian's chromium
driven through its chromedriver by selenium): create an application, open its
URL, search for connected things, open a device, watch its shadow change live
when a paho device and UpdateThingShadow change it, start a job from the page
and watch it complete. Screenshots go to build/test-artifacts/fleethub/.

Chromium comes from Debian: when /usr/bin/chromium or /usr/bin/chromedriver is
missing and the tests run as root (as `.ci/run` does), the `chromium` fixture
installs both with apt-get, once per machine (a file lock keeps the xdist
workers from racing). Only when that cannot be done are these tests skipped,
with the reason."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from fleethub_kit import active_application, enable_indexing, fleethub_client
from indexing_fleet import connect, disconnect, eventually

from conftest import make_client
from localiot.testing import local_server

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts" / "fleethub"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900", "--disable-features=BackForwardCache"]
WAIT = 15


def _install_chromium() -> str | None:
    """None when chromium and chromedriver are there (installing them if it can), else why not."""
    if os.path.exists(CHROMIUM) and os.path.exists(DRIVER):
        return None
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "Debian's chromium and chromium-driver are missing and cannot be installed without root and apt-get"
    with open(os.path.join(tempfile.gettempdir(), "localiot-chromium-install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(CHROMIUM) and os.path.exists(DRIVER):
            return None
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=600",
                         "chromium", "chromium-driver"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
            if done.returncode != 0:
                return f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-500:]}"
    return None if os.path.exists(CHROMIUM) and os.path.exists(DRIVER) else "apt-get left no /usr/bin/chromium"


@pytest.fixture(scope="session")
def chromium():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    reason = _install_chromium()
    if reason:
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="localiot-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(DRIVER))
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def page(chromium):
    """The browser for one test; it leaves the page afterwards, so no live stream holds the server."""
    yield chromium
    chromium.get("about:blank")


def _wait(driver, condition, message):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(lambda d: condition(d), message)


def _text(driver, selector: str) -> str:
    """The text of `selector` ("" while absent or being redrawn by a live update)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def _click(driver, selector: str) -> None:
    """Click `selector`, again if a live update redrew it under the pointer."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def clicked(d) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, selector).click()
            return True
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    _wait(driver, clicked, f"a click on {selector}")


def _json(driver, selector: str):
    """The JSON shown in `selector`, or None while it shows none."""
    try:
        return json.loads(_text(driver, selector))
    except ValueError:
        return None


def _shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    assert driver.save_screenshot(str(path)) and path.stat().st_size > 0
    return path


@pytest.fixture(scope="module")
def _plain_server():
    with local_server(mqtt_plain=True, background_period=0) as running:  # devices connect with paho over TCP
        yield running


@pytest.fixture
def localiot_server(_plain_server):
    _plain_server.reset()
    return _plain_server


@pytest.fixture
def fleet(iot, localiot_server):
    """Indexed things, two of them connected through paho; yields the connected clients."""
    enable_indexing(iot, localiot_server)
    for name, floor in (("sensor-1", "1"), ("sensor-2", "2"), ("gateway", "1"), ("sensor-3", "3")):
        iot.create_thing(thingName=name, attributePayload={"attributes": {"floor": floor}})
    iot.create_thing_group(thingGroupName="floor-1")
    iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="sensor-1")
    data = make_client(localiot_server, "iot-data")
    data.update_thing_shadow(thingName="sensor-1", payload=json.dumps({"state": {"reported": {"temp": 20}}}))
    clients = {name: connect(localiot_server, name) for name in ("sensor-1", "gateway")}
    assert eventually(lambda: len(iot.search_index(queryString="connectivity.connected:true")["things"]) == 2)
    yield clients
    for client in clients.values():
        disconnect(client)


def test_search_open_a_device_and_watch_it_live(page, fleet, localiot_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = page
    app = active_application(fleethub_client(localiot_server), localiot_server, name="North site")
    driver.get(app["applicationUrl"])
    _wait(driver, lambda d: _text(d, "#app-name") == "North site", "the application's name")
    _wait(driver, lambda d: _text(d, "#live") == "live", "the live stream")

    # search the fleet index for connected things, from the keyboard
    box = driver.find_element(By.ID, "query")
    box.clear()
    box.send_keys("connectivity.connected:true", Keys.ENTER)
    rows = "#results tbody tr"
    _wait(driver, lambda d: sorted(_text(d, f"{rows}[data-thing='{t}'] a") for t in ("gateway", "sensor-1", "sensor-2"))
          == ["", "gateway", "sensor-1"] and len(d.find_elements(By.CSS_SELECTOR, rows)) == 2, "the two connected things")
    _wait(driver, lambda d: "connected" in _text(d, "#results tbody tr[data-thing='sensor-1']"), "sensor-1 connected")
    _shot(driver, "1-search")

    # open one device
    _click(driver, "#results a[href='#/thing/sensor-1']")
    _wait(driver, lambda d: _text(d, "#thing-title") == "sensor-1", "the device page")
    reported = "#thing-shadow [data-part='reported'] pre"
    # (live updates redraw parts of the page at any time: each read is a wait, which fails when it times out)
    _wait(driver, lambda d: _json(d, reported) == {"temp": 20}, "the reported state")
    _wait(driver, lambda d: _text(d, "#thing-groups") == "floor-1", "the device's groups")
    _wait(driver, lambda d: "yes" in _text(d, "#thing-connectivity"), "the device's connectivity")
    driver.execute_script("window.__samePage = true")

    # the device reports over MQTT: the page shows it without being reloaded
    fleet["sensor-1"].publish("$aws/things/sensor-1/shadow/update",
                              json.dumps({"state": {"reported": {"temp": 23.5}}}), qos=1).wait_for_publish(5)
    _wait(driver, lambda d: _json(d, reported) == {"temp": 23.5}, "the reported change")
    # an UpdateThingShadow through the API: desired and delta follow
    make_client(localiot_server, "iot-data").update_thing_shadow(
        thingName="sensor-1", payload=json.dumps({"state": {"desired": {"temp": 19}}}))
    _wait(driver, lambda d: _json(d, "#thing-shadow [data-part='delta'] pre") == {"temp": 19},
          "the delta")
    _wait(driver, lambda d: _json(d, "#thing-shadow [data-part='desired'] pre") == {"temp": 19}, "the desired state")
    assert driver.execute_script("return window.__samePage") is True
    _shot(driver, "2-device")

    # the device disconnects: its connectivity follows
    disconnect(fleet.pop("sensor-1"))
    _wait(driver, lambda d: "no" in _text(d, "#thing-connectivity").split(), "the disconnection")


def test_the_device_page_shows_its_messages_while_open(page, fleet, localiot_server):
    """What the device publishes and what is delivered to it arrive on its page as they happen
    (newest first, payload text or base64); another device's messages do not."""
    driver = page
    app = active_application(fleethub_client(localiot_server), localiot_server)
    device = fleet["sensor-1"]
    device.subscribe("cmd/sensor-1", qos=1)
    driver.get(app["applicationUrl"] + "#/thing/sensor-1")
    _wait(driver, lambda d: _text(d, "#thing-title") == "sensor-1", "the device page")
    _wait(driver, lambda d: "Waiting" in _text(d, "#messages-status"), "the message stream")
    rows = "#thing-messages tbody tr"

    def shown(d) -> list[str]:
        return [_text(d, f"{rows}:nth-child({i + 1})") for i in range(len(d.find_elements("css selector", rows)))]

    fleet["gateway"].publish("telemetry/gateway", b"not sensor-1's", qos=1).wait_for_publish(5)
    # the page's stream may open a moment after it says so: publish until the first one shows
    _wait(driver, lambda d: device.publish("telemetry/sensor-1", json.dumps({"temp": 21}), qos=1) and
          any("telemetry/sensor-1" in row for row in shown(d)), "the device's own publish")
    first = shown(driver)[0]
    assert "from device" in first and '{"temp": 21}' in first, first
    make_client(localiot_server, "iot-data").publish(topic="cmd/sensor-1", qos=1, payload=b"\xff\x00reboot")
    _wait(driver, lambda d: "cmd/sensor-1" in (shown(d) or [""])[0], "the message delivered to the device")
    delivered = shown(driver)[0]
    assert "to device" in delivered and "base64:/wByZWJvb3Q=" in delivered, delivered
    assert not any("gateway" in row for row in shown(driver))
    _shot(driver, "2b-device-messages")
    # leaving the page stops the watch: the broker keeps no watcher for the device
    driver.get("about:blank")
    broker = localiot_server.app.runtime.broker
    assert eventually(lambda: not broker.watched), broker.watched


def test_start_a_job_and_watch_it_complete(page, fleet, localiot_server, iot):
    from selenium.webdriver.common.by import By

    driver = page
    app = active_application(fleethub_client(localiot_server), localiot_server, name="Jobs")
    driver.get(app["applicationUrl"] + "#/search?q=" + "attributes.floor%3A1")
    _wait(driver, lambda d: _text(d, "#live") == "live", "the live stream")
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 2, "floor 1 things")
    for thing in ("sensor-1", "gateway"):
        _click(driver, f"input[aria-label='Select {thing}']")
    _click(driver, "#job-for-selected")
    _wait(driver, lambda d: d.find_element(By.ID, "view-jobs").is_displayed(), "the jobs view")
    assert sorted(driver.find_element(By.ID, "job-things").get_attribute("value").split(", ")) == ["gateway", "sensor-1"]
    driver.find_element(By.ID, "job-id").send_keys("firmware-2")
    document = driver.find_element(By.ID, "job-document")
    document.clear()
    document.send_keys(json.dumps({"operation": "install", "version": "2.0"}))
    driver.find_element(By.ID, "job-create").click()
    _wait(driver, lambda d: _text(d, "#job-title") == "Job firmware-2", "the job page")
    assert iot.describe_job(jobId="firmware-2")["job"]["status"] == "IN_PROGRESS"
    executions = "#job-executions tbody"
    _wait(driver, lambda d: _text(d, executions).count("QUEUED") == 2, "two queued executions")

    for thing, client in fleet.items():  # each device reports success over MQTT
        client.publish(f"$aws/things/{thing}/jobs/firmware-2/update",
                       json.dumps({"status": "SUCCEEDED"}), qos=1).wait_for_publish(5)
    _wait(driver, lambda d: _text(d, executions).count("SUCCEEDED") == 2, "two succeeded executions")
    _wait(driver, lambda d: "COMPLETED" in _text(d, "#job-details"), "the completed job")
    _shot(driver, "3-job")


def test_alarms_fleet_metrics_and_connection_history(page, fleet, localiot_server, iot):
    """Device Defender violations and fleet metric values on the alarms view; a device's
    alarms and its connection history on its page."""
    from selenium.webdriver.common.by import By

    iot.update_indexing_configuration(thingIndexingConfiguration={
        "thingIndexingMode": "REGISTRY_AND_SHADOW", "thingConnectivityIndexingMode": "STATUS",
        "customFields": [{"name": "shadow.reported.temp", "type": "Number"}]})
    iot.create_fleet_metric(metricName="temperature", queryString="thingName:*", period=60,
                            aggregationType={"name": "Statistics", "values": ["average", "count"]},
                            aggregationField="shadow.reported.temp")
    iot.create_security_profile(securityProfileName="ports", behaviors=[
        {"name": "only-ssh", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22]}}}])
    iot.attach_security_profile(securityProfileName="ports",
                                securityProfileTargetArn="arn:aws:iot:us-east-1:123456789012:all/things")
    device = fleet["gateway"]
    device.publish("$aws/things/gateway/defender/metrics/json", json.dumps({
        "header": {"report_id": 1, "version": "1.0"},
        "metrics": {"listening_tcp_ports": {"ports": [{"port": 22}, {"port": 8080}]}}}), qos=1).wait_for_publish(5)
    assert eventually(lambda: iot.list_active_violations(thingName="gateway")["activeViolations"])

    driver = page
    app = active_application(fleethub_client(localiot_server), localiot_server, name="Alarms")
    driver.get(app["applicationUrl"] + "#/alarms")
    rows = "#violations tbody tr"
    # the live view re-renders the table at any time: keep the text read when the whole row was there
    seen = {}

    def whole_row(d):
        text = _text(d, rows)
        if all(part in text for part in ("only-ssh", "gateway", "aws:listening-tcp-ports", "STATIC", "[22,8080]")):
            seen["row"] = text
        return "row" in seen

    _wait(driver, whole_row, "the violation")
    row = seen["row"]
    assert "gateway" in row and "ports" in row and "aws:listening-tcp-ports" in row and "STATIC" in row
    assert "[22,8080]" in row
    def metric_row(d):
        text = _text(d, "#fleet-metrics tr[data-metric='temperature']").replace(" ", "")
        if '"average":20' in text and '"count":1' in text:  # (a wait that times out fails the test)
            seen["metric"] = text
        return "metric" in seen

    _wait(driver, metric_row, "the fleet metric")
    assert '"average":20' in seen["metric"] and '"count":1' in seen["metric"]
    _shot(driver, "4-alarms")

    # the violating device's page: its alarm and its connection history
    _click(driver, "#violations a[href='#/thing/gateway']")
    _wait(driver, lambda d: _text(d, "#thing-title") == "gateway", "the device page")
    _wait(driver, lambda d: "only-ssh" in _text(d, "#thing-violations tbody"), "the device's alarm")
    history = "#thing-history tbody tr"
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, history)) == 1 and "connected" in _text(d, history),
          "one open connection")
    disconnect(fleet.pop("gateway"))  # the page follows live: the connection has ended
    _wait(driver, lambda d: "connected" not in _text(d, history).split() and _text(d, history).count("Z") == 2,
          "the ended connection")
    fleet["gateway"] = connect(localiot_server, "gateway")
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, history)) == 2, "a second connection")
    _shot(driver, "5-device-alarms")


@pytest.fixture(scope="module")
def _strict_server():
    with local_server(strict_signatures=True, credentials="123456789012:browser-secret", background_period=0) as running:
        yield running


def test_strict_signatures_need_a_sign_in(page, _strict_server):
    from localiot.fleethub_web.signin import signin_url

    server = _strict_server
    server.reset()
    iot = make_client(server, "iot", access_key="123456789012", secret_key="browser-secret")
    enable_indexing(iot, server)
    iot.create_thing(thingName="vault-door")
    hub = fleethub_client(server, access_key="123456789012", secret_key="browser-secret")
    app = active_application(hub, server, name="Secured")
    driver = page
    driver.get(app["applicationUrl"])
    _wait(driver, lambda d: "Sign in first" in _text(d, "#page-error"), "the sign-in page")
    assert "vault-door" not in driver.page_source
    _shot(driver, "6-sign-in-required")
    driver.get(signin_url(app["applicationUrl"], "123456789012", "browser-secret", "us-east-1"))
    _wait(driver, lambda d: _text(d, "#app-name") == "Secured", "the dashboard after signing in")
    _wait(driver, lambda d: "vault-door" in _text(d, "#results tbody"), "the fleet")
    _wait(driver, lambda d: _text(d, "#live") == "live", "the live stream")
    driver.delete_all_cookies()
