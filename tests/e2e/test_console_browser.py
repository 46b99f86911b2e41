"""The console end to end in headless Chromium, against a real two-worker gateway and the simulator:
log in, create a tenant and a key, call the gateway with the key through the official SDK, see the
request in the usage explorer, download it as CSV, suspend the key's AI Act purpose and see the SDK
refused, resume it, download the purpose's report, look at every page, log out.

Set PASSERELLE_SCREENSHOTS=1 to refresh docs/console/*.png from this run."""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.support.processes import ADMIN_KEY, Server, start_gateway, start_simulator

CHROMIUM = "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent: apt-get install chromium "
                       "chromium-driver (.ci/run does it where apt is available)"),
    pytest.mark.timeout(180),
]

CONFIG = """
providers:
  sim: {{type: anthropic, api_key: sk-upstream, base_url: "{sim}"}}
models:
  console-model:
    deployments: [{{provider: sim, model: claude-sonnet-4-5}}]
store: {{ledger_flush_interval: 0.1, refresh_interval: 0.1}}
"""


PURPOSE = {"id": "credit-scoring", "name": "Credit scoring assistant", "description": "Summaries for officers",
           "instructions": "An officer reviews every summary", "overseer": "Marie Curie", "owner": "alice",
           "risk_class": "high-risk", "annex_category": "5(b)", "retention_days": 400, "status": "active"}


