"""Counting truth: after the matrix (test_a_matrix.py), with pullgate stopped
(test_c_events.py), `pullgate report --format json` over the events it wrote
counts, for every client and every repository, exactly the pulls the real
clients performed (conftest's env.pulls), under Docker's analytics rule (one
pull per tag request and the digest GETs that follow) and its usage rule
(one per architecture: skopeo copy --all takes both of the multi image), and
counts a repeat pull that found everything in place as an update check.

Excluded: the matrix's expected failures (token upstream, redirect mode).
pullgate answered those clients' manifest requests with a redirect and the
upstream refused them afterwards, out of pullgate's sight; the report counts
what pullgate answered."""

import json
import os
import subprocess
from collections import Counter

from conftest import MODES, NAMINGS, UPSTREAMS
from test_a_matrix import CLIENTS, expected_failure

RUNTIME = {"ctr": "containerd"}


def report(env, *args):
    result = subprocess.run([env.pullgate_bin, "report", "--data-dir", env.data_dir, "--last", "2d", *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pullgate report {' '.join(args)} failed:\n{result.stderr}"
    return result


def repositories(env):
    for (upstream, mode, naming), host in env.hosts.items():
        yield upstream, mode, naming, host, "app"
        if upstream == "token" and naming == "unchanged":
            yield upstream, mode, "private", host, "private/app"


def test_report_counts_the_pulls_each_client_performed(env):
    env.stop_pullgate()
    assert env.pulls, "the matrix recorded no pulls (run the whole e2e suite)"
    expected_pulls, expected_usage, expected_checks = Counter(), Counter(), Counter()
    for client, host, name, tag, multi, kind in env.pulls:
        key = (RUNTIME.get(client, client), host, name)
        if kind == "check":
            expected_checks[key] += 1
        else:
            expected_pulls[key] += 1
            expected_usage[key] += 2 if (client == "skopeo" and multi) else 1

    overall = json.loads(report(env, "--format", "json").stdout)
    counted = {s["value"]: s for s in overall["breakdown"]["repository_runtime"]}
    mismatches, compared, excluded = [], 0, []
    for upstream, mode, naming, host, name in repositories(env):
        for client in CLIENTS:
            runtime = RUNTIME.get(client, client)
            if client == "docker" and "docker" not in env.clients:
                continue
            if expected_failure(upstream, mode, "renamed" if naming == "renamed" else "unchanged", client):
                excluded.append(f"{client}@{host}/{name}")
                continue
            key = (runtime, host, name)
            got = counted.get(f"{host}/{name} {runtime}", {})
            want = (expected_pulls[key], expected_usage[key], expected_checks[key])
            have = (got.get("pulls", 0), got.get("usage_pulls", 0), got.get("update_checks", 0))
            compared += 1
            if have != want:
                mismatches.append(f"{client} on {upstream}/{mode}/{naming} {host}/{name}: "
                                  f"(pulls, usage pulls, update checks) counted {have}, performed {want}")
    assert not mismatches, "\n".join(mismatches)
    assert compared >= 60, compared
    assert sum(expected_checks.values()) >= 2, "the repeat pulls were not recorded"

    # The whole report agrees with the sum of what was performed (the
    # excluded cells add their own counted pulls on top).
    performed = sum(expected_pulls.values())
    assert overall["totals"]["pulls"] >= performed
    assert overall["totals"]["update_checks"] >= sum(expected_checks.values())
    runtimes = {s["value"] for s in overall["breakdown"]["runtime"]}
    assert {RUNTIME.get(c, c) for c in env.pulled_with} <= runtimes, runtimes
    print(f"\ncompared {compared} (client, repository) pairs, {performed} pulls; excluded {len(excluded)}: {excluded}")


def test_report_formats_and_errors(env, tmp_path):
    env.stop_pullgate()
    table = report(env).stdout
    assert "pulls (analytics rule)" in table and "Runtimes" in table, table
    csv = report(env, "--format", "csv").stdout
    assert csv.startswith("section,group,value,pulls,"), csv[:200]
    out = tmp_path / "report.html"
    report(env, "--format", "html", "--output", str(out))
    assert out.read_text().startswith("<!DOCTYPE html>")
    # An empty range and a missing directory are clear errors, not panics.
    for args, message in [
        (["--from", "2001-01-01", "--to", "2001-01-31"], "no pulls and no update checks"),
        (["--from", "2001-02-30", "--to", "2001-03-01"], "is not a date"),
        (["--last", "soon"], "expected a number of days"),
    ]:
        r = subprocess.run([env.pullgate_bin, "report", "--data-dir", env.data_dir, *args], capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr and "panicked" not in r.stderr, (args, r.stderr)
    r = subprocess.run([env.pullgate_bin, "report", "--data-dir", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert r.returncode != 0 and "no event data" in r.stderr, r.stderr
