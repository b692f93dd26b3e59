"""The HTML report renders in headless Chromium (Debian `chromium`): one
self-contained file (no script, no link, nothing fetched), with the charts
of pulls and unique pullers over time, the runtime and platform mix, the top
organizations, and one section per organization. The screenshot is kept as
a CI artifact: target/artifacts/report.png (README, "Reports")."""

import os
import re
import shutil
import struct
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ARTIFACTS = os.path.join(ROOT, "target", "artifacts")
CHARTS = ["chart-pulls-over-time", "chart-runtimes", "chart-platforms", "chart-top-orgs"]


def chromium(tmp_path, *args):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium missing: run tests/install-deps.sh (Debian package chromium)"
    profile = tmp_path / "chromium-profile"
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result.stdout


def test_html_report_renders_in_chromium(env, tmp_path):
    data = tmp_path / "data"
    subprocess.run([env.pullgate_bin, "generate", "--data-dir", str(data), "--events", "8000", "--days", "21",
                    "--orgs", "12", "--end", "2026-03-21"], check=True, capture_output=True, timeout=300)
    page = tmp_path / "report.html"
    subprocess.run([env.pullgate_bin, "report", "--data-dir", str(data), "--from", "2026-03-01", "--to", "2026-03-21",
                    "--format", "html", "--output", str(page)], check=True, capture_output=True, timeout=600)
    html = page.read_text()
    orgs = re.findall(r'<section class="org" id="org-\d+" data-org="([^"]*)"', html)
    assert len(orgs) >= 10 and f"<h2>Organizations ({len(orgs)})</h2>" in html, orgs
    for needle in ("src=", "href=", "url(", "@import", "<script", "http://", "https://"):
        assert needle not in html, f"the report refers to something outside itself: {needle}"

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    for chart in CHARTS:
        assert f'id="{chart}"' in dom, f"{chart} missing from the rendered DOM"
    assert dom.count("<polyline") >= 1 and dom.count("<rect") >= 10, "charts without marks"
    assert dom.count('<section class="org"') == len(orgs)
    for org in orgs:
        assert f'data-org="{org}"' in dom, org

    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", page.as_uri())
    with open(shot, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    assert (width, height) == (1280, 4000), (width, height)
    assert os.path.getsize(shot) > 50_000, "a blank screenshot"
    shutil.copy(page, os.path.join(ARTIFACTS, "report.html"))