def admin_post(gateway: Server, path: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(gateway.url + path, json.dumps(body).encode(), method="POST",
                                     headers={"x-api-key": ADMIN_KEY, "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Server]:
    simulator = start_simulator(tmp_path)
    server = start_gateway(tmp_path, CONFIG.format(sim=simulator.url), workers=2)
    yield server
    server.stop()
    simulator.stop()


def test_console_in_chromium(gateway: Server, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install .[test])")
    shots = DOCS if os.environ.get("PASSERELLE_SCREENSHOTS") == "1" else tmp_path / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    profile = tmp_path / "chromium-profile"
    with sync_api.sync_playwright() as pw:
        # A fresh profile directory per run (Playwright passes it as --user-data-dir).
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, viewport={"width": 1366, "height": 860},
            accept_downloads=True)
        try:
            page = context.new_page()
            page.goto(gateway.url + "/console/")
            assert page.url.endswith("/console/login")
            page.fill("input[name=admin_key]", "sk-wrong")
            page.click("button[type=submit]")
            assert "not the admin key" in page.content()
            page.fill("input[name=admin_key]", ADMIN_KEY)
            page.click("button[type=submit]")
            page.wait_for_url(re.compile(r".*/console/$"))
            cookie = next(c for c in context.cookies() if c["name"] == "passerelle_console")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

            page.goto(gateway.url + "/console/keys")
            page.fill("form[action='/console/tenants'] input[name=id]", "acme")
            page.click("form[action='/console/tenants'] button")
            assert "Tenant acme created" in page.content()
            page.fill("form[action='/console/keys'][method=post] input[name=tenant]", "acme")
            page.fill("form[action='/console/keys'][method=post] input[name=name]", "browser-made key")
            page.click("form[action='/console/keys'][method=post] button")
            secret = page.inner_text("#new-secret").strip()
            assert secret.startswith("sk-pas-")
            key_id = re.search(r"Key (key_[0-9a-f]+) created", page.content())
            assert key_id is not None
            page.screenshot(path=str(shots / "keys.png"), full_page=True)

            # The key works through the official SDK (both workers: policies reload within refresh_interval).
            client = anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=5)
            for text in ("Bonjour", "Hello from the browser test", "Hallo"):
                reply = client.messages.create(model="console-model", max_tokens=64,
                                               messages=[{"role": "user", "content": text}])
                assert reply.content[0].type == "text"

            usage_url = f"{gateway.url}/console/usage?by=key&tenant=acme&since=1d"
            three = f'<td>{key_id[1]}</td><td class="num">3</td>'  # the key's row: 3 requests
            for _ in range(50):  # the ledger is write-behind (each worker flushes its own)
                page.goto(usage_url)
                if three in page.content():
                    break
                page.wait_for_timeout(200)
            assert three in page.content()
            page.screenshot(path=str(shots / "usage.png"), full_page=True)
            with page.expect_download() as info:
                page.click("text=Download CSV")
            csv_path = tmp_path / "usage.csv"
            info.value.save_as(csv_path)
            lines = csv_path.read_text().splitlines()
            assert lines[0].startswith("key,requests") and lines[1].startswith(f"{key_id[1]},3,")

            # The AI Act suspend switch: the purpose is registered and the key bound through the admin API.
            admin_post(gateway, "/admin/aiact/purposes", PURPOSE)
            admin_post(gateway, "/admin/aiact/bindings", {"key_id": key_id[1], "purpose_id": "credit-scoring"})
            page.goto(gateway.url + "/console/aiact")
            row = page.locator("tr", has_text="credit-scoring")
            row.locator("input[name=reason]").fill("model under review")
            page.once("dialog", lambda dialog: dialog.accept())  # the confirm() of console.js
            row.locator("button", has_text="Suspend").click()
            page.wait_for_selector("#switch-notice")
            assert "suspended: its requests are refused" in page.inner_text("#switch-notice")
            refused = anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0)
            for _ in range(40):  # the other worker polls the registry (refresh_interval)
                try:
                    refused.messages.create(model="console-model", max_tokens=8,
                                            messages=[{"role": "user", "content": "still there?"}])
                except anthropic.PermissionDeniedError as exc:
                    assert "suspended" in str(exc)
                    break
                page.wait_for_timeout(100)
            else:
                pytest.fail("requests of a suspended purpose were still served")
            with page.expect_download() as report_info:
                page.locator("tr", has_text="credit-scoring").locator("a", has_text="Report").click()
            report_path = tmp_path / "report.html"
            report_info.value.save_as(report_path)
            assert "Marie Curie" in report_path.read_text()
            page.screenshot(path=str(shots / "aiact.png"), full_page=True)
            page.locator("tr", has_text="credit-scoring").first.locator("button", has_text="Resume").click()
            page.wait_for_selector("#switch-notice")
            assert "credit-scoring is resumed" in page.inner_text("#switch-notice")

            page.goto(gateway.url + "/console/policies")  # a policy set in the browser, for the tenant made above
            page.select_option("form[action='/console/policies'][method=post] select[name=scope]", "tenant")
            page.fill("form[action='/console/policies'][method=post] input[name=scope_id]", "acme")
            page.fill("form[action='/console/policies'][method=post] input[name=packs]", "finance,gdpr")
            page.fill("form[action='/console/policies'][method=post] input[name=overrides]", "PHONE=mask")
            page.click("form[action='/console/policies'][method=post] button")
            page.wait_for_selector("text=Policy of tenant acme saved.")
            assert "finance, gdpr" in page.locator("tr", has_text="acme").inner_text()

            for path, name, expected in (("/console/", "overview", "Requests per day"),
                                         ("/console/audit", "audit", "Verify the whole chain"),
                                         ("/console/compliance", "compliance", "Findings per day"),
                                         ("/console/policies", "policies", "Shipped packs"),
                                         ("/console/skills", "skills", "Skills marketplace")):
                page.goto(gateway.url + path)
                assert expected in page.content(), path
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            page.goto(gateway.url + "/console/audit")
            page.click("text=Verify the whole chain")
            assert "Chain intact" in page.inner_text("#verdict")

            page.click("header form.logout button")
            page.wait_for_url(re.compile(r".*/console/login$"))
            page.goto(gateway.url + "/console/keys")
            assert page.url.endswith("/console/login")  # the session ended on every worker
            page.screenshot(path=str(shots / "login.png"))
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)
